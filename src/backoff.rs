//! Per-resource retry delays. kube-runtime's `error_policy` is stateless, so the failure count
//! of each resource (keyed by UID) lives here, grows with each failure and is reset by the
//! first successful reconcile.
//!
//! Delay after the n-th consecutive failure: a uniformly random point between `base` and
//! `min(max, base * 2^(n-1))` ("full jitter" with a floor at `base`, so no retry ever comes
//! sooner than `base` and many resources throttled together spread out instead of retrying in
//! lock-step).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// Bounds of an exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl BackoffPolicy {
    /// Upper bound of the delay after `failures` consecutive failures (`failures >= 1`).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        self.base
            .saturating_mul(factor)
            .min(self.max)
            .max(self.base)
    }

    /// A jittered delay in `[base, ceiling(failures)]`.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failures);
        let floor = self.base.min(ceiling);
        if ceiling <= floor {
            return floor;
        }
        let span = (ceiling - floor).as_millis() as u64;
        floor + Duration::from_millis(rng.random_range(0..=span))
    }
}

/// `d` moved by up to ±20 %, so periodic work of many resources does not line up.
pub fn jittered(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    let spread = ms / 5;
    if spread == 0 {
        return d;
    }
    Duration::from_millis(ms - spread + rand::rng().random_range(0..=2 * spread))
}

/// Consecutive failure counts per resource.
#[derive(Debug, Default)]
pub struct FailureCounts {
    /// Per key: consecutive failures, and the step the last one happened at.
    counts: Mutex<HashMap<String, (u32, String)>>,
}

impl FailureCounts {
    /// Records one more failure of `key` and returns the new count.
    pub fn record_failure(&self, key: &str) -> u32 {
        self.record_failure_at(key, "")
    }

    /// Records a failure of `key` at `step` (the call that failed, where) and returns the
    /// count. Only the same step failing again counts as consecutive: a call that keeps being
    /// refused backs off exponentially, while faults that hit a different call each time (a
    /// busy account, random errors) do not compound into minutes of backoff for a resource
    /// that is making its way through its steps.
    pub fn record_failure_at(&self, key: &str, step: &str) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts.entry(key.to_string()).or_insert((0, String::new()));
        if entry.1 == step {
            entry.0 = entry.0.saturating_add(1);
        } else {
            *entry = (1, step.to_string());
        }
        entry.0
    }

    pub fn reset(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub fn get(&self, key: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map(|(n, _)| *n)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const POLICY: BackoffPolicy = BackoffPolicy {
        base: Duration::from_secs(2),
        max: Duration::from_secs(300),
    };

    #[test]
    fn ceiling_doubles_from_base_up_to_max() {
        let ceilings: Vec<u64> = (1..=10).map(|n| POLICY.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(POLICY.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn delays_stay_within_bounds_and_spread_out() {
        let mut rng = StdRng::seed_from_u64(7);
        for failures in 1..=12 {
            let delays: Vec<Duration> =
                (0..200).map(|_| POLICY.delay(failures, &mut rng)).collect();
            for d in &delays {
                assert!(*d >= POLICY.base && *d <= POLICY.ceiling(failures), "{d:?}");
            }
            if failures >= 3 {
                let distinct: std::collections::HashSet<_> = delays.iter().collect();
                assert!(distinct.len() > 100, "jitter must spread retries");
            }
        }
    }

    #[test]
    fn counts_grow_per_key_and_reset_on_success() {
        let counts = FailureCounts::default();
        assert_eq!(counts.record_failure("a"), 1);
        assert_eq!(counts.record_failure("a"), 2);
        assert_eq!(counts.record_failure("b"), 1);
        counts.reset("a");
        assert_eq!(counts.get("a"), 0);
        assert_eq!(counts.get("b"), 1);
    }

    #[test]
    fn only_the_same_step_failing_again_is_consecutive() {
        let counts = FailureCounts::default();
        assert_eq!(counts.record_failure_at("a", "DeleteAsset"), 1);
        assert_eq!(counts.record_failure_at("a", "DeleteAsset"), 2);
        assert_eq!(counts.record_failure_at("a", "DeleteAsset"), 3);
        // Another call failing starts over.
        assert_eq!(counts.record_failure_at("a", "ListAssociatedAssets"), 1);
        assert_eq!(counts.record_failure_at("a", "DescribeAsset"), 1);
        assert_eq!(counts.record_failure_at("a", "DescribeAsset"), 2);
        assert_eq!(counts.record_failure_at("b", "DescribeAsset"), 1);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12));
        }
    }
}
