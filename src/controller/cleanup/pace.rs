//! When to look again after DeleteAsset: SiteWise's delete time is learned from the deletions
//! this process watched finish, so the confirming DescribeAsset lands just after the asset is
//! gone instead of on a fixed interval (too early costs a read per poll, too late holds the
//! finalizer and the prune's tail).
//!
//! Each finished deletion gives a sample. When a poll found the asset still DELETING, the
//! deletion ended between that poll and the one that found it gone: the midpoint is the
//! sample. When the first poll already found it gone, the deletion took at most that long and
//! the sample is a little less, so the estimate keeps probing downwards until a poll comes too
//! early; one early poll moves it back up. Polls therefore mostly land just after the deletion.
//!
//! A poll that runs late (the reconcile queue is busy in a large prune) sees the asset gone
//! later than it went, which would feed a longer estimate and later polls: the estimate is
//! therefore never longer than the configured poll interval, which it can only shorten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Weight of a new sample in the estimate.
const WEIGHT: f64 = 0.25;
/// The first poll waits this much longer than the estimate.
const MARGIN: f64 = 1.15;
/// Factor applied to a deletion found finished at the first poll (an upper bound).
const PROBE_DOWN: f64 = 0.75;
const MIN_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub struct DeletePace {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Estimated time from DeleteAsset accepted to the asset gone.
    estimate: Option<Duration>,
    /// Per resource UID: when DeleteAsset was accepted, and the latest poll that still saw
    /// the asset DELETING (time since acceptance).
    running: HashMap<String, (Instant, Option<Duration>)>,
}

impl DeletePace {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current estimate of SiteWise's delete time, once one deletion was seen to finish.
    pub fn estimate(&self) -> Option<Duration> {
        self.state().estimate
    }

    /// DeleteAsset was accepted at `now`; returns when to look first (`fallback` until a
    /// deletion has been seen to finish).
    pub fn accepted(&self, uid: &str, now: Instant, fallback: Duration) -> Duration {
        let mut state = self.state();
        state.running.insert(uid.to_string(), (now, None));
        state
            .estimate
            .map(|e| e.mul_f64(MARGIN).clamp(MIN_POLL, fallback))
            .unwrap_or(fallback)
    }

    /// A poll at `now` found the asset still DELETING; returns when to look again (a quarter
    /// of the estimate, so a late deletion is found soon after it ends).
    pub fn still_deleting(&self, uid: &str, now: Instant, fallback: Duration) -> Duration {
        let mut state = self.state();
        let estimate = state.estimate;
        let entry = state.running.entry(uid.to_string()).or_insert((now, None));
        entry.1 = Some(now.saturating_duration_since(entry.0));
        estimate
            .map(|e| (e / 4).clamp(MIN_POLL, fallback))
            .unwrap_or(fallback)
    }

    /// The asset was found gone at `now`: the deletion's time becomes a sample (at most
    /// `ceiling`, the poll interval).
    pub fn gone(&self, uid: &str, now: Instant, ceiling: Duration) {
        let mut state = self.state();
        let Some((accepted, last_deleting)) = state.running.remove(uid) else {
            return;
        };
        let seen_gone = now.saturating_duration_since(accepted);
        let sample = match last_deleting {
            Some(still) => still + (seen_gone.saturating_sub(still)) / 2,
            None => seen_gone.mul_f64(PROBE_DOWN),
        }
        .min(ceiling);
        state.estimate = Some(match state.estimate {
            None => sample,
            Some(e) => e.mul_f64(1.0 - WEIGHT) + sample.mul_f64(WEIGHT),
        });
    }

    /// Drops what is kept for a resource whose deletion ended otherwise.
    pub fn forget(&self, uid: &str) {
        self.state().running.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALLBACK: Duration = Duration::from_secs(3);

    /// Runs `n` deletions that take `real` with polls as the pace asks; returns the polls made.
    fn simulate(pace: &DeletePace, real: Duration, n: usize) -> usize {
        let t0 = Instant::now();
        let mut polls = 0;
        for i in 0..n {
            let uid = format!("u{i}");
            let mut at = pace.accepted(&uid, t0, FALLBACK);
            loop {
                polls += 1;
                if at >= real {
                    pace.gone(&uid, t0 + at, FALLBACK);
                    break;
                }
                at += pace.still_deleting(&uid, t0 + at, FALLBACK);
            }
        }
        polls
    }

    #[test]
    fn the_first_deletion_polls_at_the_fallback_then_the_estimate_follows_sitewise() {
        let pace = DeletePace::default();
        assert_eq!(pace.accepted("u", Instant::now(), FALLBACK), FALLBACK);
        pace.forget("u");
        let real = Duration::from_millis(2000);
        simulate(&pace, real, 1);
        // Found gone at the first poll (3 s): the estimate probes below it.
        assert!(pace.estimate().is_some_and(|e| e < FALLBACK));
        simulate(&pace, real, 60);
        let estimate = pace.estimate().unwrap_or_default();
        assert!(
            estimate > Duration::from_millis(1600) && estimate < Duration::from_millis(2400),
            "{estimate:?}"
        );
        // Settled: most deletions need a single confirming read.
        let polls = simulate(&pace, real, 100);
        eprintln!("{polls} polls for 100 deletions, estimate {estimate:?}");
        assert!(polls <= 150, "{polls} polls for 100 deletions");
    }

    #[test]
    fn late_polls_never_push_the_estimate_past_the_poll_interval() {
        let pace = DeletePace::default();
        let t0 = Instant::now();
        for i in 0..20 {
            let uid = format!("u{i}");
            pace.accepted(&uid, t0, FALLBACK);
            // The reconcile queue was busy: each poll ran 30 s late.
            pace.gone(&uid, t0 + Duration::from_secs(30), FALLBACK);
        }
        assert!(pace.estimate().is_some_and(|e| e <= FALLBACK));
        assert!(pace.accepted("next", t0, FALLBACK) <= FALLBACK);
    }

    #[test]
    fn a_slower_sitewise_moves_the_estimate_up() {
        let pace = DeletePace::default();
        simulate(&pace, Duration::from_millis(500), 80);
        let fast = pace.estimate().unwrap_or_default();
        simulate(&pace, Duration::from_millis(2800), 30);
        let slow = pace.estimate().unwrap_or_default();
        assert!(fast < Duration::from_millis(700), "{fast:?}");
        assert!(slow > Duration::from_millis(2200), "{slow:?}");
    }
}
