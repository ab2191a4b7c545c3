//! Ownership flows against the in-memory SiteWise: create, claim, pinned identity, declared
//! fields, parent links, and the deletion decisions that depend on them (not owned, Retain,
//! failed deletions). Each test drives reconciles the way the controller does, carrying status
//! from one to the next.

use std::sync::Arc;

use kube::api::ObjectMeta;

use super::super::apply::apply;
use super::super::claim::{self, MemoryResources};
use super::super::cleanup::cleanup;
use super::super::status::{self, Events, RecordedEvent, StatusWriter};
use super::super::{Context, Settings, settle};
use crate::crd::{
    DeletionPolicy, Ownership, ParentRef, SiteWiseAsset, SiteWiseAssetSpec, SiteWiseAssetStatus,
};
use crate::error::{Error, ErrorClass};
use crate::metrics::Metrics;
use crate::sitewise::fake::FakeSiteWise;
use crate::sitewise::{AssetState, Operation};
use crate::token;

const UID: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OTHER_UID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";
const CLUSTER: &str = "cluster-1";
const MODEL: &str = "30000000-0000-4000-8000-000000000001";
const LINE_MODEL: &str = "30000000-0000-4000-8000-000000000002";
const H_MACHINES: &str = "40000000-0000-4000-8000-000000000001";
const TEMP: &str = "50000000-0000-4000-8000-000000000001";
const ADOPTED: &str = "60000000-0000-4000-8000-000000000001";
const LINE_A: &str = "60000000-0000-4000-8000-00000000000a";
const LINE_B: &str = "60000000-0000-4000-8000-00000000000b";

fn fake() -> FakeSiteWise {
    let fake = FakeSiteWise::new();
    fake.add_model(MODEL, Some("machine-model"), &[], &[(TEMP, "temperature")]);
    fake.add_model(
        LINE_MODEL,
        Some("line-model"),
        &[(H_MACHINES, "Machines")],
        &[],
    );
    for line in [LINE_A, LINE_B] {
        fake.add_asset(line, None, &[H_MACHINES]);
    }
    fake.add_asset(ADOPTED, Some("press-7"), &[]);
    fake
}

fn resource(spec: SiteWiseAssetSpec) -> SiteWiseAsset {
    let mut obj = SiteWiseAsset::new("press", spec);
    obj.metadata = ObjectMeta {
        name: Some("press".into()),
        namespace: Some("plant".into()),
        uid: Some(UID.into()),
        generation: Some(1),
        finalizers: Some(vec![crate::crd::FINALIZER.into()]),
        ..Default::default()
    };
    obj
}

fn create_spec() -> SiteWiseAssetSpec {
    SiteWiseAssetSpec {
        asset_model_id: Some("externalId:machine-model".into()),
        ..SiteWiseAssetSpec::default()
    }
}

fn adopt_spec() -> SiteWiseAssetSpec {
    SiteWiseAssetSpec {
        asset_id: Some("externalId:press-7".into()),
        ..SiteWiseAssetSpec::default()
    }
}

struct Run {
    fake: FakeSiteWise,
    ctx: Context<FakeSiteWise>,
    obj: SiteWiseAsset,
    events: Vec<RecordedEvent>,
}

impl Run {
    fn new(fake: FakeSiteWise, obj: SiteWiseAsset) -> Self {
        Self::with_resources(fake, obj, Arc::new(MemoryResources::default()))
    }

    fn with_resources(
        fake: FakeSiteWise,
        obj: SiteWiseAsset,
        resources: Arc<MemoryResources>,
    ) -> Self {
        let ctx = Context::new(
            fake.clone(),
            Settings::default(),
            Arc::new(Metrics::default()),
        )
        .with_cluster_id(CLUSTER)
        .with_resources(resources);
        Self {
            fake,
            ctx,
            obj,
            events: Vec::new(),
        }
    }

    async fn apply(&mut self) -> Result<(), Error> {
        let status = StatusWriter::in_memory(&self.obj);
        let events = Events::in_memory();
        let result = apply(&self.obj, &self.ctx, &status, &events).await;
        let result = settle(&self.obj, &self.ctx, &status, &events, result).await;
        self.obj.status = Some(status.snapshot());
        self.events.extend(events.recorded());
        self.ctx.gate.release(UID);
        result.map(|_| ())
    }

