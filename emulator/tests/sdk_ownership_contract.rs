//! Contract tests of what a cluster-managed lifecycle needs, through the official
//! aws-sdk-iotsitewise client: CreateAsset with a caller-chosen asset ID and tags, replayed by
//! its token; UpdateAssetProperty; the tag calls; AssociateAssets idempotency.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iotsitewise::Client;
use aws_sdk_iotsitewise::operation::associate_assets::AssociateAssetsError;
use aws_sdk_iotsitewise::operation::create_asset::CreateAssetError;
use aws_sdk_iotsitewise::operation::update_asset_property::UpdateAssetPropertyError;
use aws_sdk_iotsitewise::types::{AssetState, PropertyNotificationState, TraversalDirection};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings, Timings};
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::{self, Seed, Seeded};
use sitewise_operator::sitewise::aws::emulator_client;

const OWN_ID: &str = "3b9d8f1e-6a2c-5d4b-9e7f-0a1b2c3d4e5f";
const TOKEN_A: &str = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
const TOKEN_B: &str = "8d2f3e4a-5b6c-4d7e-9f0a-1b2c3d4e5f6a";

/// A machine model with two properties, a line model with a Machines hierarchy, one line and
/// one machine that is not linked.
async fn setup(timings: Timings) -> (Emulator, Client, Seeded) {
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            ..Quotas::default()
        },
        timings,
        ..Settings::default()
    };
    let emu = Emulator::start_local(settings).await.expect("emulator");
    let seed: Seed = serde_json::from_value(serde_json::json!({
        "models": [
            {"name": "Machine", "externalId": "machine", "properties": [
                {"name": "Temperature", "externalId": "temp", "dataType": "DOUBLE", "unit": "C",
                 "type": {"measurement": {}}},
                {"name": "Serial", "dataType": "STRING", "type": {"attribute": {}}}]},
            {"name": "Line", "externalId": "line", "hierarchies": [
                {"name": "Machines", "externalId": "machines", "childModel": "externalId:machine"}]}
        ],
        "assets": [
            {"name": "line-1", "externalId": "line-1", "model": "externalId:line"},
            {"name": "m1", "externalId": "m1", "model": "externalId:machine"}
        ]
    }))
    .expect("seed");
    let seeded = seed::apply(&mut emu.store(), &seed).expect("seeded");
    let client = emulator_client(&emu.endpoint());
    (emu, client, seeded)
}

fn replays(emu: &Emulator, op: Op) -> usize {
    emu.store()
        .journal()
        .iter()
        .filter(|e| e.operation == op && e.replay)
        .count()
}

