//! The whole cleanup flow against the in-memory SiteWise: each test drives reconciles the way
//! the controller does (status carried from one reconcile to the next as the API server would
//! keep it) and checks what SiteWise saw, the status and the events.

use std::sync::Arc;
use std::time::Duration;

use kube::api::ObjectMeta;
use kube::runtime::controller::Action;

use super::cleanup::cleanup;
use super::status::{self, Events, RecordedEvent, StatusWriter};
use super::{Context, Settings, settle};
use crate::crd::{
    DeletionPhase, DeletionPolicy, Ownership, SiteWiseAsset, SiteWiseAssetSpec, SiteWiseAssetStatus,
};
use crate::error::{Error, ErrorClass};
use crate::metrics::Metrics;
use crate::sitewise::fake::FakeSiteWise;
use crate::sitewise::{AssetState, ErrorKind, Operation};
use crate::token;

const UID: &str = "5d2c8a31-7f0e-4b6a-9c1d-2e3f4a5b6c7d";
const PLANT: &str = "10000000-0000-4000-8000-000000000001";
const LINE: &str = "10000000-0000-4000-8000-000000000002";
const M1: &str = "10000000-0000-4000-8000-000000000003";
const M2: &str = "10000000-0000-4000-8000-000000000004";
const CELL: &str = "10000000-0000-4000-8000-000000000005";
const H_PLANT_LINES: &str = "20000000-0000-4000-8000-000000000001";
const H_PLANT_OTHER: &str = "20000000-0000-4000-8000-000000000002";
const H_LINE_MACHINES: &str = "20000000-0000-4000-8000-000000000003";
const H_LINE_CELLS: &str = "20000000-0000-4000-8000-000000000004";
const OTHER_LINE: &str = "10000000-0000-4000-8000-000000000009";

fn resource(asset_id: &str, policy: DeletionPolicy) -> SiteWiseAsset {
    let mut obj = SiteWiseAsset::new(
        "line-1",
        SiteWiseAssetSpec {
            asset_id: Some(asset_id.to_string()),
            deletion_policy: policy,
            ..Default::default()
        },
    );
    obj.metadata = ObjectMeta {
        name: Some("line-1".into()),
        namespace: Some("plant".into()),
        uid: Some(UID.into()),
        generation: Some(1),
        deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        )),
        finalizers: Some(vec![crate::crd::FINALIZER.into()]),
        ..Default::default()
    };
    // Adopted by an earlier reconcile (which claimed it, or not yet: the claim is then made
    // before the first change).
    obj.status = Some(SiteWiseAssetStatus {
        ownership: Some(Ownership::Adopted),
        ..SiteWiseAssetStatus::default()
    });
    obj
}

/// A plant with two hierarchies; the line under one of them has machines under one hierarchy
/// and a cell under another.
fn plant() -> FakeSiteWise {
    let fake = FakeSiteWise::new();
    fake.add_asset(PLANT, Some("plant"), &[H_PLANT_LINES, H_PLANT_OTHER]);
    fake.add_asset(LINE, Some("line-1"), &[H_LINE_MACHINES, H_LINE_CELLS]);
    fake.add_asset(OTHER_LINE, None, &[]);
    fake.add_asset(M1, None, &[]);
    fake.add_asset(M2, None, &[]);
    fake.add_asset(CELL, None, &[]);
    fake.link(PLANT, H_PLANT_OTHER, OTHER_LINE);
    fake.link(PLANT, H_PLANT_LINES, LINE);
    fake.link(LINE, H_LINE_MACHINES, M1);
    fake.link(LINE, H_LINE_MACHINES, M2);
    fake.link(LINE, H_LINE_CELLS, CELL);
    fake.set_deleting_polls(1);
    fake
}

fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_secs(3),
        ..Settings::default()
    }
}

