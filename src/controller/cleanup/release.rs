//! Reporting a deletion: the start (Ready turns False), the phase before each call, and the
//! release of the finalizer with the event and log line that say what happened to the asset
//! (and a last status only when another finalizer keeps the object).

use kube::runtime::controller::Action;

use super::super::Context;
use super::super::claim;
use super::super::plan::{Observation, Step};
use super::super::status::{self, Events, StatusWriter};
use super::ensure_leader;
use crate::crd::{DeletionPhase, Ownership, SiteWiseAsset};
use crate::error::Result;
use crate::sitewise::{ErrorKind, SiteWise};

/// Whether a finalizer other than this operator's keeps the object after the release.
fn held_by_others(obj: &SiteWiseAsset) -> bool {
    obj.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f != crate::crd::FINALIZER)
}

/// Stages the start of the deletion; it is written with the first phase worth showing.
pub(super) fn start_deletion(status: &StatusWriter) {
    let generation = status.generation();
    status.stage(|s| {
        let deletion = s.deletion.get_or_insert_default();
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
        // Never ACTIVE and Ready for a resource on its way out.
        status::set_condition(
            &mut s.conditions,
            status::READY,
            false,
            "Deleting",
            "The resource is being deleted",
            generation,
        );
    });
}

/// Stages the phase (and the call about to be made); see [`worth_writing`] for when it is
/// written.
pub(super) fn progress(
    status: &StatusWriter,
    step: &Step,
    observation: &Observation,
    operation: Option<String>,
) {
    let generation = status.generation();
    let phase = step.phase();
    let children = observation.children_remaining();
    status.stage(|s| {
        if let Observation::Present { state, .. } = observation {
            s.state = Some(state.to_string());
        }
        let deletion = s.deletion.get_or_insert_default();
        deletion.phase = phase;
        deletion.children_remaining = children;
        deletion.current_operation = operation;
        if phase != DeletionPhase::Blocked {
            deletion.blocked_by.clear();
        }
        status::set_condition(
            &mut s.conditions,
            status::DELETING,
            true,
            &format!("{phase:?}"),
            describe_phase(phase, children),
            generation,
        );
    });
}

/// Whether the staged phase is worth an API-server write: a person watching needs to see the
/// deletion start and each new phase, not every call and poll. DeleteRequested already says
/// that SiteWise is deleting, so AwaitingDeletion after it is not written.
pub(super) fn worth_writing(status: &StatusWriter) -> bool {
    let phase = |s: crate::crd::SiteWiseAssetStatus| s.deletion.map(|d| d.phase);
    match (phase(status.written_snapshot()), phase(status.snapshot())) {
        (_, None) => false,
        (Some(DeletionPhase::DeleteRequested), Some(DeletionPhase::AwaitingDeletion)) => false,
        (written, staged) => written != staged,
    }
}

/// Writes the staged status when [`worth_writing`].
pub(super) async fn write_if_worth_it(status: &StatusWriter) -> Result<()> {
    if worth_writing(status) {
        status.flush().await
    } else {
        Ok(())
    }
}

fn describe_phase(phase: DeletionPhase, children: u32) -> String {
    match phase {
        DeletionPhase::Observing => "Reading the asset and its hierarchy".into(),
        DeletionPhase::WaitingForStableState => {
            "Waiting for the asset to become ACTIVE or FAILED".into()
        }
        DeletionPhase::Blocked => format!(
            "Not started: {children} child asset(s) are linked and childPolicy is Block (see blockedBy)"
        ),
        DeletionPhase::DisassociatingChildren => format!("Disassociating {children} child assets"),
        DeletionPhase::DetachingFromParent => "Detaching the asset from its parent".into(),
        DeletionPhase::DeleteRequested => {
            "DeleteAsset requested; SiteWise deletes the asset, then the finalizer is released"
                .into()
        }
        DeletionPhase::AwaitingDeletion => "SiteWise is deleting the asset".into(),
        DeletionPhase::Done => "Deletion finished".into(),
    }
}

pub(super) async fn release<S: SiteWise>(
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
    let declared = obj.declared_reference();
    let asset = before.asset_id.clone().unwrap_or(declared);
    if *step == Step::ReleaseRetained {
        release_claim(ctx, obj, &before).await?;
    }
    let (reason, note, state) = match step {
        Step::ReleaseRetained => (
            "AssetRetained",
            format!(
                "deletionPolicy is Retain: asset {asset} left in SiteWise, this resource's claim removed"
            ),
            before.state.clone(),
        ),
        Step::ReleaseOrphaned => (
            "AssetOrphaned",
            format!(
                "Released without deleting asset {asset} ({}) in SiteWise: {} says \"{}\". The asset and its links are left as they were.",
                before.asset_arn.as_deref().unwrap_or("ARN unknown"),
                crate::crd::FORCE_ORPHAN_ANNOTATION,
                obj.force_orphan_reason().unwrap_or_default()
            ),
            before.state.clone(),
        ),
        Step::ReleaseNotOwned { holder } => (
            "AssetNotOwned",
            match holder.as_deref().or(before.claimed_by.as_deref()) {
                Some(holder) => {
                    format!("Released without touching asset {asset}: it is claimed by {holder}")
                }
                None => format!(
                    "Released without touching asset {asset}: this resource never adopted it"
                ),
            },
            before.state.clone(),
        ),
        _ if deleted_by_us => (
            "AssetDeleted",
            format!("Asset {asset} is gone from SiteWise"),
            Some("Deleted".to_string()),
        ),
        _ => (
            "AssetAlreadyGone",
            format!("Asset {asset} does not exist in SiteWise; nothing to delete"),
            Some("NotFound".to_string()),
        ),
    };
    tracing::info!(
        asset_id = %asset,
        outcome = reason,
        "released: {note}"
    );
    let generation = status.generation();
    status.stage(|s| {
        s.state = state;
        let deletion = s.deletion.get_or_insert_default();
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
    });
    // The object goes with the finalizer: a last status only shows where another finalizer
    // keeps it. The event says what happened, and outlives the object.
    if held_by_others(obj) {
        status.flush().await?;
    }
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
            asset_id = %asset,
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

/// `Retain` hands the asset back: the claim tags are removed when they are this resource's
/// (an asset that is gone, or claimed by another, is left as it is).
async fn release_claim<S: SiteWise>(
    ctx: &Context<S>,
    obj: &SiteWiseAsset,
    before: &crate::crd::SiteWiseAssetStatus,
) -> Result<()> {
    let Some(arn) = &before.asset_arn else {
        return Ok(());
    };
    if !matches!(
        before.ownership,
        Some(Ownership::Created | Ownership::Adopted)
    ) {
        return Ok(());
    }
    let uid = obj.metadata.uid.as_deref().unwrap_or_default();
    let tags = match ctx.sitewise.list_tags(arn).await {
        Ok(tags) => tags,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if claim::claim_state(&tags, &ctx.cluster_id, uid) != super::super::plan::ClaimState::Ours {
        return Ok(());
    }
    ensure_leader(ctx)?;
    let keys = vec![
        claim::OWNER_TAG.to_string(),
        claim::OWNER_RESOURCE_TAG.to_string(),
    ];
    match ctx.sitewise.untag_resource(arn, &keys).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
