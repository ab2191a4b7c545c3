//! Request-rate quotas as token buckets, one per operation group, refilled continuously at the
//! group's rate with a burst of one second's worth. Going over answers ThrottlingException.

use std::time::Instant;

use crate::config::Quotas;
use crate::ops::Op;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Asset,
    Model,
    DescribeAsset,
}

impl Group {
    pub fn of(op: Op) -> Self {
        match op {
            Op::DescribeAsset => Self::DescribeAsset,
            Op::CreateAssetModel
            | Op::DescribeAssetModel
            | Op::DeleteAssetModel
            | Op::UpdateAssetModel => Self::Model,
            _ => Self::Asset,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: std::collections::HashMap<Group, Bucket>,
}

impl RateLimiter {
    /// Takes one token for `op`; false when the group is over its rate.
    pub fn try_acquire(&mut self, quotas: &Quotas, op: Op, now: Instant) -> bool {
        if !quotas.enabled {
            return true;
        }
        let group = Group::of(op);
        let rate = match group {
            Group::Asset => quotas.asset_tps,
            Group::Model => quotas.model_tps,
            Group::DescribeAsset => quotas.describe_asset_tps,
        };
        if rate <= 0.0 {
            return true;
        }
        let bucket = self.buckets.entry(group).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate.max(1.0));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn reset(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_over_the_rate_is_throttled_and_refills() {
        let quotas = Quotas {
            asset_tps: 5.0,
            ..Quotas::default()
        };
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        let granted = (0..8)
            .filter(|_| limiter.try_acquire(&quotas, Op::DeleteAsset, t0))
            .count();
        assert_eq!(granted, 5);
        // DescribeAsset has its own bucket.
        assert!(limiter.try_acquire(&quotas, Op::DescribeAsset, t0));
        assert!(limiter.try_acquire(&quotas, Op::DeleteAsset, t0 + Duration::from_millis(200)));
        assert!(!limiter.try_acquire(&quotas, Op::DeleteAsset, t0 + Duration::from_millis(200)));
    }

    #[test]
    fn disabled_quotas_never_throttle() {
        let quotas = Quotas {
            enabled: false,
            asset_tps: 1.0,
            ..Quotas::default()
        };
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        assert!((0..100).all(|_| limiter.try_acquire(&quotas, Op::ListAssets, now)));
    }
}
