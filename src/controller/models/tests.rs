//! Model flows against the in-memory SiteWise: create with the derived ID, Ready, an update
//! with the ETag read (and one refused because the model changed meanwhile), waits that name
//! what they wait for, and the deletion once nothing uses the model.

use std::sync::Arc;

use kube::api::ObjectMeta;

use super::apply::apply;
use super::cleanup::cleanup;
use super::{ModelStatus, settle};
use crate::controller::claim::{MemoryResources, OWNER_TAG};
use crate::controller::status::{Events, RecordedEvent};
use crate::controller::{Context, Settings};
use crate::crd::{
    ModelHierarchySpec, ModelPropertySpec, ModelRef, SiteWiseAsset, SiteWiseAssetModel,
    SiteWiseAssetModelSpec, SiteWiseAssetSpec,
};
use crate::error::{Error, ErrorClass};
use crate::metrics::Metrics;
use crate::sitewise::fake::FakeSiteWise;
use crate::sitewise::{NewAsset, Operation, SiteWise};
use crate::token;

const UID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

fn resource() -> SiteWiseAssetModel {
    let mut obj = SiteWiseAssetModel::new(
        "machine",
        SiteWiseAssetModelSpec {
            properties: vec![ModelPropertySpec {
                name: "temperature".into(),
                unit: Some("Celsius".into()),
                ..ModelPropertySpec::default()
            }],
            ..SiteWiseAssetModelSpec::default()
        },
    );
    obj.metadata = ObjectMeta {
        name: Some("machine".into()),
        namespace: Some("plant".into()),
        uid: Some(UID.into()),
        generation: Some(1),
        ..Default::default()
    };
    obj
}

struct Run {
    fake: FakeSiteWise,
    cache: Arc<MemoryResources>,
    ctx: Context<FakeSiteWise>,
    obj: SiteWiseAssetModel,
    events: Vec<RecordedEvent>,
}

impl Run {
    fn new(obj: SiteWiseAssetModel) -> Self {
        let fake = FakeSiteWise::new();
        let cache = Arc::new(MemoryResources::default());
        let ctx = Context::new(
            fake.clone(),
            Settings::default(),
            Arc::new(Metrics::default()),
        )
        .with_cluster_id("cluster-1")
        .with_resources(cache.clone());
        Self {
            fake,
            cache,
            ctx,
            obj,
            events: Vec::new(),
        }
    }

    /// One reconcile, the way the controller runs it (without the finalizer helper), carrying
    /// the status written to the next.
    async fn reconcile(&mut self, deleting: bool) -> Result<(), Error> {
        let status = ModelStatus::in_memory(&self.obj);
        let events = Events::in_memory();
        let result = if deleting {
            cleanup(&self.obj, &self.ctx, &status, &events).await
        } else {
            apply(&self.obj, &self.ctx, &status, &events).await
        };
        let result = settle(&self.obj, &self.ctx, &status, &events, result).await;
        self.obj.status = Some(status.snapshot());
        self.cache.upsert_model(&self.obj);
        self.events.extend(events.recorded());
        result.map(|_| ())
    }

    fn ready_reason(&self) -> String {
        self.obj
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    }

    fn reasons(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.reason.as_str()).collect()
    }
}

#[tokio::test]
async fn a_model_is_created_once_under_its_derived_id_claimed_and_ready() {
    let mut run = Run::new(resource());
    run.reconcile(false).await.expect("create");
    let id = token::created_model_id(UID);
    assert_eq!(run.ready_reason(), "ModelCreating");
    assert_eq!(
        run.obj
            .status
            .as_ref()
            .and_then(|s| s.asset_model_id.clone()),
        Some(id.clone())
    );
    let tags = run.fake.model_tags(&id);
    assert_eq!(
        tags.get(OWNER_TAG).map(String::as_str),
        Some(&*format!("cluster-1/{UID}"))
    );
    run.reconcile(false).await.expect("active");
    assert_eq!(run.ready_reason(), "ModelReady");
    assert!(run.obj.is_ready());
    assert_eq!(
        run.fake.effective_calls(Operation::CreateAssetModel).len(),
        1
    );
    let definition = run.fake.model_definition(&id).expect("model");
    assert_eq!(definition.name, "plant-machine");
    assert_eq!(definition.properties[0].unit.as_deref(), Some("Celsius"));
    // At rest: reads only.
    run.reconcile(false).await.expect("resync");
    assert_eq!(
        run.fake.effective_calls(Operation::UpdateAssetModel).len(),
        0
    );
    assert_eq!(run.reasons(), vec!["ModelCreated", "ModelReady"]);
}

