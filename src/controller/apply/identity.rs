//! Which asset the resource holds: the pinned UUID, the created asset's derived ID, or the
//! declared reference; and, in create mode, the CreateAsset that makes it. The decision is
//! [`plan::apply::identity`]; this module reads SiteWise for it and reports its verdicts.

use std::time::Duration;

use super::super::Context;
use super::super::claim;
use super::super::cleanup::ensure_leader;
use super::super::plan::apply::{self as plan, Identity, Lookup};
use super::super::status::{Events, StatusWriter};
use super::not_ready;
use crate::crd::{Mode, ModelSource, Ownership, SiteWiseAsset};
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, ErrorKind, NewAsset, SiteWise};
use crate::token;

pub(super) enum Resolved {
    Asset(Box<AssetDescription>),
    /// Nothing more to do in this reconcile; come back after the delay.
    Stop(Duration),
}

pub(super) async fn resolve<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
    uid: &str,
) -> Result<Resolved> {
    let Some(mode) = obj.mode() else {
        not_ready(
            status,
            events,
            "InvalidSpec",
            "set exactly one of spec.assetId, spec.assetModelId or spec.assetModelRef".into(),
            true,
        )
        .await?;
        return Ok(Resolved::Stop(ctx.settings.resync));
    };
    let pinned = status.snapshot().asset_id;
    let creating = matches!(mode, Mode::Create { .. });
    let first_reference = match (&pinned, mode) {
        (Some(pinned), _) => pinned.clone(),
        (None, Mode::Create { .. }) => token::created_asset_id(uid),
        (None, Mode::Adopt { reference }) => reference.to_string(),
    };
    let (first, mut description) = lookup(ctx, &first_reference).await?;
    // Only when the pinned asset is gone is the declared external ID resolved again, to tell
    // "gone" from "replaced by another asset under the same external ID".
    let by_reference = match (mode, &first, &pinned) {
        (Mode::Adopt { reference }, Lookup::NotFound, Some(_))
            if reference.starts_with("externalId:") =>
        {
            let (found, replacement) = lookup(ctx, reference).await?;
            description = description.or(replacement);
            Some(found)
        }
        _ => None,
    };
    match plan::identity(creating, pinned.as_deref(), &first, by_reference.as_ref()) {
        Identity::Holds { .. } => description
            .map(|d| Resolved::Asset(Box::new(d)))
            .ok_or_else(|| Error::ObserveAgain {
                asset_id: first_reference,
                detail: "the asset was not described".into(),
            }),
        Identity::Create => create(obj, ctx, status, events, uid, mode).await,
        Identity::Missing => {
            let reference = obj.declared_reference();
            status
                .update(|s| {
                    s.state = Some("NotFound".into());
                    s.error = None;
                })
                .await?;
            not_ready(
                status,
                events,
                "AssetNotFound",
                format!("SiteWise has no asset {reference}"),
                true,
            )
            .await?;
            Ok(Resolved::Stop(ctx.settings.not_found_retry))
        }
        Identity::DeletedOutside { asset_id } => {
            status.update(|s| s.state = Some("NotFound".into())).await?;
            let message = if creating {
                format!(
                    "Asset {asset_id}, created for this resource, was deleted outside Kubernetes; it is not created again. Delete and re-apply this resource to create a new one"
                )
            } else {
                format!("Asset {asset_id} no longer exists in SiteWise")
            };
            let reason = if creating {
                "AssetDeletedOutside"
            } else {
                "AssetNotFound"
            };
            not_ready(status, events, reason, message, true).await?;
            Ok(Resolved::Stop(ctx.settings.not_found_retry))
        }
        Identity::Replaced { pinned, now } => {
            status.update(|s| s.state = Some("NotFound".into())).await?;
            not_ready(
                status,
                events,
                "AssetReplaced",
                format!(
                    "Asset {pinned}, which this resource holds, is gone, and {} now names another asset, {now}. This resource will not follow it and its deletion will never touch {now}; to manage {now}, create a new SiteWiseAsset",
                    obj.declared_reference()
                ),
                true,
            )
            .await?;
            Ok(Resolved::Stop(ctx.settings.not_found_retry))
        }
    }
}

async fn lookup<S: SiteWise>(
    ctx: &Context<S>,
    reference: &str,
) -> Result<(Lookup, Option<AssetDescription>)> {
    match ctx.sitewise.describe_asset(reference).await {
        Ok(d) => Ok((
            Lookup::Found {
                asset_id: d.id.clone(),
            },
            Some(d),
        )),
        Err(e) if e.kind == ErrorKind::NotFound => Ok((Lookup::NotFound, None)),
        Err(e) => Err(e.into()),
    }
}