struct Run {
    fake: FakeSiteWise,
    ctx: Context<FakeSiteWise>,
    obj: SiteWiseAsset,
    statuses: Vec<SiteWiseAssetStatus>,
    events: Vec<RecordedEvent>,
}

impl Run {
    fn new(fake: FakeSiteWise, obj: SiteWiseAsset) -> Self {
        let ctx = Context::new(fake.clone(), settings(), Arc::new(Metrics::default()));
        Self {
            fake,
            ctx,
            obj,
            statuses: Vec::new(),
            events: Vec::new(),
        }
    }

    /// One reconcile of a resource being deleted.
    async fn reconcile(&mut self) -> Result<Action, Error> {
        let status = StatusWriter::in_memory(&self.obj);
        let events = Events::in_memory();
        let result = cleanup(&self.obj, &self.ctx, &status, &events).await;
        let result = settle(&self.obj, &self.ctx, &status, &events, result).await;
        self.obj.status = Some(status.snapshot());
        self.statuses.extend(status.written());
        self.events.extend(events.recorded());
        result
    }

    /// Reconciles until the finalizer would be released; returns how many reconciles it took.
    async fn until_released(&mut self, limit: usize) -> usize {
        for n in 1..=limit {
            if self.reconcile().await.is_ok() {
                return n;
            }
        }
        panic!(
            "not released after {limit} reconciles; journal: {:#?}",
            self.fake.journal()
        );
    }

    /// A new operator process: nothing kept in memory, only what status holds.
    fn restart(&mut self) {
        self.ctx = Context::new(self.fake.clone(), settings(), Arc::new(Metrics::default()));
    }

    fn status(&self) -> SiteWiseAssetStatus {
        self.obj.status.clone().unwrap_or_default()
    }

    fn reasons(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.reason.as_str()).collect()
    }
}

fn retry_after(result: &Result<Action, Error>) -> Option<(ErrorClass, Duration)> {
    match result {
        Err(e @ Error::Reported { retry_after, .. }) => Some((e.class(), *retry_after)),
        _ => None,
    }
}

fn mutating_calls(fake: &FakeSiteWise) -> usize {
    fake.calls(Operation::DisassociateAssets) + fake.calls(Operation::DeleteAsset)
}

#[tokio::test]
async fn deletes_children_links_parent_link_then_the_asset_and_waits_until_gone() {
    let mut run = Run::new(
        plant(),
        resource("externalId:line-1", DeletionPolicy::Delete),
    );

    let first = run.reconcile().await;
    assert_eq!(
        retry_after(&first).map(|(c, _)| c),
        Some(ErrorClass::Pending),
        "the finalizer must be kept while SiteWise deletes"
    );
    assert_eq!(run.fake.state_of(LINE), Some(AssetState::Deleting));
    // DeleteRequested (written before the call) already says SiteWise is deleting: no
    // further write while it does.
    assert_eq!(
        run.status().deletion.map(|d| d.phase),
        Some(DeletionPhase::DeleteRequested)
    );

    // DELETING is still reported once (set_deleting_polls(1)), then 404.
    assert!(run.reconcile().await.is_err());
    assert!(run.reconcile().await.is_ok());
    assert!(!run.fake.exists(LINE));

    // Every child of every hierarchy was disassociated, the plant link dropped, the rest kept.
    assert_eq!(
        run.fake.links(),
        vec![(PLANT.into(), H_PLANT_OTHER.into(), OTHER_LINE.into())]
    );
    for child in [M1, M2, CELL, PLANT, OTHER_LINE] {
        assert!(run.fake.exists(child), "{child} must not be deleted");
    }
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
    assert_eq!(
        run.fake
            .effective_calls(Operation::DisassociateAssets)
            .len(),
        4
    );
    assert_eq!(
        run.reasons(),
        vec![
            "ChildDisassociated",
            "DetachedFromParent",
            "DeleteRequested",
            "AssetDeleted"
        ],
        "one event for the children, not one per child"
    );
    assert!(
        run.events[0]
            .note
            .starts_with("Disassociated 3 child asset(s)")
    );
    let status = run.status();
    assert_eq!(status.state.as_deref(), Some("Deleted"));
    assert_eq!(status.deletion.map(|d| d.phase), Some(DeletionPhase::Done));
}

