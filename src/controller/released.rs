//! Resources whose finalizer this process removed. Removing the finalizer is the last write to
//! a resource being deleted, but the release's own status write is a watch event that schedules
//! one more reconcile, and the cache may still show the finalizer then: without this record
//! that reconcile would run the cleanup again, announce the asset "already gone" after
//! "deleted", and fail to remove a finalizer that is no longer there. Entries expire: a UID is
//! never reused, and the object is gone within moments.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a release is remembered.
const KEEP: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub struct Released {
    at: Mutex<HashMap<String, Instant>>,
}

impl Released {
    pub fn mark(&self, uid: &str, now: Instant) {
        let mut at = self.lock();
        at.retain(|_, t| now.saturating_duration_since(*t) < KEEP);
        at.insert(uid.to_string(), now);
    }

    pub fn contains(&self, uid: &str, now: Instant) -> bool {
        self.lock()
            .get(uid)
            .is_some_and(|t| now.saturating_duration_since(*t) < KEEP)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_remembered_for_a_while_then_forgotten() {
        let released = Released::default();
        let t0 = Instant::now();
        assert!(!released.contains("u1", t0));
        released.mark("u1", t0);
        assert!(released.contains("u1", t0 + Duration::from_secs(5)));
        assert!(!released.contains("u2", t0));
        assert!(!released.contains("u1", t0 + KEEP));
        // Marking prunes what expired.
        released.mark("u2", t0 + KEEP);
        assert_eq!(released.lock().len(), 1);
    }
}
