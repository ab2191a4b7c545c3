//! `childPolicy: Block`: a deletion that does not start while children are linked.

use super::*;
use crate::crd::ChildPolicy;

fn blocking_line() -> SiteWiseAsset {
    let mut obj = resource(LINE, DeletionPolicy::Delete);
    obj.spec.child_policy = ChildPolicy::Block;
    obj
}

#[tokio::test]
async fn nothing_changes_while_children_are_linked_then_the_deletion_runs() {
    let mut run = Run::new(plant(), blocking_line());
    for _ in 0..3 {
        let result = run.reconcile().await;
        let (class, retry) = retry_after(&result).expect("a wait, not a release");
        assert_eq!(class, ErrorClass::Pending);
        assert_eq!(retry, Duration::from_secs(30));
    }
    assert_eq!(
        mutating_calls(&run.fake),
        0,
        "nothing detached, nothing deleted"
    );
    assert!(
        run.fake
            .links()
            .iter()
            .any(|(p, _, c)| p == PLANT && c == LINE),
        "still under its parent"
    );
    let deletion = run.status().deletion.expect("deletion progress");
    assert_eq!(deletion.phase, DeletionPhase::Blocked);
    let mut blocked_by = deletion.blocked_by.clone();
    blocked_by.sort();
    assert_eq!(blocked_by.len(), 3, "{blocked_by:?}");
    for (child, hierarchy) in [
        (M1, H_LINE_MACHINES),
        (M2, H_LINE_MACHINES),
        (CELL, H_LINE_CELLS),
    ] {
        assert!(
            blocked_by.contains(&format!("asset {child} in hierarchy {hierarchy}")),
            "{blocked_by:?}"
        );
    }
    let warnings: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.reason == "DeletionBlocked")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one event for the block, not one per poll"
    );
    assert!(
        warnings[0].note.contains("3 child asset(s)"),
        "{}",
        warnings[0].note
    );

    // Two children go: the list follows; the last one goes: the deletion runs.
    run.fake.unlink(M1);
    run.fake.unlink(M2);
    assert!(run.reconcile().await.is_err());
    assert_eq!(run.status().deletion.expect("progress").blocked_by.len(), 1);
    run.fake.unlink(CELL);
    run.until_released(10).await;
    assert!(!run.fake.exists(LINE));
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
    assert_eq!(
        run.reasons()
            .iter()
            .filter(|r| **r == "DeletionBlocked")
            .count(),
        1
    );
}
