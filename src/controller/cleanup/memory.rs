//! What a deletion learned in earlier passes and may use again in this process: the asset's
//! links, and that its claim is this resource's. Under sustained faults most passes fail at
//! some call, and re-reading everything on each retry multiplies the calls against the asset
//! quota. Both are safe to reuse: SiteWise refuses DeleteAsset while any link remains (which
//! sends the flow back to a fresh read), a link found already gone counts as removed, and a
//! claim is re-read once it is older than [`CLAIM_FRESH`].
//!
//! Two more facts are kept for passes that start from a watch cache lagging behind this
//! process: the parent links its deletions removed (a parent waiting for its children sees
//! them at once) and the deletion progress it last wrote (a pass never steps back).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::plan::Links;
use super::super::recent::RecentKeys;

/// How long a claim read counts as current.
pub const CLAIM_FRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct DeletionMemory {
    /// Per resource UID: the asset, its links as last known, and when the claim was read.
    known: Mutex<HashMap<String, Known>>,
    /// Assets whose parent link a deletion in this process removed: their parents need not
    /// wait for the watch to deliver the child's status (or count a released child as one to
    /// detach). Kept for [`crate::controller::recent::KEEP`], longer than any parent waits for its children.
    detached: RecentKeys,
    /// Per resource UID: the deletion progress this process last wrote, for passes that start
    /// from a watch cache that has not caught up with it yet.
    progress: Mutex<HashMap<String, crate::crd::DeletionProgress>>,
}

#[derive(Debug, Default, Clone)]
struct Known {
    asset_id: String,
    links: Option<Links>,
    claim_read: Option<Instant>,
    /// When the deletion started waiting for children that detach themselves.
    waiting_since: Option<Instant>,
}

impl DeletionMemory {
    fn with<T>(&self, uid: &str, asset_id: &str, f: impl FnOnce(&mut Known) -> T) -> T {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let entry = known.entry(uid.to_string()).or_default();
        if entry.asset_id != asset_id {
            *entry = Known {
                asset_id: asset_id.to_string(),
                ..Known::default()
            };
        }
        f(entry)
    }

    pub fn links(&self, uid: &str, asset_id: &str) -> Option<Links> {
        self.with(uid, asset_id, |k| k.links.clone())
    }

    pub fn set_links(&self, uid: &str, asset_id: &str, links: Option<Links>) {
        self.with(uid, asset_id, |k| k.links = links);
    }

    pub fn claim_is_fresh(&self, uid: &str, asset_id: &str, now: Instant) -> bool {
        self.with(uid, asset_id, |k| {
            k.claim_read
                .is_some_and(|t| now.saturating_duration_since(t) < CLAIM_FRESH)
        })
    }

    pub fn claim_confirmed(&self, uid: &str, asset_id: &str, now: Instant) {
        self.with(uid, asset_id, |k| k.claim_read = Some(now));
    }

    /// When this deletion first waited for its children; `now` if it starts waiting now.
    pub fn waiting_since(&self, uid: &str, asset_id: &str, now: Instant) -> Instant {
        self.with(uid, asset_id, |k| *k.waiting_since.get_or_insert(now))
    }

    /// When this deletion first waited for its children, if it has.
    pub fn waited_since(&self, uid: &str, asset_id: &str) -> Option<Instant> {
        self.with(uid, asset_id, |k| k.waiting_since)
    }

    pub fn link_removed(&self, child_asset_id: &str, now: Instant) {
        self.detached.mark(child_asset_id, now);
    }

    pub fn was_link_removed(&self, child_asset_id: &str, now: Instant) -> bool {
        self.detached.contains(child_asset_id, now)
    }

    pub fn wrote_progress(&self, uid: &str, progress: crate::crd::DeletionProgress) {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_string(), progress);
    }

    pub fn written_progress(&self, uid: &str) -> Option<crate::crd::DeletionProgress> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    pub fn forget(&self, uid: &str) {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::plan::ChildLink;
    use crate::controller::recent::KEEP;

    #[test]
    fn links_and_claims_are_kept_per_resource_and_asset() {
        let memory = DeletionMemory::default();
        let t0 = Instant::now();
        let links = Links {
            children: vec![ChildLink {
                hierarchy_id: "h".into(),
                child_id: "c".into(),
            }],
            awaiting: Vec::new(),
            parent: None,
        };
        memory.set_links("u1", "a1", Some(links.clone()));
        memory.claim_confirmed("u1", "a1", t0);
        assert_eq!(memory.links("u1", "a1"), Some(links));
        assert!(memory.claim_is_fresh("u1", "a1", t0 + Duration::from_secs(5)));
        assert!(!memory.claim_is_fresh("u1", "a1", t0 + CLAIM_FRESH));
        // Another asset under the same resource (never expected) starts from nothing.
        assert_eq!(memory.links("u1", "a2"), None);
        assert_eq!(memory.links("u1", "a1"), None);
        assert_eq!(memory.waited_since("u1", "a1"), None);
        assert_eq!(memory.waiting_since("u1", "a1", t0), t0);
        let later = t0 + Duration::from_secs(9);
        assert_eq!(
            memory.waiting_since("u1", "a1", later),
            t0,
            "the first wait counts"
        );
        memory.link_removed("c", t0);
        assert!(memory.was_link_removed("c", t0));
        assert!(
            !memory.was_link_removed("c", t0 + KEEP),
            "forgotten after {KEEP:?}"
        );
        memory.set_links("u2", "a3", Some(Links::default()));
        memory.forget("u2");
        assert_eq!(memory.links("u2", "a3"), None);
    }
}
