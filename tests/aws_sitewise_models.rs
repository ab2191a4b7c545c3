//! The operator's asset-model calls (aws-sdk-iotsitewise) against the emulator: a model
//! created under a caller-chosen ID and replayed by its token, the ETag that UpdateAssetModel
//! and DeleteAssetModel send as If-Match, property IDs kept across an update, ListAssets of a
//! model, and the refusals a model's deletion must tell apart.

use std::time::Duration;

use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings, Timings};
use sitewise_operator::sitewise::aws::{AwsSiteWise, emulator_client};
use sitewise_operator::sitewise::{
    AssetState, ErrorKind, ModelDefinition, ModelHierarchy, ModelProperty, NewAsset, NewModel,
    PropertyKind, SiteWise, list_assets_of_model,
};

const MACHINE: &str = "5d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const LINE: &str = "6e1d2c3b-4f5a-4b6c-9d7e-8f9a0b1c2d3e";

async fn emulator() -> (Emulator, AwsSiteWise) {
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            ..Quotas::default()
        },
        timings: Timings {
            create: Duration::from_millis(50),
            update: Duration::from_millis(50),
            delete: Duration::from_millis(50),
        },
        ..Settings::default()
    };
    let emu = Emulator::start_local(settings).await.expect("emulator");
    let sitewise = AwsSiteWise::new(emulator_client(&emu.endpoint()));
    (emu, sitewise)
}

fn token(n: u8) -> String {
    format!("0c9b8a7f-6e5d-4c3b-8a2f-1e0d9c8b7a{n:02}")
}

