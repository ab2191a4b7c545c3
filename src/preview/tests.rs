use super::*;
use crate::crd::{ChildPolicy, DeletionPolicy, Ownership, SiteWiseAssetSpec, SiteWiseAssetStatus};
use kube::api::ObjectMeta;

const SITE: &str = "70000000-0000-4000-8000-000000000001";
const AREA: &str = "70000000-0000-4000-8000-000000000002";
const SPARE: &str = "70000000-0000-4000-8000-000000000003";
const H_SITE: &str = "80000000-0000-4000-8000-000000000001";
const H_AREA: &str = "80000000-0000-4000-8000-000000000002";

fn resource(
    name: &str,
    uid: &str,
    asset: &str,
    policy: DeletionPolicy,
    children: ChildPolicy,
) -> SiteWiseAsset {
    let mut obj = SiteWiseAsset::new(
        name,
        SiteWiseAssetSpec {
            asset_id: Some(asset.into()),
            deletion_policy: policy,
            child_policy: children,
            ..Default::default()
        },
    );
    obj.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some("plant".into()),
        uid: Some(uid.into()),
        finalizers: Some(vec![crate::crd::FINALIZER.into()]),
        ..Default::default()
    };
    obj.status = Some(SiteWiseAssetStatus {
        asset_id: Some(asset.into()),
        state: Some("ACTIVE".into()),
        ownership: Some(Ownership::Adopted),
        ..Default::default()
    });
    obj
}

/// The plan of deleting `targets`, the only resources of the cluster.
async fn plan_of(sw: &FakeSiteWise, targets: &[SiteWiseAsset]) -> Plan {
    plan(sw, targets, targets, "cluster", (30, 100))
        .await
        .expect("plan")
}

/// A site with an area under it, and a spare asset (no resource) under the area.
fn sitewise() -> FakeSiteWise {
    let sw = FakeSiteWise::new();
    sw.add_asset(SITE, None, &[H_SITE]);
    sw.add_asset(AREA, None, &[H_AREA]);
    sw.add_asset(SPARE, None, &[]);
    sw.link(SITE, H_SITE, AREA);
    sw.link(AREA, H_AREA, SPARE);
    sw
}

#[tokio::test]
async fn the_plan_runs_the_deletion_on_a_copy_and_changes_nothing() {
    let sw = sitewise();
    let area = resource(
        "area",
        "a-uid",
        AREA,
        DeletionPolicy::Delete,
        ChildPolicy::Detach,
    );
    let plan = plan_of(&sw, &[area]).await;
    let area_plan = &plan.resources[0];
    assert_eq!(area_plan.outcome, Outcome::Deleted);
    let reasons: Vec<&str> = area_plan.events.iter().map(|(r, _)| r.as_str()).collect();
    for reason in [
        "ChildDisassociated",
        "DetachedFromParent",
        "DeleteRequested",
        "AssetDeleted",
    ] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
    assert_eq!(plan.calls.get("DeleteAsset"), Some(&1));
    assert_eq!(plan.calls.get("DisassociateAssets"), Some(&2));
    // The real SiteWise was only read.
    assert!(sw.exists(AREA) && sw.links().len() == 2);
    assert_eq!(
        sw.calls(Operation::DeleteAsset) + sw.calls(Operation::DisassociateAssets),
        0
    );
    let text = render(&plan);
    assert!(
        text.contains("plant/area") && text.contains("DELETED") && text.contains("AssetDeleted:"),
        "{text}"
    );
}

#[tokio::test]
async fn blocked_and_retained_resources_are_shown_as_such() {
    let sw = sitewise();
    let area = resource(
        "area",
        "a-uid",
        AREA,
        DeletionPolicy::Delete,
        ChildPolicy::Block,
    );
    let site = resource(
        "site",
        "s-uid",
        SITE,
        DeletionPolicy::Retain,
        ChildPolicy::Detach,
    );
    let plan = plan_of(&sw, &[area, site]).await;
    let outcome = |name: &str| {
        plan.resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome.clone())
    };
    assert!(
        matches!(outcome("area"), Some(Outcome::Blocked(children)) if children.len() == 1 && children[0].contains(SPARE))
    );
    assert_eq!(outcome("site"), Some(Outcome::Retained));
    let text = render(&plan);
    assert!(text.contains("AssetRetained:"), "{text}");
}

#[tokio::test]
async fn a_cascade_plan_copies_and_deletes_the_whole_subtree() {
    let sw = sitewise();
    let site = resource(
        "site",
        "s-uid",
        SITE,
        DeletionPolicy::Delete,
        ChildPolicy::Cascade,
    );
    let plan = plan_of(&sw, &[site]).await;
    assert_eq!(plan.resources[0].outcome, Outcome::Deleted);
    // The site, the area under it and the spare asset under the area.
    assert_eq!(plan.calls.get("DeleteAsset"), Some(&3));
    assert!(sw.exists(SPARE) && sw.exists(AREA) && sw.exists(SITE));
}
