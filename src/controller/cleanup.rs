//! Finalizer cleanup: observe the asset and its links, then run [`plan::next_step`] until the
//! asset is gone (finalizer released) or something must be waited for (an `Err`, which keeps
//! the finalizer: kube-runtime's `finalizer` helper releases it on any `Ok`).
//!
//! Progress is written to status before every mutating SiteWise call, and every mutating call
//! carries a deterministic clientToken, so a restart at any point resumes with the same calls
//! and SiteWise recognises replays.

use kube::runtime::controller::Action;

use super::Context;
use super::plan::{self, ChildLink, Links, Observation, ParentLink, Step};
use super::status::{self, Events, StatusWriter};
use crate::crd::{DeletionPhase, DeletionPolicy, DeletionProgress, SiteWiseAsset};
use crate::error::{Error, Result};
use crate::sitewise::{
    AssetDescription, AssetState, Direction, ErrorKind, SiteWise, SiteWiseError,
};
use crate::token;

/// Upper bound of steps in one reconcile; a hierarchy that keeps changing under us is
/// re-observed on the next reconcile instead of being chased in a loop.
const MAX_STEPS_PER_RECONCILE: usize = 1000;

pub async fn cleanup<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Action> {
    let uid = obj
        .metadata
        .uid
        .as_deref()
        .ok_or(Error::MissingMetadata("uid"))?;
    let policy = obj.spec.deletion_policy;
    start_deletion(status).await?;

    if policy == DeletionPolicy::Retain {
        return release(status, events, ctx, &Step::ReleaseRetained, obj).await;
    }
    if obj.force_orphan_reason().is_some() {
        return release(status, events, ctx, &Step::ReleaseOrphaned, obj).await;
    }

    // Prefer the UUID resolved earlier: an external ID could have been moved to another asset.
    let reference = status
        .snapshot()
        .asset_id
        .unwrap_or_else(|| obj.spec.asset_id.clone());
    let (mut observation, description) = observe(ctx, &reference).await?;

    for _ in 0..MAX_STEPS_PER_RECONCILE {
        let step = plan::next_step(policy, &observation);
        match &step {
            Step::ReleaseRetained | Step::ReleaseOrphaned | Step::ReleaseDeleted => {
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
                return Err(Error::ObserveAgain {
                    asset_id: reference,
                    detail: format!("no hierarchy of parent {parent_id} lists the asset"),
                });
            }
            Step::ReadLinks => {
                let Some(description) = &description else {
                    return Err(Error::ObserveAgain {
                        asset_id: reference,
                        detail: "the asset was not described".into(),
                    });
                };
                let links = read_links(&ctx.sitewise, description).await?;
                set_links(&mut observation, links);
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
                disassociate(ctx, uid, round(status), link).await?;
                observation.record(&step, None);
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
                disassociate(ctx, uid, round(status), link).await?;
                observation.record(&step, None);
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
                let token = token::delete_asset(uid, asset_id);
                ensure_leader(ctx)?;
                match ctx.sitewise.delete_asset(asset_id, &token).await {
                    // Anything but DELETING is unexpected: observe again on the next pass.
                    Ok(state) if state != AssetState::Deleting => {
                        return Err(Error::ObserveAgain {
                            asset_id: asset_id.clone(),
                            detail: format!("DeleteAsset answered with state {state}"),
                        });
                    }
                    Ok(state) => {
                        observation.record(&step, Some(state));
                        ctx.failures.reset(uid);
                        events
                            .normal(
                                "DeleteRequested",
                                format!(
                                    "DeleteAsset accepted for {asset_id} (clientToken {token})"
                                ),
                            )
                            .await;
                    }
                    Err(err) if err.kind == ErrorKind::NotFound => observation = Observation::Gone,
                    // Refused while still linked (someone attached a child meanwhile): read the
                    // links again instead of calling it permanent.
                    Err(err) if err.kind == ErrorKind::InvalidRequest => {
                        let description = ctx.sitewise.describe_asset(asset_id).await?;
                        let links = read_links(&ctx.sitewise, &description).await?;
                        if links.children.is_empty() && links.parent.is_none() {
                            return Err(err.into());
                        }
                        // Links came back after being removed: the next detach calls must
                        // not look like replays of the earlier ones.
                        status
                            .update(|s| {
                                let deletion =
                                    s.deletion.get_or_insert_with(DeletionProgress::default);
                                deletion.round = deletion.round.saturating_add(1);
                            })
                            .await?;
                        set_links(&mut observation, links);
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    Err(Error::ObserveAgain {
        asset_id: reference,
        detail: format!("still changing after {MAX_STEPS_PER_RECONCILE} steps"),
    })
}

/// DescribeAsset: 404 means gone.
async fn observe<S: SiteWise>(
    ctx: &Context<S>,
    reference: &str,
) -> Result<(Observation, Option<AssetDescription>)> {
    match ctx.sitewise.describe_asset(reference).await {
        Ok(description) => Ok((
            Observation::Present {
                asset_id: description.id.clone(),
                state: description.state.clone(),
                links: None,
            },
            Some(description),
        )),
        Err(err) if err.kind == ErrorKind::NotFound => Ok((Observation::Gone, None)),
        Err(err) => Err(err.into()),
    }
}

/// Children under every hierarchy of the asset, and the parent with the linking hierarchy.
pub async fn read_links<S: SiteWise>(sitewise: &S, asset: &AssetDescription) -> Result<Links> {
    let mut children = Vec::new();
    for hierarchy_id in &asset.hierarchy_ids {
        for child in sitewise
            .list_associated_assets(&asset.id, Direction::Child, Some(hierarchy_id))
            .await?
        {
            children.push(ChildLink {
                hierarchy_id: hierarchy_id.clone(),
                child_id: child.id,
            });
        }
    }
    let parents = sitewise
        .list_associated_assets(&asset.id, Direction::Parent, None)
        .await?;
    let parent = match parents.into_iter().next() {
        None => None,
        // The PARENT listing does not say which hierarchy links the two, and two hierarchies
        // may target the same child model, so each hierarchy of the parent is probed.
        Some(parent) => {
            let mut linked = None;
            for hierarchy_id in &parent.hierarchy_ids {
                let listed = sitewise
                    .list_associated_assets(&parent.id, Direction::Child, Some(hierarchy_id))
                    .await?;
                if listed.iter().any(|c| c.id == asset.id) {
                    linked = Some(hierarchy_id.clone());
                    break;
                }
            }
            Some(match linked {
                Some(hierarchy_id) => ParentLink::Linked {
                    parent_id: parent.id,
                    hierarchy_id,
                },
                None => ParentLink::Unresolved {
                    parent_id: parent.id,
                },
            })
        }
    };
    Ok(Links { children, parent })
}

/// `DisassociateAssets(parent, hierarchy, child)` with its derived token, fenced; a link that
/// is already gone counts as removed.
async fn disassociate<S: SiteWise>(
    ctx: &Context<S>,
    uid: &str,
    round: u32,
    (parent_id, hierarchy_id, child_id): (&str, &str, &str),
) -> Result<()> {
    let token = token::disassociate_assets(uid, parent_id, hierarchy_id, child_id, round);
    ensure_leader(ctx)?;
    match ctx
        .sitewise
        .disassociate_assets(parent_id, hierarchy_id, child_id, &token)
        .await
    {
        Ok(()) => Ok(()),
        Err(err) => ensure_link_gone(ctx, parent_id, hierarchy_id, child_id, err).await,
    }
}

/// A disassociation failed. When the link is gone anyway (someone else, often the other side's
/// own deletion, removed it) that is success; otherwise the error stands.
async fn ensure_link_gone<S: SiteWise>(
    ctx: &Context<S>,
    parent_id: &str,
    hierarchy_id: &str,
    child_id: &str,
    err: SiteWiseError,
) -> Result<()> {
    if !matches!(err.kind, ErrorKind::NotFound | ErrorKind::InvalidRequest) {
        return Err(err.into());
    }
    match ctx
        .sitewise
        .list_associated_assets(parent_id, Direction::Child, Some(hierarchy_id))
        .await
    {
        Ok(children) if children.iter().all(|c| c.id != child_id) => Ok(()),
        Err(list_err) if list_err.kind == ErrorKind::NotFound => Ok(()),
        _ => Err(err.into()),
    }
}

/// Fencing: a replica whose lease may have passed to another sends no mutation.
fn ensure_leader<S>(ctx: &Context<S>) -> Result<()> {
    if ctx.fence.is_open() {
        Ok(())
    } else {
        Err(Error::NotLeader)
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

async fn start_deletion(status: &StatusWriter) -> Result<()> {
    let generation = status.generation();
    status
        .update(|s| {
            let deletion = s.deletion.get_or_insert_with(DeletionProgress::default);
            if deletion.started_at.is_none() {
                deletion.started_at = Some(jiff::Timestamp::now().to_string());
            }
            status::set_condition(
                &mut s.conditions,
                status::DELETING,
                true,
                "DeletionStarted",
                "The resource is being deleted",
                generation,
            );
        })
        .await
}

/// Records the phase (and the call about to be made) before acting.
async fn progress(
    status: &StatusWriter,
    step: &Step,
    observation: &Observation,
    operation: Option<String>,
) -> Result<()> {
    let generation = status.generation();
    let phase = step.phase();
    let children = observation.children_remaining();
    status
        .update(|s| {
            if let Observation::Present { state, .. } = observation {
                s.state = Some(state.to_string());
            }
            let deletion = s.deletion.get_or_insert_with(DeletionProgress::default);
            deletion.phase = phase;
            deletion.children_remaining = children;
            deletion.current_operation = operation;
            status::set_condition(
                &mut s.conditions,
                status::DELETING,
                true,
                &format!("{phase:?}"),
                describe_phase(phase, children),
                generation,
            );
        })
        .await
}

fn describe_phase(phase: DeletionPhase, children: u32) -> String {
    match phase {
        DeletionPhase::Observing => "Reading the asset and its hierarchy".into(),
        DeletionPhase::WaitingForStableState => {
            "Waiting for the asset to become ACTIVE or FAILED".into()
        }
        DeletionPhase::DisassociatingChildren => format!("Disassociating {children} child assets"),
        DeletionPhase::DetachingFromParent => "Detaching the asset from its parent".into(),
        DeletionPhase::DeleteRequested => "DeleteAsset requested".into(),
        DeletionPhase::AwaitingDeletion => "SiteWise is deleting the asset".into(),
        DeletionPhase::Done => "Deletion finished".into(),
    }
}

async fn release<S: SiteWise>(
    status: &StatusWriter,
    events: &Events,
    ctx: &Context<S>,
    step: &Step,
    obj: &SiteWiseAsset,
) -> Result<Action> {
    let before = status.snapshot();
    let deleted_by_us = before.deletion.as_ref().is_some_and(|d| {
        matches!(
            d.phase,
            DeletionPhase::DeleteRequested | DeletionPhase::AwaitingDeletion
        )
    });
    let (reason, note, state) = match step {
        Step::ReleaseRetained => (
            "AssetRetained",
            format!(
                "deletionPolicy is Retain: asset {} left untouched in SiteWise",
                before.asset_id.as_deref().unwrap_or(&obj.spec.asset_id)
            ),
            before.state.clone(),
        ),
        Step::ReleaseOrphaned => (
            "AssetOrphaned",
            format!(
                "Released without deleting asset {} ({}) in SiteWise: {} says \"{}\". The asset and its links are left as they were.",
                before.asset_id.as_deref().unwrap_or(&obj.spec.asset_id),
                before.asset_arn.as_deref().unwrap_or("ARN unknown"),
                crate::crd::FORCE_ORPHAN_ANNOTATION,
                obj.force_orphan_reason().unwrap_or_default()
            ),
            before.state.clone(),
        ),
        _ if deleted_by_us => (
            "AssetDeleted",
            format!(
                "Asset {} is gone from SiteWise",
                before.asset_id.as_deref().unwrap_or(&obj.spec.asset_id)
            ),
            Some("Deleted".to_string()),
        ),
        _ => (
            "AssetAlreadyGone",
            format!(
                "Asset {} does not exist in SiteWise; nothing to delete",
                obj.spec.asset_id
            ),
            Some("NotFound".to_string()),
        ),
    };
    let generation = status.generation();
    status
        .update(|s| {
            s.state = state;
            let deletion = s.deletion.get_or_insert_with(DeletionProgress::default);
            deletion.phase = DeletionPhase::Done;
            deletion.current_operation = None;
            deletion.children_remaining = 0;
            status::set_condition(
                &mut s.conditions,
                status::DELETING,
                true,
                reason,
                note.clone(),
                generation,
            );
        })
        .await?;
    if reason == "AssetDeleted"
        && let Some(started) = before
            .deletion
            .as_ref()
            .and_then(|d| d.started_at.as_deref())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        let seconds = (jiff::Timestamp::now() - started)
            .total(jiff::Unit::Second)
            .unwrap_or(0.0);
        ctx.metrics.deletion_finished(seconds);
    }
    if *step == Step::ReleaseOrphaned {
        tracing::warn!(
            asset_id = before.asset_id.as_deref().unwrap_or(&obj.spec.asset_id),
            asset_arn = before.asset_arn.as_deref().unwrap_or_default(),
            reason = obj.force_orphan_reason().unwrap_or_default(),
            "asset orphaned on request: the resource is released, the asset stays in SiteWise"
        );
        ctx.metrics.orphaned();
        events.warning(reason, note).await;
    } else {
        events.normal(reason, note).await;
    }
    Ok(Action::await_change())
}
