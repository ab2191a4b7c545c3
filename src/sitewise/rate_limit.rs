//! Client-side rate limits shared by every reconcile (governor token buckets), so the
//! operator stays under the account's SiteWise request quotas instead of finding them through
//! ThrottlingException: asset operations share one bucket (the published quota is 30 TPS per
//! account and region, shared with every other client of the account), DescribeAsset has its
//! own (100 TPS). Calls wait for a token; nothing is dropped. Tag calls count against the asset
//! bucket, as SiteWise counts them.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use std::future::Future;

use super::{Decorate, Operation, SiteWise, SiteWiseResult};

/// Requests per second allowed to each bucket; `None` switches a bucket off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    pub asset_operations: Option<NonZeroU32>,
    pub describe_asset: Option<NonZeroU32>,
}

pub struct RateLimited<S> {
    inner: S,
    asset_operations: Option<DefaultDirectRateLimiter>,
    describe_asset: Option<DefaultDirectRateLimiter>,
}

impl<S> RateLimited<S> {
    pub fn new(inner: S, rates: Rates) -> Self {
        // Burst of one: calls are spread evenly rather than sent in a burst at each second.
        let limiter = |rate: Option<NonZeroU32>| {
            rate.map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(NonZeroU32::MIN)))
        };
        Self {
            inner,
            asset_operations: limiter(rates.asset_operations),
            describe_asset: limiter(rates.describe_asset),
        }
    }
}

async fn take(limiter: &Option<DefaultDirectRateLimiter>) {
    if let Some(limiter) = limiter {
        limiter.until_ready().await;
    }
}

impl<S: SiteWise> Decorate for RateLimited<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn around<T: Send>(
        &self,
        operation: Operation,
        call: impl Future<Output = SiteWiseResult<T>> + Send,
    ) -> SiteWiseResult<T> {
        match operation {
            Operation::DescribeAsset => take(&self.describe_asset).await,
            _ => take(&self.asset_operations).await,
        }
        call.await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sitewise::Direction;
    use crate::sitewise::fake::FakeSiteWise;

    #[tokio::test]
    async fn calls_are_spread_to_the_configured_rate() {
        let fake = FakeSiteWise::new();
        fake.add_asset("a", None, &[]);
        let limited = RateLimited::new(
            fake.clone(),
            Rates {
                asset_operations: NonZeroU32::new(20),
                describe_asset: None,
            },
        );
        let started = Instant::now();
        for _ in 0..11 {
            let _ = limited
                .list_associated_assets("a", Direction::Child, None)
                .await;
        }
        // 11 calls at 20/s with a burst of one need at least 10 intervals of 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
        // Describe has no limit here.
        let started = Instant::now();
        for _ in 0..50 {
            let _ = limited.describe_asset("a").await;
        }
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(
            fake.calls(crate::sitewise::Operation::ListAssociatedAssets),
            11
        );
    }
}