    async fn delete(&mut self) -> Result<(), Error> {
        self.obj.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let status = StatusWriter::in_memory(&self.obj);
        let events = Events::in_memory();
        let result = cleanup(&self.obj, &self.ctx, &status, &events).await;
        let result = settle(&self.obj, &self.ctx, &status, &events, result).await;
        self.obj.status = Some(status.snapshot());
        self.events.extend(events.recorded());
        self.ctx.gate.release(UID);
        result.map(|_| ())
    }

    fn status(&self) -> SiteWiseAssetStatus {
        self.obj.status.clone().unwrap_or_default()
    }

    fn ready(&self) -> (String, String) {
        status::condition(&self.status(), status::READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap_or_default()
    }

    fn reasons(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.reason.as_str()).collect()
    }

    fn mutations(&self) -> usize {
        self.fake
            .journal()
            .iter()
            .filter(|c| {
                !matches!(
                    c.operation,
                    Operation::DescribeAsset
                        | Operation::ListAssociatedAssets
                        | Operation::ListTagsForResource
                )
            })
            .count()
    }
}

#[tokio::test]
async fn create_mode_creates_the_derived_asset_with_its_claim_then_is_ready() {
    let mut run = Run::new(fake(), resource(create_spec()));
    run.apply().await.expect("created");
    let id = token::created_asset_id(UID);
    let creates = run.fake.effective_calls(Operation::CreateAsset);
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].client_token.as_deref(),
        Some(token::create_asset(UID, &id).as_str())
    );
    assert_eq!(run.status().asset_id.as_deref(), Some(id.as_str()));
    assert_eq!(run.ready(), ("False".into(), "AssetCreating".into()));
    run.apply().await.expect("ready");
    assert_eq!(run.ready(), ("True".into(), "AssetReady".into()));
    assert_eq!(run.status().ownership, Some(Ownership::Created));
    assert_eq!(run.status().observed_generation, Some(1));
    let tags = run.fake.tags(&id);
    assert_eq!(tags[claim::OWNER_TAG], format!("{CLUSTER}/{UID}"));
    assert_eq!(tags[claim::OWNER_RESOURCE_TAG], "plant/press");
    // The name defaults to the resource's.
    assert_eq!(run.fake.asset(&id).map(|a| a.name), Some("press".into()));
    assert_eq!(run.reasons(), ["AssetCreated", "AssetReady"]);
}

#[tokio::test]
async fn a_lost_create_answer_never_makes_a_second_asset() {
    let mut run = Run::new(fake(), resource(create_spec()));
    run.fake.lose_next_response(Operation::CreateAsset);
    let err = run.apply().await.expect_err("answer lost");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(run.status().asset_id, None, "nothing recorded");
    run.apply().await.expect("found by its derived ID");
    run.apply().await.expect("ready");
    assert_eq!(run.ready().0, "True");
    assert_eq!(run.fake.effective_calls(Operation::CreateAsset).len(), 1);
    assert_eq!(run.fake.calls(Operation::CreateAsset), 1);
}

#[tokio::test]
async fn an_adopted_asset_is_claimed_and_its_declared_fields_applied() {
    let mut spec = adopt_spec();
    spec.name = Some("Press 7".into());
    spec.properties = vec![crate::crd::PropertySpec {
        property: "temperature".into(),
        alias: Some("/lyon/press/temp".into()),
        ..Default::default()
    }];
    let fake = fake();
    fake.add_model(MODEL, Some("machine-model"), &[], &[(TEMP, "temperature")]);
    fake.edit(ADOPTED, |d| {
        d.properties = vec![crate::sitewise::Property {
            id: TEMP.into(),
            name: "temperature".into(),
            ..Default::default()
        }]
    });
    let mut run = Run::new(fake, resource(spec));
    // Claim, then the rename (asset UPDATING: polled), then the property.
    for _ in 0..4 {
        run.apply().await.expect("applies");
    }
    assert_eq!(run.ready(), ("True".into(), "AssetReady".into()));
    assert_eq!(run.status().ownership, Some(Ownership::Adopted));
    assert_eq!(
        run.fake.tags(ADOPTED)[claim::OWNER_TAG],
        format!("{CLUSTER}/{UID}")
    );
    let asset = run.fake.asset(ADOPTED).expect("asset");
    assert_eq!(asset.name, "Press 7");
    assert_eq!(
        asset.properties[0].alias.as_deref(),
        Some("/lyon/press/temp")
    );
    assert_eq!(
        run.reasons(),
        ["AssetClaimed", "AssetUpdated", "AssetUpdated", "AssetReady"]
    );

    // Renamed in the console: corrected at the next resync, recorded as drift, with a token
    // of its own (the same change to another version of the asset).
    run.fake.edit(ADOPTED, |d| d.name = "renamed".into());
    run.apply().await.expect("corrected");
    run.apply().await.expect("ready again");
    assert_eq!(
        run.fake.asset(ADOPTED).map(|a| a.name),
        Some("Press 7".into())
    );
    assert!(run.reasons().contains(&"DriftCorrected"));
    let updates = run.fake.effective_calls(Operation::UpdateAsset);
    assert_eq!(updates.len(), 2);
    assert_ne!(updates[0].client_token, updates[1].client_token);
}

