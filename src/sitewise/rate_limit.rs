//! Client-side rates shared by every reconcile, so the operator spends the account's SiteWise
//! quota instead of finding it through ThrottlingException: asset operations share one bucket
//! (the published quota is 30 requests per second per account and region, shared with every
//! other client of the account; tag calls count against it), DescribeAsset has its own (100).
//!
//! Each bucket paces calls evenly at its current rate and adapts it the way TCP shares a link:
//! it starts at the configured quota, cuts the rate by a quarter on a ThrottlingException (at
//! most once per second, since the calls in flight are throttled together), and recovers
//! additively while calls go through. The operator thus runs close to the quota when alone and
//! yields to other clients of the account when it is not. A fixed token bucket (governor)
//! cannot change its rate at run time, hence this small pacer. Calls wait for their slot;
//! nothing is dropped.
//!
//! A cut is a test of whether the throttles come from the rate: if they do, a quarter less
//! rate leaves a much smaller share of calls throttled. Once enough calls went out after a
//! cut, the share they met is compared with what the cut should have left (the capacity the
//! throttles imply, at the new rate); a share closer to the old one means the throttles come
//! whatever the rate (a fault of the account, SiteWise having a bad minute), and the cut is
//! taken back, since pacing slower would only stretch the work.
//!
//! A quota is a token bucket, and AWS does not publish SiteWise's burst: the pacer banks up to
//! half a second of unused rate (half what the emulator allows) and spends it at once when work
//! arrives after a quiet spell, e.g. the first second of a prune. An account whose bucket
//! holds less throttles those early calls; that is not a sign of contention, so it does not
//! cut the rate but switches banking off for the life of the process.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Decorate, ErrorKind, Operation, SiteWise, SiteWiseResult};

/// Requests per second allowed to each bucket (the account's quotas); `None` switches a bucket
/// off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    pub asset_operations: Option<NonZeroU32>,
    pub describe_asset: Option<NonZeroU32>,
}

/// Factor applied to the rate on a throttle.
const DECREASE: f64 = 0.75;
/// Requests per second regained per second without throttles.
const RECOVERY_PER_SECOND: f64 = 1.0;
/// Throttles closer together than this count as one signal.
const DECREASE_SPACING: Duration = Duration::from_secs(1);
const FLOOR: f64 = 1.0;
/// Calls after a cut before the cut is judged.
const JUDGE_AFTER_CALLS: u32 = 40;
/// Weight of one call's outcome in the throttled share.
const SHARE_WEIGHT: f64 = 0.05;
/// Unused rate banked for a burst, in seconds of the current rate: half of what the emulator's
/// bucket holds, so the calls paced right after a burst still find tokens to spare when
/// network jitter brings two of them closer together.
const BURST: Duration = Duration::from_millis(500);

/// One adaptive bucket.
#[derive(Debug)]
pub struct AdaptiveRate {
    ceiling: f64,
    state: Mutex<PaceState>,
}

#[derive(Debug)]
struct PaceState {
    rate: f64,
    /// The earliest time the next call may start.
    next_slot: Instant,
    last_recovery: Instant,
    last_decrease: Option<Instant>,
    /// Whether unused rate is banked (until a call spent from the bank is throttled).
    banking: bool,
    /// When the latest call was let through.
    last_sent: Option<Instant>,
    /// Share of recent calls throttled (moving average).
    share: f64,
    /// The latest cut, until it is judged.
    cut: Option<Cut>,
}

/// A cut of the rate, and what the calls after it met.
#[derive(Debug, Clone, Copy)]
struct Cut {
    rate_before: f64,
    share_before: f64,
    calls: u32,
    throttled: u32,
}

impl Cut {
    /// Whether the calls after the cut show that the throttles come whatever the rate: their
    /// share is closer to the share before the cut than to what the cut should have left if
    /// the rate caused them (a capacity of `(1 - share) * rate`, at three quarters of it).
    fn did_not_help(&self) -> bool {
        let after = f64::from(self.throttled) / f64::from(self.calls.max(1));
        let expected = (1.0 - (1.0 - self.share_before) / DECREASE).max(0.0);
        after >= (expected + self.share_before) / 2.0
    }
}

/// A call's place in its bucket's pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// At or after its even-paced time.
    Paced,
    /// Ahead of the even pace, spent from the banked rate.
    Banked,
}

