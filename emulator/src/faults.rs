//! Fault injection: per-operation probabilities of ThrottlingException,
//! InternalFailureException and ConflictingOperationException, added latency before a call, a
//! delayed or lost answer after it took effect, and
//! scripted faults ("the next N DeleteAsset calls on asset X fail with Y").

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::ops::Op;

/// Random faults of one operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OpFaults {
    pub throttle: f64,
    pub internal_failure: f64,
    pub conflict: f64,
    #[serde(with = "crate::config::duration_millis")]
    pub latency: Duration,
    /// Delay after the call took effect and before it is answered.
    #[serde(with = "crate::config::duration_millis")]
    pub answer_delay: Duration,
    /// Probability that a call takes effect and its answer never comes (within any client's
    /// timeout: it is held for an hour).
    pub lost: f64,
}

/// How long a lost answer is held.
pub const LOST_ANSWER: Duration = Duration::from_secs(3600);

/// A fault that hits the next `count` matching calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptedFault {
    pub operation: Op,
    /// Asset or model the call addresses (UUID or `externalId:` reference as sent); any when absent.
    #[serde(default)]
    pub target: Option<String>,
    pub error: ErrorCode,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Keyed by operation name; `"*"` applies to every operation without its own entry.
    pub operations: BTreeMap<String, OpFaults>,
    pub scripted: Vec<ScriptedFault>,
}

impl FaultConfig {
    fn for_op(&self, op: Op) -> Option<&OpFaults> {
        self.operations
            .get(op.as_str())
            .or_else(|| self.operations.get("*"))
    }

    pub fn latency(&self, op: Op) -> Duration {
        self.for_op(op).map(|f| f.latency).unwrap_or_default()
    }

    /// How long the answer of a call that took effect is held back: [`LOST_ANSWER`] when the
    /// `lost` roll hits, the configured delay otherwise.
    pub fn answer_delay(&self, op: Op, rng: &mut impl Rng) -> Duration {
        let Some(f) = self.for_op(op) else {
            return Duration::ZERO;
        };
        if f.lost > 0.0 && rng.random::<f64>() < f.lost {
            LOST_ANSWER
        } else {
            f.answer_delay
        }
    }

    /// The fault to answer with, if any: scripted faults first (consumed), then the random ones.
    pub fn pick(&mut self, op: Op, targets: &[&str], rng: &mut impl Rng) -> Option<ApiError> {
        if let Some(i) = self.scripted.iter().position(|f| {
            f.operation == op
                && f.count > 0
                && f.target.as_deref().is_none_or(|t| targets.contains(&t))
        }) {
            let fault = &mut self.scripted[i];
            fault.count -= 1;
            let err = ApiError::new(
                fault.error,
                fault.message.clone().unwrap_or_else(|| {
                    format!("Injected {} for {}", fault.error.as_str(), op.as_str())
                }),
            );
            if fault.count == 0 {
                self.scripted.remove(i);
            }
            return Some(err);
        }
        let f = self.for_op(op)?;
        let roll: f64 = rng.random();
        if roll < f.throttle {
            return Some(ApiError::new(
                ErrorCode::ThrottlingException,
                "Rate exceeded (injected)",
            ));
        }
        if roll < f.throttle + f.internal_failure {
            return Some(ApiError::new(
                ErrorCode::InternalFailureException,
                "Internal failure (injected)",
            ));
        }
        if roll < f.throttle + f.internal_failure + f.conflict {
            return Some(ApiError::new(
                ErrorCode::ConflictingOperationException,
                "Another operation is in progress on this resource (injected)",
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn scripted_faults_hit_the_next_n_matching_calls_only() {
        let mut faults = FaultConfig {
            scripted: vec![ScriptedFault {
                operation: Op::DeleteAsset,
                target: Some("a".into()),
                error: ErrorCode::ThrottlingException,
                count: 2,
                message: None,
            }],
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert!(faults.pick(Op::DeleteAsset, &["b"], &mut rng).is_none());
        assert!(faults.pick(Op::DescribeAsset, &["a"], &mut rng).is_none());
        assert_eq!(
            faults
                .pick(Op::DeleteAsset, &["a"], &mut rng)
                .map(|e| e.code),
            Some(ErrorCode::ThrottlingException)
        );
        assert!(faults.pick(Op::DeleteAsset, &["a"], &mut rng).is_some());
        assert!(faults.pick(Op::DeleteAsset, &["a"], &mut rng).is_none());
        assert!(faults.scripted.is_empty());
    }

    #[test]
    fn probabilities_are_honoured() {
        let mut faults = FaultConfig::default();
        faults.operations.insert(
            "*".into(),
            OpFaults {
                throttle: 0.3,
                internal_failure: 0.2,
                ..Default::default()
            },
        );
        let mut rng = StdRng::seed_from_u64(42);
        let mut throttles = 0;
        let mut failures = 0;
        for _ in 0..10_000 {
            match faults.pick(Op::ListAssets, &[], &mut rng).map(|e| e.code) {
                Some(ErrorCode::ThrottlingException) => throttles += 1,
                Some(ErrorCode::InternalFailureException) => failures += 1,
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
        }
        assert!((2700..3300).contains(&throttles), "{throttles}");
        assert!((1700..2300).contains(&failures), "{failures}");
    }
}
