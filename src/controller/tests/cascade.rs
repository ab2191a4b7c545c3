//! `childPolicy: Cascade`: unmanaged descendants deleted depth first, owned ones detached.

use std::sync::Arc;

use super::*;
use crate::controller::claim::MemoryResources;
use crate::crd::ChildPolicy;

fn cascading_plant() -> SiteWiseAsset {
    let mut obj = resource(PLANT, DeletionPolicy::Delete);
    obj.spec.child_policy = ChildPolicy::Cascade;
    obj
}

/// A live resource (Retain) that owns `asset`.
fn owner(name: &str, uid: &str, asset: &str) -> SiteWiseAsset {
    let mut obj = resource(asset, DeletionPolicy::Retain);
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.metadata.deletion_timestamp = None;
    obj.status = Some(SiteWiseAssetStatus {
        asset_id: Some(asset.into()),
        state: Some("ACTIVE".into()),
        ownership: Some(Ownership::Adopted),
        ..SiteWiseAssetStatus::default()
    });
    obj
}

fn deletes_of(fake: &FakeSiteWise, id: &str) -> usize {
    fake.effective_calls(Operation::DeleteAsset)
        .iter()
        .filter(|c| c.target == id)
        .count()
}

#[tokio::test]
async fn unmanaged_descendants_go_depth_first_and_an_owned_one_stays() {
    let mut run = Run::new(plant(), cascading_plant());
    let cache = Arc::new(MemoryResources::default());
    cache.upsert(&owner("machine-2", "m2-uid", M2));
    run.ctx.resources = cache;
    run.until_released(30).await;
    for gone in [PLANT, LINE, OTHER_LINE, M1, CELL] {
        assert!(!run.fake.exists(gone), "{gone} left");
        assert_eq!(deletes_of(&run.fake, gone), 1, "{gone}: one DeleteAsset");
    }
    assert!(run.fake.exists(M2), "the owned machine stays");
    assert!(
        run.fake.links().iter().all(|(_, _, c)| c != M2),
        "and is detached"
    );
    // Children before parents: every descendant's DeleteAsset comes before its parent's.
    let order: Vec<String> = run
        .fake
        .effective_calls(Operation::DeleteAsset)
        .into_iter()
        .map(|c| c.target)
        .collect();
    let at = |id: &str| order.iter().position(|t| t == id).expect("deleted");
    assert!(at(M1) < at(LINE) && at(CELL) < at(LINE) && at(LINE) < at(PLANT));
    assert!(run.status().deletion.is_none_or(|d| d.cascade.is_empty()));
    assert!(run.reasons().contains(&"DescendantsDeleted"));
    assert!(run.reasons().contains(&"DescendantDetached"));
}

#[tokio::test]
async fn a_descendant_detached_before_a_crash_is_deleted_after_it() {
    let fake = plant();
    // The earlier process recorded M1, detached it and died before DeleteAsset.
    fake.unlink(M1);
    let mut obj = cascading_plant();
    if let Some(status) = obj.status.as_mut() {
        status.deletion = Some(Box::new(crate::crd::DeletionProgress {
            cascade: vec![M1.into()],
            ..Default::default()
        }));
    }
    let mut run = Run::new(fake, obj);
    run.until_released(30).await;
    assert!(!run.fake.exists(M1), "the orphan of the crash is deleted");
    assert_eq!(deletes_of(&run.fake, M1), 1);
}
