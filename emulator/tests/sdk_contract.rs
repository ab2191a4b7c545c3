//! Contract tests: the official aws-sdk-iotsitewise client against the in-process emulator,
//! through the same endpoint override the operator uses. Every operation, and every error
//! class decoded into its typed SDK variant.

use std::time::Duration;

use aws_sdk_iotsitewise::Client;
use aws_sdk_iotsitewise::error::ProvideErrorMetadata;
use aws_sdk_iotsitewise::operation::associate_assets::AssociateAssetsError;
use aws_sdk_iotsitewise::operation::create_asset::CreateAssetError;
use aws_sdk_iotsitewise::operation::create_asset_model::CreateAssetModelError;
use aws_sdk_iotsitewise::operation::delete_asset::DeleteAssetError;
use aws_sdk_iotsitewise::operation::delete_asset_model::DeleteAssetModelError;
use aws_sdk_iotsitewise::operation::describe_asset::DescribeAssetError;
use aws_sdk_iotsitewise::operation::describe_asset_model::DescribeAssetModelError;
use aws_sdk_iotsitewise::operation::disassociate_assets::DisassociateAssetsError;
use aws_sdk_iotsitewise::operation::list_assets::ListAssetsError;
use aws_sdk_iotsitewise::operation::list_associated_assets::ListAssociatedAssetsError;
use aws_sdk_iotsitewise::operation::tag_resource::TagResourceError;
use aws_sdk_iotsitewise::operation::update_asset::UpdateAssetError;
use aws_sdk_iotsitewise::types::{
    AssetModelHierarchyDefinition, AssetState, ListAssetsFilter, TraversalDirection,
};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings, Timings};
use sitewise_emulator::error::ErrorCode;
use sitewise_emulator::faults::ScriptedFault;
use sitewise_emulator::ops::Op;
use sitewise_operator::sitewise::aws::emulator_client;

const TOKEN_A: &str = "6f0c3a47-0b9e-4a55-8d7c-1e2f3a4b5c6d";
const TOKEN_B: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

async fn emulator(settings: Settings) -> (Emulator, Client) {
    let emulator = Emulator::start_local(settings)
        .await
        .expect("emulator starts");
    let client = emulator_client(&emulator.endpoint());
    (emulator, client)
}

fn no_quotas() -> Settings {
    Settings {
        quotas: Quotas {
            enabled: false,
            ..Quotas::default()
        },
        ..Settings::default()
    }
}

/// A line model with a machines hierarchy, plus a line and two machines (all ACTIVE).
struct Plant {
    machine_model: String,
    line_model: String,
    hierarchy: String,
    line: String,
    machines: Vec<String>,
}

async fn plant(client: &Client) -> Plant {
    let machine_model = client
        .create_asset_model()
        .asset_model_name("Machine")
        .asset_model_external_id("machine")
        .send()
        .await
        .expect("create machine model")
        .asset_model_id
        .clone();
    let line_model_out = client
        .create_asset_model()
        .asset_model_name("Line")
        .asset_model_hierarchies(
            AssetModelHierarchyDefinition::builder()
                .name("Machines")
                .external_id("machines")
                .child_asset_model_id("externalId:machine")
                .build()
                .expect("hierarchy"),
        )
        .send()
        .await
        .expect("create line model");
    assert_eq!(
        line_model_out
            .asset_model_status()
            .map(|s| s.state().as_str()),
        Some("CREATING")
    );
    let line_model = line_model_out.asset_model_id.clone();
    let described = client
        .describe_asset_model()
        .asset_model_id(&line_model)
        .send()
        .await
        .expect("describe line model");
    let hierarchy = described.asset_model_hierarchies()[0]
        .id()
        .expect("hierarchy id")
        .to_string();
    assert_eq!(
        described.asset_model_hierarchies()[0].child_asset_model_id(),
        machine_model,
        "child model is reported as its UUID"
    );
    let line = client
        .create_asset()
        .asset_name("Line 1")
        .asset_model_id(&line_model)
        .asset_external_id("line-1")
        .send()
        .await
        .expect("create line")
        .asset_id
        .clone();
    let mut machines = Vec::new();
    for i in 0..2 {
        let id = client
            .create_asset()
            .asset_name(format!("Machine {i}"))
            .asset_model_id("externalId:machine")
            .send()
            .await
            .expect("create machine")
            .asset_id
            .clone();
        client
            .associate_assets()
            .asset_id("externalId:line-1")
            .hierarchy_id("externalId:machines")
            .child_asset_id(&id)
            .client_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .expect("associate");
        machines.push(id);
    }
    Plant {
        machine_model,
        line_model,
        hierarchy,
        line,
        machines,
    }
}

