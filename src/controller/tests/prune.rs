//! Deletions at the quota: what a prune costs per asset (calls, status writes, events), a
//! parent waiting for children that detach themselves, a big parent giving up its slot, and
//! what the watch cache keeps of each resource.

use std::sync::Arc;

use super::*;
use crate::controller::claim::MemoryResources;
use crate::crd::ParentLinkStatus;

const AREA: &str = "30000000-0000-4000-8000-000000000001";
const LEAF: &str = "30000000-0000-4000-8000-000000000002";
const LEAF_UID: &str = "6e3d9b42-8a1f-4c7b-8d2e-3f4a5b6c7d8e";
const H_AREA: &str = "40000000-0000-4000-8000-000000000001";

/// A resource that created `asset` and linked it under `parent`, now being deleted.
fn created(name: &str, uid: &str, asset: &str, parent: Option<&str>) -> SiteWiseAsset {
    let mut obj = resource(asset, DeletionPolicy::Delete);
    obj.spec.asset_id = None;
    obj.spec.asset_model_id = Some("machine-model".into());
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.status = Some(SiteWiseAssetStatus {
        asset_id: Some(asset.into()),
        state: Some("ACTIVE".into()),
        ownership: Some(Ownership::Created),
        parent_link: parent.map(|p| ParentLinkStatus {
            parent_id: p.into(),
            hierarchy_id: H_AREA.into(),
            associated: true,
            round: 0,
        }),
        ..SiteWiseAssetStatus::default()
    });
    obj
}

fn area_with_leaf() -> FakeSiteWise {
    let fake = FakeSiteWise::new();
    fake.add_asset(AREA, None, &[H_AREA]);
    fake.add_asset(LEAF, None, &[]);
    fake.link(AREA, H_AREA, LEAF);
    fake.set_deleting_polls(0);
    fake
}

fn with_cache(fake: FakeSiteWise, obj: SiteWiseAsset, cache: &Arc<MemoryResources>) -> Run {
    let mut run = Run::new(fake, obj);
    run.ctx.resources = cache.clone();
    run
}

#[tokio::test]
async fn a_leaf_whose_link_status_knows_costs_three_calls_one_write_three_events() {
    let fake = area_with_leaf();
    let leaf = created("machine", LEAF_UID, LEAF, Some(AREA));
    let mut run = Run::new(fake, leaf);
    run.until_released(5).await;
    let calls: Vec<Operation> = run.fake.journal().iter().map(|c| c.operation).collect();
    assert_eq!(
        calls,
        [
            Operation::DisassociateAssets,
            Operation::DeleteAsset,
            Operation::DescribeAsset
        ],
        "disassociate, delete, one confirming read"
    );
    // One write before DeleteAsset; none at the release, since the object goes with it.
    assert_eq!(run.statuses.len(), 1, "{:#?}", run.statuses);
    assert_eq!(
        run.reasons(),
        ["DetachedFromParent", "DeleteRequested", "AssetDeleted"]
    );
    assert!(!run.fake.exists(LEAF));
    assert!(run.fake.exists(AREA));
    // The first write already says what is going on.
    let first = &run.statuses[0];
    assert_eq!(
        status::condition(first, status::READY).map(|c| c.reason.as_str()),
        Some("Deleting")
    );
    assert_eq!(
        first.deletion.as_ref().map(|d| d.phase),
        Some(DeletionPhase::DeleteRequested)
    );
}

#[tokio::test]
async fn the_release_writes_a_last_status_only_where_another_finalizer_keeps_the_object() {
    let mut leaf = created("machine", LEAF_UID, LEAF, Some(AREA));
    if let Some(finalizers) = leaf.metadata.finalizers.as_mut() {
        finalizers.push("example.com/backup".into());
    }
    let mut run = Run::new(area_with_leaf(), leaf);
    run.until_released(5).await;
    assert_eq!(run.statuses.len(), 2);
    let last = run.statuses.last().cloned().unwrap_or_default();
    assert_eq!(last.state.as_deref(), Some("Deleted"));
    assert_eq!(
        last.deletion.map(|d| d.phase),
        Some(DeletionPhase::Done),
        "the object stays, and says its asset is gone"
    );
}

