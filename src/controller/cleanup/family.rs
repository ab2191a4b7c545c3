//! What the watch cache says about an asset's children while the asset is deleted: which
//! children remove their link themselves (their own resources are being deleted), which have
//! already done so, and which the parent must disassociate. In a prune, each link is then
//! removed once, by the child, instead of by both sides racing for it.
//!
//! The cache only ever saves calls, never decides safety: SiteWise refuses DeleteAsset while a
//! link remains, and that refusal sends the deletion back to reading the links from SiteWise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::plan::{ChildLink, Links};
use crate::crd::{DeletionPhase, DeletionPolicy, SiteWiseAsset};

/// How long a parent waits for children that should detach themselves before it removes the
/// links itself (a child stuck on an error must not hold its parent for ever).
pub const CHILD_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// How long after its own deletion started a parent leaves live children alone: a prune
/// (`kubectl delete -f`, a GitOps prune, a namespace teardown) marks its resources for
/// deletion one after the other over seconds, and a child marked after its parent's first
/// look detaches itself. A child still live after that is detached by the parent.
pub const PRUNE_GRACE: Duration = Duration::from_secs(10);

/// How long after the latest deletion mark in a namespace a prune there counts as still
/// marking. The API server marks a collection one object at a time, about a hundred a second
/// when it is busy, so a prune of thousands of resources outlasts [`PRUNE_GRACE`]; while it
/// goes on, a live child in that namespace may still be about to join it.
pub const MARKING_GAP: Duration = Duration::from_secs(5);

/// Whether a resource of `namespace` was marked for deletion within [`MARKING_GAP`] of `now`.
pub fn still_marking(
    resources: &[Arc<SiteWiseAsset>],
    namespace: Option<&str>,
    now: jiff::Timestamp,
) -> bool {
    resources
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == namespace)
        .filter_map(|r| r.metadata.deletion_timestamp.as_ref())
        .any(|t| now.duration_since(t.0).unsigned_abs() < MARKING_GAP)
}

/// Whether `parent`'s deletion is recent enough for its live children to be joining it.
pub fn in_prune_grace(parent: &SiteWiseAsset) -> bool {
    parent
        .metadata
        .deletion_timestamp
        .as_ref()
        .is_some_and(|t| {
            let age = jiff::Timestamp::now().duration_since(t.0);
            age.is_negative() || age.unsigned_abs() < PRUNE_GRACE
        })
}

/// What happens to one child link during the parent's deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildFate {
    /// The child's resource is being deleted and will remove the link itself.
    DetachesItself,
    /// The child's resource has removed the link (its deletion is past detaching).
    Detached,
    /// The child's resource is live: it stays, and the parent detaches it (after
    /// [`PRUNE_GRACE`], in case it is being pruned too).
    Live,
    /// Nobody else will remove the link: the parent disassociates it.
    ParentDetaches,
}

/// The resource that owns asset `child_id`, if the cache has one.
pub(super) fn owner_of<'a>(
    resources: &'a [Arc<SiteWiseAsset>],
    child_id: &str,
) -> Option<&'a SiteWiseAsset> {
    resources
        .iter()
        .map(Arc::as_ref)
        .find(|r| r.holds(child_id))
}

/// A linked child for people: its asset ID and hierarchy, and the resource that owns it.
pub fn describe_child(resources: &[Arc<SiteWiseAsset>], child: &ChildLink) -> String {
    let owner = owner_of(resources, &child.child_id).map(|r| {
        format!(
            " (SiteWiseAsset {}/{})",
            r.metadata.namespace.as_deref().unwrap_or_default(),
            r.metadata.name.as_deref().unwrap_or_default()
        )
    });
    format!(
        "asset {} in hierarchy {}{}",
        child.child_id,
        child.hierarchy_id,
        owner.unwrap_or_default()
    )
}