#[tokio::test]
async fn every_mutating_call_carries_the_derived_token_of_its_resolved_target() {
    let mut run = Run::new(
        plant(),
        resource("externalId:line-1", DeletionPolicy::Delete),
    );
    run.until_released(10).await;
    let journal = run.fake.journal();
    let token_of = |op: Operation, target: &str, child: Option<&str>| {
        journal
            .iter()
            .find(|c| c.operation == op && c.target == target && c.child.as_deref() == child)
            .and_then(|c| c.client_token.clone())
    };
    assert_eq!(
        token_of(Operation::DeleteAsset, LINE, None),
        Some(token::delete_asset(UID, LINE, 0)),
        "the token uses the UUID, not the externalId reference"
    );
    assert_eq!(
        token_of(Operation::DisassociateAssets, LINE, Some(M2)),
        Some(token::disassociate_assets(
            UID,
            LINE,
            H_LINE_MACHINES,
            M2,
            0
        ))
    );
    assert_eq!(
        token_of(Operation::DisassociateAssets, PLANT, Some(LINE)),
        Some(token::disassociate_assets(
            UID,
            PLANT,
            H_PLANT_LINES,
            LINE,
            0
        ))
    );
}

#[tokio::test]
async fn progress_is_in_status_before_the_call_is_made() {
    let fake = plant();
    fake.fail_next(Operation::DisassociateAssets, None, ErrorKind::Unavailable);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let result = run.reconcile().await;
    assert_eq!(
        retry_after(&result).map(|(c, _)| c),
        Some(ErrorClass::Transient)
    );
    let deletion = run.status().deletion.expect("deletion progress");
    assert_eq!(deletion.phase, DeletionPhase::DisassociatingChildren);
    assert_eq!(deletion.children_remaining, 3);
    assert_eq!(
        deletion.current_operation.as_deref(),
        Some(format!("DisassociateAssets child={M1} hierarchy={H_LINE_MACHINES}").as_str())
    );
    assert_eq!(deletion.attempts, 1);
    assert!(
        deletion
            .last_error
            .is_some_and(|e| e.contains("InternalFailureException"))
    );
    assert!(deletion.next_retry.is_some());

    // The DeleteAsset step is recorded before DeleteAsset is sent.
    run.fake
        .fail_next(Operation::DeleteAsset, None, ErrorKind::Unavailable);
    assert!(run.reconcile().await.is_err());
    let deletion = run.status().deletion.expect("deletion progress");
    assert_eq!(deletion.phase, DeletionPhase::DeleteRequested);
    assert_eq!(deletion.current_operation.as_deref(), Some("DeleteAsset"));
    assert_eq!(run.fake.state_of(LINE), Some(AssetState::Active));
}

#[tokio::test]
async fn throttling_backs_off_exponentially_then_completes_with_one_token() {
    let fake = plant();
    for _ in 0..4 {
        fake.fail_next(Operation::DeleteAsset, Some(LINE), ErrorKind::Throttled);
    }
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let backoff = run.ctx.settings.backoff;
    for attempt in 1..=4u32 {
        let result = run.reconcile().await;
        let (class, delay) = retry_after(&result).expect("throttled");
        assert_eq!(class, ErrorClass::Throttled);
        assert!(
            delay >= backoff.base && delay <= backoff.ceiling(attempt),
            "{delay:?}"
        );
        assert_eq!(run.status().deletion.map(|d| d.attempts), Some(attempt));
    }
    assert!(run.reasons().contains(&"RetryScheduled"));
    run.until_released(5).await;
    let deletes = run.fake.journal();
    let tokens: std::collections::HashSet<_> = deletes
        .iter()
        .filter(|c| c.operation == Operation::DeleteAsset)
        .map(|c| c.client_token.clone())
        .collect();
    assert_eq!(tokens.len(), 1, "every retry reuses the token");
    assert_eq!(run.fake.calls(Operation::DeleteAsset), 5);
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
    // Success resets the backoff.
    assert_eq!(run.ctx.failures.get(UID), 0);
}

