//! Finalizer cleanup: start from what status knows (or observe the asset, its claim and its
//! links), then run [`plan::next_step`] until the asset is gone or released (finalizer
//! removed) or something must be waited for (an `Err`, which keeps the finalizer: kube-runtime's
//! `finalizer` helper releases it on any `Ok`).
//!
//! Every mutating call carries a deterministic clientToken whose inputs (the rounds) are
//! written to status before they are used, DeleteRequested is written before DeleteAsset, and
//! the claim is settled before the first change, so a restart at any point resumes with the
//! same calls, SiteWise recognises replays, and nothing is changed that this resource does not
//! own. Other progress is written when the phase changes, not before every call.

mod cascade;
mod family;
mod links;
mod memory;
mod observe;
mod pace;
mod release;

pub use links::{disassociate, ensure_leader, parent_link, read_links};
pub use memory::DeletionMemory;
pub use pace::DeletePace;

use std::time::{Duration, Instant};

use kube::runtime::controller::Action;

use super::Context;
use super::claim;
use super::plan::{self, ChildLink, Observation, Policy, Step};
use super::status::{Events, StatusWriter};
use crate::crd::{ChildPolicy, DeletionPolicy, SiteWiseAsset};
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, AssetState, ErrorKind, SiteWise};
use crate::token;
use observe::{asset_id_of, described, recall, reference, remember, remember_nothing};
use release::{progress, release, start_deletion, write_if_worth_it};

/// Upper bound of steps in one reconcile; a hierarchy that keeps changing under us is
/// re-observed on the next reconcile instead of being chased in a loop.
const MAX_STEPS_PER_RECONCILE: usize = 1000;

/// Child links one reconcile removes before it yields its slot to other resources (a parent
/// with a thousand children must not hold a reconcile slot for minutes).
const DISASSOCIATIONS_PER_RECONCILE: u32 = 16;

/// How often a parent looks at the cache while children detach themselves (no SiteWise call).
const CHILDREN_POLL: Duration = Duration::from_millis(500);

/// A deletion blocked by linked children (`childPolicy: Block`) reads the links again after
/// this many poll intervals (30 s by default): one DescribeAsset and one ListAssociatedAssets
/// per hierarchy each time.
const BLOCKED_POLLS: u32 = 10;

pub async fn cleanup<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Action> {
    let uid = obj.require_uid()?;
    let policy = Policy {
        asset: obj.spec.deletion_policy,
        children: obj.spec.child_policy,
    };
    catch_up(ctx, uid, status);
    let before = status.snapshot();
    start_deletion(status);

    if policy.asset == DeletionPolicy::Retain {
        return release(status, events, ctx, &Step::ReleaseRetained, obj).await;
    }
    if obj.force_orphan_reason().is_some() {
        return release(status, events, ctx, &Step::ReleaseOrphaned, obj).await;
    }
    let mut pass = Pass {
        obj,
        ctx,
        status,
        events,
        uid,
        reference: reference(obj, &before, uid),
        description: None,
        from_status: false,
        in_grace: family::in_prune_grace(obj),
        disassociated: 0,
        unreported: 0,
    };
    // Block decides on links read from SiteWise: status cannot know a child no resource
    // manages, and the fast path would detach the asset from its parent before finding out.
    let known = (policy.children == ChildPolicy::Detach)
        .then(|| {
            observe::from_status(ctx, obj, &before)
                .or_else(|| observe::from_memory(ctx, uid, &before, pass.in_grace))
        })
        .flatten();
    let observation = match known {
        Some(known) => {
            pass.from_status = true;
            known
        }
        None => {
            let (observation, description) =
                observe::from_sitewise(ctx, &pass.reference, &before).await?;
            pass.description = description;
            observation
        }
    };
    let outcome = pass.run(policy, observation).await;
    if let Some(written) = status.written_snapshot().deletion {
        ctx.deletions.wrote_progress(uid, *written);
    }
    if let Err(err) = &outcome
        && err.class() == crate::error::ErrorClass::Pending
    {
        // Errors are written with their report; a wait is written here, when worth it.
        write_if_worth_it(status).await?;
    }
    outcome
}

