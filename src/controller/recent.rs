//! Keys this process remembers for a while: what it did that the watch cache may not show yet.
//! Two uses: the resources whose finalizer it removed (see `Context::released`), and the assets
//! whose parent link its deletions removed (see `DeletionMemory`). Entries expire: the keys
//! (resource UIDs, asset IDs) are never reused, and the cache catches up within moments.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub struct RecentKeys {
    at: Mutex<HashMap<String, Instant>>,
}

impl RecentKeys {
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
    fn keys_are_remembered_for_a_while_then_forgotten() {
        let released = RecentKeys::default();
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