#[tokio::test]
async fn conflicts_are_observed_again_after_a_short_backoff() {
    let fake = plant();
    fake.fail_next(Operation::DisassociateAssets, None, ErrorKind::Conflict);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let (class, delay) = retry_after(&run.reconcile().await).expect("conflict");
    assert_eq!(class, ErrorClass::Conflict);
    assert!(delay <= run.ctx.settings.conflict_backoff.max);
    run.until_released(5).await;
    assert!(!run.fake.exists(LINE));
}

#[tokio::test]
async fn a_restart_after_a_lost_delete_response_replays_the_same_token_without_effect() {
    let fake = plant();
    fake.lose_next_response(Operation::DeleteAsset);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    assert!(run.reconcile().await.is_err());
    // SiteWise accepted it, but the operator never heard back, then crashed.
    assert_eq!(run.fake.state_of(LINE), Some(AssetState::Deleting));
    run.restart();
    run.until_released(5).await;
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
    assert!(!run.fake.exists(LINE));
}

#[tokio::test]
async fn a_restart_in_the_middle_resumes_without_repeating_finished_steps() {
    let fake = plant();
    // The second child's disassociation takes effect but the answer is lost: the operator
    // "dies" right after sending it.
    fake.lose_next_response(Operation::DisassociateAssets);
    fake.fail_next(
        Operation::DisassociateAssets,
        Some(LINE),
        ErrorKind::Unavailable,
    );
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    assert!(run.reconcile().await.is_err());
    run.restart();
    run.until_released(6).await;
    let effective = run.fake.effective_calls(Operation::DisassociateAssets);
    assert_eq!(
        effective.len(),
        4,
        "each link removed exactly once: {effective:#?}"
    );
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
    assert!(!run.fake.exists(LINE));
}

#[tokio::test]
async fn an_asset_that_vanishes_midway_counts_as_deleted() {
    let fake = plant();
    fake.fail_next(Operation::DeleteAsset, None, ErrorKind::Throttled);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    assert!(run.reconcile().await.is_err());
    run.fake.vanish(LINE);
    let before = mutating_calls(&run.fake);
    assert!(run.reconcile().await.is_ok());
    assert_eq!(
        mutating_calls(&run.fake),
        before,
        "nothing is sent for a gone asset"
    );
}

#[tokio::test]
async fn a_child_that_vanishes_between_listing_and_disassociation_is_skipped() {
    let fake = plant();
    // M1's own resource deletes it after the line's links were read.
    fake.vanish_on_next(Operation::DisassociateAssets, M1);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let first = run.reconcile().await;
    assert_eq!(
        retry_after(&first).map(|(c, _)| c),
        Some(ErrorClass::Pending)
    );
    assert!(run.fake.journal().iter().any(|c| {
        c.operation == Operation::DisassociateAssets
            && c.child.as_deref() == Some(M1)
            && !c.effective
    }));
    run.until_released(4).await;
    assert!(!run.fake.exists(LINE));
}

#[tokio::test]
async fn a_not_found_answer_for_a_link_that_still_exists_is_caught_before_the_asset_goes() {
    let fake = plant();
    // SiteWise says the link is not there (a stale read), but it is.
    fake.fail_next(
        Operation::DisassociateAssets,
        Some(LINE),
        ErrorKind::NotFound,
    );
    let mut run = Run::new(fake.clone(), resource(LINE, DeletionPolicy::Delete));
    run.until_released(6).await;
    // DeleteAsset was refused while the link remained; a fresh read and a new round removed it.
    assert!(!fake.exists(LINE));
    assert!(fake.links().iter().all(|(p, _, c)| p != LINE && c != LINE));
    assert_eq!(run.status().deletion.map(|d| d.round), Some(1));
    assert_eq!(fake.effective_calls(Operation::DeleteAsset).len(), 1);
}