/// A pass may start from a watch cache that has not yet delivered what the previous pass of
/// this process wrote (the watch lags, or is down while the API server is away): the progress
/// written last is taken over when it is further along, so a deletion never steps back (a
/// DeleteAsset sent is never forgotten, nor the release reason it implies).
fn catch_up<S>(ctx: &Context<S>, uid: &str, status: &StatusWriter) {
    let Some(written) = ctx.deletions.written_progress(uid) else {
        return;
    };
    let cached = status.snapshot().deletion;
    if cached.as_ref().is_none_or(|c| {
        c.phase < written.phase || c.round < written.round || c.delete_round < written.delete_round
    }) {
        status.stage(|s| s.deletion = Some(Box::new(written)));
    }
}

/// One reconcile of a deletion.
struct Pass<'a, S> {
    obj: &'a SiteWiseAsset,
    ctx: &'a Context<S>,
    status: &'a StatusWriter,
    events: &'a Events,
    uid: &'a str,
    reference: String,
    description: Option<AssetDescription>,
    /// The pass started from status (links assumed, not read).
    from_status: bool,
    /// Live children may still be joining this deletion (see [`family::PRUNE_GRACE`]).
    in_grace: bool,
    /// Children disassociated in this pass.
    disassociated: u32,
    /// Of those, not yet reported (one event per batch).
    unreported: u32,
}