#[tokio::test]
async fn asset_lifecycle_with_every_operation() {
    let (emu, client) = emulator(no_quotas()).await;
    let p = plant(&client).await;

    let line = client
        .describe_asset()
        .asset_id("externalId:line-1")
        .send()
        .await
        .expect("describe by external id");
    assert_eq!(line.asset_id(), p.line);
    assert_eq!(line.asset_model_id(), p.line_model);
    assert_eq!(
        line.asset_status().map(|s| s.state()),
        Some(&AssetState::Active)
    );
    assert_eq!(line.asset_hierarchies()[0].id(), Some(p.hierarchy.as_str()));
    assert!(line.asset_arn().ends_with(&format!(":asset/{}", p.line)));
    assert!(line.asset_creation_date().secs() > 1_700_000_000);

    // Children, one per page.
    let page1 = client
        .list_associated_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .max_results(1)
        .send()
        .await
        .expect("list children");
    assert_eq!(page1.asset_summaries().len(), 1);
    let token = page1.next_token().expect("second page").to_string();
    let page2 = client
        .list_associated_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .max_results(1)
        .next_token(token)
        .send()
        .await
        .expect("page 2");
    assert!(page2.next_token().is_none());
    let listed: Vec<&str> = [&page1, &page2]
        .iter()
        .map(|p| p.asset_summaries()[0].id())
        .collect();
    assert_eq!(listed, vec![p.machines[0].as_str(), p.machines[1].as_str()]);

    // The paginator walks all pages.
    let all: Vec<_> = client
        .list_associated_assets()
        .asset_id(&p.line)
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(all.len(), 2);

    let parent = client
        .list_associated_assets()
        .asset_id(&p.machines[0])
        .traversal_direction(TraversalDirection::Parent)
        .send()
        .await
        .expect("list parent");
    assert_eq!(parent.asset_summaries()[0].id(), p.line);

    let top = client
        .list_assets()
        .filter(ListAssetsFilter::TopLevel)
        .send()
        .await
        .expect("top level");
    assert_eq!(top.asset_summaries().len(), 1);
    let machines = client
        .list_assets()
        .asset_model_id(&p.machine_model)
        .send()
        .await
        .expect("by model");
    assert_eq!(machines.asset_summaries().len(), 2);

    let updated = client
        .update_asset()
        .asset_id(&p.line)
        .asset_name("Line 1 (renamed)")
        .send()
        .await
        .expect("update");
    assert_eq!(
        updated.asset_status().map(|s| s.state()),
        Some(&AssetState::Updating)
    );

    // Tags.
    client
        .tag_resource()
        .resource_arn(line.asset_arn())
        .tags("site", "lyon")
        .tags("owner", "ops")
        .send()
        .await
        .expect("tag");
    client
        .untag_resource()
        .resource_arn(line.asset_arn())
        .tag_keys("owner")
        .send()
        .await
        .expect("untag");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(line.asset_arn())
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags().map(|t| t.len()), Some(1));

    // Deletion: disassociate both children, then delete.
    for m in &p.machines {
        client
            .disassociate_assets()
            .asset_id(&p.line)
            .hierarchy_id(&p.hierarchy)
            .child_asset_id(m)
            .send()
            .await
            .expect("disassociate");
    }
    let deleted = client
        .delete_asset()
        .asset_id(&p.line)
        .client_token(TOKEN_A)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        deleted.asset_status().map(|s| s.state()),
        Some(&AssetState::Deleting)
    );
    let gone = client.describe_asset().asset_id(&p.line).send().await;
    assert!(matches!(
        gone.map_err(|e| e.into_service_error()),
        Err(DescribeAssetError::ResourceNotFoundException(_))
    ));
    // Tags go with the resource.
    assert!(
        client
            .list_tags_for_resource()
            .resource_arn(line.asset_arn())
            .send()
            .await
            .is_err()
    );

    // The model can go once its assets are gone.
    let refused = client
        .delete_asset_model()
        .asset_model_id(&p.machine_model)
        .send()
        .await;
    assert!(matches!(
        refused.map_err(|e| e.into_service_error()),
        Err(DeleteAssetModelError::InvalidRequestException(_))
    ));
    for m in &p.machines {
        client
            .delete_asset()
            .asset_id(m)
            .send()
            .await
            .expect("delete machine");
    }
    client
        .delete_asset_model()
        .asset_model_id(&p.line_model)
        .send()
        .await
        .expect("delete line model");
    let model_gone = client
        .describe_asset_model()
        .asset_model_id(&p.line_model)
        .send()
        .await;
    assert!(matches!(
        model_gone.map_err(|e| e.into_service_error()),
        Err(DescribeAssetModelError::ResourceNotFoundException(_))
    ));
    assert!(emu.store().journal().len() > 20);
}