/// The model to create the asset from: the declared reference, or the ID of the named
/// `SiteWiseAssetModel` once it is Ready (else the reason and message of the wait).
fn model_of<S>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    source: ModelSource<'_>,
    connection: Option<&str>,
) -> std::result::Result<String, (&'static str, String)> {
    let name = match source {
        ModelSource::Id(reference) => return Ok(reference.to_string()),
        ModelSource::Resource(name) => name,
    };
    let namespace = kube::ResourceExt::namespace(obj).unwrap_or_default();
    let Some(model) = ctx.resources.model(&namespace, name) else {
        return Err((
            "WaitingForModel",
            format!(
                "SiteWiseAssetModel {name} does not exist in namespace {namespace}; the asset is created once it does and is Ready"
            ),
        ));
    };
    if model.metadata.deletion_timestamp.is_some() {
        return Err((
            "WaitingForModel",
            format!("SiteWiseAssetModel {name} is being deleted; no asset is created from it"),
        ));
    }
    // A model lives in one account: an asset of another connection cannot be made from it.
    let model_connection = model.status.as_ref().and_then(|s| s.connection.as_deref());
    if let (Some(mine), Some(its)) = (connection, model_connection)
        && mine != its
    {
        return Err((
            "ModelInOtherConnection",
            format!(
                "SiteWiseAssetModel {name} lives in connection {its}, this asset in {mine}; name a model of the same connection"
            ),
        ));
    }
    match model.model_id() {
        Some(id) if model.is_ready() => Ok(id.to_string()),
        _ => Err((
            "WaitingForModel",
            format!("SiteWiseAssetModel {name} is not Ready yet; the asset is created once it is"),
        )),
    }
}

/// CreateAsset with the derived asset ID and token, the declared fields and the claim tags.
/// The UUID is recorded only after SiteWise accepted the call: a restart before that finds the
/// asset by its derived ID.
async fn create<S: SiteWise>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
    uid: &str,
    mode: Mode<'_>,
) -> Result<Resolved> {
    let Mode::Create { model: source } = mode else {
        return Ok(Resolved::Stop(ctx.settings.resync));
    };
    let connection = status.snapshot().connection;
    let model = match model_of(obj, ctx, source, connection.as_deref()) {
        Ok(model) => model,
        Err((reason, message)) => {
            let warn = reason == "ModelInOtherConnection";
            not_ready(status, events, reason, message, warn).await?;
            return Ok(Resolved::Stop(ctx.settings.poll_interval));
        }
    };
    let model = model.as_str();
    let asset_id = token::created_asset_id(uid);
    let mut tags = obj.spec.tags.clone();
    tags.extend(claim::claim_tags(&ctx.cluster_id, obj));
    let request = NewAsset {
        asset_id: asset_id.clone(),
        model_id: model.to_string(),
        name: obj
            .spec
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(obj)),
        description: obj.spec.description.clone(),
        external_id: obj.spec.external_id.clone(),
        tags,
    };
    let client_token = token::create_asset(uid, &asset_id);
    ensure_leader(ctx)?;
    match ctx.sitewise.create_asset(&request, &client_token).await {
        Ok(created) => {
            tracing::info!(asset_id = %created.id, client_token = %client_token, "asset created");
            let managed: Vec<String> = obj.spec.tags.keys().cloned().collect();
            status
                .update(|s| {
                    s.asset_id = Some(created.id.clone());
                    s.asset_arn = Some(created.arn.clone());
                    s.state = Some(created.state.to_string());
                    s.ownership = Some(Ownership::Created);
                    s.managed_tag_keys = managed;
                })
                .await?;
            events
                .normal(
                    "AssetCreated",
                    format!(
                        "CreateAsset accepted: asset {} from model {model} (clientToken {client_token})",
                        created.id
                    ),
                )
                .await;
            not_ready(
                status,
                events,
                "AssetCreating",
                "The asset is CREATING; waiting for ACTIVE".into(),
                false,
            )
            .await?;
            Ok(Resolved::Stop(ctx.settings.poll_interval))
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            not_ready(
                status,
                events,
                "ModelNotFound",
                format!(
                    "Cannot create the asset: SiteWise has no asset model {model} ({}). Create the model or fix spec.assetModelId",
                    e.message
                ),
                true,
            )
            .await?;
            Ok(Resolved::Stop(ctx.settings.not_found_retry))
        }
        Err(e) => Err(e.into()),
    }
}