impl<S: SiteWise> Pass<'_, S> {
    async fn run(&mut self, policy: Policy, mut observation: Observation) -> Result<Action> {
        let (ctx, status, uid) = (self.ctx, self.status, self.uid);
        recall(ctx, uid, self.in_grace, &mut observation);
        if policy.children == ChildPolicy::Cascade {
            let pending = self.cascade().confirm_recorded().await?;
            if pending > 0 {
                return Err(Error::DeletionPending {
                    asset_id: format!("{pending} descendant(s) of {}", self.reference),
                    state: "DELETING".into(),
                    poll_after: ctx.settings.poll_interval,
                });
            }
        }
        for _ in 0..MAX_STEPS_PER_RECONCILE {
            let step = plan::next_step(policy, &observation);
            if !matches!(step, Step::DisassociateChild(_)) {
                self.report_disassociations(&observation).await;
            }
            match &step {
                Step::ReleaseRetained
                | Step::ReleaseOrphaned
                | Step::ReleaseDeleted
                | Step::ReleaseNotOwned { .. } => {
                    ctx.deletions.forget(uid);
                    if step == Step::ReleaseDeleted {
                        let ceiling = ctx.settings.poll_interval;
                        ctx.pace.gone(uid, Instant::now(), ceiling);
                    } else {
                        ctx.pace.forget(uid);
                    }
                    return release(status, self.events, ctx, &step, self.obj).await;
                }
                Step::WaitUntilStable(state) => {
                    progress(status, &step, &observation, None);
                    return Err(Error::AssetBusy {
                        asset_id: self.reference.clone(),
                        state: state.to_string(),
                    });
                }
                Step::AwaitGone { asset_id } => {
                    progress(status, &step, &observation, None);
                    let fallback = ctx.settings.poll_interval;
                    let poll_after = ctx.pace.still_deleting(uid, Instant::now(), fallback);
                    return Err(Error::DeletionPending {
                        asset_id: asset_id.clone(),
                        state: "DELETING".into(),
                        poll_after,
                    });
                }
                Step::AwaitChildren { remaining } => {
                    progress(status, &step, &observation, None);
                    let asset_id = asset_id_of(&observation);
                    ctx.deletions.waiting_since(uid, &asset_id, Instant::now());
                    return Err(Error::ChildrenDetaching {
                        asset_id,
                        remaining: *remaining,
                        poll_after: CHILDREN_POLL.min(ctx.settings.poll_interval),
                    });
                }
                Step::BlockedByChildren { children } => {
                    return self.blocked(&step, &observation, children).await;
                }
                Step::RereadLinks { parent_id } => {
                    remember_nothing(ctx, uid, &observation);
                    return Err(Error::ObserveAgain {
                        asset_id: self.reference.clone(),
                        detail: format!("no hierarchy of parent {parent_id} lists the asset"),
                    });
                }
                Step::CheckClaim => self.check_claim(&mut observation).await?,
                Step::Claim => self.claim(&step, &mut observation).await?,
                Step::RetryFailedDeletion => {
                    self.retry_failed_deletion(&step, &mut observation).await?
                }
                Step::GiveUp { rounds } => {
                    return Err(Error::DeletionFailed {
                        asset_id: self.reference.clone(),
                        rounds: *rounds,
                        detail: failure_detail(self.description.as_ref()),
                    });
                }
                Step::ReadLinks => {
                    let description = described(&self.description, &self.reference)?;
                    let recorded = status.snapshot().parent_link;
                    let links = read_links(&ctx.sitewise, description, recorded.as_ref()).await?;
                    observe::set_read_links(ctx, uid, self.in_grace, &mut observation, links);
                    progress(status, &step, &observation, None);
                }
                Step::DisassociateChild(child) => {
                    if self.disassociated >= DISASSOCIATIONS_PER_RECONCILE {
                        return self.yield_slot(&step, &observation).await;
                    }
                    let asset_id = asset_id_of(&observation);
                    if policy.children == ChildPolicy::Cascade && cascade::takes(ctx, child) {
                        progress(status, &step, &observation, None);
                        if !self.cascade_child(&asset_id, child).await? {
                            return self.yield_slot(&step, &observation).await;
                        }
                        observation.record(&step, None);
                        remember(ctx, uid, &observation);
                        self.disassociated += 1;
                        continue;
                    }
                    let link = (
                        asset_id.as_str(),
                        child.hierarchy_id.as_str(),
                        child.child_id.as_str(),
                    );
                    self.remove_link(&step, &observation, link).await?;
                    observation.record(&step, None);
                    remember(ctx, uid, &observation);
                    self.disassociated += 1;
                    self.unreported += 1;
                }
                Step::DetachFromParent {
                    parent_id,
                    hierarchy_id,
                } => {
                    let asset_id = asset_id_of(&observation);
                    let link = (parent_id.as_str(), hierarchy_id.as_str(), asset_id.as_str());
                    self.remove_link(&step, &observation, link).await?;
                    observation.record(&step, None);
                    remember(ctx, uid, &observation);
                    ctx.deletions.link_removed(&asset_id, Instant::now());
                    status.stage(|s| {
                        if let Some(recorded) = s.parent_link.as_mut() {
                            recorded.associated = false;
                        }
                    });
                    self.events
                        .normal(
                            "DetachedFromParent",
                            format!(
                                "Detached from parent asset {parent_id} (hierarchy {hierarchy_id})"
                            ),
                        )
                        .await;
                }
                Step::DeleteAsset { asset_id } => {
                    progress(status, &step, &observation, Some("DeleteAsset".into()));
                    status.flush().await?;
                    let asset_id = asset_id.clone();
                    self.delete(&asset_id, &step, &mut observation).await?;
                }
            }
        }
        Err(Error::ObserveAgain {
            asset_id: self.reference.clone(),
            detail: format!("still changing after {MAX_STEPS_PER_RECONCILE} steps"),
        })
    }

    /// `DisassociateAssets` for a child or the parent link, with the token of the current
    /// round. Status is written first only when the phase changes.
    async fn remove_link(
        &self,
        step: &Step,
        observation: &Observation,
        link: (&str, &str, &str),
    ) -> Result<()> {
        let operation = match step {
            Step::DisassociateChild(_) => {
                format!("DisassociateAssets child={} hierarchy={}", link.2, link.1)
            }
            _ => format!("DisassociateAssets parent={} hierarchy={}", link.0, link.1),
        };
        // Staged only: the token's inputs are in status already, and the phase is written
        // with the next write (DeleteRequested, a batch, or the end of the pass).
        progress(self.status, step, observation, Some(operation));
        let token = token::disassociate_assets(self.uid, link.0, link.1, link.2, self.round());
        disassociate(self.ctx, &token, link).await?;
        self.ctx.failures.reset(self.uid);
        Ok(())
    }

    /// `childPolicy: Block` with children linked: nothing changes in SiteWise; status lists the
    /// children (written when the list changes), one Warning says so when the block starts,
    /// and the links are read again after [`BLOCKED_POLLS`] poll intervals.
    async fn blocked(
        &self,
        step: &Step,
        observation: &Observation,
        children: &[ChildLink],
    ) -> Result<Action> {
        let resources = self.ctx.resources.all();
        let blocking: Vec<String> = children
            .iter()
            .map(|c| family::describe_child(&resources, c))
            .collect();
        // What the last pass wrote: this pass has already staged its own phase (Observing).
        let before = self.status.written_snapshot().deletion.unwrap_or_default();
        progress(self.status, step, observation, None);
        self.status.stage(|s| {
            if let Some(deletion) = s.deletion.as_mut() {
                deletion.blocked_by = blocking.clone();
            }
        });
        if before.blocked_by != blocking {
            self.status.flush().await?;
        }
        if before.phase != crate::crd::DeletionPhase::Blocked {
            self.events
                .warning(
                    "DeletionBlocked",
                    format!(
                        "Not deleted while {} child asset(s) are linked (childPolicy: Block): {}",
                        blocking.len(),
                        blocking.join("; ")
                    ),
                )
                .await;
        }
        remember_nothing(self.ctx, self.uid, observation);
        Err(Error::DeletionBlocked {
            asset_id: asset_id_of(observation),
            children: u32::try_from(children.len()).unwrap_or(u32::MAX),
            poll_after: self.ctx.settings.poll_interval * BLOCKED_POLLS,
        })
    }

    fn cascade(&self) -> cascade::Cascade<'_, S> {
        cascade::Cascade {
            ctx: self.ctx,
            status: self.status,
            events: self.events,
            uid: self.uid,
            round: self.round(),
            calls: 0,
            deleted: 0,
        }
    }

    /// Deletes the unmanaged subtree under `child` (`childPolicy: Cascade`); false when the
    /// reconcile's budget ran out first.
    async fn cascade_child(&mut self, asset_id: &str, child: &ChildLink) -> Result<bool> {
        let mut cascade = self.cascade();
        let outcome = cascade.subtree(asset_id, child).await?;
        if cascade.deleted > 0 {
            let left = self
                .status
                .snapshot()
                .deletion
                .map_or(0, |d| d.cascade.len());
            self.events
                .normal(
                    "DescendantsDeleted",
                    format!(
                        "DeleteAsset accepted for {} descendant(s) under child {}; {left} awaiting SiteWise",
                        cascade.deleted, child.child_id
                    ),
                )
                .await;
        }
        Ok(matches!(outcome, cascade::Subtree::Done))
    }

    /// A parent with many children gives its slot to others after a batch: progress is
    /// written and the resource comes back at once.
    async fn yield_slot(&mut self, step: &Step, observation: &Observation) -> Result<Action> {
        progress(self.status, step, observation, None);
        self.status.flush().await?;
        self.report_disassociations(observation).await;
        Err(Error::ChildrenDetaching {
            asset_id: asset_id_of(observation),
            remaining: observation.children_remaining(),
            poll_after: Duration::ZERO,
        })
    }

    /// One event for the children disassociated since the last one.
    async fn report_disassociations(&mut self, observation: &Observation) {
        if self.unreported == 0 {
            return;
        }
        let done = std::mem::take(&mut self.unreported);
        let left = observation.children_remaining();
        self.events
            .normal(
                "ChildDisassociated",
                format!("Disassociated {done} child asset(s); {left} left"),
            )
            .await;
    }

    async fn check_claim(&mut self, observation: &mut Observation) -> Result<()> {
        let description = described(&self.description, &self.reference)?;
        let tags = self.ctx.sitewise.list_tags(&description.arn).await?;
        let claim = claim::claim_state(&tags, &self.ctx.cluster_id, self.uid);
        if claim == plan::ClaimState::Ours {
            self.ctx
                .deletions
                .claim_confirmed(self.uid, &description.id, Instant::now());
        }
        if let Observation::Present { standing, .. } = observation {
            standing.claim = Some(claim);
        }
        Ok(())
    }

    async fn claim(&mut self, step: &Step, observation: &mut Observation) -> Result<()> {
        let description = described(&self.description, &self.reference)?;
        ensure_leader(self.ctx)?;
        let tags = claim::claim_tags(&self.ctx.cluster_id, self.obj);
        self.ctx
            .sitewise
            .tag_resource(&description.arn, &tags)
            .await?;
        tracing::info!(asset_id = %description.id, "asset claimed before deletion");
        self.ctx
            .deletions
            .claim_confirmed(self.uid, &description.id, Instant::now());
        observation.record(step, None);
        Ok(())
    }

    async fn retry_failed_deletion(
        &mut self,
        step: &Step,
        observation: &mut Observation,
    ) -> Result<()> {
        let detail = failure_detail(self.description.as_ref());
        self.status
            .update(|s| {
                let deletion = s.deletion.get_or_insert_default();
                deletion.delete_round = deletion.delete_round.saturating_add(1);
                deletion.last_error = Some(detail.clone());
            })
            .await?;
        self.events
            .warning(
                "DeletionFailed",
                format!(
                    "SiteWise accepted the deletion of asset {} and then failed it ({detail}); deleting again with a new clientToken",
                    self.reference
                ),
            )
            .await;
        observation.record(step, None);
        Ok(())
    }

    fn round(&self) -> u32 {
        self.status
            .snapshot()
            .deletion
            .map(|d| d.round)
            .unwrap_or(0)
    }

    /// `DeleteAsset` with the token of the current round. A refusal (InvalidRequest, or
    /// ConflictingOperation, which SiteWise might use for the same rule) while links remain
    /// sends the flow back to removing them: links that came back after this deletion removed
    /// them, or links status could not know of (a child no resource manages).
    async fn delete(
        &mut self,
        asset_id: &str,
        step: &Step,
        observation: &mut Observation,
    ) -> Result<()> {
        let (ctx, status, uid) = (self.ctx, self.status, self.uid);
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
                self.events
                    .normal(
                        "DeleteRequested",
                        format!("DeleteAsset accepted for {asset_id} (clientToken {token})"),
                    )
                    .await;
                let first_poll = ctx
                    .pace
                    .accepted(uid, Instant::now(), ctx.settings.poll_interval);
                Err(Error::DeletionPending {
                    asset_id: asset_id.to_string(),
                    state: "DELETING".into(),
                    poll_after: first_poll,
                })
            }
            Err(err) if err.kind == ErrorKind::NotFound => {
                *observation = Observation::Gone;
                Ok(())
            }
            Err(err) if matches!(err.kind, ErrorKind::InvalidRequest | ErrorKind::Conflict) => {
                let description = ctx.sitewise.describe_asset(asset_id).await?;
                let recorded = status.snapshot().parent_link;
                let links = read_links(&ctx.sitewise, &description, recorded.as_ref()).await?;
                if links.children.is_empty() && links.parent.is_none() {
                    return Err(err.into());
                }
                if !self.from_status {
                    // Links came back after being removed: the next detach calls must not
                    // look like replays of the earlier ones.
                    status
                        .update(|s| {
                            let deletion = s.deletion.get_or_insert_default();
                            deletion.round = deletion.round.saturating_add(1);
                        })
                        .await?;
                }
                self.from_status = false;
                self.description = Some(description);
                observe::set_read_links(ctx, uid, self.in_grace, observation, links);
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}

fn failure_detail(description: Option<&AssetDescription>) -> String {
    description
        .and_then(|d| d.error.as_ref())
        .map(|(code, message)| format!("{code}: {message}"))
        .unwrap_or_else(|| "SiteWise reports FAILED without details".into())
}
