//! Finalizer cleanup: observe the asset, its claim and its links, then run
//! [`plan::next_step`] until the asset is gone or released (finalizer removed) or something
//! must be waited for (an `Err`, which keeps the finalizer: kube-runtime's `finalizer` helper
//! releases it on any `Ok`).
//!
//! Progress is written to status before every mutating SiteWise call, every mutating call
//! carries a deterministic clientToken, and the claim is checked once per pass before the first
//! one, so a restart at any point resumes with the same calls, SiteWise recognises replays,
//! and nothing is changed that this resource does not own.

mod links;
mod memory;
mod release;

pub use links::{disassociate, ensure_leader, parent_link, read_links};
pub use memory::DeletionMemory;

use kube::runtime::controller::Action;

use super::Context;
use super::claim;
use super::plan::{self, Links, Observation, Standing, Step};
use super::status::{Events, StatusWriter};
use crate::crd::{
    DeletionPhase, DeletionPolicy, DeletionProgress, Mode, Ownership, SiteWiseAsset,
    SiteWiseAssetStatus,
};
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, AssetState, ErrorKind, SiteWise};
use crate::token;
use release::{progress, release, start_deletion};

/// Upper bound of steps in one reconcile; a hierarchy that keeps changing under us is
/// re-observed on the next reconcile instead of being chased in a loop.
const MAX_STEPS_PER_RECONCILE: usize = 1000;

pub async fn cleanup<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Action> {
    let uid = obj.require_uid()?;
    let policy = obj.spec.deletion_policy;
    let before = status.snapshot();
    start_deletion(status).await?;

    if policy == DeletionPolicy::Retain {
        return release(status, events, ctx, &Step::ReleaseRetained, obj).await;
    }
    if obj.force_orphan_reason().is_some() {
        return release(status, events, ctx, &Step::ReleaseOrphaned, obj).await;
    }

    let reference = reference(obj, &before, uid);
    let (mut observation, description) = observe(ctx, &reference, &before).await?;
    recall(ctx, uid, &mut observation);

    for _ in 0..MAX_STEPS_PER_RECONCILE {
        let step = plan::next_step(policy, &observation);
        match &step {
            Step::ReleaseRetained
            | Step::ReleaseOrphaned
            | Step::ReleaseDeleted
            | Step::ReleaseNotOwned { .. } => {
                ctx.deletions.forget(uid);
                return release(status, events, ctx, &step, obj).await;
            }
            Step::WaitUntilStable(state) => {
                progress(status, &step, &observation, None).await?;
                return Err(Error::AssetBusy {
                    asset_id: reference,
                    state: state.to_string(),
                });
            }
            Step::AwaitGone { asset_id } => {
                progress(status, &step, &observation, None).await?;
                return Err(Error::DeletionPending {
                    asset_id: asset_id.clone(),
                    state: "DELETING".into(),
                });
            }
            Step::RereadLinks { parent_id } => {
                remember_nothing(ctx, uid, &observation);
                return Err(Error::ObserveAgain {
                    asset_id: reference,
                    detail: format!("no hierarchy of parent {parent_id} lists the asset"),
                });
            }
            Step::CheckClaim => {
                let description = described(&description, &reference)?;
                let tags = ctx.sitewise.list_tags(&description.arn).await?;
                let claim = claim::claim_state(&tags, &ctx.cluster_id, uid);
                if claim == plan::ClaimState::Ours {
                    let now = std::time::Instant::now();
                    ctx.deletions.claim_confirmed(uid, &description.id, now);
                }
                if let Observation::Present { standing, .. } = &mut observation {
                    standing.claim = Some(claim);
                }
            }
            Step::Claim => {
                let description = described(&description, &reference)?;
                ensure_leader(ctx)?;
                let tags = claim::claim_tags(&ctx.cluster_id, obj);
                ctx.sitewise.tag_resource(&description.arn, &tags).await?;
                tracing::info!(asset_id = %description.id, "asset claimed before deletion");
                let now = std::time::Instant::now();
                ctx.deletions.claim_confirmed(uid, &description.id, now);
                observation.record(&step, None);
            }
            Step::RetryFailedDeletion => {
                let detail = failure_detail(description.as_ref());
                status
                    .update(|s| {
                        let deletion = s.deletion.get_or_insert_with(DeletionProgress::default);
                        deletion.delete_round = deletion.delete_round.saturating_add(1);
                        deletion.last_error = Some(detail.clone());
                    })
                    .await?;
                events
                    .warning(
                        "DeletionFailed",
                        format!(
                            "SiteWise accepted the deletion of asset {reference} and then failed it ({detail}); deleting again with a new clientToken"
                        ),
                    )
                    .await;
                observation.record(&step, None);
            }
            Step::GiveUp { rounds } => {
                return Err(Error::DeletionFailed {
                    asset_id: reference,
                    rounds: *rounds,
                    detail: failure_detail(description.as_ref()),
                });
            }
            Step::ReadLinks => {
                let description = described(&description, &reference)?;
                let recorded = status.snapshot().parent_link;
                let links = read_links(&ctx.sitewise, description, recorded.as_ref()).await?;
                set_links(&mut observation, links);
                remember(ctx, uid, &observation);
                progress(status, &step, &observation, None).await?;
            }
            Step::DisassociateChild(child) => {
                let asset_id = asset_id_of(&observation);
                let operation = format!(
                    "DisassociateAssets child={} hierarchy={}",
                    child.child_id, child.hierarchy_id
                );
                progress(status, &step, &observation, Some(operation)).await?;
                let link = (
                    asset_id.as_str(),
                    child.hierarchy_id.as_str(),
                    child.child_id.as_str(),
                );
                let token = token::disassociate_assets(uid, link.0, link.1, link.2, round(status));
                disassociate(ctx, &token, link).await?;
                observation.record(&step, None);
                remember(ctx, uid, &observation);
                ctx.failures.reset(uid);
                events
                    .normal(
                        "ChildDisassociated",
                        format!(
                            "Disassociated child asset {} (hierarchy {}); {} left",
                            child.child_id,
                            child.hierarchy_id,
                            observation.children_remaining()
                        ),
                    )
                    .await;
            }
            Step::DetachFromParent {
                parent_id,
                hierarchy_id,
            } => {
                let asset_id = asset_id_of(&observation);
                let operation =
                    format!("DisassociateAssets parent={parent_id} hierarchy={hierarchy_id}");
                progress(status, &step, &observation, Some(operation)).await?;
                let link = (parent_id.as_str(), hierarchy_id.as_str(), asset_id.as_str());
                let token = token::disassociate_assets(uid, link.0, link.1, link.2, round(status));
                disassociate(ctx, &token, link).await?;
                observation.record(&step, None);
                remember(ctx, uid, &observation);
                ctx.failures.reset(uid);
                events
                    .normal(
                        "DetachedFromParent",
                        format!(
                            "Detached from parent asset {parent_id} (hierarchy {hierarchy_id})"
                        ),
                    )
                    .await;
            }
            Step::DeleteAsset { asset_id } => {
                progress(status, &step, &observation, Some("DeleteAsset".into())).await?;
                delete(ctx, status, events, uid, asset_id, &step, &mut observation).await?;
            }
        }
    }
    Err(Error::ObserveAgain {
        asset_id: reference,
        detail: format!("still changing after {MAX_STEPS_PER_RECONCILE} steps"),
    })
}

