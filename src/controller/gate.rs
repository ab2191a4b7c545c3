//! The retry gate: keeps a resource's retry delay even when something else triggers it.
//!
//! kube-runtime reconciles on every watch event, and the operator's own status writes
//! (progress, attempts, next retry) are watch events. Without a gate, a throttled resource
//! would be retried at the API server's pace instead of after its backoff, and many
//! resources throttled together would become a storm. After a failure the resource is held
//! until its retry time; a trigger that changes nothing that matters (generation,
//! deletionTimestamp, finalizers, the force-orphan annotation) is answered with the remaining delay and no SiteWise call.
//! A spec change or a deletion passes at once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::ResourceExt;

use crate::crd::SiteWiseAsset;

/// Triggers closer than this to the retry time are let through (timer granularity).
const TOLERANCE: Duration = Duration::from_millis(50);

/// What a trigger must change to pass a held resource.
pub fn trigger_key(obj: &SiteWiseAsset) -> u64 {
    let mut h = DefaultHasher::new();
    obj.metadata.generation.hash(&mut h);
    obj.metadata.deletion_timestamp.is_some().hash(&mut h);
    obj.finalizers().hash(&mut h);
    obj.force_orphan_reason().hash(&mut h);
    h.finish()
}

#[derive(Debug, Default)]
pub struct RetryGate {
    held: Mutex<HashMap<String, (u64, Instant)>>,
}

impl RetryGate {
    /// Holds `uid` until `until`, unless a trigger changes `key`.
    pub fn hold(&self, uid: &str, key: u64, until: Instant) {
        self.lock().insert(uid.to_string(), (key, until));
    }

    pub fn release(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// The time left to wait when a trigger with `key` arrives at `now`, or `None` to proceed.
    pub fn remaining(&self, uid: &str, key: u64, now: Instant) -> Option<Duration> {
        let held = self.lock();
        let (held_key, until) = held.get(uid)?;
        let left = until.saturating_duration_since(now);
        (*held_key == key && left > TOLERANCE).then_some(left)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{DeletionPolicy, SiteWiseAssetSpec};

    fn obj() -> SiteWiseAsset {
        let mut o = SiteWiseAsset::new(
            "a",
            SiteWiseAssetSpec {
                asset_id: Some("externalId:a1".into()),
                deletion_policy: DeletionPolicy::Delete,
                ..Default::default()
            },
        );
        o.metadata.generation = Some(1);
        o
    }

    #[test]
    fn status_only_triggers_wait_for_the_retry_time() {
        let gate = RetryGate::default();
        let now = Instant::now();
        let mut o = obj();
        gate.hold("uid", trigger_key(&o), now + Duration::from_secs(10));
        // A status write changes none of the keyed fields.
        o.status = Some(Default::default());
        let left = gate.remaining("uid", trigger_key(&o), now);
        assert!(left.is_some_and(|d| d > Duration::from_secs(9)));
        // Once the time has come, the scheduled retry proceeds.
        assert_eq!(
            gate.remaining("uid", trigger_key(&o), now + Duration::from_secs(10)),
            None
        );
        assert_eq!(gate.remaining("other", trigger_key(&o), now), None);
    }

    #[test]
    fn spec_changes_deletion_and_finalizers_pass_at_once() {
        let gate = RetryGate::default();
        let now = Instant::now();
        let base = obj();
        gate.hold("uid", trigger_key(&base), now + Duration::from_secs(60));
        let mut changed = base.clone();
        changed.metadata.generation = Some(2);
        assert_eq!(gate.remaining("uid", trigger_key(&changed), now), None);
        let mut deleted = base.clone();
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert_eq!(gate.remaining("uid", trigger_key(&deleted), now), None);
        let mut orphaned = base.clone();
        orphaned.metadata.annotations = Some(
            [(
                crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
                "AWS account closed".to_string(),
            )]
            .into(),
        );
        assert_eq!(gate.remaining("uid", trigger_key(&orphaned), now), None);
        let mut finalized = base.clone();
        finalized.metadata.finalizers = Some(vec!["x".into()]);
        assert_eq!(gate.remaining("uid", trigger_key(&finalized), now), None);
        gate.release("uid");
        assert_eq!(gate.remaining("uid", trigger_key(&base), now), None);
    }
}
