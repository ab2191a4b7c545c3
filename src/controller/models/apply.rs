//! Apply for a `SiteWiseAssetModel`: check the hierarchies (no cycle, every child model there
//! and Ready), find or create the model under its derived ID, wait for ACTIVE, update it with
//! the ETag it was read at when it differs from the spec, keep its tags, and report Ready.

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::declared::{self, Child};
use super::{ModelStatus, not_ready, ready};
use crate::backoff::jittered;
use crate::controller::Context;
use crate::controller::claim;
use crate::controller::cleanup::ensure_leader;
use crate::controller::status::Events;
use crate::crd::{SiteWiseAssetModel, require_uid};
use crate::error::Result;
use crate::sitewise::{AssetState, ErrorKind, ModelDescription, NewModel, SiteWise};
use crate::token;

fn requeue(delay: Duration) -> Result<Action> {
    Ok(Action::requeue(jittered(delay)))
}

pub async fn apply<S: SiteWise>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
) -> Result<Action> {
    let uid = require_uid(&obj.metadata)?;
    let child_ids = match child_models(obj, ctx, status, events).await? {
        Ok(ids) => ids,
        Err(delay) => return requeue(delay),
    };
    let pinned = status.snapshot().asset_model_id;
    let model_id = pinned
        .clone()
        .unwrap_or_else(|| token::created_model_id(uid));
    let current = match ctx.sitewise.describe_asset_model(&model_id).await {
        Ok(current) => current,
        Err(e) if e.kind == ErrorKind::NotFound && pinned.is_some() => {
            status.stage(|s| s.state = Some("NotFound".into()));
            let message = format!(
                "Asset model {model_id}, created for this resource, was deleted outside Kubernetes; it is not created again. Delete and re-apply this resource to create a new one"
            );
            not_ready(status, events, "ModelDeletedOutside", message, true).await?;
            return requeue(ctx.settings.not_found_retry);
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            return create(obj, ctx, status, events, uid, &model_id, &child_ids).await;
        }
        Err(e) => return Err(e.into()),
    };
    status
        .update(|s| {
            s.asset_model_id = Some(current.id.clone());
            s.asset_model_arn = Some(current.arn.clone());
            s.state = Some(current.state.to_string());
        })
        .await?;
    if !current.state.is_stable() {
        let reason = match current.state {
            AssetState::Creating => "ModelCreating",
            AssetState::Deleting => "ModelDeleting",
            _ => "ModelUpdating",
        };
        let message = format!("The model is {}; waiting for ACTIVE", current.state);
        not_ready(status, events, reason, message, false).await?;
        return requeue(ctx.settings.poll_interval);
    }
    let want = declared::definition(obj, &child_ids, Some(&current.definition));
    let changes = declared::differences(&want, &current.definition);
    if !changes.is_empty() {
        return update(ctx, status, events, uid, &current, &want, &changes).await;
    }
    if current.state == AssetState::Failed {
        let (code, message) = current.error.clone().unwrap_or_default();
        let message = format!("SiteWise reports the model FAILED: {code}: {message}");
        not_ready(status, events, "ModelFailed", message, true).await?;
        return requeue(ctx.settings.resync);
    }
    sync_tags(obj, ctx, status, &current.arn).await?;
    ready(status, events, &current).await?;
    requeue(ctx.settings.resync)
}

