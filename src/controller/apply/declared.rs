//! The declared side of an ACTIVE asset: its ownership claim, its fields (name, description,
//! external ID, properties, tags) and its parent link. Each step reads what it needs, asks
//! [`plan::apply`] what to do and does at most one change that puts the asset in UPDATING.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::super::Context;
use super::super::claim;
use super::super::cleanup::{disassociate, ensure_leader, parent_link};
use super::super::plan::ParentLink;
use super::super::plan::apply::{self as plan, Change, ClaimStep, Desired, Link, LinkStep};
use super::super::status::{Events, StatusWriter};
use super::{Outcome, not_ready};
use crate::crd::{Mode, Ownership, ParentLinkStatus, ParentTarget, SiteWiseAsset};
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, AssetState, ErrorKind, SiteWise};
use crate::token;

pub(super) struct Declared<'a, S> {
    obj: &'a SiteWiseAsset,
    ctx: &'a Context<S>,
    status: &'a StatusWriter,
    events: &'a Events,
    uid: &'a str,
    asset: &'a AssetDescription,
    /// The asset's tags, once read in this reconcile.
    tags: std::sync::Mutex<Option<BTreeMap<String, String>>>,
}

impl<'a, S: SiteWise> Declared<'a, S> {
    pub(super) fn new(
        obj: &'a SiteWiseAsset,
        ctx: &'a Context<S>,
        status: &'a StatusWriter,
        events: &'a Events,
        uid: &'a str,
        asset: &'a AssetDescription,
    ) -> Self {
        Self {
            obj,
            ctx,
            status,
            events,
            uid,
            asset,
            tags: std::sync::Mutex::new(None),
        }
    }

    fn creating(&self) -> bool {
        matches!(self.obj.mode(), Some(Mode::Create { .. }))
    }