#[tokio::test]
async fn an_asset_claimed_by_a_live_resource_is_never_changed_or_deleted() {
    let fake = fake();
    fake.set_tags(
        ADOPTED,
        &[
            (claim::OWNER_TAG, &format!("{CLUSTER}/{OTHER_UID}")),
            (claim::OWNER_RESOURCE_TAG, "plant/owner"),
        ],
    );
    let mut owner = resource(adopt_spec());
    owner.metadata.name = Some("owner".into());
    owner.metadata.uid = Some(OTHER_UID.into());
    let resources = Arc::new(MemoryResources::default());
    resources.0.lock().expect("lock").push(owner);
    let mut spec = adopt_spec();
    spec.name = Some("not mine to rename".into());
    let mut run = Run::with_resources(fake, resource(spec), resources);
    run.apply().await.expect("observed");
    run.apply().await.expect("observed again");
    assert_eq!(run.ready(), ("False".into(), "ClaimedByOther".into()));
    assert_eq!(run.status().ownership, Some(Ownership::NotOwned));
    assert!(
        run.status()
            .claimed_by
            .is_some_and(|c| c.contains("plant/owner"))
    );
    assert_eq!(
        run.reasons(),
        ["ClaimedByOther"],
        "one Warning, not one per resync"
    );
    assert_eq!(run.mutations(), 0);
    run.delete().await.expect("released");
    assert_eq!(run.mutations(), 0);
    assert!(run.fake.exists(ADOPTED));
    assert!(run.reasons().contains(&"AssetNotOwned"));
}

#[tokio::test]
async fn a_claim_whose_resource_is_gone_is_taken_over() {
    let fake = fake();
    fake.set_tags(
        ADOPTED,
        &[
            (claim::OWNER_TAG, &format!("{CLUSTER}/{OTHER_UID}")),
            (claim::OWNER_RESOURCE_TAG, "plant/orphaned"),
        ],
    );
    let mut run = Run::new(fake, resource(adopt_spec()));
    run.apply().await.expect("taken over");
    assert_eq!(run.status().ownership, Some(Ownership::Adopted));
    assert_eq!(
        run.fake.tags(ADOPTED)[claim::OWNER_TAG],
        format!("{CLUSTER}/{UID}")
    );
    // A claim of another cluster is never taken over.
    run.fake
        .set_tags(ADOPTED, &[(claim::OWNER_TAG, "cluster-2/x")]);
    let mut other = Run::new(run.fake.clone(), resource(adopt_spec()));
    other.apply().await.expect("observed");
    assert_eq!(other.ready().1, "ClaimedByOther");
}

#[tokio::test]
async fn a_reused_external_id_is_reported_and_never_deleted() {
    let mut run = Run::new(fake(), resource(adopt_spec()));
    run.apply().await.expect("adopted");
    run.fake.vanish(ADOPTED);
    let replacement = "60000000-0000-4000-8000-0000000000ff";
    run.fake.add_asset(replacement, Some("press-7"), &[]);
    run.apply().await.expect("observed");
    let (ready, reason) = run.ready();
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "AssetReplaced")
    );
    assert_eq!(run.status().asset_id.as_deref(), Some(ADOPTED));
    run.delete().await.expect("released");
    assert!(run.fake.exists(replacement));
    assert!(run.fake.tags(replacement).is_empty());
    assert_eq!(run.fake.calls(Operation::DeleteAsset), 0);
}