/// The UUID of every hierarchy's child model, or the delay after which to look again when
/// one is missing, not Ready, or part of a cycle (each reported as the Ready condition).
async fn child_models<S: SiteWise>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
) -> Result<Result<Vec<String>, Duration>> {
    let models = ctx.resources.models();
    if let Some(path) = declared::cycle(obj, &models) {
        let message = format!(
            "The hierarchies of these SiteWiseAssetModels form a cycle: {}. SiteWise needs a child model before its parent, so none of them can be created; remove one of these hierarchies",
            path.join(" -> ")
        );
        not_ready(status, events, "HierarchyCycle", message, true).await?;
        return Ok(Err(ctx.settings.not_found_retry));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut ids = Vec::new();
    for (h, child) in obj
        .spec
        .hierarchies
        .iter()
        .zip(declared::children(obj, &models))
    {
        let (reason, message) = match child {
            Child::Known(id) => {
                ids.push(id);
                continue;
            }
            Child::ById(reference) => match ctx.sitewise.describe_asset_model(&reference).await {
                Ok(d) => {
                    ids.push(d.id);
                    continue;
                }
                Err(e) if e.kind == ErrorKind::NotFound => (
                    "ChildModelNotFound",
                    format!(
                        "Hierarchy {} names asset model {reference}, which SiteWise does not have; fix spec.hierarchies",
                        h.name
                    ),
                ),
                Err(e) => return Err(e.into()),
            },
            // Not a warning: applying a directory creates resources in any order.
            Child::Missing(name) => (
                "WaitingForChildModel",
                format!(
                    "Hierarchy {} names SiteWiseAssetModel {name}, which does not exist in namespace {namespace}; create it or fix spec.hierarchies",
                    h.name
                ),
            ),
            Child::NotReady(name) => (
                "WaitingForChildModel",
                format!(
                    "Hierarchy {} waits for SiteWiseAssetModel {name} to be Ready",
                    h.name
                ),
            ),
        };
        not_ready(
            status,
            events,
            reason,
            message,
            reason == "ChildModelNotFound",
        )
        .await?;
        return Ok(Err(ctx.settings.poll_interval));
    }
    Ok(Ok(ids))
}

/// CreateAssetModel with the derived ID and token, the declared definition and the claim tags.
async fn create<S: SiteWise>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
    uid: &str,
    model_id: &str,
    child_ids: &[String],
) -> Result<Action> {
    let mut tags = obj.spec.tags.clone();
    tags.extend(claim::claim_tags(&ctx.cluster_id, obj));
    let request = NewModel {
        model_id: model_id.to_string(),
        definition: declared::definition(obj, child_ids, None),
        tags,
    };
    let client_token = token::create_asset_model(uid, model_id);
    ensure_leader(ctx)?;
    match ctx
        .sitewise
        .create_asset_model(&request, &client_token)
        .await
    {
        Ok(created) => {
            tracing::info!(model_id = %created.id, client_token = %client_token, "asset model created");
            let managed: Vec<String> = obj.spec.tags.keys().cloned().collect();
            // Written with the condition below, in one write (the ID is derived, so a crash
            // before it finds the model again).
            status.stage(|s| {
                s.asset_model_id = Some(created.id.clone());
                s.asset_model_arn = Some(created.arn.clone());
                s.state = Some(created.state.to_string());
                s.managed_tag_keys = managed;
            });
            events
                .normal(
                    "ModelCreated",
                    format!(
                        "CreateAssetModel accepted: asset model {} named {:?} (clientToken {client_token})",
                        created.id, request.definition.name
                    ),
                )
                .await;
            let message = "The model is CREATING; waiting for ACTIVE".to_string();
            not_ready(status, events, "ModelCreating", message, false).await?;
            requeue(ctx.settings.poll_interval)
        }
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            let message = format!(
                "Cannot create the model: {}. Asset model names are unique in an account and Region; set spec.name to another name",
                e.message
            );
            not_ready(status, events, "ModelNameTaken", message, true).await?;
            requeue(ctx.settings.terminal_retry)
        }
        Err(e) => Err(e.into()),
    }
}

/// UpdateAssetModel of the version just read (`If-Match` its ETag). When someone changed the
/// model in between, SiteWise refuses it and the next reconcile reads the new version first.
async fn update<S: SiteWise>(
    ctx: &Context<S>,
    status: &ModelStatus,
    events: &Events,
    uid: &str,
    current: &ModelDescription,
    want: &crate::sitewise::ModelDefinition,
    changes: &[String],
) -> Result<Action> {
    let etag = current.etag.clone().unwrap_or_default();
    let change = changes.join("; ");
    let client_token = token::update_asset_model(uid, &current.id, &etag, &change);
    ensure_leader(ctx)?;
    match ctx
        .sitewise
        .update_asset_model(&current.id, want, &etag, &client_token)
        .await
    {
        Ok(state) => {
            status.stage(|s| s.state = Some(state.to_string()));
            events
                .normal(
                    "ModelUpdated",
                    format!("UpdateAssetModel accepted ({change})"),
                )
                .await;
            let message = format!("The model is {state} after an update; waiting for ACTIVE");
            not_ready(status, events, "ModelUpdating", message, false).await?;
            requeue(ctx.settings.poll_interval)
        }
        Err(e) if e.kind == ErrorKind::PreconditionFailed => {
            events
                .warning(
                    "ModelChangedElsewhere",
                    format!(
                        "The model changed in SiteWise after it was read (ETag {etag}); it is read again before the update ({change}) is made: {}",
                        e.message
                    ),
                )
                .await;
            requeue(Duration::from_millis(500))
        }
        Err(e) => Err(e.into()),
    }
}

/// Tags as declared plus the claim: missing or changed ones are set, and keys this resource
/// applied before but no longer declares are removed.
async fn sync_tags<S: SiteWise>(
    obj: &SiteWiseAssetModel,
    ctx: &Context<S>,
    status: &ModelStatus,
    arn: &str,
) -> Result<()> {
    let mut want = obj.spec.tags.clone();
    want.extend(claim::claim_tags(&ctx.cluster_id, obj));
    let have = ctx.sitewise.list_tags(arn).await?;
    let missing: std::collections::BTreeMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let dropped: Vec<String> = status
        .snapshot()
        .managed_tag_keys
        .into_iter()
        .filter(|k| !want.contains_key(k) && have.contains_key(k))
        .collect();
    if !missing.is_empty() {
        ensure_leader(ctx)?;
        ctx.sitewise.tag_resource(arn, &missing).await?;
    }
    if !dropped.is_empty() {
        ensure_leader(ctx)?;
        ctx.sitewise.untag_resource(arn, &dropped).await?;
    }
    let managed: Vec<String> = obj.spec.tags.keys().cloned().collect();
    // Written with the Ready condition that follows.
    status.stage(|s| s.managed_tag_keys = managed);
    Ok(())
}
