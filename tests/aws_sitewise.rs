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
use sitewise_operator::sitewise::aws::{AwsSiteWise, emulator_client};
use sitewise_operator::sitewise::{AssetState, Direction, ErrorKind, SiteWise};

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
    assert_eq!(line.hierarchy_ids.len(), 1);
    let children = sw
        .list_associated_assets(&line.id, Direction::Child, Some(&line.hierarchy_ids[0]))
        .await
        .expect("list");
    assert_eq!(children.len(), 260, "more than one 250-item page");
    let parent = sw
        .list_associated_assets(&children[0].id, Direction::Parent, None)
        .await
        .expect("parent");
    assert_eq!(parent.len(), 1);
    assert_eq!(parent[0].id, line.id);
    assert_eq!(parent[0].hierarchy_ids, line.hierarchy_ids);

    sw.disassociate_assets(&line.id, &line.hierarchy_ids[0], &children[0].id, TOKEN)
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