    async fn read_tags(&self) -> Result<BTreeMap<String, String>> {
        if let Some(tags) = self.tags.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(tags);
        }
        let tags = self.ctx.sitewise.list_tags(&self.asset.arn).await?;
        *self.tags.lock().unwrap_or_else(|e| e.into_inner()) = Some(tags.clone());
        Ok(tags)
    }

    /// Claims the asset (after the finalizer is in place, which the finalizer helper ensures
    /// before apply runs), or stands back when another live resource claims it. The tags are
    /// read only while the claim is unsettled or tags are managed.
    pub(super) async fn claim(&self) -> Result<Outcome> {
        let before = self.status.snapshot();
        let settled = matches!(
            before.ownership,
            Some(Ownership::Created | Ownership::Adopted)
        );
        if settled && self.obj.spec.tags.is_empty() && before.managed_tag_keys.is_empty() {
            return Ok(Outcome::Continue);
        }
        let tags = self.read_tags().await?;
        let state = claim::claim_state(&tags, &self.ctx.cluster_id, self.uid);
        let step = plan::claim(&state, claim::holder_gone(self.ctx, &tags));
        let ownership = plan::ownership(self.creating(), &step);
        match &step {
            ClaimStep::Keep => {}
            ClaimStep::Claim | ClaimStep::TakeOver { .. } => {
                ensure_leader(self.ctx)?;
                let claim_tags = claim::claim_tags(&self.ctx.cluster_id, self.obj);
                self.ctx
                    .sitewise
                    .tag_resource(&self.asset.arn, &claim_tags)
                    .await?;
                let mut tags = tags.clone();
                tags.extend(claim_tags);
                *self.tags.lock().unwrap_or_else(|e| e.into_inner()) = Some(tags);
                let note = match &step {
                    ClaimStep::TakeOver { previous } => format!(
                        "Claimed asset {}: the previous claim ({previous}) named a resource that no longer exists",
                        self.asset.id
                    ),
                    _ => format!("Claimed asset {} for this resource", self.asset.id),
                };
                tracing::info!(asset_id = %self.asset.id, "{note}");
                self.events.normal("AssetClaimed", note).await;
            }
            ClaimStep::NotOwned { holder } => {
                let holder = holder.clone();
                self.status
                    .update(|s| {
                        s.ownership = Some(Ownership::NotOwned);
                        s.claimed_by = Some(holder.clone());
                    })
                    .await?;
                not_ready(
                    self.status,
                    self.events,
                    "ClaimedByOther",
                    format!(
                        "Asset {} is claimed by {holder}. This resource only observes it and will never change or delete it; deleting this resource leaves the asset as it is",
                        self.asset.id
                    ),
                    true,
                )
                .await?;
                return Ok(Outcome::Requeue(self.ctx.settings.resync));
            }
        }
        self.status
            .update(|s| {
                s.ownership = Some(ownership);
                s.claimed_by = None;
            })
            .await?;
        Ok(Outcome::Continue)
    }

    /// Applies the first declared field that differs. Asset and property updates put the asset
    /// in UPDATING (polled); tags change at once.
    pub(super) async fn fields(&self) -> Result<Outcome> {
        let before = self.status.snapshot();
        let manage_tags = !self.obj.spec.tags.is_empty() || !before.managed_tag_keys.is_empty();
        let tags = if manage_tags {
            Some(self.read_tags().await?)
        } else {
            None
        };
        let changes = match plan::changes(
            &Desired::of(self.obj),
            self.asset,
            tags.as_ref(),
            &before.managed_tag_keys,
        ) {
            Ok(changes) => changes,
            Err(unsatisfiable) => {
                let message = unsatisfiable.to_string();
                not_ready(
                    self.status,
                    self.events,
                    "SpecNotSatisfiable",
                    message,
                    true,
                )
                .await?;
                return Ok(Outcome::Requeue(self.ctx.settings.resync));
            }
        };
        // The spec was already applied at this generation: anything that differs now was
        // changed outside Kubernetes.
        let drift = before.observed_generation == self.status.generation();
        let reason = if drift {
            "DriftCorrected"
        } else {
            "AssetUpdated"
        };
        let version = &self.asset.last_update;
        for change in changes {
            ensure_leader(self.ctx)?;
            let id = &self.asset.id;
            match change {
                Change::Asset { update, what } => {
                    let client_token = token::update_asset(self.uid, id, version, &what);
                    self.ctx
                        .sitewise
                        .update_asset(id, &update, &client_token)
                        .await?;
                    self.changed(reason, &what, &client_token).await;
                    return Ok(Outcome::Requeue(self.ctx.settings.poll_interval));
                }
                Change::Property {
                    property_id,
                    settings,
                    what,
                } => {
                    let client_token =
                        token::update_asset_property(self.uid, id, &property_id, version, &what);
                    self.ctx
                        .sitewise
                        .update_asset_property(id, &property_id, &settings, &client_token)
                        .await?;
                    self.changed(reason, &what, &client_token).await;
                    return Ok(Outcome::Requeue(self.ctx.settings.poll_interval));
                }
                Change::Tag(tags) => {
                    self.ctx
                        .sitewise
                        .tag_resource(&self.asset.arn, &tags)
                        .await?;
                    let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
                    self.changed(reason, &format!("tags {}", keys.join(", ")), "")
                        .await;
                }
                Change::Untag(keys) => {
                    self.ctx
                        .sitewise
                        .untag_resource(&self.asset.arn, &keys)
                        .await?;
                    self.changed(reason, &format!("tags removed {}", keys.join(", ")), "")
                        .await;
                }
            }
        }
        if manage_tags {
            let keys: Vec<String> = self.obj.spec.tags.keys().cloned().collect();
            self.status.update(|s| s.managed_tag_keys = keys).await?;
        }
        Ok(Outcome::Continue)
    }

    async fn changed(&self, reason: &str, what: &str, client_token: &str) {
        let token = if client_token.is_empty() {
            String::new()
        } else {
            format!(" (clientToken {client_token})")
        };
        let note = format!("Asset {}: {what}{token}", self.asset.id);
        tracing::info!(asset_id = %self.asset.id, reason, "{note}");
        self.events.normal(reason, note).await;
    }

    /// Links the asset under its declared parent, moves it, or detaches it when the parent
    /// was removed from the spec. A detach and the association that follows run in one pass.
    pub(super) async fn link(&self) -> Result<Outcome> {
        if self.obj.spec.parent.is_none() && self.status.snapshot().parent_link.is_none() {
            return Ok(Outcome::Continue);
        }
        // The declared parent does not change within a reconcile: resolved once.
        let wanted = match self.wanted_parent().await? {
            Ok(wanted) => wanted,
            Err(delay) => return Ok(Outcome::Requeue(delay)),
        };
        for _ in 0..3 {
            let recorded = self.status.snapshot().parent_link;
            let current =
                match parent_link(&self.ctx.sitewise, &self.asset.id, recorded.as_ref()).await? {
                    None => None,
                    Some(ParentLink::Linked {
                        parent_id,
                        hierarchy_id,
                    }) => Some(Link {
                        parent_id,
                        hierarchy_id,
                    }),
                    Some(ParentLink::Unresolved { parent_id }) => {
                        return Err(Error::ObserveAgain {
                            asset_id: self.asset.id.clone(),
                            detail: format!("no hierarchy of parent {parent_id} lists the asset"),
                        });
                    }
                };
            match plan::link(wanted.as_ref(), current.as_ref(), recorded.as_ref()) {
                LinkStep::Unmanaged => return Ok(Outcome::Continue),
                LinkStep::InPlace => {
                    if let Some(wanted) = wanted {
                        self.record_link(&wanted, true, recorded.map(|r| r.round).unwrap_or(0))
                            .await?;
                    }
                    return Ok(Outcome::Continue);
                }
                LinkStep::Forget => {
                    self.status.update(|s| s.parent_link = None).await?;
                }
                LinkStep::Associate { link, round } => {
                    return self.associate(&link, round).await;
                }
                LinkStep::Detach { link, round } => {
                    let client_token = token::detach_to_move(
                        self.uid,
                        &link.parent_id,
                        &link.hierarchy_id,
                        &self.asset.id,
                        round,
                    );
                    let target = (
                        link.parent_id.as_str(),
                        link.hierarchy_id.as_str(),
                        self.asset.id.as_str(),
                    );
                    disassociate(self.ctx, &client_token, target).await?;
                    if wanted.is_none() {
                        self.status.update(|s| s.parent_link = None).await?;
                    }
                    self.events
                        .normal(
                            "DetachedFromParent",
                            format!(
                                "Detached from parent asset {} (hierarchy {}), which the spec no longer names (clientToken {client_token})",
                                link.parent_id, link.hierarchy_id
                            ),
                        )
                        .await;
                }
            }
        }
        Err(Error::ObserveAgain {
            asset_id: self.asset.id.clone(),
            detail: "the parent link kept changing".into(),
        })
    }

    async fn associate(&self, link: &Link, round: u32) -> Result<Outcome> {
        // Recorded before the call, so a restart retries this attempt with the same token.
        self.record_link(link, false, round).await?;
        let client_token = token::associate_assets(
            self.uid,
            &link.parent_id,
            &link.hierarchy_id,
            &self.asset.id,
            round,
        );
        ensure_leader(self.ctx)?;
        match self
            .ctx
            .sitewise
            .associate_assets(
                &link.parent_id,
                &link.hierarchy_id,
                &self.asset.id,
                &client_token,
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::InvalidRequest => {
                not_ready(
                    self.status,
                    self.events,
                    "ParentLinkRefused",
                    format!(
                        "SiteWise refused to link the asset under {} (hierarchy {}): {}",
                        link.parent_id, link.hierarchy_id, e.message
                    ),
                    true,
                )
                .await?;
                return Ok(Outcome::Requeue(self.ctx.settings.resync));
            }
            Err(e) => return Err(e.into()),
        }
        self.record_link(link, true, round).await?;
        tracing::info!(asset_id = %self.asset.id, parent_id = %link.parent_id, client_token = %client_token, "asset linked");
        self.events
            .normal(
                "LinkedToParent",
                format!(
                    "Linked under parent asset {} (hierarchy {}; clientToken {client_token})",
                    link.parent_id, link.hierarchy_id
                ),
            )
            .await;
        Ok(Outcome::Continue)
    }

    async fn record_link(&self, link: &Link, associated: bool, round: u32) -> Result<()> {
        let record = ParentLinkStatus {
            parent_id: link.parent_id.clone(),
            hierarchy_id: link.hierarchy_id.clone(),
            associated,
            round,
        };
        self.status.update(|s| s.parent_link = Some(record)).await
    }

    /// The declared parent as a link, `Ok(None)` when none is declared, or `Err(delay)` when
    /// the parent cannot be linked under yet (the condition says why).
    async fn wanted_parent(
        &self,
    ) -> Result<std::result::Result<Option<Link>, std::time::Duration>> {
        let Some(parent) = &self.obj.spec.parent else {
            return Ok(Ok(None));
        };
        let settings = &self.ctx.settings;
        let reference = match parent.target() {
            Some(ParentTarget::Resource(name)) => {
                let namespace = self.obj.namespace().unwrap_or_default();
                let found = self.ctx.resources.get(&namespace, name);
                let ready = found.as_ref().and_then(|p| {
                    let status = p.status.as_ref()?;
                    (p.metadata.deletion_timestamp.is_none()
                        && status.state.as_deref() == Some("ACTIVE"))
                    .then(|| status.asset_id.clone())
                    .flatten()
                });
                match (found, ready) {
                    (_, Some(asset_id)) => asset_id,
                    (None, _) => {
                        return self
                            .wait(
                                "WaitingForParent",
                                format!("Waiting for the parent SiteWiseAsset {name} in namespace {namespace}: it does not exist yet"),
                            )
                            .await;
                    }
                    (Some(_), None) => {
                        return self
                            .wait(
                                "WaitingForParent",
                                format!("Waiting for the parent SiteWiseAsset {name} to be ACTIVE"),
                            )
                            .await;
                    }
                }
            }
            Some(ParentTarget::Asset(id)) => id.to_string(),
            None => {
                not_ready(
                    self.status,
                    self.events,
                    "InvalidSpec",
                    "spec.parent needs exactly one of name or assetId".into(),
                    true,
                )
                .await?;
                return Ok(Err(settings.resync));
            }
        };
        let parent_asset = match self.ctx.sitewise.describe_asset(&reference).await {
            Ok(p) => p,
            Err(e) if e.kind == ErrorKind::NotFound => {
                not_ready(
                    self.status,
                    self.events,
                    "ParentNotFound",
                    format!("SiteWise has no parent asset {reference}"),
                    true,
                )
                .await?;
                return Ok(Err(settings.not_found_retry));
            }
            Err(e) => return Err(e.into()),
        };
        if parent_asset.state != AssetState::Active {
            return self
                .wait(
                    "WaitingForParent",
                    format!(
                        "Waiting for the parent asset {} to be ACTIVE (it is {})",
                        parent_asset.id, parent_asset.state
                    ),
                )
                .await;
        }
        let Some(hierarchy) = plan::find_hierarchy(&parent_asset.hierarchies, &parent.hierarchy)
        else {
            let known: Vec<String> = parent_asset
                .hierarchies
                .iter()
                .map(|h| match &h.external_id {
                    Some(ext) => format!("{} (externalId:{ext})", h.name),
                    None => h.name.clone(),
                })
                .collect();
            not_ready(
                self.status,
                self.events,
                "HierarchyNotFound",
                format!(
                    "The parent asset {}'s model has no hierarchy {}; its hierarchies are: {}",
                    parent_asset.id,
                    parent.hierarchy,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
                true,
            )
            .await?;
            return Ok(Err(settings.resync));
        };
        Ok(Ok(Some(Link {
            parent_id: parent_asset.id.clone(),
            hierarchy_id: hierarchy.id.clone(),
        })))
    }

    async fn wait(
        &self,
        reason: &str,
        message: String,
    ) -> Result<std::result::Result<Option<Link>, std::time::Duration>> {
        not_ready(self.status, self.events, reason, message, false).await?;
        Ok(Err(self.ctx.settings.poll_interval))
    }
}