#[tokio::test]
async fn validation_errors_are_typed_and_name_the_field() {
    let (_emu, client) = emulator(no_quotas()).await;
    plant(&client).await;
    let err = client
        .create_asset()
        .asset_name("bad\u{7}name")
        .asset_model_id("externalId:machine")
        .send()
        .await
        .expect_err("control character")
        .into_service_error();
    assert!(matches!(err, CreateAssetError::InvalidRequestException(_)));
    assert!(err.message().unwrap_or_default().contains("'assetName'"));

    let err = client
        .describe_asset()
        .asset_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .expect_err("zero uuid")
        .into_service_error();
    assert!(matches!(
        err,
        DescribeAssetError::InvalidRequestException(_)
    ));

    let err = client
        .list_assets()
        .send()
        .await
        .expect_err("ALL needs a model")
        .into_service_error();
    assert!(matches!(err, ListAssetsError::InvalidRequestException(_)));

    let err = client
        .list_associated_assets()
        .asset_id("externalId:line-1")
        .max_results(251)
        .send()
        .await
        .expect_err("maxResults")
        .into_service_error();
    assert!(matches!(
        err,
        ListAssociatedAssetsError::InvalidRequestException(_)
    ));
    assert!(err.message().unwrap_or_default().contains("maxResults"));

    let err = client
        .delete_asset()
        .asset_id("externalId:line-1")
        .client_token("too short")
        .send()
        .await
        .expect_err("token")
        .into_service_error();
    assert!(matches!(err, DeleteAssetError::InvalidRequestException(_)));
}

