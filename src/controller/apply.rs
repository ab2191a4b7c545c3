//! Apply: observe the asset with DescribeAsset and mirror it into status. The asset is never
//! changed here; the resource adopts an existing asset. Requeues quickly while SiteWise is busy
//! with the asset and on a slow jittered resync once it is stable.

use std::time::Duration;

use kube::runtime::controller::Action;

use super::Context;
use super::status::{self, Events, StatusWriter};
use crate::backoff::jittered;
use crate::crd::{AssetErrorDetails, SiteWiseAsset};
use crate::error::Result;
use crate::sitewise::{AssetDescription, AssetState, ErrorKind, SiteWise};

pub async fn apply<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
) -> Result<Action> {
    let generation = status.generation();
    match ctx.sitewise.describe_asset(&obj.spec.asset_id).await {
        Ok(asset) => {
            let was_ready = status::condition(&status.snapshot(), status::READY)
                .is_some_and(|c| c.status == "True");
            status.update(|s| mirror(s, &asset, generation)).await?;
            if asset.state == AssetState::Active && !was_ready {
                events
                    .normal(
                        "AssetReady",
                        format!("Asset {} ({}) is ACTIVE", asset.id, asset.name),
                    )
                    .await;
            }
            if asset.state == AssetState::Failed {
                let detail = asset.error.as_ref().map(|(c, m)| format!("{c}: {m}"));
                events
                    .warning(
                        "AssetFailed",
                        format!(
                            "SiteWise reports asset {} FAILED{}",
                            asset.id,
                            detail.map(|d| format!(" ({d})")).unwrap_or_default()
                        ),
                    )
                    .await;
            }
            Ok(Action::requeue(jittered(requeue_base(
                &asset.state,
                &ctx.settings,
            ))))
        }
        Err(err) if err.kind == ErrorKind::NotFound => {
            let message = format!(
                "SiteWise has no asset {}: {}",
                obj.spec.asset_id, err.message
            );
            let was_missing = status.snapshot().state.as_deref() == Some("NotFound");
            status
                .update(|s| {
                    s.state = Some("NotFound".into());
                    s.error = None;
                    s.observed_generation = generation;
                    status::set_condition(
                        &mut s.conditions,
                        status::READY,
                        false,
                        "AssetNotFound",
                        message.clone(),
                        generation,
                    );
                    mark_observed(s, generation);
                })
                .await?;
            if !was_missing {
                events.warning("AssetNotFound", message).await;
            }
            Ok(Action::requeue(jittered(ctx.settings.not_found_retry)))
        }
        Err(err) => Err(err.into()),
    }
}

/// Copies what SiteWise reports into status and sets Ready/Synced.
fn mirror(
    s: &mut crate::crd::SiteWiseAssetStatus,
    asset: &AssetDescription,
    generation: Option<i64>,
) {
    s.asset_id = Some(asset.id.clone());
    s.asset_arn = Some(asset.arn.clone());
    s.asset_name = Some(asset.name.clone());
    s.state = Some(asset.state.to_string());
    s.error = asset
        .error
        .as_ref()
        .map(|(code, message)| AssetErrorDetails {
            code: code.clone(),
            message: message.clone(),
        });
    s.observed_generation = generation;
    let (ready, reason, message) = match &asset.state {
        AssetState::Active => (true, "AssetActive", "The asset is ACTIVE".to_string()),
        AssetState::Failed => (
            false,
            "AssetFailed",
            asset
                .error
                .as_ref()
                .map(|(c, m)| format!("{c}: {m}"))
                .unwrap_or_else(|| "SiteWise reports FAILED".into()),
        ),
        other => (
            false,
            "AssetNotActive",
            format!("The asset is {other}; waiting for ACTIVE"),
        ),
    };
    status::set_condition(
        &mut s.conditions,
        status::READY,
        ready,
        reason,
        message,
        generation,
    );
    mark_observed(s, generation);
}

/// SiteWise answered: Synced, and any earlier permanent error is over.
fn mark_observed(s: &mut crate::crd::SiteWiseAssetStatus, generation: Option<i64>) {
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

    fn asset(state: AssetState, error: Option<(&str, &str)>) -> AssetDescription {
        AssetDescription {
            id: "id-1".into(),
            arn: "arn:aws:iotsitewise:us-east-1:1:asset/id-1".into(),
            name: "press".into(),
            model_id: "m".into(),
            state,
            error: error.map(|(c, m)| (c.into(), m.into())),
            hierarchy_ids: vec![],
        }
    }

    #[test]
    fn active_assets_are_ready_and_failed_ones_carry_the_error() {
        let mut s = Default::default();
        mirror(&mut s, &asset(AssetState::Active, None), Some(3));
        assert_eq!(s.state.as_deref(), Some("ACTIVE"));
        assert_eq!(s.observed_generation, Some(3));
        let ready = status::condition(&s, status::READY).cloned();
        assert_eq!(
            ready.map(|c| (c.status, c.reason)),
            Some(("True".into(), "AssetActive".into()))
        );

        mirror(
            &mut s,
            &asset(
                AssetState::Failed,
                Some(("VALIDATION_ERROR", "bad formula")),
            ),
            Some(3),
        );
        let ready = status::condition(&s, status::READY).cloned();
        assert_eq!(ready.as_ref().map(|c| c.status.as_str()), Some("False"));
        assert_eq!(
            ready.map(|c| c.message),
            Some("VALIDATION_ERROR: bad formula".to_string())
        );
        assert_eq!(
            s.error.map(|e| e.code),
            Some("VALIDATION_ERROR".to_string())
        );
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
