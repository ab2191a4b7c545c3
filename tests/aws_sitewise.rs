//! The operator's production SiteWise client (aws-sdk-iotsitewise + endpoint override) against
//! the emulator: domain mapping, every error class, and listings longer than one page.
//! (`sdk_client`, which also loads credentials from the AWS chain, is exercised by every
//! end-to-end case: the operator binary builds its client with it.)

use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings};
use sitewise_emulator::error::ErrorCode;
use sitewise_emulator::faults::ScriptedFault;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::{Seed, SeedAsset, SeedHierarchy, SeedModel};
use sitewise_operator::leader::Fence;
use sitewise_operator::sitewise::aws::{AwsSiteWise, emulator_client, fenced};
use std::collections::BTreeMap;

use sitewise_operator::sitewise::{
    AssetState, AssetUpdate, Direction, ErrorKind, NewAsset, PropertySettings, SiteWise,
};

const TOKEN: &str = "3c1d7a9e-2b4f-4e6a-8c0d-9f1e2a3b4c5d";

async fn line_with_machines(machines: usize) -> (Emulator, AwsSiteWise) {
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            max_children_per_parent: 1000,
            ..Quotas::default()
        },
        ..Settings::default()
    };
    let emu = Emulator::start_local(settings).await.expect("emulator");
    let mut seed = Seed {
        models: vec![
            SeedModel {
                name: "Machine".into(),
                external_id: Some("machine".into()),
                properties: vec![
                    serde_json::json!({"name": "Temperature", "externalId": "temp",
                    "dataType": "DOUBLE", "unit": "C", "type": {"measurement": {}}}),
                ],
                ..Default::default()
            },
            SeedModel {
                name: "Line".into(),
                external_id: Some("line".into()),
                hierarchies: vec![SeedHierarchy {
                    name: "Machines".into(),
                    external_id: Some("machines".into()),
                    child_model: "externalId:machine".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        assets: vec![SeedAsset {
            name: "line".into(),
            external_id: Some("line".into()),
            model: "externalId:line".into(),
            ..Default::default()
        }],
    };
    seed.assets.extend((0..machines).map(|i| SeedAsset {
        name: format!("m{i}"),
        external_id: Some(format!("m{i}")),
        model: "externalId:machine".into(),
        parent: Some("externalId:line".into()),
        hierarchy: Some("externalId:machines".into()),
        ..Default::default()
    }));
    sitewise_emulator::seed::apply(&mut emu.store(), &seed).expect("seed");
    let sitewise = AwsSiteWise::new(emulator_client(&emu.endpoint()));
    (emu, sitewise)
}

#[tokio::test]
async fn describes_lists_every_page_and_deletes() {
    let (_emu, sw) = line_with_machines(260).await;
    let line = sw
        .describe_asset("externalId:line")
        .await
        .expect("describe");
    assert_eq!(line.state, AssetState::Active);
    let hierarchy = line.hierarchies[0].id.clone();
    assert_eq!(line.hierarchies.len(), 1);
    assert_eq!(line.hierarchies[0].external_id.as_deref(), Some("machines"));
    assert_eq!(line.hierarchies[0].name, "Machines");
    let children = sw
        .list_associated_assets(&line.id, Direction::Child, Some(&hierarchy))
        .await
        .expect("list");
    assert_eq!(children.len(), 260, "more than one 250-item page");
    let parent = sw
        .list_associated_assets(&children[0].id, Direction::Parent, None)
        .await
        .expect("parent");
    assert_eq!(parent.len(), 1);
    assert_eq!(parent[0].id, line.id);
    assert_eq!(parent[0].hierarchy_ids, vec![hierarchy.clone()]);

    sw.disassociate_assets(&line.id, &hierarchy, &children[0].id, TOKEN)
        .await
        .expect("disassociate");
    let state = sw
        .delete_asset(&children[0].id, TOKEN)
        .await
        .expect("delete");
    assert_eq!(state, AssetState::Deleting);
    let gone = sw.describe_asset(&children[0].id).await.expect_err("gone");
    assert_eq!(gone.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn every_error_class_is_recognised() {
    let (emu, sw) = line_with_machines(1).await;
    let line = sw
        .describe_asset("externalId:line")
        .await
        .expect("describe");

    let linked = sw
        .delete_asset(&line.id, TOKEN)
        .await
        .expect_err("has a child");
    assert_eq!(linked.kind, ErrorKind::InvalidRequest);
    assert_eq!(linked.code, "InvalidRequestException");

    for (code, kind) in [
        (ErrorCode::ThrottlingException, ErrorKind::Throttled),
        (ErrorCode::LimitExceededException, ErrorKind::Throttled),
        (
            ErrorCode::ConflictingOperationException,
            ErrorKind::Conflict,
        ),
        (ErrorCode::InternalFailureException, ErrorKind::Unavailable),
        (ErrorCode::UnauthorizedException, ErrorKind::Permanent),
    ] {
        emu.store().settings.faults.scripted.push(ScriptedFault {
            operation: Op::DescribeAsset,
            target: None,
            error: code,
            count: 1,
            message: Some("injected".into()),
        });
        let err = sw.describe_asset(&line.id).await.expect_err("injected");
        assert_eq!((err.kind, err.code.as_str()), (kind, code.as_str()));
        assert_eq!(err.message, "injected");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_failure() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let sw = AwsSiteWise::new(emulator_client(&format!("http://127.0.0.1:{port}")));
    let err = sw
        .describe_asset("externalId:line")
        .await
        .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err:?}");
}

#[tokio::test]
async fn creates_updates_links_and_tags_an_asset() {
    let (_emu, sw) = line_with_machines(0).await;
    let own_id = "0e5f6a7b-8c9d-5e0f-a1b2-c3d4e5f6a7b8";
    let tags = BTreeMap::from([("sitewise.operator.dev/owner".to_string(), "c/u".to_string())]);
    let created = sw
        .create_asset(
            &NewAsset {
                asset_id: own_id.into(),
                model_id: "externalId:machine".into(),
                name: "press".into(),
                description: Some("a press".into()),
                external_id: Some("press".into()),
                tags: tags.clone(),
            },
            TOKEN,
        )
        .await
        .expect("created");
    assert_eq!(
        (created.id.as_str(), created.state),
        (own_id, AssetState::Creating)
    );
    let press = sw.describe_asset("externalId:press").await.expect("press");
    assert_eq!(press.id, own_id);
    assert_eq!(press.description.as_deref(), Some("a press"));
    assert_eq!(press.external_id.as_deref(), Some("press"));
    assert_eq!(sw.list_tags(&press.arn).await.expect("tags"), tags);

    let state = sw
        .update_asset(
            own_id,
            &AssetUpdate {
                name: "press-7".into(),
                description: None,
                external_id: None,
            },
            TOKEN,
        )
        .await
        .expect("updated");
    assert_eq!(state, AssetState::Updating);
    let settings = PropertySettings {
        alias: Some("/lyon/press/temp".into()),
        unit: Some("K".into()),
        notification_state: Some("ENABLED".into()),
    };
    let temp = press.properties[0].id.clone();
    sw.update_asset_property(own_id, &temp, &settings, TOKEN)
        .await
        .expect("property");
    let press = sw.describe_asset(own_id).await.expect("press");
    assert_eq!(press.name, "press-7");
    // UpdateAsset without a description keeps it (the emulator's documented choice).
    assert_eq!(press.description.as_deref(), Some("a press"));
    let property = &press.properties[0];
    assert_eq!(
        (
            property.alias.clone(),
            property.unit.clone(),
            property.notification_state.clone()
        ),
        (settings.alias, settings.unit, settings.notification_state)
    );
    assert_ne!(press.last_update, "0");

    let line = sw.describe_asset("externalId:line").await.expect("line");
    sw.associate_assets(&line.id, &line.hierarchies[0].id, own_id, TOKEN)
        .await
        .expect("linked");
    let parents = sw
        .list_associated_assets(own_id, Direction::Parent, None)
        .await
        .expect("parent");
    assert_eq!(parents[0].id, line.id);

    sw.tag_resource(&press.arn, &BTreeMap::from([("team".into(), "ops".into())]))
        .await
        .expect("tagged");
    sw.untag_resource(&press.arn, &["sitewise.operator.dev/owner".into()])
        .await
        .expect("untagged");
    assert_eq!(
        sw.list_tags(&press.arn).await.expect("tags"),
        BTreeMap::from([("team".to_string(), "ops".to_string())])
    );
    let err = sw
        .create_asset(
            &NewAsset {
                asset_id: own_id.into(),
                model_id: "externalId:machine".into(),
                name: "again".into(),
                ..NewAsset::default()
            },
            "5d2e3f4a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
        )
        .await
        .expect_err("taken");
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn a_closed_fence_holds_back_mutations_in_the_client_and_lets_reads_pass() {
    let (emu, _) = line_with_machines(1).await;
    let sw = AwsSiteWise::new(fenced(&emulator_client(&emu.endpoint()), Fence::closed()));
    let line = sw
        .describe_asset("externalId:line")
        .await
        .expect("reads pass");
    let err = sw
        .delete_asset("externalId:m0", TOKEN)
        .await
        .expect_err("held back");
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Unavailable, "NotLeader")
    );
    let err = sw
        .disassociate_assets(&line.id, &line.hierarchies[0].id, "externalId:m0", TOKEN)
        .await
        .expect_err("held back");
    assert_eq!(err.code, "NotLeader");
    let sent: Vec<_> = emu.store().journal().iter().map(|e| e.operation).collect();
    assert_eq!(
        sent,
        [Op::DescribeAsset],
        "nothing but the read reached SiteWise"
    );
    // An open fence lets them through.
    let sw = AwsSiteWise::new(fenced(&emulator_client(&emu.endpoint()), Fence::unfenced()));
    sw.disassociate_assets(&line.id, &line.hierarchies[0].id, "externalId:m0", TOKEN)
        .await
        .expect("sent");
}