/// The fate of a link to `parent_id` according to the child's resource (`None`: no resource
/// owns the child).
fn fate(child: Option<&SiteWiseAsset>, parent_id: &str) -> ChildFate {
    let Some(child) = child else {
        return ChildFate::ParentDetaches;
    };
    let Some(status) = child.status.as_ref() else {
        return ChildFate::ParentDetaches;
    };
    let phase = status.deletion.as_ref().map(|d| d.phase);
    if matches!(
        phase,
        Some(
            DeletionPhase::DeleteRequested | DeletionPhase::AwaitingDeletion | DeletionPhase::Done
        )
    ) {
        return ChildFate::Detached;
    }
    let deleting = child.metadata.deletion_timestamp.is_some()
        && child.spec.deletion_policy == DeletionPolicy::Delete
        && child.force_orphan_reason().is_none();
    let failing = status
        .conditions
        .iter()
        .any(|c| c.type_ == crate::controller::status::TERMINAL && c.status == "True");
    // The child finds this parent either from the link it recorded or by probing.
    let knows_the_link = status
        .parent_link
        .as_ref()
        .is_none_or(|l| l.parent_id == parent_id);
    if child.metadata.deletion_timestamp.is_none() {
        ChildFate::Live
    } else if deleting && !failing && knows_the_link {
        ChildFate::DetachesItself
    } else {
        ChildFate::ParentDetaches
    }
}

/// The children of `parent_id` that resources in the cache record as linked to it, for a
/// deletion that starts from what status knows. Children no resource manages are not known
/// here: SiteWise's refusal of DeleteAsset reveals them.
pub fn known_children(resources: &[Arc<SiteWiseAsset>], parent_id: &str) -> Vec<ChildLink> {
    let mut children: Vec<ChildLink> = resources
        .iter()
        .filter(|r| r.holds_its_asset())
        .filter_map(|r| {
            let status = r.status.as_ref()?;
            let link = status.parent_link.as_ref()?;
            let child_id = status.asset_id.clone()?;
            (link.parent_id == parent_id && link.associated).then(|| ChildLink {
                hierarchy_id: link.hierarchy_id.clone(),
                child_id,
            })
        })
        .collect();
    children.sort_by(|a, b| a.child_id.cmp(&b.child_id));
    children
}

/// Sorts `links` children by fate: links the parent must remove go to `children`, links
/// their children remove to `awaiting`, links already removed are dropped (a child's status
/// says so only after its DisassociateAssets succeeded; a SiteWise listing read just before
/// that is older news). After [`CHILD_WAIT_LIMIT`] of waiting (`waiting_since`), the parent
/// removes the remaining links itself. Live children are waited for while `in_grace` (see
/// [`PRUNE_GRACE`]) or while their namespace is still being marked ([`still_marking`]), up to
/// the same limit. `removed_here` names the children whose deletion in this process removed
/// the link (known before the watch delivers their status).
pub fn sort_children(
    resources: &[Arc<SiteWiseAsset>],
    parent_id: &str,
    links: &mut Links,
    removed_here: &dyn Fn(&str) -> bool,
    in_grace: bool,
    waiting_since: Option<Instant>,
    now: Instant,
) {
    let waited_too_long =
        waiting_since.is_some_and(|since| now.saturating_duration_since(since) >= CHILD_WAIT_LIMIT);
    let candidates: Vec<ChildLink> = links
        .children
        .drain(..)
        .chain(links.awaiting.drain(..))
        .collect();
    // A parent with many live children asks the same question of each child's namespace.
    let mut marking: HashMap<Option<&str>, bool> = HashMap::new();
    let stamp = jiff::Timestamp::now();
    for child in candidates {
        if removed_here(&child.child_id) {
            continue;
        }
        let owner = owner_of(resources, &child.child_id);
        let joining = |marking: &mut HashMap<_, _>| {
            owner.is_some_and(|owner| {
                let namespace = owner.metadata.namespace.as_deref();
                *marking
                    .entry(namespace)
                    .or_insert_with(|| still_marking(resources, namespace, stamp))
            })
        };
        match fate(owner, parent_id) {
            ChildFate::DetachesItself if !waited_too_long => links.awaiting.push(child),
            ChildFate::Live if in_grace => links.awaiting.push(child),
            // A live child whose namespace is still being marked may be joining its prune.
            ChildFate::Live if !waited_too_long && joining(&mut marking) => {
                links.awaiting.push(child)
            }
            ChildFate::Detached => {}
            _ => links.children.push(child),
        }
    }
}

#[cfg(test)]
mod tests;
