//! `childPolicy: Cascade`: the descendants that no resource manages are deleted with the asset,
//! depth first; a descendant that has its own resource, or that another resource or cluster
//! claims, is only detached and left to its owner.
//!
//! Crash safety: a descendant's ID is written to `status.deletion.cascade` before it is
//! detached from its parent, so a descendant detached but not yet deleted when the process
//! dies is found again (it is no longer in the tree). Each call carries a deterministic token
//! (the deleting resource's UID and the descendant's ID), so a repeat after a restart is a
//! replay. The resource is released only once every listed descendant is gone.

use std::time::Instant;

use super::super::Context;
use super::super::claim;
use super::super::plan::{ChildLink, ClaimState};
use super::family;
use super::links::{disassociate, ensure_leader};
use crate::controller::status::{Events, StatusWriter};
use crate::error::{Error, Result};
use crate::sitewise::{AssetState, Direction, ErrorKind, SiteWise};
use crate::token;

/// Descendant calls one reconcile makes before it yields its slot.
const CALLS_PER_RECONCILE: usize = 32;

/// What became of the subtree under one child.
pub enum Subtree {
    /// The child is detached from the asset (and deleted, when it was the cascade's to delete).
    Done,
    /// The budget of this reconcile is spent: come back.
    Yield,
}

/// Whether a resource in the cache owns `asset_id`.
fn managed<S>(ctx: &Context<S>, asset_id: &str) -> bool {
    family::owner_of(&ctx.resources.all(), asset_id).is_some()
}

/// Whether `child` of the deleted asset is the cascade's to delete (no resource manages it).
pub fn takes<S>(ctx: &Context<S>, child: &ChildLink) -> bool {
    !managed(ctx, &child.child_id)
}

/// One step down a subtree: the link to the node, from its parent.
struct Frame {
    parent: String,
    hierarchy: String,
    node: String,
    children_pushed: bool,
}

pub struct Cascade<'a, S> {
    pub ctx: &'a Context<S>,
    pub status: &'a StatusWriter,
    pub events: &'a Events,
    pub uid: &'a str,
    pub round: u32,
    /// Descendant calls made in this reconcile.
    pub calls: usize,
    /// Descendants whose DeleteAsset SiteWise accepted in this reconcile.
    pub deleted: usize,
}

impl<S: SiteWise> Cascade<'_, S> {
    /// Checks the descendants recorded by earlier passes: gone ones leave the list; one
    /// detached but not deleted (a crash between the two) is deleted now. Returns how many are
    /// still being deleted by SiteWise.
    pub async fn confirm_recorded(&mut self) -> Result<usize> {
        let recorded = self.recorded();
        let mut pending = Vec::new();
        for id in &recorded {
            match self.ctx.sitewise.describe_asset(id).await {
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Ok(asset) if asset.state == AssetState::Deleting => pending.push(id.clone()),
                Ok(asset) => {
                    let parents = self
                        .ctx
                        .sitewise
                        .list_associated_assets(id, Direction::Parent, None)
                        .await?;
                    if parents.is_empty() {
                        self.delete(&asset.id).await?;
                    }
                    pending.push(id.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        if pending != recorded {
            self.status
                .update(|s| {
                    if let Some(deletion) = s.deletion.as_mut() {
                        deletion.cascade = pending.clone();
                    }
                })
                .await?;
        }
        Ok(pending.len())
    }

    /// Deletes the subtree under `child` of `asset_id` depth first, then detaches and deletes
    /// `child` itself.
    pub async fn subtree(&mut self, asset_id: &str, child: &ChildLink) -> Result<Subtree> {
        let mut stack = vec![Frame {
            parent: asset_id.to_string(),
            hierarchy: child.hierarchy_id.clone(),
            node: child.child_id.clone(),
            children_pushed: false,
        }];
        while let Some(frame) = stack.last_mut() {
            if self.calls >= CALLS_PER_RECONCILE {
                return Ok(Subtree::Yield);
            }
            let node = frame.node.clone();
            let asset = match self.ctx.sitewise.describe_asset(&node).await {
                Ok(asset) => asset,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    stack.pop();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.calls += 1;
            if asset.state == AssetState::Deleting {
                stack.pop();
                continue;
            }
            if !asset.state.is_stable() {
                return Err(Error::AssetBusy {
                    asset_id: node,
                    state: asset.state.to_string(),
                });
            }
            let keep = managed(self.ctx, &node) || self.claimed_by_another(&asset.arn).await?;
            if keep {
                let (parent, hierarchy) = (frame.parent.clone(), frame.hierarchy.clone());
                self.detach(&parent, &hierarchy, &node).await?;
                self.events
                    .normal(
                        "DescendantDetached",
                        format!("Descendant asset {node} has an owner of its own: detached from {parent} and left in place"),
                    )
                    .await;
                stack.pop();
                continue;
            }
            if !frame.children_pushed {
                frame.children_pushed = true;
                let mut below = Vec::new();
                for hierarchy_id in asset.hierarchy_ids() {
                    for grandchild in self
                        .ctx
                        .sitewise
                        .list_associated_assets(&node, Direction::Child, Some(hierarchy_id))
                        .await?
                    {
                        below.push(Frame {
                            parent: node.clone(),
                            hierarchy: hierarchy_id.to_string(),
                            node: grandchild.id,
                            children_pushed: false,
                        });
                    }
                    self.calls += 1;
                }
                if !below.is_empty() {
                    stack.extend(below);
                    continue;
                }
            }
            // Every child of the node is gone or detached: record it, detach it, delete it.
            let (parent, hierarchy) = (frame.parent.clone(), frame.hierarchy.clone());
            self.record(&node).await?;
            self.detach(&parent, &hierarchy, &node).await?;
            self.delete(&node).await?;
            stack.pop();
        }
        Ok(Subtree::Done)
    }

    async fn claimed_by_another(&mut self, arn: &str) -> Result<bool> {
        let tags = self.ctx.sitewise.list_tags(arn).await?;
        self.calls += 1;
        let claim = claim::claim_state(&tags, &self.ctx.cluster_id, self.uid);
        Ok(matches!(claim, ClaimState::Other { .. }))
    }

    fn recorded(&self) -> Vec<String> {
        self.status
            .snapshot()
            .deletion
            .map(|d| d.cascade)
            .unwrap_or_default()
    }

    /// Writes the descendant's ID before it is detached (see the module doc).
    async fn record(&self, node: &str) -> Result<()> {
        if self.recorded().iter().any(|id| id == node) {
            return Ok(());
        }
        self.status
            .update(|s| {
                let deletion = s.deletion.get_or_insert_default();
                deletion.cascade.push(node.to_string());
            })
            .await
    }

    async fn detach(&mut self, parent: &str, hierarchy: &str, node: &str) -> Result<()> {
        let token = token::disassociate_assets(self.uid, parent, hierarchy, node, self.round);
        disassociate(self.ctx, &token, (parent, hierarchy, node)).await?;
        self.ctx.deletions.link_removed(node, Instant::now());
        self.calls += 1;
        Ok(())
    }

    async fn delete(&mut self, node: &str) -> Result<()> {
        let token = token::delete_asset(self.uid, node, 0);
        ensure_leader(self.ctx)?;
        match self.ctx.sitewise.delete_asset(node, &token).await {
            Ok(_) => {
                self.calls += 1;
                self.deleted += 1;
                tracing::info!(asset_id = node, client_token = %token, "descendant DeleteAsset accepted");
                Ok(())
            }
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
