//! Apply: make the asset what the resource declares, one step at a time. In order: find (or
//! create) the asset and pin its UUID ([`identity`]); mirror what SiteWise reports; claim it
//! with the ownership tag, or stand back when another resource claims it; apply declared
//! fields; link it under its parent ([`declared`]). Each step that puts the asset in UPDATING
//! ends the reconcile with a short poll; once everything matches, `Ready` is True and the
//! resource is resynced slowly to catch drift (by sweeps, see [`super::sweep`], and on its own
//! once per full resync).

mod declared;
mod identity;

use std::time::Duration;

use kube::runtime::controller::Action;

use super::Context;
use super::plan::sweep::listable;
use super::status::{self, Events, StatusWriter};
use crate::backoff::jittered;
use crate::crd::{AssetErrorDetails, SiteWiseAsset, SiteWiseAssetStatus};
use crate::error::Result;
use crate::sitewise::{AssetDescription, AssetState, SiteWise};

/// How a step of apply ends the reconcile, when it does.
pub(crate) enum Outcome {
    /// Go on with the next step.
    Continue,
    /// Stop here and come back after this delay.
    Requeue(Duration),
}

pub async fn apply<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Action> {
    let uid = obj.require_uid()?;
    let asset = match identity::resolve(obj, ctx, status, events, uid).await? {
        identity::Resolved::Asset(asset) => asset,
        identity::Resolved::Stop(delay) => return Ok(Action::requeue(jittered(delay))),
    };
    let generation = status.generation();
    let connection = status.snapshot().connection.unwrap_or_default();
    ctx.models.note(&connection, &asset.model_id);
    status.update(|s| mirror(s, &asset)).await?;
    if let Some(delay) = not_active(&asset, ctx, status, events).await? {
        return Ok(Action::requeue(jittered(delay)));
    }
    let steps = declared::Declared::new(obj, ctx, status, events, uid, &asset);
    if let Outcome::Requeue(delay) = steps.claim().await? {
        return Ok(Action::requeue(jittered(delay)));
    }
    if let Outcome::Requeue(delay) = steps.fields().await? {
        return Ok(Action::requeue(jittered(delay)));
    }
    if let Outcome::Requeue(delay) = steps.link().await? {
        return Ok(Action::requeue(jittered(delay)));
    }
    let was_ready =
        status::condition(&status.snapshot(), status::READY).is_some_and(|c| c.status == "True");
    status
        .update(|s| {
            s.observed_generation = generation;
            status::set_condition(
                &mut s.conditions,
                status::READY,
                true,
                "AssetReady",
                "The asset is ACTIVE, owned by this resource and as declared",
                generation,
            );
        })
        .await?;
    if !was_ready {
        events
            .normal(
                "AssetReady",
                format!("Asset {} ({}) is ACTIVE", asset.id, asset.name),
            )
            .await;
    }
    // Sweeps vouch for what listings show; the rest is resynced on its own.
    let resync = if listable(obj, &status.snapshot()) {
        ctx.settings.full_resync
    } else {
        ctx.settings.resync
    };
    Ok(Action::requeue(jittered(resync)))
}

/// Copies what SiteWise reports into status; Synced, and any earlier permanent error is over.
fn mirror(s: &mut SiteWiseAssetStatus, asset: &AssetDescription) {
    s.asset_id = Some(asset.id.clone());
    s.asset_arn = Some(asset.arn.clone());
    s.asset_name = Some(asset.name.clone());
    s.state = Some(asset.state.to_string());
    s.error = asset.error.as_ref().map(|(code, message)| {
        Box::new(AssetErrorDetails {
            code: code.clone(),
            message: message.clone(),
        })
    });
    mark_observed(s, None);
}

/// SiteWise answered: Synced, and any earlier permanent error is over.
fn mark_observed(s: &mut SiteWiseAssetStatus, generation: Option<i64>) {
    status::set_condition(
        &mut s.conditions,
        status::SYNCED,
        true,
        "Observed",
        "SiteWise answered",
        generation,
    );
    status::remove_condition(&mut s.conditions, status::TERMINAL);
}

/// CREATING/UPDATING are polled; FAILED is reported with SiteWise's error details.
async fn not_active<S>(
    asset: &AssetDescription,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Option<Duration>> {
    match &asset.state {
        AssetState::Active => Ok(None),
        AssetState::Failed => {
            let detail = asset
                .error
                .as_ref()
                .map(|(c, m)| format!("{c}: {m}"))
                .unwrap_or_else(|| "SiteWise reports FAILED without details".into());
            not_ready(
                status,
                events,
                "AssetFailed",
                format!("SiteWise reports asset {} FAILED ({detail})", asset.id),
                true,
            )
            .await?;
            Ok(Some(ctx.settings.resync))
        }
        other => {
            let reason = if *other == AssetState::Creating {
                "AssetCreating"
            } else {
                "AssetNotActive"
            };
            not_ready(
                status,
                events,
                reason,
                format!("The asset is {other}; waiting for ACTIVE"),
                false,
            )
            .await?;
            Ok(Some(requeue_base(other, &ctx.settings)))
        }
    }
}

pub(crate) use super::status::not_ready;

/// Short polls while the asset is changing, a slow resync once it is stable (before jitter).
pub fn requeue_base(state: &AssetState, settings: &super::Settings) -> Duration {
    if state.is_stable() {
        settings.resync
    } else {
        settings.poll_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_copies_the_asset_and_its_error() {
        let mut s = SiteWiseAssetStatus::default();
        let asset = AssetDescription {
            id: "id-1".into(),
            arn: "arn:aws:iotsitewise:us-east-1:1:asset/id-1".into(),
            name: "press".into(),
            state: AssetState::Failed,
            error: Some(("VALIDATION_ERROR".into(), "bad formula".into())),
            ..AssetDescription::default()
        };
        mirror(&mut s, &asset);
        assert_eq!(s.state.as_deref(), Some("FAILED"));
        assert_eq!(s.asset_id.as_deref(), Some("id-1"));
        assert_eq!(
            s.error.as_ref().map(|e| e.code.clone()),
            Some("VALIDATION_ERROR".to_string())
        );
        let synced = status::condition(&s, status::SYNCED).cloned();
        assert_eq!(synced.map(|c| c.status), Some("True".to_string()));
    }

    #[test]
    fn busy_assets_are_polled_and_stable_ones_resynced() {
        let settings = super::super::Settings::default();
        for state in [
            AssetState::Creating,
            AssetState::Updating,
            AssetState::Deleting,
        ] {
            assert_eq!(requeue_base(&state, &settings), settings.poll_interval);
        }
        for state in [AssetState::Active, AssetState::Failed] {
            assert_eq!(requeue_base(&state, &settings), settings.resync);
        }
        assert!(settings.poll_interval < settings.resync);
    }
}