async fn active(sw: &AwsSiteWise, model: &str) -> String {
    for _ in 0..100 {
        let d = sw.describe_asset_model(model).await.expect("describe");
        if d.state == AssetState::Active {
            return d.etag.expect("DescribeAssetModel answers an ETag");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("model {model} did not become ACTIVE");
}

fn machine() -> NewModel {
    NewModel {
        model_id: MACHINE.into(),
        definition: ModelDefinition {
            name: "Machine".into(),
            description: Some("presses".into()),
            external_id: Some("machine".into()),
            properties: vec![
                ModelProperty {
                    name: "Serial".into(),
                    data_type: "STRING".into(),
                    kind: PropertyKind::Attribute {
                        default_value: Some("unknown".into()),
                    },
                    ..ModelProperty::default()
                },
                ModelProperty {
                    name: "Temperature".into(),
                    data_type: "DOUBLE".into(),
                    unit: Some("C".into()),
                    ..ModelProperty::default()
                },
            ],
            hierarchies: Vec::new(),
        },
        tags: [("team".to_string(), "press-shop".to_string())].into(),
    }
}

#[tokio::test]
async fn a_model_is_created_under_its_id_replayed_by_its_token_and_updated_by_etag() {
    let (_emu, sw) = emulator().await;
    let created = sw
        .create_asset_model(&machine(), &token(1))
        .await
        .expect("create");
    assert_eq!(created.id, MACHINE);
    assert_eq!(created.state, AssetState::Creating);
    let replay = sw
        .create_asset_model(&machine(), &token(1))
        .await
        .expect("replay");
    assert_eq!(replay.id, MACHINE);
    let etag = active(&sw, MACHINE).await;
    let read = sw
        .describe_asset_model("externalId:machine")
        .await
        .expect("by external id");
    assert_eq!(read.id, MACHINE);
    assert_eq!(read.definition.description.as_deref(), Some("presses"));
    assert_eq!(
        read.definition.properties[0].kind,
        PropertyKind::Attribute {
            default_value: Some("unknown".into())
        }
    );
    assert_eq!(
        sw.list_tags(&read.arn).await.expect("tags")["team"],
        "press-shop"
    );
    let serial = read.definition.properties[0].id.clone();
    assert!(serial.is_some());
    let mut want = read.definition.clone();
    want.properties.push(ModelProperty {
        name: "Speed".into(),
        data_type: "DOUBLE".into(),
        ..ModelProperty::default()
    });
    let state = sw
        .update_asset_model(MACHINE, &want, &etag, &token(2))
        .await
        .expect("update");
    assert_eq!(state, AssetState::Updating);
    let newer = active(&sw, MACHINE).await;
    assert_ne!(newer, etag);
    let after = sw.describe_asset_model(MACHINE).await.expect("describe");
    assert_eq!(after.definition.properties.len(), 3);
    assert_eq!(after.definition.properties[0].id, serial, "kept by its ID");
    let stale = sw
        .update_asset_model(MACHINE, &want, &etag, &token(3))
        .await
        .expect_err("stale ETag");
    assert_eq!(stale.kind, ErrorKind::PreconditionFailed, "{stale:?}");
    let stale = sw
        .delete_asset_model(MACHINE, Some(&etag), &token(4))
        .await
        .expect_err("stale ETag");
    assert_eq!(stale.kind, ErrorKind::PreconditionFailed);
}

#[tokio::test]
async fn a_model_is_deleted_only_once_no_asset_and_no_model_uses_it() {
    let (_emu, sw) = emulator().await;
    sw.create_asset_model(&machine(), &token(1))
        .await
        .expect("machine");
    active(&sw, MACHINE).await;
    let line = NewModel {
        model_id: LINE.into(),
        definition: ModelDefinition {
            name: "Line".into(),
            hierarchies: vec![ModelHierarchy {
                name: "Machines".into(),
                child_model_id: MACHINE.into(),
                ..ModelHierarchy::default()
            }],
            ..ModelDefinition::default()
        },
        ..NewModel::default()
    };
    sw.create_asset_model(&line, &token(2)).await.expect("line");
    let line_etag = active(&sw, LINE).await;
    let press = NewAsset {
        asset_id: "7f2e3d4c-5a6b-4c7d-8e9f-0a1b2c3d4e5f".into(),
        model_id: MACHINE.into(),
        name: "press".into(),
        description: Some("Hydraulic press".into()),
        external_id: Some("press-7".into()),
        ..NewAsset::default()
    };
    sw.create_asset(&press, &token(3)).await.expect("asset");
    let listed = list_assets_of_model(&sw, MACHINE).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "press");
    assert_eq!(listed[0].description.as_deref(), Some("Hydraulic press"));
    assert_eq!(listed[0].external_id.as_deref(), Some("press-7"));
    let etag = active(&sw, MACHINE).await;
    let refused = sw
        .delete_asset_model(MACHINE, Some(&etag), &token(4))
        .await
        .expect_err("assets remain");
    assert_eq!(refused.kind, ErrorKind::InvalidRequest);
    for _ in 0..100 {
        if sw.describe_asset(&press.asset_id).await.map(|a| a.state) == Ok(AssetState::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sw.delete_asset(&press.asset_id, &token(5))
        .await
        .expect("delete asset");
    for _ in 0..100 {
        if list_assets_of_model(&sw, MACHINE)
            .await
            .expect("list")
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = sw
        .delete_asset_model(MACHINE, Some(&etag), &token(6))
        .await
        .expect_err("the line's hierarchy uses it");
    assert_eq!(refused.kind, ErrorKind::InvalidRequest);
    let state = sw
        .delete_asset_model(LINE, Some(&line_etag), &token(7))
        .await
        .expect("line");
    assert_eq!(state, AssetState::Deleting);
    for _ in 0..100 {
        match sw.describe_asset_model(LINE).await {
            Err(e) if e.kind == ErrorKind::NotFound => break,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    sw.delete_asset_model(MACHINE, Some(&etag), &token(8))
        .await
        .expect("nothing uses it now");
    let none = list_assets_of_model(&sw, MACHINE).await;
    assert!(
        matches!(none, Ok(ref v) if v.is_empty())
            || matches!(none, Err(ref e) if e.kind == ErrorKind::NotFound)
    );
}