#[tokio::test]
async fn in_a_prune_the_child_removes_its_link_and_the_parent_waits_for_it() {
    let fake = area_with_leaf();
    let cache = Arc::new(MemoryResources::default());
    let leaf = created("machine", LEAF_UID, LEAF, Some(AREA));
    let area = created("area", UID, AREA, None);
    cache.upsert(&leaf);
    cache.upsert(&area);
    let mut parent = with_cache(fake.clone(), area, &cache);
    let mut child = with_cache(fake.clone(), leaf, &cache);

    // The parent goes first: it sends nothing while its child is on its way.
    let waiting = parent.reconcile().await;
    assert_eq!(
        retry_after(&waiting).map(|(c, _)| c),
        Some(ErrorClass::Pending)
    );
    assert!(fake.journal().is_empty(), "{:#?}", fake.journal());
    assert_eq!(
        parent.status().deletion.map(|d| d.phase),
        Some(DeletionPhase::DisassociatingChildren),
        "a person sees what the parent waits for"
    );
    // The child detaches itself; its status (as the watch would deliver it) frees the parent.
    assert!(child.reconcile().await.is_err(), "awaiting the deletion");
    cache.upsert(&child.obj);
    parent.until_released(5).await;
    child.until_released(5).await;
    assert!(!fake.exists(AREA) && !fake.exists(LEAF));
    assert_eq!(
        fake.calls(Operation::DisassociateAssets),
        1,
        "one call per link"
    );
    assert_eq!(fake.effective_calls(Operation::DeleteAsset).len(), 2);
    assert_eq!(fake.calls(Operation::ListAssociatedAssets), 0);
}

#[tokio::test]
async fn a_child_no_resource_manages_is_found_by_sitewise_refusing_the_delete() {
    let fake = area_with_leaf();
    let area = created("area", UID, AREA, None);
    let mut run = Run::new(fake, area);
    run.until_released(5).await;
    assert!(!run.fake.exists(AREA));
    assert!(
        run.fake.exists(LEAF),
        "the unmanaged child is detached, not deleted"
    );
    assert!(run.fake.links().is_empty());
    let deletes = run.fake.calls(Operation::DeleteAsset);
    assert_eq!(deletes, 2, "refused once, then accepted");
    assert_eq!(run.fake.effective_calls(Operation::DeleteAsset).len(), 1);
}

#[tokio::test]
async fn a_live_child_is_detached_by_its_parent_without_listing() {
    let fake = area_with_leaf();
    let cache = Arc::new(MemoryResources::default());
    let mut live = created("machine", LEAF_UID, LEAF, Some(AREA));
    live.metadata.deletion_timestamp = None;
    cache.upsert(&live);
    let mut run = with_cache(fake, created("area", UID, AREA, None), &cache);
    // Just deleted: the child may be joining a prune; nothing is sent for it yet.
    assert!(run.reconcile().await.is_err());
    assert!(run.fake.journal().is_empty(), "{:#?}", run.fake.journal());
    // Later, the child is still live: its parent detaches it.
    run.obj.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now() - jiff::SignedDuration::from_secs(11),
        ));
    run.until_released(5).await;
    assert!(run.fake.exists(LEAF) && !run.fake.exists(AREA));
    assert_eq!(run.fake.calls(Operation::ListAssociatedAssets), 0);
    assert_eq!(run.fake.calls(Operation::DeleteAsset), 1);
}

#[tokio::test]
async fn a_parent_with_many_children_gives_up_its_slot_between_batches() {
    let fake = FakeSiteWise::new();
    fake.add_asset(AREA, None, &[H_AREA]);
    let children: Vec<String> = (0..40)
        .map(|i| format!("50000000-0000-4000-8000-{i:012}"))
        .collect();
    for child in &children {
        fake.add_asset(child, None, &[]);
        fake.link(AREA, H_AREA, child);
    }
    fake.set_deleting_polls(0);
    let mut run = Run::new(fake, resource(AREA, DeletionPolicy::Delete));
    let mut batches = Vec::new();
    for _ in 0..10 {
        let before = run.fake.calls(Operation::DisassociateAssets);
        let result = run.reconcile().await;
        batches.push(run.fake.calls(Operation::DisassociateAssets) - before);
        if result.is_ok() {
            break;
        }
    }
    assert!(!run.fake.exists(AREA));
    assert_eq!(run.fake.calls(Operation::DisassociateAssets), 40);
    assert!(
        batches.iter().all(|b| *b <= 16),
        "at most 16 calls per reconcile: {batches:?}"
    );
    let progress: Vec<u32> = run
        .statuses
        .iter()
        .filter_map(|s| s.deletion.as_ref().map(|d| d.children_remaining))
        .collect();
    assert!(
        progress.contains(&24) && progress.contains(&8),
        "{progress:?}"
    );
}

#[test]
fn the_cache_drops_what_no_reconcile_reads_and_keeps_the_rest() {
    let mut obj = created("machine", LEAF_UID, LEAF, Some(AREA));
    obj.metadata.managed_fields = Some(vec![Default::default(); 3]);
    obj.metadata.annotations = Some(
        [
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{\"spec\": {}}".to_string(),
            ),
            (
                crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
                "stuck".to_string(),
            ),
        ]
        .into(),
    );
    let before = obj.clone();
    crate::controller::trim(&mut obj);
    assert_eq!(obj.metadata.managed_fields, None);
    assert_eq!(obj.force_orphan_reason(), Some("stuck"));
    assert_eq!(obj.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
    assert_eq!((obj.spec, obj.status), (before.spec, before.status));
}
