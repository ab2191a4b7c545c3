//! The kstatus conditions (`Reconciling`, `Stalled`) that GitOps tools read, derived from the
//! conditions the operator sets (`Ready`, `Terminal`) every time status is written, so they
//! can never disagree.
//!
//! kstatus (`sigs.k8s.io/cli-utils`, used by Flux, `kubectl wait` users and cli-utils appliers)
//! reports `Failed` for `Stalled=True`, `InProgress` for `Reconciling=True` or `Ready=False`,
//! and `Current` for `Ready=True`, provided `status.observedGeneration` equals
//! `metadata.generation`. Both derived conditions follow the "abnormal-true" convention: they
//! are present only while true.

use crate::controller::status::{self, READY, TERMINAL};
use crate::crd::{Condition, SiteWiseAssetStatus};

pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// `Ready=False` reasons that no retry resolves: a person must change the spec or SiteWise.
/// Other reasons (the asset is being created, a parent or model not there yet) resolve by
/// themselves, for instance when the rest of a Git commit is applied.
const NEEDS_A_PERSON: &[&str] = &[
    "InvalidSpec",
    "AssetNotFound",
    "AssetDeletedOutside",
    "AssetReplaced",
    "AssetFailed",
    "ClaimedByOther",
    "SpecNotSatisfiable",
    "ParentLinkRefused",
    "HierarchyCycle",
    "ModelNameTaken",
    "ModelDeletedOutside",
    "ModelFailed",
    "ModelInOtherConnection",
    "ConnectionChanged",
    "ConnectionNotAllowed",
];

/// Sets `Stalled` and `Reconciling` from `Terminal` and `Ready`.
pub fn derive(s: &mut SiteWiseAssetStatus) {
    derive_conditions(&mut s.conditions, &mut s.observed_generation, "asset");
}

/// [`derive`] for any resource's conditions; `kind` names what was not observed yet.
pub fn derive_conditions(
    conditions: &mut Vec<Condition>,
    observed_generation: &mut Option<i64>,
    kind: &str,
) {
    let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    let is_true = |c: &&Condition| c.status == "True";
    let stalled_by = find(TERMINAL)
        .filter(is_true)
        .or_else(|| {
            find(READY)
                .filter(|c| c.status == "False" && NEEDS_A_PERSON.contains(&c.reason.as_str()))
        })
        .cloned();
    let reconciling_by = match (&stalled_by, find(READY)) {
        (None, Some(ready)) if ready.status != "True" => Some(ready.clone()),
        (None, None) => Some(Condition {
            type_: READY.into(),
            status: "Unknown".into(),
            reason: "Observing".into(),
            message: format!("The operator has not observed the {kind} yet"),
            last_transition_time: String::new(),
            observed_generation: None,
        }),
        _ => None,
    };
    mirror(conditions, STALLED, stalled_by.as_ref());
    mirror(conditions, RECONCILING, reconciling_by.as_ref());
    // The verdict describes the generation it was reached for; kstatus ignores conditions
    // while `observedGeneration` lags behind.
    if let Some(generation) = stalled_by.and_then(|c| c.observed_generation) {
        *observed_generation = Some(generation);
    }
}

fn mirror(conditions: &mut Vec<Condition>, type_: &str, source: Option<&Condition>) {
    match source {
        Some(c) => status::set_condition(
            conditions,
            type_,
            true,
            &c.reason,
            c.message.clone(),
            c.observed_generation,
        ),
        None => status::remove_condition(conditions, type_),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(conditions: &[(&str, bool, &str)], generation: i64) -> SiteWiseAssetStatus {
        let mut s = SiteWiseAssetStatus::default();
        for (type_, value, reason) in conditions {
            status::set_condition(
                &mut s.conditions,
                type_,
                *value,
                reason,
                "m",
                Some(generation),
            );
        }
        s
    }

    fn verdict(s: &SiteWiseAssetStatus) -> (Option<&str>, Option<&str>) {
        let reason = |t| {
            status::condition(s, t)
                .filter(|c| c.status == "True")
                .map(|c| c.reason.as_str())
        };
        (reason(STALLED), reason(RECONCILING))
    }

    #[test]
    fn a_ready_asset_is_neither_stalled_nor_reconciling() {
        let mut s = with(&[(RECONCILING, true, "AssetCreating")], 1);
        status::set_condition(&mut s.conditions, READY, true, "AssetReady", "m", Some(1));
        derive(&mut s);
        assert_eq!(verdict(&s), (None, None));
        assert!(
            status::condition(&s, RECONCILING).is_none(),
            "removed, not False"
        );
    }

    #[test]
    fn an_asset_on_its_way_is_reconciling_with_the_ready_reason() {
        for reason in ["AssetCreating", "ParentNotFound", "ModelNotFound"] {
            let mut s = with(&[(READY, false, reason)], 2);
            derive(&mut s);
            assert_eq!(verdict(&s), (None, Some(reason)));
        }
        let mut fresh = SiteWiseAssetStatus::default();
        derive(&mut fresh);
        assert_eq!(verdict(&fresh), (None, Some("Observing")));
    }

    #[test]
    fn a_permanent_error_stalls_at_the_generation_it_was_found_for() {
        let mut s = with(&[(TERMINAL, true, "AccessDenied")], 3);
        s.observed_generation = Some(2);
        derive(&mut s);
        assert_eq!(verdict(&s), (Some("AccessDenied"), None));
        assert_eq!(s.observed_generation, Some(3));

        let mut missing = with(&[(READY, false, "AssetNotFound")], 1);
        derive(&mut missing);
        assert_eq!(verdict(&missing), (Some("AssetNotFound"), None));
    }

    #[test]
    fn stalled_goes_away_with_its_cause() {
        let mut s = with(&[(TERMINAL, true, "AccessDenied")], 1);
        derive(&mut s);
        status::remove_condition(&mut s.conditions, TERMINAL);
        status::set_condition(&mut s.conditions, READY, true, "AssetReady", "m", Some(1));
        derive(&mut s);
        assert_eq!(verdict(&s), (None, None));
        assert!(status::condition(&s, STALLED).is_none());
    }
}