#[tokio::test]
async fn a_missing_asset_is_released_without_any_call_but_describe() {
    let mut run = Run::new(FakeSiteWise::new(), resource(LINE, DeletionPolicy::Delete));
    assert_eq!(run.until_released(1).await, 1);
    assert_eq!(mutating_calls(&run.fake), 0);
    assert_eq!(run.reasons(), vec!["AssetAlreadyGone"]);
}

#[tokio::test]
async fn retain_touches_nothing_in_sitewise() {
    let mut run = Run::new(plant(), resource(LINE, DeletionPolicy::Retain));
    assert_eq!(run.until_released(1).await, 1);
    assert!(run.fake.journal().is_empty());
    assert_eq!(run.fake.links().len(), 5);
    assert_eq!(run.reasons(), vec!["AssetRetained"]);
}

#[tokio::test]
async fn a_failed_asset_is_deleted() {
    let fake = plant();
    fake.set_state(LINE, AssetState::Failed);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    run.until_released(6).await;
    assert!(!run.fake.exists(LINE));
}

#[tokio::test]
async fn a_busy_asset_is_waited_for_without_changes() {
    let fake = plant();
    fake.set_state(LINE, AssetState::Updating);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    for _ in 0..3 {
        let (class, delay) = retry_after(&run.reconcile().await).expect("waiting");
        assert_eq!(class, ErrorClass::Pending);
        assert!(delay <= run.ctx.settings.poll_interval.mul_f64(1.2));
    }
    assert_eq!(mutating_calls(&run.fake), 0);
    assert_eq!(
        run.status().deletion.map(|d| d.phase),
        Some(DeletionPhase::WaitingForStableState)
    );
    assert!(run.events.is_empty(), "polling is not an event");
    run.fake.set_state(LINE, AssetState::Active);
    run.until_released(6).await;
}

#[tokio::test]
async fn an_unreachable_sitewise_is_transient_not_terminal() {
    let fake = plant();
    for _ in 0..3 {
        fake.fail_next(Operation::DescribeAsset, None, ErrorKind::Unavailable);
    }
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (class, delay) = retry_after(&run.reconcile().await).expect("retried");
        assert_eq!(class, ErrorClass::Transient);
        delays.push(delay);
    }
    let status = run.status();
    assert!(status::condition(&status, status::TERMINAL).is_none());
    let synced = status::condition(&status, status::SYNCED).expect("Synced");
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "TransientError")
    );
    assert_eq!(status.deletion.as_ref().map(|d| d.attempts), Some(3));
    assert!(
        run.events
            .iter()
            .all(|e| e.reason == "TransientError" && e.warning)
    );
    assert!(delays.iter().all(|d| *d <= run.ctx.settings.backoff.max));
    // SiteWise answers again: the deletion finishes.
    run.until_released(6).await;
}

#[tokio::test]
async fn a_permanent_error_is_terminal_with_a_warning_and_a_slow_retry() {
    let fake = plant();
    fake.fail_next(Operation::DeleteAsset, None, ErrorKind::Permanent);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let (class, delay) = retry_after(&run.reconcile().await).expect("terminal");
    assert_eq!(class, ErrorClass::Terminal);
    assert!(
        delay >= run.ctx.settings.terminal_retry.mul_f64(0.8),
        "no hot loop: {delay:?}"
    );
    let status = run.status();
    let terminal = status::condition(&status, status::TERMINAL).expect("Terminal condition");
    assert_eq!(terminal.status, "True");
    assert!(terminal.message.contains("AccessDeniedException"));
    let warning = run
        .events
        .iter()
        .find(|e| e.warning)
        .expect("a Warning event");
    assert_eq!(warning.reason, "PermanentError");
    // The next attempt that succeeds clears it.
    run.until_released(4).await;
}

