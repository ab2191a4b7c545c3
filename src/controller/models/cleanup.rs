//! Deletion of a `SiteWiseAssetModel`: wait (a condition naming what is waited for, no error
//! storm) while an asset resource or another model resource uses the model, or SiteWise still
//! lists assets of it; then DeleteAssetModel with the derived token and the ETag just read,
//! and wait until SiteWise no longer knows the model. `Retain` removes the claim instead.

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::{ModelStatus, set_deleting};
use crate::controller::Context;
use crate::controller::claim::{OWNER_RESOURCE_TAG, OWNER_TAG};
use crate::controller::cleanup::ensure_leader;
use crate::controller::status::Events;
use crate::crd::{
    DeletionPolicy, ModelSource, SiteWiseAsset, SiteWiseAssetModel, force_orphan_reason,
    require_uid,
};
use crate::error::{Error, Result};
use crate::sitewise::{AssetState, ErrorKind, SiteWise, list_assets_of_model};
use crate::token;

/// How many users a condition message names before "and N more".
const NAMED: usize = 5;

pub async fn cleanup<S: SiteWise>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
) -> Result<Action> {
    let uid = require_uid(&obj.metadata)?;
    let model_id = status
        .snapshot()
        .asset_model_id
        .unwrap_or_else(|| token::created_model_id(uid));
    if let Some(reason) = force_orphan_reason(&obj.metadata) {
        events
            .warning(
                "ModelOrphaned",
                format!("Released without touching asset model {model_id}: {reason}"),
            )
            .await;
        tracing::warn!(model_id = %model_id, reason, "model resource released by force-orphan");
        return Ok(Action::await_change());
    }
    if obj.spec.deletion_policy == DeletionPolicy::Retain {
        return retain(ctx, events, &model_id).await;
    }
    let mut users = resource_users(
        obj,
        &ctx.resources.all(),
        &ctx.resources.models(),
        &model_id,
    );
    if users.is_empty() {
        users = match list_assets_of_model(&ctx.sitewise, &model_id).await {
            Ok(assets) => assets
                .into_iter()
                .map(|a| format!("asset {} ({}, {})", a.id, a.name, a.state))
                .collect(),
            Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    }
    if !users.is_empty() {
        return wait_for(ctx, status, events, &model_id, users).await;
    }
    let current = match ctx.sitewise.describe_asset_model(&model_id).await {
        Ok(current) => current,
        Err(e) if e.kind == ErrorKind::NotFound => return gone(status, events, &model_id).await,
        Err(e) => return Err(e.into()),
    };
    if !current.state.is_stable() {
        status
            .update(|s| s.state = Some(current.state.to_string()))
            .await?;
        return Err(pending(ctx, &model_id, &current.state));
    }
    let client_token = token::delete_asset_model(uid, &model_id);
    ensure_leader(ctx)?;
    match ctx
        .sitewise
        .delete_asset_model(&model_id, current.etag.as_deref(), &client_token)
        .await
    {
        Ok(state) => {
            status.stage(|s| s.state = Some(state.to_string()));
            set_deleting(
                status,
                "ModelDeleting",
                "DeleteAssetModel accepted; waiting until SiteWise no longer knows the model"
                    .into(),
            )
            .await?;
            events
                .normal(
                    "ModelDeleting",
                    format!(
                        "DeleteAssetModel accepted for asset model {model_id} (clientToken {client_token})"
                    ),
                )
                .await;
            Err(pending(ctx, &model_id, &state))
        }
        Err(e) if e.kind == ErrorKind::NotFound => gone(status, events, &model_id).await,
        // Something this operator does not see still uses the model (an asset made in the
        // console between the listing and the call, another model's hierarchy): wait for it.
        Err(e) if e.kind == ErrorKind::InvalidRequest => {
            wait_for(ctx, status, events, &model_id, vec![e.message]).await
        }
        Err(e) => Err(e.into()),
    }
}

fn pending<S>(ctx: &Context<S>, model_id: &str, state: &AssetState) -> Error {
    Error::ModelPending {
        model_id: model_id.to_string(),
        state: state.to_string(),
        poll_after: ctx.settings.poll_interval,
    }
}

/// The resources that use the model: asset resources created from it (by resource or by ID)
/// and model resources whose hierarchies name it, in the model's namespace.
pub fn resource_users(
    obj: &SiteWiseAssetModel,
    assets: &[std::sync::Arc<SiteWiseAsset>],
    models: &[std::sync::Arc<SiteWiseAssetModel>],
    model_id: &str,
) -> Vec<String> {
    let namespace = obj.namespace();
    let name = obj.name_any();
    let by_id = |reference: &str| {
        reference == model_id
            || obj
                .spec
                .external_id
                .as_ref()
                .is_some_and(|ext| reference.strip_prefix("externalId:") == Some(ext))
    };
    let mut users: Vec<String> = assets
        .iter()
        .filter(|a| {
            let model = match a.mode() {
                Some(crate::crd::Mode::Create { model }) => model,
                _ => return false,
            };
            match model {
                ModelSource::Resource(n) => a.namespace() == namespace && n == name,
                ModelSource::Id(reference) => by_id(reference),
            }
        })
        .map(|a| format!("SiteWiseAsset {}", a.name_any()))
        .collect();
    users.extend(
        models
            .iter()
            .filter(|m| m.namespace() == namespace && m.name_any() != name)
            .filter(|m| {
                m.spec.hierarchies.iter().any(|h| {
                    h.child_model.name.as_deref() == Some(name.as_str())
                        || h.child_model.asset_model_id.as_deref().is_some_and(by_id)
                })
            })
            .map(|m| format!("SiteWiseAssetModel {}", m.name_any())),
    );
    users.sort();
    users
}

/// Records what the deletion waits for (one event when the wait starts) and polls.
async fn wait_for<S>(
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
    model_id: &str,
    users: Vec<String>,
) -> Result<Action> {
    let named: Vec<&str> = users.iter().take(NAMED).map(String::as_str).collect();
    let more = users.len().saturating_sub(NAMED);
    let list = if more > 0 {
        format!("{} and {more} more", named.join(", "))
    } else {
        named.join(", ")
    };
    let message =
        format!("Asset model {model_id} is deleted once nothing uses it; waiting for: {list}");
    if status.snapshot().waiting_for.is_empty() {
        events.normal("WaitingForUsers", message.clone()).await;
    }
    status.stage(|s| s.waiting_for = users.clone());
    set_deleting(status, "WaitingForUsers", message).await?;
    Err(Error::ModelInUse {
        model_id: model_id.to_string(),
        count: users.len(),
        first: list,
        poll_after: ctx.settings.poll_interval,
    })
}

async fn gone(status: &ModelStatus, events: &Events, model_id: &str) -> Result<Action> {
    status
        .update(|s| {
            s.state = Some("Deleted".into());
            s.waiting_for.clear();
        })
        .await?;
    events
        .normal(
            "ModelDeleted",
            format!("Asset model {model_id} is gone from SiteWise"),
        )
        .await;
    Ok(Action::await_change())
}

/// `Retain`: the model stays; only the ownership claim is removed.
async fn retain<S: SiteWise>(ctx: &Context<S>, events: &Events, model_id: &str) -> Result<Action> {
    match ctx.sitewise.describe_asset_model(model_id).await {
        Ok(current) => {
            ensure_leader(ctx)?;
            let keys = vec![OWNER_TAG.to_string(), OWNER_RESOURCE_TAG.to_string()];
            ctx.sitewise.untag_resource(&current.arn, &keys).await?;
            events
                .normal(
                    "ModelRetained",
                    format!(
                        "deletionPolicy Retain: asset model {model_id} stays in SiteWise, unclaimed"
                    ),
                )
                .await;
        }
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}