#[tokio::test]
async fn a_changed_spec_updates_the_version_read_and_keeps_property_ids() {
    let mut run = Run::new(resource());
    run.reconcile(false).await.expect("create");
    run.reconcile(false).await.expect("ready");
    let id = token::created_model_id(UID);
    let temperature = run.fake.model_definition(&id).expect("model").properties[0]
        .id
        .clone();
    run.obj.spec.properties.push(ModelPropertySpec {
        name: "speed".into(),
        ..ModelPropertySpec::default()
    });
    run.obj.metadata.generation = Some(2);
    run.reconcile(false).await.expect("update");
    assert_eq!(run.ready_reason(), "ModelUpdating");
    let after = run.fake.model_definition(&id).expect("model");
    assert_eq!(after.properties.len(), 2);
    assert_eq!(
        after.properties[0].id, temperature,
        "the kept property keeps its ID"
    );
    run.reconcile(false).await.expect("ready again");
    assert_eq!(run.ready_reason(), "ModelReady");
    assert_eq!(
        run.fake.effective_calls(Operation::UpdateAssetModel).len(),
        1
    );
}

#[tokio::test]
async fn an_update_refused_for_a_stale_etag_is_reported_and_made_on_the_new_version() {
    let mut run = Run::new(resource());
    run.reconcile(false).await.expect("create");
    run.reconcile(false).await.expect("ready");
    let id = token::created_model_id(UID);
    run.obj.spec.description = Some("presses".into());
    // Someone edits the model in the console between the operator's read and its write.
    run.fake.fail_next(
        Operation::UpdateAssetModel,
        None,
        crate::sitewise::ErrorKind::PreconditionFailed,
    );
    run.reconcile(false).await.expect("refused, requeued");
    assert!(run.reasons().contains(&"ModelChangedElsewhere"));
    run.fake
        .edit_model(&id, |d| d.name = "renamed in the console".into());
    run.reconcile(false)
        .await
        .expect("update on the new version");
    let after = run.fake.model_definition(&id).expect("model");
    assert_eq!(after.description.as_deref(), Some("presses"));
    assert_eq!(after.name, "plant-machine");
}

#[tokio::test]
async fn missing_children_and_cycles_are_conditions_not_calls() {
    let mut obj = resource();
    obj.spec.hierarchies = vec![ModelHierarchySpec {
        name: "Parts".into(),
        external_id: None,
        child_model: ModelRef {
            name: Some("part".into()),
            asset_model_id: None,
        },
    }];
    let mut run = Run::new(obj);
    run.reconcile(false).await.expect("waits");
    assert_eq!(run.ready_reason(), "WaitingForChildModel");
    assert!(
        run.events.is_empty(),
        "a wait, not a warning: {:?}",
        run.events
    );
    assert!(run.fake.journal().is_empty(), "no SiteWise call");
    let mut part = resource();
    part.metadata.name = Some("part".into());
    part.metadata.uid = Some("uid-part".into());
    part.spec.hierarchies = vec![ModelHierarchySpec {
        name: "Machines".into(),
        external_id: None,
        child_model: ModelRef {
            name: Some("machine".into()),
            asset_model_id: None,
        },
    }];
    run.cache.upsert_model(&part);
    run.reconcile(false).await.expect("cycle");
    assert_eq!(run.ready_reason(), "HierarchyCycle");
    let stalled = run.obj.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    });
    assert!(stalled, "a cycle needs a person");
    assert!(run.fake.journal().is_empty());
}