#[tokio::test]
async fn conflict_already_exists_not_found_and_limits_are_typed() {
    let mut settings = no_quotas();
    settings.quotas.max_children_per_parent = 2;
    settings.timings = Timings {
        update: Duration::from_secs(60),
        ..Timings::default()
    };
    let (emu, client) = emulator(settings).await;
    let p = plant(&client).await;

    let dup = client
        .create_asset_model()
        .asset_model_name("Machine")
        .send()
        .await
        .expect_err("duplicate name")
        .into_service_error();
    let CreateAssetModelError::ResourceAlreadyExistsException(e) = &dup else {
        panic!("{dup:?}")
    };
    assert_eq!(e.resource_id(), p.machine_model);

    let again = client
        .associate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(&p.machines[0])
        .send()
        .await
        .expect_err("already associated")
        .into_service_error();
    assert!(matches!(
        again,
        AssociateAssetsError::ResourceAlreadyExistsException(_)
    ));

    let third = client
        .create_asset()
        .asset_name("Machine 3")
        .asset_model_id(&p.machine_model)
        .send()
        .await
        .expect("create")
        .asset_id
        .clone();
    let limit = client
        .associate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(&third)
        .send()
        .await
        .expect_err("child limit")
        .into_service_error();
    assert!(matches!(
        limit,
        AssociateAssetsError::LimitExceededException(_)
    ));

    let missing = client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(&third)
        .send()
        .await
        .expect_err("not associated")
        .into_service_error();
    assert!(matches!(
        missing,
        DisassociateAssetsError::ResourceNotFoundException(_)
    ));

    let linked = client
        .delete_asset()
        .asset_id(&p.line)
        .send()
        .await
        .expect_err("has children")
        .into_service_error();
    assert!(matches!(
        linked,
        DeleteAssetError::InvalidRequestException(_)
    ));

    client
        .update_asset()
        .asset_id(&third)
        .asset_name("Machine 3b")
        .send()
        .await
        .expect("update");
    let busy = client
        .update_asset()
        .asset_id(&third)
        .asset_name("Machine 3c")
        .send()
        .await
        .expect_err("UPDATING")
        .into_service_error();
    let UpdateAssetError::ConflictingOperationException(e) = &busy else {
        panic!("{busy:?}")
    };
    assert_eq!(e.resource_id(), third);
    assert!(e.resource_arn().ends_with(&third));

    let too_many = client
        .tag_resource()
        .resource_arn(format!(
            "arn:aws:iotsitewise:us-east-1:123456789012:asset/{}",
            p.line
        ))
        .set_tags(Some(
            (0..51)
                .map(|i| (format!("k{i}"), "v".to_string()))
                .collect(),
        ))
        .send()
        .await
        .expect_err("too many tags")
        .into_service_error();
    assert!(
        matches!(too_many, TagResourceError::TooManyTagsException(_))
            || matches!(too_many, TagResourceError::InvalidRequestException(_)),
        "{too_many:?}"
    );
    let unknown_arn = client
        .tag_resource()
        .resource_arn("arn:aws:iotsitewise:us-east-1:123456789012:asset/none")
        .tags("a", "b")
        .send()
        .await
        .expect_err("unknown")
        .into_service_error();
    assert!(matches!(
        unknown_arn,
        TagResourceError::ResourceNotFoundException(_)
    ));
    drop(emu);
}

#[tokio::test]
async fn too_many_tags_over_several_calls_is_typed() {
    let (_emu, client) = emulator(no_quotas()).await;
    let p = plant(&client).await;
    let arn = format!(
        "arn:aws:iotsitewise:us-east-1:123456789012:asset/{}",
        p.line
    );
    client
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(
            (0..50)
                .map(|i| (format!("k{i}"), "v".to_string()))
                .collect(),
        ))
        .send()
        .await
        .expect("50 tags");
    let err = client
        .tag_resource()
        .resource_arn(&arn)
        .tags("one-more", "v")
        .send()
        .await
        .expect_err("51st")
        .into_service_error();
    let TagResourceError::TooManyTagsException(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.resource_name(), Some(arn.as_str()));
}