#[tokio::test]
async fn a_parent_link_that_moves_while_read_is_read_again_later() {
    let fake = plant();
    // ListAssociatedAssets(PARENT) names the plant, but no hierarchy the plant declares lists
    // the line (as when the link moves between the two reads).
    fake.vanish(LINE);
    fake.add_asset(LINE, Some("line-1"), &[]);
    fake.link(PLANT, "30000000-0000-4000-8000-00000000dead", LINE);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let (class, _) = retry_after(&run.reconcile().await).expect("re-read");
    assert_eq!(class, ErrorClass::Conflict);
    assert_eq!(
        run.fake.calls(Operation::DeleteAsset),
        0,
        "never delete over a link"
    );
}

#[tokio::test]
async fn a_child_associated_again_is_detached_with_a_new_token() {
    let fake = plant();
    fake.fail_next(Operation::DeleteAsset, None, ErrorKind::Unavailable);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    assert!(run.reconcile().await.is_err());
    // Someone puts a machine back under the line before the operator retries.
    run.fake.link(LINE, H_LINE_MACHINES, M1);
    run.until_released(6).await;
    assert!(!run.fake.exists(LINE));
    let m1_detaches: Vec<_> = run
        .fake
        .effective_calls(Operation::DisassociateAssets)
        .into_iter()
        .filter(|c| c.child.as_deref() == Some(M1))
        .collect();
    assert_eq!(
        m1_detaches.len(),
        2,
        "detached again, not replayed: {m1_detaches:#?}"
    );
    assert_ne!(m1_detaches[0].client_token, m1_detaches[1].client_token);
    assert_eq!(
        m1_detaches[1].client_token,
        Some(token::disassociate_assets(
            UID,
            LINE,
            H_LINE_MACHINES,
            M1,
            1
        ))
    );
    assert_eq!(run.status().deletion.map(|d| d.round), Some(1));
}

