//! Reading and removing an asset's links: its children under every hierarchy, its parent (by
//! the link recorded in status when there is one, by probing the parent's hierarchies
//! otherwise), and the fenced DisassociateAssets that tolerates a link already gone.

use super::super::Context;
use super::super::plan::{ChildLink, Links, ParentLink};
use crate::crd::ParentLinkStatus;
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, Direction, ErrorKind, SiteWise, SiteWiseError};

/// Children under every hierarchy of the asset, and the parent with the linking hierarchy.
pub async fn read_links<S: SiteWise>(
    sitewise: &S,
    asset: &AssetDescription,
    recorded: Option<&ParentLinkStatus>,
) -> Result<Links> {
    let mut children = Vec::new();
    for hierarchy_id in asset.hierarchy_ids() {
        for child in sitewise
            .list_associated_assets(&asset.id, Direction::Child, Some(hierarchy_id))
            .await?
        {
            children.push(ChildLink {
                hierarchy_id: hierarchy_id.to_string(),
                child_id: child.id,
            });
        }
    }
    let parent = parent_link(sitewise, &asset.id, recorded).await?;
    Ok(Links {
        children,
        awaiting: Vec::new(),
        parent,
    })
}

/// The asset's parent and the hierarchy linking them. The PARENT listing does not say which
/// hierarchy links the two, and two hierarchies may target the same child model; a link the
/// operator recorded when it made it answers that directly, anything else is found by probing
/// each hierarchy of the parent.
pub async fn parent_link<S: SiteWise>(
    sitewise: &S,
    asset_id: &str,
    recorded: Option<&ParentLinkStatus>,
) -> Result<Option<ParentLink>> {
    let parents = sitewise
        .list_associated_assets(asset_id, Direction::Parent, None)
        .await?;
    let Some(parent) = parents.into_iter().next() else {
        return Ok(None);
    };
    if let Some(recorded) = recorded.filter(|r| r.parent_id == parent.id) {
        return Ok(Some(ParentLink::Linked {
            parent_id: parent.id,
            hierarchy_id: recorded.hierarchy_id.clone(),
        }));
    }
    for hierarchy_id in &parent.hierarchy_ids {
        let listed = sitewise
            .list_associated_assets(&parent.id, Direction::Child, Some(hierarchy_id))
            .await?;
        if listed.iter().any(|c| c.id == asset_id) {
            return Ok(Some(ParentLink::Linked {
                parent_id: parent.id,
                hierarchy_id: hierarchy_id.clone(),
            }));
        }
    }
    Ok(Some(ParentLink::Unresolved {
        parent_id: parent.id,
    }))
}

/// `DisassociateAssets(parent, hierarchy, child)` with `token`, fenced; a link that is
/// already gone counts as removed. Logs the removal for the audit trail.
pub async fn disassociate<S: SiteWise>(
    ctx: &Context<S>,
    token: &str,
    (parent_id, hierarchy_id, child_id): (&str, &str, &str),
) -> Result<()> {
    ensure_leader(ctx)?;
    match ctx
        .sitewise
        .disassociate_assets(parent_id, hierarchy_id, child_id, token)
        .await
    {
        Ok(()) => {
            tracing::info!(
                parent_id,
                hierarchy_id,
                child_id,
                client_token = token,
                "asset link removed"
            );
            Ok(())
        }
        Err(err) => ensure_link_gone(ctx, parent_id, hierarchy_id, child_id, err).await,
    }
}

/// A disassociation failed. `ResourceNotFoundException` means the parent, the child or the
/// link does not exist, so the link is gone either way (often the other side's own deletion
/// removed it, in a prune): success, with no further call. `InvalidRequestException` is
/// ambiguous and is checked against a fresh listing. Anything else stands.
async fn ensure_link_gone<S: SiteWise>(
    ctx: &Context<S>,
    parent_id: &str,
    hierarchy_id: &str,
    child_id: &str,
    err: SiteWiseError,
) -> Result<()> {
    match err.kind {
        ErrorKind::NotFound => return Ok(()),
        ErrorKind::InvalidRequest => {}
        _ => return Err(err.into()),
    }
    match ctx
        .sitewise
        .list_associated_assets(parent_id, Direction::Child, Some(hierarchy_id))
        .await
    {
        Ok(children) if children.iter().all(|c| c.id != child_id) => Ok(()),
        Err(list_err) if list_err.kind == ErrorKind::NotFound => Ok(()),
        _ => Err(err.into()),
    }
}

/// Fencing: a replica whose lease may have passed to another sends no mutation.
pub fn ensure_leader<S>(ctx: &Context<S>) -> Result<()> {
    if ctx.fence.is_open() {
        Ok(())
    } else {
        Err(Error::NotLeader)
    }
}