#[tokio::test]
async fn throttling_and_internal_failures_are_typed() {
    let mut settings = Settings::default();
    settings.quotas.asset_tps = 3.0;
    let (emu, client) = emulator(settings).await;
    // Seed directly: model operations have their own bucket, asset calls are the ones counted.
    emu.store().settings.quotas.enabled = false;
    let p = plant(&client).await;
    emu.store().settings.quotas.enabled = true;
    emu.store().reset_limiter();
    let mut throttled = 0;
    for _ in 0..10 {
        if let Err(e) = client
            .list_associated_assets()
            .asset_id(&p.line)
            .send()
            .await
        {
            assert!(matches!(
                e.into_service_error(),
                ListAssociatedAssetsError::ThrottlingException(_)
            ));
            throttled += 1;
        }
    }
    assert!(
        throttled >= 6,
        "a 3 TPS bucket throttles a burst of 10: {throttled}"
    );
    // DescribeAsset has its own, larger bucket.
    client
        .describe_asset()
        .asset_id(&p.line)
        .send()
        .await
        .expect("own bucket");

    emu.store().settings.quotas.enabled = false;
    emu.store().settings.faults.scripted.push(ScriptedFault {
        operation: Op::DeleteAsset,
        target: Some(p.machines[0].clone()),
        error: ErrorCode::InternalFailureException,
        count: 1,
        message: None,
    });
    let err = client
        .delete_asset()
        .asset_id(&p.machines[0])
        .send()
        .await
        .expect_err("scripted")
        .into_service_error();
    assert!(matches!(err, DeleteAssetError::InternalFailureException(_)));
}

#[tokio::test]
async fn documented_choices_for_deleting_assets() {
    let mut settings = no_quotas();
    settings.timings.delete = Duration::from_secs(60);
    let (_emu, client) = emulator(settings).await;
    let p = plant(&client).await;
    let m = &p.machines[0];
    client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(m)
        .send()
        .await
        .expect("detach");
    client
        .delete_asset()
        .asset_id(m)
        .client_token(TOKEN_A)
        .send()
        .await
        .expect("delete");
    // The link is gone: 404, even though the child is DELETING (not a conflict).
    let err = client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(m)
        .send()
        .await
        .expect_err("no such link")
        .into_service_error();
    assert!(
        matches!(err, DisassociateAssetsError::ResourceNotFoundException(_)),
        "{err:?}"
    );
    // A second DeleteAsset with another token while DELETING: the asset is busy.
    let err = client
        .delete_asset()
        .asset_id(m)
        .client_token(TOKEN_B)
        .send()
        .await
        .expect_err("busy")
        .into_service_error();
    assert!(
        matches!(err, DeleteAssetError::ConflictingOperationException(_)),
        "{err:?}"
    );
    // The original token is still answered as a replay.
    let replay = client
        .delete_asset()
        .asset_id(m)
        .client_token(TOKEN_A)
        .send()
        .await
        .expect("replay");
    assert_eq!(
        replay.asset_status().map(|s| s.state()),
        Some(&AssetState::Deleting)
    );
}