/// The asset to delete. The UUID pinned in status comes first: an external ID could have been
/// moved to another asset, which this resource must never touch. A created asset is found by
/// the ID derived for it even when its creation was never recorded.
fn reference(obj: &SiteWiseAsset, status: &SiteWiseAssetStatus, uid: &str) -> String {
    if let Some(pinned) = &status.asset_id {
        return pinned.clone();
    }
    match obj.mode() {
        Some(Mode::Adopt { reference }) => reference.to_string(),
        Some(Mode::Create { .. }) | None => token::created_asset_id(uid),
    }
}

/// `DeleteAsset` with the token of the current round; a refusal because links came back sends
/// the flow back to detaching them, in a new disassociation round.
async fn delete<S: SiteWise>(
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
    uid: &str,
    asset_id: &str,
    step: &Step,
    observation: &mut Observation,
) -> Result<()> {
    let delete_round = status
        .snapshot()
        .deletion
        .map(|d| d.delete_round)
        .unwrap_or(0);
    let token = token::delete_asset(uid, asset_id, delete_round);
    ensure_leader(ctx)?;
    match ctx.sitewise.delete_asset(asset_id, &token).await {
        // Anything but DELETING is unexpected: observe again on the next pass.
        Ok(state) if state != AssetState::Deleting => Err(Error::ObserveAgain {
            asset_id: asset_id.to_string(),
            detail: format!("DeleteAsset answered with state {state}"),
        }),
        Ok(state) => {
            observation.record(step, Some(state));
            ctx.failures.reset(uid);
            tracing::info!(asset_id, client_token = %token, "DeleteAsset accepted");
            events
                .normal(
                    "DeleteRequested",
                    format!("DeleteAsset accepted for {asset_id} (clientToken {token})"),
                )
                .await;
            Ok(())
        }
        Err(err) if err.kind == ErrorKind::NotFound => {
            *observation = Observation::Gone;
            Ok(())
        }
        // Refused while still linked (someone attached a child meanwhile): read the links
        // again instead of calling it permanent.
        Err(err) if err.kind == ErrorKind::InvalidRequest => {
            let description = ctx.sitewise.describe_asset(asset_id).await?;
            let recorded = status.snapshot().parent_link;
            let links = read_links(&ctx.sitewise, &description, recorded.as_ref()).await?;
            if links.children.is_empty() && links.parent.is_none() {
                return Err(err.into());
            }
            // Links came back after being removed: the next detach calls must not look like
            // replays of the earlier ones.
            status
                .update(|s| {
                    let deletion = s.deletion.get_or_insert_with(DeletionProgress::default);
                    deletion.round = deletion.round.saturating_add(1);
                })
                .await?;
            set_links(observation, links);
            remember(ctx, uid, observation);
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// DescribeAsset (404 means gone), with what status says about the resource's standing.
async fn observe<S: SiteWise>(
    ctx: &Context<S>,
    reference: &str,
    before: &SiteWiseAssetStatus,
) -> Result<(Observation, Option<AssetDescription>)> {
    let ownership = before.ownership;
    let deletion = before.deletion.clone().unwrap_or_default();
    match ctx.sitewise.describe_asset(reference).await {
        Ok(description) => Ok((
            Observation::Present {
                asset_id: description.id.clone(),
                state: description.state.clone(),
                links: None,
                standing: Standing {
                    claim: None,
                    may_claim: matches!(ownership, Some(Ownership::Created | Ownership::Adopted))
                        || (ownership.is_none() && before.asset_id.is_some()),
                    recorded_not_owned: ownership == Some(Ownership::NotOwned),
                    delete_accepted: deletion.phase == DeletionPhase::AwaitingDeletion,
                    delete_round: deletion.delete_round,
                },
            },
            Some(description),
        )),
        Err(err) if err.kind == ErrorKind::NotFound => Ok((Observation::Gone, None)),
        Err(err) => Err(err.into()),
    }
}

fn described<'a>(
    description: &'a Option<AssetDescription>,
    reference: &str,
) -> Result<&'a AssetDescription> {
    description.as_ref().ok_or_else(|| Error::ObserveAgain {
        asset_id: reference.to_string(),
        detail: "the asset was not described".into(),
    })
}

fn failure_detail(description: Option<&AssetDescription>) -> String {
    description
        .and_then(|d| d.error.as_ref())
        .map(|(code, message)| format!("{code}: {message}"))
        .unwrap_or_else(|| "SiteWise reports FAILED without details".into())
}

/// Takes what earlier passes of this deletion learned: the links, and a fresh claim.
fn recall<S>(ctx: &Context<S>, uid: &str, observation: &mut Observation) {
    let Observation::Present {
        asset_id,
        links,
        standing,
        ..
    } = observation
    else {
        return;
    };
    if links.is_none() {
        *links = ctx.deletions.links(uid, asset_id);
    }
    if standing.claim.is_none()
        && ctx
            .deletions
            .claim_is_fresh(uid, asset_id, std::time::Instant::now())
    {
        standing.claim = Some(plan::ClaimState::Ours);
    }
}

fn remember<S>(ctx: &Context<S>, uid: &str, observation: &Observation) {
    if let Observation::Present {
        asset_id, links, ..
    } = observation
    {
        ctx.deletions.set_links(uid, asset_id, links.clone());
    }
}

fn remember_nothing<S>(ctx: &Context<S>, uid: &str, observation: &Observation) {
    if let Observation::Present { asset_id, .. } = observation {
        ctx.deletions.set_links(uid, asset_id, None);
    }
}

fn round(status: &StatusWriter) -> u32 {
    status.snapshot().deletion.map(|d| d.round).unwrap_or(0)
}

fn set_links(observation: &mut Observation, new_links: Links) {
    if let Observation::Present { links, .. } = observation {
        *links = Some(new_links);
    }
}

fn asset_id_of(observation: &Observation) -> String {
    match observation {
        Observation::Present { asset_id, .. } => asset_id.clone(),
        Observation::Gone => String::new(),
    }
}