#[tokio::test]
async fn create_asset_takes_the_callers_id_and_tags_and_replays_its_token() {
    let (emu, client, _) = setup(Timings::default()).await;
    let tags = HashMap::from([
        (
            "sitewise.operator.dev/owner".to_string(),
            "c1/u1".to_string(),
        ),
        ("team".to_string(), "ops".to_string()),
    ]);
    let create = || {
        client
            .create_asset()
            .asset_id(OWN_ID)
            .asset_model_id("externalId:machine")
            .asset_name("press-7")
            .asset_external_id("press-7")
            .set_tags(Some(tags.clone()))
            .client_token(TOKEN_A)
    };
    let first = create().send().await.expect("created");
    assert_eq!(first.asset_id(), OWN_ID);
    assert_eq!(
        first.asset_status().map(|s| s.state()),
        Some(&AssetState::Creating)
    );
    // A retry with the same token and parameters is answered again, with no second asset.
    let again = create().send().await.expect("replayed");
    assert_eq!(again.asset_id(), OWN_ID);
    assert_eq!(replays(&emu, Op::CreateAsset), 1);
    let described = client
        .describe_asset()
        .asset_id(OWN_ID)
        .send()
        .await
        .expect("described");
    assert_eq!(described.asset_external_id(), Some("press-7"));
    assert_eq!(described.asset_properties().len(), 2);
    let listed = client
        .list_tags_for_resource()
        .resource_arn(described.asset_arn())
        .send()
        .await
        .expect("tags");
    assert_eq!(listed.tags(), Some(&tags));
    // The same ID under another token is another request, and the ID is taken.
    let err = create()
        .client_token(TOKEN_B)
        .send()
        .await
        .expect_err("ID taken");
    assert!(
        matches!(
            err.as_service_error(),
            Some(CreateAssetError::ResourceAlreadyExistsException(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn update_asset_property_overwrites_alias_notification_and_unit() {
    let (emu, client, seeded) = setup(Timings {
        update: Duration::from_millis(300),
        ..Timings::default()
    })
    .await;
    let m1 = &seeded.assets["m1"];
    let update = |alias: Option<&str>, token: &str| {
        client
            .update_asset_property()
            .asset_id(m1)
            .property_id("externalId:temp")
            .set_property_alias(alias.map(str::to_string))
            .property_notification_state(PropertyNotificationState::Enabled)
            .property_unit("K")
            .client_token(token)
    };
    update(Some("/lyon/m1/temp"), TOKEN_A)
        .send()
        .await
        .expect("updated");
    let busy = client
        .describe_asset()
        .asset_id(m1)
        .send()
        .await
        .expect("d");
    assert_eq!(
        busy.asset_status().map(|s| s.state()),
        Some(&AssetState::Updating)
    );
    // While UPDATING, another change is a conflict.
    let err = update(None, TOKEN_B).send().await.expect_err("busy");
    assert!(matches!(
        err.as_service_error(),
        Some(UpdateAssetPropertyError::ConflictingOperationException(_))
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let active = client
        .describe_asset()
        .asset_id(m1)
        .send()
        .await
        .expect("d");
    let temp = active
        .asset_properties()
        .iter()
        .find(|p| p.external_id() == Some("temp"))
        .expect("temp");
    assert_eq!(temp.alias(), Some("/lyon/m1/temp"));
    assert_eq!(temp.unit(), Some("K"));
    assert_eq!(
        temp.notification().map(|n| n.state()),
        Some(&PropertyNotificationState::Enabled)
    );
    // Omitting the alias removes it; omitting the unit falls back to the model's.
    client
        .update_asset_property()
        .asset_id(m1)
        .property_id(temp.id())
        .client_token(TOKEN_B)
        .send()
        .await
        .expect("cleared");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let cleared = client
        .describe_asset()
        .asset_id(m1)
        .send()
        .await
        .expect("d");
    let temp = &cleared.asset_properties()[0];
    assert_eq!((temp.alias(), temp.unit()), (None, Some("C")));
    assert_eq!(
        temp.notification().map(|n| n.state()),
        Some(&PropertyNotificationState::Disabled)
    );
    // Unknown property: not found; an alias in use elsewhere: refused.
    let err = client
        .update_asset_property()
        .asset_id(m1)
        .property_id("externalId:pressure")
        .send()
        .await
        .expect_err("unknown");
    assert!(matches!(
        err.as_service_error(),
        Some(UpdateAssetPropertyError::ResourceNotFoundException(_))
    ));
    client
        .update_asset_property()
        .asset_id(m1)
        .property_id("externalId:temp")
        .property_alias("/taken")
        .send()
        .await
        .expect("alias");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let serial = cleared
        .asset_properties()
        .iter()
        .find(|p| p.name() == "Serial")
        .expect("serial");
    let err = client
        .update_asset_property()
        .asset_id(m1)
        .property_id(serial.id())
        .property_alias("/taken")
        .send()
        .await
        .expect_err("alias taken");
    assert!(matches!(
        err.as_service_error(),
        Some(UpdateAssetPropertyError::InvalidRequestException(_))
    ));
    drop(emu);
}

#[tokio::test]
async fn tags_are_added_replaced_and_removed() {
    let (_emu, client, seeded) = setup(Timings::default()).await;
    let arn = client
        .describe_asset()
        .asset_id(&seeded.assets["m1"])
        .send()
        .await
        .expect("d")
        .asset_arn()
        .to_string();
    for (k, v) in [
        ("a", "1"),
        ("sitewise.operator.dev/owner", "c/u"),
        ("a", "2"),
    ] {
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags(k, v)
            .send()
            .await
            .expect("tagged");
    }
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("sitewise.operator.dev/owner")
        .send()
        .await
        .expect("untagged");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("listed");
    assert_eq!(
        tags.tags(),
        Some(&HashMap::from([("a".to_string(), "2".to_string())]))
    );
}

#[tokio::test]
async fn associate_assets_replays_its_token_without_a_second_effect() {
    let (emu, client, seeded) = setup(Timings::default()).await;
    let (line, m1) = (&seeded.assets["line-1"], &seeded.assets["m1"]);
    let associate = |token: &str| {
        client
            .associate_assets()
            .asset_id(line)
            .hierarchy_id("externalId:machines")
            .child_asset_id(m1)
            .client_token(token)
    };
    associate(TOKEN_A).send().await.expect("linked");
    associate(TOKEN_A).send().await.expect("replayed");
    assert_eq!(replays(&emu, Op::AssociateAssets), 1);
    client
        .disassociate_assets()
        .asset_id(line)
        .hierarchy_id("externalId:machines")
        .child_asset_id(m1)
        .client_token(TOKEN_B)
        .send()
        .await
        .expect("unlinked");
    // The old token is still a replay: the link is not made again.
    associate(TOKEN_A).send().await.expect("replayed again");
    let parents = client
        .list_associated_assets()
        .asset_id(m1)
        .traversal_direction(TraversalDirection::Parent)
        .send()
        .await
        .expect("listed");
    assert!(parents.asset_summaries().is_empty());
    // A new token makes it; the same token with another child is refused.
    let fresh = "9e3a4f5b-6c7d-4e8f-a0b1-c2d3e4f5a6b7";
    associate(fresh).send().await.expect("linked again");
    let err = client
        .associate_assets()
        .asset_id(line)
        .hierarchy_id("externalId:machines")
        .child_asset_id(line)
        .client_token(fresh)
        .send()
        .await
        .expect_err("mismatch");
    assert!(matches!(
        err.as_service_error(),
        Some(AssociateAssetsError::InvalidRequestException(_))
    ));
}