impl AdaptiveRate {
    pub fn new(quota: NonZeroU32) -> Self {
        let now = Instant::now();
        let ceiling = f64::from(quota.get());
        Self {
            ceiling,
            state: Mutex::new(PaceState {
                rate: ceiling,
                next_slot: now,
                last_recovery: now,
                last_decrease: None,
                banking: true,
                last_sent: None,
                share: 0.0,
                cut: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current rate, in requests per second.
    pub fn rate(&self) -> f64 {
        self.state().rate
    }

    /// Waits for this call's slot: the even pace, or at once while banked rate remains (a
    /// generic cell rate algorithm, whose theoretical arrival time may lag `now` by the bank).
    pub async fn acquire(&self) -> Slot {
        let (slot, kind) = {
            let mut state = self.state();
            let now = Instant::now();
            let recovered = now
                .saturating_duration_since(state.last_recovery)
                .as_secs_f64();
            state.rate = (state.rate + recovered * RECOVERY_PER_SECOND).min(self.ceiling);
            state.last_recovery = now;
            let interval = Duration::from_secs_f64(1.0 / state.rate);
            // The bank holds BURST worth of calls, this one included.
            let earliest = if state.banking {
                now.checked_sub(BURST.saturating_sub(interval))
                    .unwrap_or(now)
            } else {
                now
            };
            let slot = state.next_slot.max(earliest);
            state.next_slot = slot + interval;
            let send = slot.max(now);
            // A call sent sooner after the previous one than the pace allows is spent from the
            // bank; the first call after a quiet spell is not (any bucket holds one token).
            // Half an interval of slack: a paced call's slot may run a little early of the
            // previous call's actual send time.
            let kind = match state.last_sent {
                Some(last) if send < last + interval / 2 => Slot::Banked,
                _ => Slot::Paced,
            };
            state.last_sent = Some(send);
            (send, kind)
        };
        tokio::time::sleep_until(slot).await;
        kind
    }

    /// Whether unused rate is still banked for bursts.
    #[cfg(test)]
    pub fn banking(&self) -> bool {
        self.state().banking
    }

    /// SiteWise throttled a call made in `slot`: a banked call means the account's bucket
    /// holds less than the bank (stop banking); a paced one may mean contention (cut the rate,
    /// unless the last cut is still being judged, or is found not to have helped and is taken
    /// back).
    pub fn throttled(&self, slot: Slot) {
        let mut state = self.state();
        let now = Instant::now();
        if slot == Slot::Banked {
            if state.banking {
                tracing::info!(
                    rate = state.rate,
                    "SiteWise throttled a burst: this account's quota allows none; pacing evenly from now on"
                );
            }
            state.banking = false;
            state.next_slot = state.next_slot.max(now);
            return;
        }
        if state
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_SPACING)
        {
            return;
        }
        if let Some(cut) = state.cut {
            if cut.calls < JUDGE_AFTER_CALLS {
                return;
            }
            state.cut = None;
            if cut.did_not_help() {
                tracing::debug!(
                    rate = cut.rate_before,
                    "throttles met whatever the rate: the last cut is taken back"
                );
                state.rate = state.rate.max(cut.rate_before);
                state.last_decrease = Some(now);
                return;
            }
        }
        state.cut = Some(Cut {
            rate_before: state.rate,
            share_before: state.share,
            calls: 0,
            throttled: 0,
        });
        state.rate = (state.rate * DECREASE).max(FLOOR);
        state.last_decrease = Some(now);
        state.last_recovery = now;
    }

    /// A call made through this bucket came back, throttled or not (before [`Self::throttled`]
    /// for a throttled one).
    pub fn answered(&self, throttled: bool) {
        let mut state = self.state();
        let outcome = if throttled { 1.0 } else { 0.0 };
        state.share = state.share * (1.0 - SHARE_WEIGHT) + outcome * SHARE_WEIGHT;
        if let Some(cut) = state.cut.as_mut() {
            cut.calls += 1;
            cut.throttled += u32::from(throttled);
        }
    }
}

pub struct RateLimited<S> {
    inner: S,
    asset_operations: Option<AdaptiveRate>,
    describe_asset: Option<AdaptiveRate>,
}

impl<S> RateLimited<S> {
    pub fn new(inner: S, rates: Rates) -> Self {
        Self {
            inner,
            asset_operations: rates.asset_operations.map(AdaptiveRate::new),
            describe_asset: rates.describe_asset.map(AdaptiveRate::new),
        }
    }

    fn bucket(&self, operation: Operation) -> Option<&AdaptiveRate> {
        match operation {
            Operation::DescribeAsset => self.describe_asset.as_ref(),
            _ => self.asset_operations.as_ref(),
        }
    }

    /// The current rate of `operation`'s bucket, `None` when it is off.
    pub fn rate_of(&self, operation: Operation) -> Option<f64> {
        self.bucket(operation).map(AdaptiveRate::rate)
    }
}

impl<S: SiteWise> Decorate for RateLimited<S> {
    type Inner = S;

    fn inner(&self, _: Operation) -> SiteWiseResult<impl std::ops::Deref<Target = S> + Send + '_> {
        Ok(&self.inner)
    }

    async fn around<T: Send>(
        &self,
        operation: Operation,
        call: impl Future<Output = SiteWiseResult<T>> + Send,
    ) -> SiteWiseResult<T> {
        let bucket = self.bucket(operation);
        let slot = match bucket {
            Some(bucket) => Some(bucket.acquire().await),
            None => None,
        };
        let result = call.await;
        if let (Some(bucket), Some(slot)) = (bucket, slot) {
            let throttled = matches!(&result, Err(e) if e.kind == ErrorKind::Throttled);
            bucket.answered(throttled);
            if throttled {
                bucket.throttled(slot);
            }
        }
        result
    }
}

// Tokio's clock is paused in these tests: it only moves when every task waits, by exactly
// what they wait for, so the pace is checked to the millisecond however loaded the machine.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitewise::Direction;
    use crate::sitewise::fake::FakeSiteWise;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[tokio::test(start_paused = true)]
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
        // 11 calls at 20/s, evenly spread: 10 intervals of 50 ms.
        assert_eq!(ms(started.elapsed()), 500);
        // Describe has no limit here.
        let started = Instant::now();
        for _ in 0..50 {
            let _ = limited.describe_asset("a").await;
        }
        assert_eq!(ms(started.elapsed()), 0);
        assert_eq!(fake.calls(Operation::ListAssociatedAssets), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_cut_the_rate_once_per_signal_and_it_recovers_additively() {
        let fake = FakeSiteWise::new();
        fake.add_asset("a", None, &[]);
        let limited = RateLimited::new(
            fake.clone(),
            Rates {
                asset_operations: NonZeroU32::new(40),
                describe_asset: NonZeroU32::new(100),
            },
        );
        assert_eq!(limited.rate_of(Operation::DeleteAsset), Some(40.0));
        // Three calls throttled together are one signal: one cut by a quarter.
        for _ in 0..3 {
            fake.fail_next(Operation::ListAssociatedAssets, None, ErrorKind::Throttled);
            let _ = limited
                .list_associated_assets("a", Direction::Child, None)
                .await;
        }
        let cut = limited.rate_of(Operation::DeleteAsset).unwrap_or_default();
        assert!((cut - 30.0).abs() < 0.5, "{cut}");
        // Other buckets are not affected.
        assert_eq!(limited.rate_of(Operation::DescribeAsset), Some(100.0));
        // Calls that go through regain about one request per second per second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let _ = limited
            .list_associated_assets("a", Direction::Child, None)
            .await;
        let recovered = limited.rate_of(Operation::DeleteAsset).unwrap_or_default();
        // 1.1 s of sleep, and the last throttled call's wait for its slot (one interval at
        // the cut rate: 33 ms).
        let regained = recovered - cut;
        assert!(
            (regained - (1.1 + 1.0 / 30.0)).abs() < 0.002,
            "{cut} -> {recovered}"
        );
    }

    /// `n` calls through `bucket` at once: their slots and how long they took, in ms.
    async fn burst(bucket: &AdaptiveRate, n: usize) -> (Vec<Slot>, u128) {
        let started = Instant::now();
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(bucket.acquire().await);
        }
        (slots, started.elapsed().as_millis())
    }

    #[tokio::test(start_paused = true)]
    async fn unused_rate_is_banked_for_half_a_second_and_spent_at_once() {
        let bucket = AdaptiveRate::new(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN));
        // Busy from the start: nothing banked, every call paced, 50 ms apart.
        let (slots, ms) = burst(&bucket, 5).await;
        assert!(slots.iter().all(|s| *s == Slot::Paced));
        assert_eq!(ms, 200);
        // Quiet for two seconds: half a second of the rate (10 calls) goes at once, the first
        // of them within any bucket, then the pace resumes.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (slots, ms) = burst(&bucket, 10).await;
        assert_eq!(ms, 0);
        assert_eq!(slots[0], Slot::Paced);
        assert!(slots[1..].iter().all(|s| *s == Slot::Banked), "{slots:?}");
        let (slots, ms) = burst(&bucket, 4).await;
        assert!(slots.iter().all(|s| *s == Slot::Paced));
        assert_eq!(ms, 200, "the first of them waits for the pace too");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_burst_stops_banking_without_cutting_the_rate() {
        let bucket = AdaptiveRate::new(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (slots, _) = burst(&bucket, 3).await;
        // SiteWise's bucket held less: the banked call was throttled.
        bucket.throttled(slots[2]);
        assert!(!bucket.banking());
        assert_eq!(bucket.rate(), 20.0);
        // From now on every call is paced, even after a quiet spell.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (slots, ms) = burst(&bucket, 5).await;
        assert!(slots.iter().all(|s| *s == Slot::Paced));
        assert_eq!(ms, 200);
        // A paced call throttled is contention: the rate is cut.
        bucket.throttled(Slot::Paced);
        assert_eq!(bucket.rate(), 15.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_goes_above_the_quota_or_below_one() {
        let bucket = AdaptiveRate::new(NonZeroU32::MIN.saturating_add(1));
        bucket.acquire().await;
        assert_eq!(bucket.rate(), 2.0);
        // Three cuts, each judged to have helped.
        for _ in 0..3 {
            bucket.throttled(Slot::Paced);
            if let Ok(mut state) = bucket.state.lock() {
                state.last_decrease = None;
                state.cut = None;
            }
        }
        assert_eq!(bucket.rate(), FLOOR);
    }

    /// `calls` calls through `bucket`, each answered by `throttled(i, now)`; the last 600's
    /// throttled share and how long they all took.
    async fn drive(
        bucket: &AdaptiveRate,
        calls: usize,
        mut throttled: impl FnMut(usize, Instant) -> bool,
    ) -> (f64, Duration) {
        let started = Instant::now();
        let mut late = 0;
        for i in 0..calls {
            let slot = bucket.acquire().await;
            let refused = throttled(i, Instant::now());
            bucket.answered(refused);
            if refused {
                bucket.throttled(slot);
                late += usize::from(i + 600 >= calls);
            }
        }
        (late as f64 / 600.0, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_that_come_whatever_the_rate_do_not_hold_it_down() {
        let bucket = AdaptiveRate::new(NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN));
        // Three calls in ten refused, however fast they come.
        let (_, took) = drive(&bucket, 1200, |i, _| i % 10 < 3).await;
        // Each cut is taken back once 40 calls show it did not help: the pace stays between
        // the quota and three quarters of it (40 s at 30/s; cutting on every throttle held it
        // near 4/s, five minutes).
        assert!(took < Duration::from_secs(50), "{took:?}");
        assert!(bucket.rate() >= 22.5, "{}", bucket.rate());
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_from_the_rate_bring_it_down_to_what_the_account_has_left() {
        let bucket = AdaptiveRate::new(NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN));
        // Another client leaves this one 20 calls per second of the account's bucket
        // (10 calls of burst).
        let (mut tokens, mut at) = (10.0_f64, Instant::now());
        let account = |_: usize, now: Instant| {
            tokens = (tokens + now.saturating_duration_since(at).as_secs_f64() * 20.0).min(10.0);
            at = now;
            if tokens >= 1.0 {
                tokens -= 1.0;
                false
            } else {
                true
            }
        };
        let (late_share, took) = drive(&bucket, 1200, account).await;
        assert!(bucket.rate() <= 22.0, "{}", bucket.rate());
        assert!(
            late_share < 0.05,
            "{late_share} of the last 600 calls throttled"
        );
        // 1,200 calls at what the account leaves (20/s) take a minute; the sawtooth below it
        // costs a little more.
        assert!(took < Duration::from_secs(75), "{took:?}");
    }
}