fn asset_of(model: &str) -> SiteWiseAsset {
    let mut asset = SiteWiseAsset::new(
        "press",
        SiteWiseAssetSpec {
            asset_model_ref: Some(crate::crd::LocalModelRef { name: model.into() }),
            ..SiteWiseAssetSpec::default()
        },
    );
    asset.metadata.namespace = Some("plant".into());
    asset.metadata.uid = Some("uid-press".into());
    asset
}

#[tokio::test]
async fn deletion_waits_for_asset_resources_then_sitewise_assets_then_deletes_once() {
    let mut run = Run::new(resource());
    run.reconcile(false).await.expect("create");
    run.reconcile(false).await.expect("ready");
    let id = token::created_model_id(UID);
    run.cache.upsert(&asset_of("machine"));
    let err = run
        .reconcile(true)
        .await
        .expect_err("waits for the resource");
    assert_eq!(err.class(), ErrorClass::Pending);
    let status = run.obj.status.clone().unwrap_or_default();
    assert_eq!(status.waiting_for, vec!["SiteWiseAsset press".to_string()]);
    // The resource is gone, but SiteWise still has an asset of the model (made elsewhere).
    run.cache.0.lock().expect("cache").clear();
    let console = NewAsset {
        asset_id: "70000000-0000-4000-8000-000000000001".into(),
        model_id: id.clone(),
        name: "made in the console".into(),
        ..NewAsset::default()
    };
    run.fake
        .create_asset(&console, "console-token-000000000000000000000000")
        .await
        .expect("asset");
    run.reconcile(true).await.expect_err("waits for the asset");
    let status = run.obj.status.clone().unwrap_or_default();
    assert!(
        status.waiting_for[0].contains("made in the console"),
        "{status:?}"
    );
    assert_eq!(run.fake.calls(Operation::DeleteAssetModel), 0);
    assert_eq!(
        run.reasons()
            .iter()
            .filter(|r| **r == "WaitingForUsers")
            .count(),
        1,
        "one event for the wait, not one per poll"
    );
    run.fake.vanish(&console.asset_id);
    run.reconcile(true).await.expect_err("deleting");
    run.reconcile(true).await.expect("gone");
    assert!(!run.fake.model_exists(&id));
    let deletes = run.fake.effective_calls(Operation::DeleteAssetModel);
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].client_token.as_deref(),
        Some(token::delete_asset_model(UID, &id).as_str())
    );
}

#[tokio::test]
async fn retain_leaves_the_model_and_removes_the_claim() {
    let mut obj = resource();
    obj.spec.deletion_policy = crate::crd::DeletionPolicy::Retain;
    let mut run = Run::new(obj);
    run.reconcile(false).await.expect("create");
    run.reconcile(false).await.expect("ready");
    let id = token::created_model_id(UID);
    run.reconcile(true).await.expect("released");
    assert!(run.fake.model_exists(&id));
    assert!(!run.fake.model_tags(&id).contains_key(OWNER_TAG));
    assert_eq!(run.fake.calls(Operation::DeleteAssetModel), 0);
}

#[tokio::test]
async fn force_orphan_releases_a_model_whose_deletion_cannot_finish() {
    let mut run = Run::new(resource());
    run.reconcile(false).await.expect("create");
    run.reconcile(false).await.expect("ready");
    run.cache.upsert(&asset_of("machine"));
    run.reconcile(true).await.expect_err("waits");
    run.obj.metadata.annotations = Some(
        [(
            crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
            "the assets stay".to_string(),
        )]
        .into(),
    );
    run.reconcile(true).await.expect("released");
    assert!(run.fake.model_exists(&token::created_model_id(UID)));
    assert!(run.reasons().contains(&"ModelOrphaned"));
}