#[tokio::test]
async fn force_orphan_releases_a_stuck_deletion_without_touching_sitewise() {
    let fake = plant();
    fake.fail_next(Operation::DescribeAsset, Some(LINE), ErrorKind::Permanent);
    let mut run = Run::new(fake, resource(LINE, DeletionPolicy::Delete));
    let (class, _) = retry_after(&run.reconcile().await).expect("stuck");
    assert_eq!(class, ErrorClass::Terminal);
    let calls_before = run.fake.journal().len();

    // An empty reason does not count.
    run.obj.metadata.annotations = Some(
        [(
            crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
            " ".to_string(),
        )]
        .into(),
    );
    assert!(run.obj.force_orphan_reason().is_none());
    run.obj.metadata.annotations = Some(
        [(
            crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
            "IAM role removed, ticket OPS-123".to_string(),
        )]
        .into(),
    );
    assert!(run.reconcile().await.is_ok(), "finalizer released");
    assert_eq!(run.fake.journal().len(), calls_before, "no SiteWise call");
    assert_eq!(run.fake.state_of(LINE), Some(AssetState::Active));
    assert_eq!(run.fake.links().len(), 5);
    let orphaned = run
        .events
        .iter()
        .find(|e| e.reason == "AssetOrphaned")
        .expect("event");
    assert!(orphaned.warning);
    assert!(orphaned.note.contains("OPS-123") && orphaned.note.contains(LINE));
    assert!(
        run.ctx
            .metrics
            .encode()
            .contains("sitewise_operator_orphaned_total 1")
    );
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_sends_no_mutation() {
    let fence = crate::leader::Fence::default();
    let mut run = Run::new(plant(), resource(LINE, DeletionPolicy::Delete));
    run.ctx = Context::new(run.fake.clone(), settings(), Arc::new(Metrics::default()))
        .with_fence(crate::leader::Fence::closed());
    let (class, _) = retry_after(&run.reconcile().await).expect("refused");
    assert_eq!(class, ErrorClass::Transient);
    assert_eq!(mutating_calls(&run.fake), 0, "reads only");
    // Leadership regained (a fresh, open fence): the deletion goes on.
    run.ctx =
        Context::new(run.fake.clone(), settings(), Arc::new(Metrics::default())).with_fence(fence);
    run.until_released(6).await;
}
mod block;
mod cascade;
mod ownership;
mod prune;

#[test]
fn kubernetes_failures_back_off_briefly_and_apart_from_sitewise_failures() {
    let ctx = Context::new(
        FakeSiteWise::new(),
        settings(),
        Arc::new(Metrics::default()),
    );
    let kube = Error::Kube(kube::Error::Api(
        kube::core::Status::failure("connection refused", "ServiceUnavailable")
            .with_code(503)
            .boxed(),
    ));
    assert_eq!(kube.class(), ErrorClass::Kubernetes);
    for _ in 0..20 {
        let (delay, _) = ctx.retry_delay(UID, ErrorClass::Kubernetes);
        assert!(delay <= ctx.settings.kube_backoff.max, "{delay:?}");
    }
    // The outage did not count against SiteWise: its next failure is the first.
    let (_, attempts) = ctx.retry_delay(UID, ErrorClass::Transient);
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn faults_on_different_calls_do_not_compound_into_long_backoff() {
    let fake = plant();
    let mut run = Run::new(fake.clone(), resource(LINE, DeletionPolicy::Delete));
    // A busy account: each attempt meets a fault at another call than the one before.
    let mut attempts = Vec::new();
    for op in [
        Operation::DescribeAsset,
        Operation::DisassociateAssets,
        Operation::DescribeAsset,
        Operation::DisassociateAssets,
        Operation::DescribeAsset,
    ] {
        fake.fail_next(op, None, ErrorKind::Throttled);
        let (class, delay) = retry_after(&run.reconcile().await).expect("throttled");
        assert_eq!(class, ErrorClass::Throttled);
        assert!(
            delay <= run.ctx.settings.backoff.ceiling(2),
            "{op:?}: {delay:?}"
        );
        attempts.push(run.status().deletion.map(|d| d.attempts).unwrap_or(0));
    }
    assert!(attempts.iter().all(|n| *n <= 2), "{attempts:?}");
    // The same call refused again and again still backs off exponentially (the last fault
    // above was on DescribeAsset too).
    for _ in 0..3 {
        fake.fail_next(Operation::DescribeAsset, None, ErrorKind::Throttled);
        let _ = run.reconcile().await;
    }
    assert_eq!(run.status().deletion.map(|d| d.attempts), Some(4));
    run.until_released(10).await;
}

#[tokio::test]
async fn a_retry_reuses_the_links_and_claim_it_read_instead_of_reading_them_again() {
    let fake = plant();
    let mut run = Run::new(fake.clone(), resource(LINE, DeletionPolicy::Delete));
    fake.fail_next(Operation::DisassociateAssets, None, ErrorKind::Throttled);
    assert!(run.reconcile().await.is_err());
    let lists = fake.calls(Operation::ListAssociatedAssets);
    let tags = fake.calls(Operation::ListTagsForResource);
    assert!(lists > 0 && tags > 0);
    run.until_released(6).await;
    assert_eq!(
        fake.calls(Operation::ListAssociatedAssets),
        lists,
        "links not read again"
    );
    assert_eq!(
        fake.calls(Operation::ListTagsForResource),
        tags,
        "claim not read again"
    );
    assert!(fake.links().iter().all(|(p, _, c)| p != LINE && c != LINE));
    assert!(!fake.exists(LINE));
}