#[tokio::test]
async fn a_parent_is_linked_moved_and_detached_with_tokens_of_their_own() {
    let mut spec = create_spec();
    spec.parent = Some(Box::new(ParentRef {
        asset_id: Some(LINE_A.into()),
        hierarchy: H_MACHINES.into(),
        ..Default::default()
    }));
    let mut run = Run::new(fake(), resource(spec));
    run.apply().await.expect("created");
    run.apply().await.expect("linked");
    assert_eq!(run.ready().0, "True", "{:?}", run.status().conditions);
    let id = token::created_asset_id(UID);
    assert_eq!(
        run.fake.links(),
        [(LINE_A.into(), H_MACHINES.into(), id.clone())]
    );
    let link = run.status().parent_link.expect("recorded");
    assert!(link.associated);

    run.obj.spec.parent = Some(Box::new(ParentRef {
        asset_id: Some(LINE_B.into()),
        hierarchy: H_MACHINES.into(),
        ..Default::default()
    }));
    run.obj.metadata.generation = Some(2);
    run.apply().await.expect("moved");
    assert_eq!(
        run.fake.links(),
        [(LINE_B.into(), H_MACHINES.into(), id.clone())]
    );
    assert_eq!(run.status().observed_generation, Some(2));

    run.obj.spec.parent = None;
    run.obj.metadata.generation = Some(3);
    run.apply().await.expect("detached");
    assert!(run.fake.links().is_empty());
    assert_eq!(run.status().parent_link, None);
    let tokens: std::collections::HashSet<_> = run
        .fake
        .journal()
        .into_iter()
        .filter(|c| c.effective)
        .filter_map(|c| c.client_token)
        .collect();
    let with_token = run
        .fake
        .journal()
        .iter()
        .filter(|c| c.effective && c.client_token.is_some())
        .count();
    assert_eq!(
        tokens.len(),
        with_token,
        "no two effective calls share a token"
    );
    assert_eq!(
        run.reasons()
            .iter()
            .filter(|r| **r == "LinkedToParent" || **r == "DetachedFromParent")
            .count(),
        4
    );
}

#[tokio::test]
async fn a_parent_that_is_not_there_yet_is_waited_for_without_errors() {
    let mut spec = create_spec();
    spec.parent = Some(Box::new(ParentRef {
        name: Some("line".into()),
        hierarchy: "Machines".into(),
        ..Default::default()
    }));
    let mut run = Run::new(fake(), resource(spec));
    run.apply().await.expect("created");
    run.apply().await.expect("waiting is not an error");
    assert_eq!(run.ready(), ("False".into(), "WaitingForParent".into()));
    assert_eq!(run.fake.calls(Operation::AssociateAssets), 0);
}

#[tokio::test]
async fn deletion_turns_ready_false_and_retain_removes_the_claim() {
    let mut spec = adopt_spec();
    spec.deletion_policy = DeletionPolicy::Retain;
    let mut run = Run::new(fake(), resource(spec));
    run.apply().await.expect("adopted");
    assert!(run.fake.tags(ADOPTED).contains_key(claim::OWNER_TAG));
    run.delete().await.expect("retained");
    assert_eq!(run.ready(), ("False".into(), "Deleting".into()));
    assert!(run.fake.exists(ADOPTED));
    assert!(run.fake.tags(ADOPTED).is_empty(), "claim removed");
    assert_eq!(run.fake.calls(Operation::DeleteAsset), 0);
}

#[tokio::test]
async fn a_resource_deleted_before_it_adopted_anything_touches_nothing() {
    let mut run = Run::new(fake(), resource(adopt_spec()));
    run.delete().await.expect("released");
    assert!(run.fake.exists(ADOPTED));
    assert_eq!(run.mutations(), 0);
    assert_eq!(run.reasons(), ["AssetNotOwned"]);
}

#[tokio::test]
async fn a_deletion_sitewise_keeps_failing_ends_terminal_naming_force_orphan() {
    let mut run = Run::new(fake(), resource(adopt_spec()));
    run.fake.set_deleting_polls(5);
    run.apply().await.expect("adopted");
    let mut tokens = Vec::new();
    for round in 0..crate::controller::plan::MAX_DELETE_ROUNDS {
        let err = run.delete().await.expect_err("deleting");
        assert_eq!(err.class(), ErrorClass::Pending, "round {round}");
        tokens.push(token::delete_asset(UID, ADOPTED, round));
        run.fake.fail(ADOPTED, "INTERNAL_FAILURE", "disk on fire");
    }
    let err = run.delete().await.expect_err("given up");
    assert_eq!(err.class(), ErrorClass::Terminal);
    assert!(err.to_string().contains("force-orphan"), "{err}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    let sent: Vec<_> = run
        .fake
        .effective_calls(Operation::DeleteAsset)
        .into_iter()
        .filter_map(|c| c.client_token)
        .collect();
    assert_eq!(sent, tokens, "one new token per round");
    assert_eq!(
        run.reasons()
            .iter()
            .filter(|r| **r == "DeletionFailed")
            .count(),
        2
    );
    assert_eq!(run.fake.state_of(ADOPTED), Some(AssetState::Failed));
}