#[tokio::test]
async fn unauthorized_and_precondition_failed_are_typed() {
    let (emu, client) = emulator(no_quotas()).await;
    let p = plant(&client).await;
    let arn = format!(
        "arn:aws:iotsitewise:us-east-1:123456789012:asset/{}",
        p.line
    );
    for (operation, error) in [
        (Op::TagResource, ErrorCode::UnauthorizedException),
        (Op::DeleteAssetModel, ErrorCode::PreconditionFailedException),
    ] {
        emu.store().settings.faults.scripted.push(ScriptedFault {
            operation,
            target: None,
            error,
            count: 1,
            message: None,
        });
    }
    let err = client
        .tag_resource()
        .resource_arn(&arn)
        .tags("a", "b")
        .send()
        .await
        .expect_err("scripted")
        .into_service_error();
    assert!(
        matches!(err, TagResourceError::UnauthorizedException(_)),
        "{err:?}"
    );
    let err = client
        .delete_asset_model()
        .asset_model_id(&p.line_model)
        .send()
        .await
        .expect_err("scripted")
        .into_service_error();
    assert!(
        matches!(err, DeleteAssetModelError::PreconditionFailedException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_tokens_replay_and_refuse_mismatches() {
    let (emu, client) = emulator(no_quotas()).await;
    let p = plant(&client).await;
    let m = &p.machines[0];
    client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(m)
        .client_token(TOKEN_B)
        .send()
        .await
        .expect("disassociate");
    // The same call again is answered from the token, without a second effect (it would
    // otherwise be a ResourceNotFoundException: the link is gone).
    client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(m)
        .client_token(TOKEN_B)
        .send()
        .await
        .expect("replayed");
    // Same token, other parameters: refused.
    let err = client
        .disassociate_assets()
        .asset_id(&p.line)
        .hierarchy_id(&p.hierarchy)
        .child_asset_id(&p.machines[1])
        .client_token(TOKEN_B)
        .send()
        .await
        .expect_err("mismatch")
        .into_service_error();
    assert!(matches!(
        err,
        DisassociateAssetsError::InvalidRequestException(_)
    ));

    let first = client
        .delete_asset()
        .asset_id(m)
        .client_token(TOKEN_A)
        .send()
        .await
        .expect("delete");
    let replay = client
        .delete_asset()
        .asset_id(m)
        .client_token(TOKEN_A)
        .send()
        .await
        .expect("replay after the asset is gone returns the original answer");
    assert_eq!(first.asset_status(), replay.asset_status());
    let journal = emu.store().journal().to_vec();
    let deletes: Vec<_> = journal
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset)
        .collect();
    assert_eq!(deletes.len(), 2);
    assert_eq!(deletes.iter().filter(|e| e.replay).count(), 1);
}

#[tokio::test]
async fn failed_assets_report_their_error_and_can_be_deleted() {
    let (emu, client) = emulator(no_quotas()).await;
    let p = plant(&client).await;
    let third = client
        .create_asset()
        .asset_name("Broken")
        .asset_model_id(&p.machine_model)
        .send()
        .await
        .expect("create")
        .asset_id
        .clone();
    emu.store()
        .force_failed(&third, "VALIDATION_ERROR", "bad formula")
        .expect("exists");
    let described = client
        .describe_asset()
        .asset_id(&third)
        .send()
        .await
        .expect("describe");
    let status = described.asset_status().expect("status");
    assert_eq!(status.state(), &AssetState::Failed);
    assert_eq!(status.error().map(|e| e.message()), Some("bad formula"));
    client
        .delete_asset()
        .asset_id(&third)
        .send()
        .await
        .expect("FAILED can be deleted");
}

#[tokio::test]
async fn state_machine_honours_delays() {
    let mut settings = no_quotas();
    settings.timings = Timings {
        create: Duration::from_millis(300),
        update: Duration::ZERO,
        delete: Duration::from_millis(300),
    };
    let (_emu, client) = emulator(settings).await;
    let model = client
        .create_asset_model()
        .asset_model_name("Slow")
        .send()
        .await
        .expect("model")
        .asset_model_id
        .clone();
    let early = client
        .create_asset()
        .asset_name("too early")
        .asset_model_id(&model)
        .send()
        .await
        .expect_err("model still CREATING")
        .into_service_error();
    assert!(matches!(
        early,
        CreateAssetError::ConflictingOperationException(_)
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let asset = client
        .create_asset()
        .asset_name("a")
        .asset_model_id(&model)
        .send()
        .await
        .expect("asset")
        .asset_id
        .clone();
    let state = |c: Client, id: String| async move {
        c.describe_asset()
            .asset_id(id)
            .send()
            .await
            .map(|d| d.asset_status().map(|s| s.state().clone()))
    };
    assert_eq!(
        state(client.clone(), asset.clone()).await.ok().flatten(),
        Some(AssetState::Creating)
    );
    let busy = client
        .delete_asset()
        .asset_id(&asset)
        .send()
        .await
        .expect_err("CREATING cannot be deleted")
        .into_service_error();
    assert!(matches!(
        busy,
        DeleteAssetError::ConflictingOperationException(_)
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    client
        .delete_asset()
        .asset_id(&asset)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        state(client.clone(), asset.clone()).await.ok().flatten(),
        Some(AssetState::Deleting)
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        state(client.clone(), asset.clone()).await.is_err(),
        "gone after the delay"
    );
}

#[tokio::test]
async fn hierarchy_rules_refuse_cycles_wrong_models_and_depth() {
    let mut settings = no_quotas();
    settings.quotas.max_hierarchy_depth = 3;
    let (emu, client) = emulator(settings).await;
    let seeded = sitewise_emulator::seed::apply(
        &mut emu.store(),
        &serde_json::from_value(serde_json::json!({
            "models": [
                {"name": "Node", "externalId": "node"},
                {"name": "Tree", "externalId": "tree", "hierarchies": [
                    {"name": "Nodes", "externalId": "nodes", "childModel": "externalId:node"}
                ]},
            ],
            "assets": [
                {"name": "t1", "externalId": "t1", "model": "externalId:tree"},
                {"name": "t2", "externalId": "t2", "model": "externalId:tree"},
                {"name": "n1", "externalId": "n1", "model": "externalId:node",
                 "parent": "externalId:t1", "hierarchy": "externalId:nodes"},
            ]
        }))
        .expect("seed json"),
    )
    .expect("seed");
    assert_eq!(seeded.assets.len(), 3);
    let wrong_model = client
        .associate_assets()
        .asset_id("externalId:t1")
        .hierarchy_id("externalId:nodes")
        .child_asset_id("externalId:t2")
        .send()
        .await
        .expect_err("t2 is not a Node")
        .into_service_error();
    assert!(matches!(
        wrong_model,
        AssociateAssetsError::InvalidRequestException(_)
    ));
    let no_hierarchy = client
        .associate_assets()
        .asset_id("externalId:n1")
        .hierarchy_id("externalId:nodes")
        .child_asset_id("externalId:t2")
        .send()
        .await
        .expect_err("Node has no hierarchies")
        .into_service_error();
    assert!(matches!(
        no_hierarchy,
        AssociateAssetsError::InvalidRequestException(_)
    ));
}

#[tokio::test]
async fn hierarchies_deeper_than_the_quota_are_refused() {
    let mut settings = no_quotas();
    settings.quotas.max_hierarchy_depth = 3;
    let (emu, client) = emulator(settings).await;
    let level = |n: usize| -> serde_json::Value {
        if n == 0 {
            serde_json::json!({"name": "L0", "externalId": "l0"})
        } else {
            serde_json::json!({"name": format!("L{n}"), "externalId": format!("l{n}"),
                "hierarchies": [{"name": "down", "externalId": format!("down{n}"),
                                 "childModel": format!("externalId:l{}", n - 1)}]})
        }
    };
    let assets: Vec<serde_json::Value> = (0..4)
        .map(|n| {
            serde_json::json!({"name": format!("a{n}"), "externalId": format!("a{n}"),
                                     "model": format!("externalId:l{n}")})
        })
        .collect();
    sitewise_emulator::seed::apply(
        &mut emu.store(),
        &serde_json::from_value(serde_json::json!({
            "models": (0..4).map(level).collect::<Vec<_>>(),
            "assets": assets,
        }))
        .expect("seed json"),
    )
    .expect("seed");
    for n in [3, 2] {
        client
            .associate_assets()
            .asset_id(format!("externalId:a{n}"))
            .hierarchy_id(format!("externalId:down{n}"))
            .child_asset_id(format!("externalId:a{}", n - 1))
            .send()
            .await
            .expect("within depth 3");
    }
    let too_deep = client
        .associate_assets()
        .asset_id("externalId:a1")
        .hierarchy_id("externalId:down1")
        .child_asset_id("externalId:a0")
        .send()
        .await
        .expect_err("depth 4")
        .into_service_error();
    assert!(matches!(
        too_deep,
        AssociateAssetsError::LimitExceededException(_)
    ));
}
