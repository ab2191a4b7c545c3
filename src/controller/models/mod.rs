//! The `SiteWiseAssetModel` controller: the reconcile entry (finalizer, then [`apply`] or
//! [`cleanup`]), how its outcome becomes a requeue, and the Ready and Deleting conditions it
//! sets. It shares the asset controller's context (SiteWise client, rate limits, fence,
//! caches), so models and assets spend one quota and stop together when leadership is lost.

pub mod apply;
pub mod cleanup;
pub mod declared;

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use tracing::Instrument;

use super::status::{self, Events, StatusWriter};
use super::{Context, kube_key};
use crate::crd::{MODEL_FINALIZER, SiteWiseAssetModel};
use crate::error::{Error, ErrorClass, Result};
use crate::sitewise::{ModelDescription, SiteWise};

pub type ModelStatus = StatusWriter<SiteWiseAssetModel>;

/// Reconciles one model resource: apply or cleanup behind the finalizer, then settles the
/// outcome (errors reported once; waits polled without a Warning).
pub async fn reconcile<S: SiteWise>(
    obj: Arc<SiteWiseAssetModel>,
    ctx: &Context<S>,
    api: &Api<SiteWiseAssetModel>,
    status: &ModelStatus,
    events: &Events,
) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile_model",
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any()
    );
    let result = finalizer(api, MODEL_FINALIZER, obj.clone(), |event| async {
        match event {
            Finalizer::Apply(obj) => apply::apply(&obj, ctx, status, events).await,
            Finalizer::Cleanup(obj) => cleanup::cleanup(&obj, ctx, status, events).await,
        }
    })
    .instrument(span.clone())
    .await
    .map_err(Error::from_finalizer);
    settle(&obj, ctx, status, events, result)
        .instrument(span)
        .await
}

/// Success resets the resource's backoff; an error gets its retry delay, and is reported
/// (Synced=False, a Warning event for permanent and transient ones) unless it is a wait.
pub async fn settle<S>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
    result: Result<Action>,
) -> Result<Action> {
    let key = obj.metadata.uid.clone().unwrap_or_else(|| obj.name_any());
    let err = match result {
        Ok(action) => {
            ctx.failures.reset(&key);
            ctx.failures.reset(&kube_key(&key));
            ctx.metrics.reconciled("ok");
            return Ok(action);
        }
        Err(err) => err,
    };
    let class = err.class();
    ctx.metrics.reconciled(class.as_str());
    let (delay, attempts) = match err.poll_after() {
        Some(poll) => (poll, ctx.failures.get(&key)),
        None => ctx.retry_delay(&key, class),
    };
    match class {
        ErrorClass::Pending => tracing::debug!(error = %err, "waiting"),
        ErrorClass::Kubernetes => {
            tracing::warn!(error = %err, retry_in = ?delay, "Kubernetes API call failed")
        }
        _ => {
            tracing::warn!(error = %err, class = class.as_str(), retry_in = ?delay, "model reconcile failed");
            let message = err.root().to_string();
            let generation = status.generation();
            let written = status
                .update(|s| {
                    status::set_condition(
                        &mut s.conditions,
                        status::SYNCED,
                        false,
                        class.as_str(),
                        message.clone(),
                        generation,
                    );
                    if class == ErrorClass::Terminal {
                        status::set_condition(
                            &mut s.conditions,
                            status::TERMINAL,
                            true,
                            "PermanentError",
                            message.clone(),
                            generation,
                        );
                    }
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not write the error into status");
            }
            let note = format!(
                "{message}; attempt {attempts}, next retry in {}s",
                delay.as_secs()
            );
            if matches!(class, ErrorClass::Terminal | ErrorClass::Transient) {
                events.warning("ReconcileError", note).await;
            }
        }
    }
    Err(Error::Reported {
        source: Box::new(err),
        retry_after: delay,
    })
}

pub(crate) use super::status::not_ready;

/// Sets `Ready=True` (the model is ACTIVE and as declared); one event when it becomes so.
pub(crate) async fn ready(
    status: &ModelStatus,
    events: &Events,
    model: &ModelDescription,
) -> Result<()> {
    let generation = status.generation();
    let was_ready = status
        .snapshot()
        .conditions
        .iter()
        .any(|c| c.type_ == status::READY && c.status == "True");
    status
        .update(|s| {
            s.observed_generation = generation;
            status::set_condition(
                &mut s.conditions,
                status::SYNCED,
                true,
                "Observed",
                "",
                generation,
            );
            status::remove_condition(&mut s.conditions, status::TERMINAL);
            status::set_condition(
                &mut s.conditions,
                status::READY,
                true,
                "ModelReady",
                "The model is ACTIVE and as declared",
                generation,
            );
        })
        .await?;
    if !was_ready {
        events
            .normal(
                "ModelReady",
                format!(
                    "Asset model {} ({}) is ACTIVE",
                    model.id, model.definition.name
                ),
            )
            .await;
    }
    Ok(())
}

/// Sets `Deleting=True` with `reason` and `Ready=False` with the same message.
pub(crate) async fn set_deleting(
    status: &ModelStatus,
    reason: &str,
    message: String,
) -> Result<()> {
    let generation = status.generation();
    status
        .update(|s| {
            status::set_condition(
                &mut s.conditions,
                status::DELETING,
                true,
                reason,
                message.clone(),
                generation,
            );
            status::set_condition(
                &mut s.conditions,
                status::READY,
                false,
                reason,
                message.clone(),
                generation,
            );
        })
        .await
}

#[cfg(test)]
mod tests;
