//! End-to-end cases of Kubernetes owning its assets: a plant created from spec and pruned,
//! claims between two resources, a reused external ID, a crash between CreateAsset and the
//! status write, drift correction, a reparent, a deletion SiteWise fails, and bad input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use sitewise_emulator::Emulator;
use sitewise_emulator::faults::OpFaults;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::Seed;
use sitewise_operator::crd::{Ownership, SiteWiseAsset};
use sitewise_operator::token;

use crate::harness::*;

fn models_seed() -> anyhow::Result<Seed> {
    let text = std::fs::read_to_string(repo().join("deploy/samples/plant-models.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Calls of `op` that took effect (a success that was not a replay), by resolved target.
fn effective(emu: &Emulator, op: Op) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in emu.store().journal().iter().filter(|e| e.operation == op) {
        if e.status < 300 && !e.replay {
            *counts
                .entry(e.resolved_id.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
    }
    counts
}

fn asset_json(emu: &Emulator, reference: &str) -> Option<Value> {
    let id = emu.store().find_asset(reference)?.id.clone();
    emu.store().snapshot()["assets"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id.as_str())
        .cloned()
}

fn parent_of(emu: &Emulator, id: &str) -> Option<String> {
    emu.store().snapshot()["associations"]
        .as_array()?
        .iter()
        .find(|a| a["childId"] == id)
        .and_then(|a| a["parentId"].as_str().map(str::to_string))
}

fn apply_yaml(env: &Env, ns: &str, yaml: &str) -> anyhow::Result<std::process::Output> {
    kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-n", ns, "-f", "-"],
        Some(yaml),
    )
}

fn ready_reason(obj: &SiteWiseAsset) -> Option<String> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

async fn wait_reason(
    api: &Api<SiteWiseAsset>,
    name: &str,
    reason: &str,
) -> anyhow::Result<SiteWiseAsset> {
    eventually(
        &format!("{name} Ready reason {reason}"),
        Duration::from_secs(60),
        || async {
            api.get(name)
                .await
                .ok()
                .filter(|o| ready_reason(o).as_deref() == Some(reason))
        },
    )
    .await
}

async fn cluster_id(env: &Env) -> anyhow::Result<String> {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .get("kube-system")
        .await?
        .uid()
        .context("kube-system has a UID")
}

pub async fn plant_created_from_spec_then_pruned(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-create").await?;
    let mut settings = quiet();
    settings.timings.create = Duration::from_millis(500);
    settings.timings.delete = Duration::from_millis(500);
    let (emu, _) = emulator(settings, &models_seed()?).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "create")?;
    let out = kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-n", &ns, "-f", "deploy/samples/plant.yaml"],
        None,
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = env.assets(&ns);
    wait_all_ready(&api, 15, Duration::from_secs(120)).await?;

    // The tree in SiteWise is the one declared: every child under its parent's asset.
    let cluster = cluster_id(env).await?;
    for obj in api.list(&Default::default()).await?.items {
        let status = obj.status.clone().context("status")?;
        let id = status.asset_id.clone().context("asset id")?;
        ensure!(id == token::created_asset_id(&obj.uid().context("uid")?));
        ensure!(status.ownership == Some(Ownership::Created));
        let asset = asset_json(&emu, &id).context("asset exists")?;
        ensure!(
            asset["tags"]["sitewise.operator.dev/owner"]
                == format!("{cluster}/{}", obj.uid().unwrap_or_default()).as_str(),
            "claim tag: {}",
            asset["tags"]
        );
        ensure!(asset["tags"]["plant"] == "lyon");
        if let Some(parent) = obj.spec.parent.as_ref().and_then(|p| p.name.clone()) {
            let parent_id = api.get(&parent).await?.status.and_then(|s| s.asset_id);
            ensure!(
                parent_of(&emu, &id) == parent_id,
                "{} under {parent}",
                obj.name_any()
            );
            ensure!(status.parent_link.is_some_and(|l| l.associated));
        }
    }
    let machine = asset_json(&emu, "externalId:machine-packaging-1-1").context("machine")?;
    let temperature = &machine["properties"][0];
    ensure!(temperature["alias"] == "/lyon/packaging/line-1/machine-1/temperature");
    ensure!(temperature["notificationState"] == "ENABLED");
    ensure!(effective(&emu, Op::CreateAsset).len() == 15);

    let out = kubectl_output(
        &env.plane.kubeconfig,
        &[
            "delete",
            "-n",
            &ns,
            "-f",
            "deploy/samples/plant.yaml",
            "--wait=false",
        ],
        None,
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_all_gone(&api, Duration::from_secs(120)).await?;
    ensure!(emu.store().snapshot()["assets"].as_array().map(Vec::len) == Some(0));
    let deleted = effective(&emu, Op::DeleteAsset);
    ensure!(
        deleted.len() == 15 && deleted.values().all(|n| *n == 1),
        "{deleted:?}"
    );
    Ok(())
}

pub async fn two_resources_on_one_asset(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-claims").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "claims")?;
    let api = env.assets(&ns);
    let line = seeded.assets["line-0-0"].clone();
    let adopt = |name: &str, policy: &str| {
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: {name}}}\nspec: {{assetId: externalId:line-0-0, deletionPolicy: {policy}}}\n"
        )
    };
    ensure!(
        apply_yaml(env, &ns, &adopt("owner", "Delete"))?
            .status
            .success()
    );
    wait_reason(&api, "owner", "AssetReady").await?;
    ensure!(
        apply_yaml(env, &ns, &adopt("intruder", "Delete"))?
            .status
            .success()
    );
    let intruder = wait_reason(&api, "intruder", "ClaimedByOther").await?;
    let status = intruder.status.context("status")?;
    ensure!(status.ownership == Some(Ownership::NotOwned));
    ensure!(
        status
            .claimed_by
            .is_some_and(|c| c.contains(&format!("{ns}/owner")))
    );
    let reasons = event_reasons(&env.client, &ns, "intruder").await;
    ensure!(reasons.iter().any(|r| r == "ClaimedByOther"), "{reasons:?}");

    // Deleting the intruder releases it without touching the asset.
    api.delete("intruder", &DeleteParams::default()).await?;
    eventually("intruder gone", Duration::from_secs(60), || async {
        api.get_opt("intruder").await.ok()?.is_none().then_some(())
    })
    .await?;
    ensure!(asset_json(&emu, &line).is_some_and(|a| a["state"] == "ACTIVE"));
    ensure!(effective(&emu, Op::DeleteAsset).is_empty());
    ensure!(effective(&emu, Op::DisassociateAssets).is_empty());
    let reasons = event_reasons(&env.client, &ns, "intruder").await;
    ensure!(reasons.iter().any(|r| r == "AssetNotOwned"), "{reasons:?}");

    // The owner's deletion deletes it, once.
    api.delete("owner", &DeleteParams::default()).await?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    ensure!(asset_json(&emu, &line).is_none());
    ensure!(effective(&emu, Op::DeleteAsset) == BTreeMap::from([(line, 1)]));
    Ok(())
}

pub async fn reused_external_id_is_never_followed(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-pinned").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 0)).await?;
    // The replacement is found at the next resync.
    let _operator = Operator::start_with(env, &ns, &emu.endpoint(), "pinned", &["--resync", "2s"])?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    let first = seeded.assets["line-0-0"].clone();
    // Out of band: the line is deleted, and a new asset takes its external ID.
    let replacement = {
        let mut store = emu.store();
        let link = json!({"hierarchyId": "externalId:area-lines", "childAssetId": first});
        store
            .disassociate_assets("externalId:area-0", &link)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        store
            .delete_asset(&first)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        store.settle(Instant::now());
        let reply = store
            .create_asset(
                &json!({"assetName": "new line", "assetModelId": "externalId:line-model",
                "assetExternalId": "line-0-0"}),
            )
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let id = reply
            .body
            .and_then(|b| b["assetId"].as_str().map(str::to_string));
        let id = id.context("new asset")?;
        store.force_active(&id);
        id
    };
    let obj = wait_reason(&api, "line-0-0", "AssetReplaced").await?;
    let message = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ensure!(
        message.contains(&first) && message.contains(&replacement),
        "{message}"
    );
    ensure!(obj.status.and_then(|s| s.asset_id) == Some(first));

    api.delete("line-0-0", &DeleteParams::default()).await?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    ensure!(asset_json(&emu, &replacement).is_some_and(|a| a["state"] == "ACTIVE"));
    let touched = emu.store().journal().iter().any(|e| {
        !matches!(e.operation, Op::DescribeAsset | Op::ListTagsForResource)
            && e.resolved_id.as_deref() == Some(replacement.as_str())
    });
    ensure!(!touched, "the replacement asset was changed");
    Ok(())
}

pub async fn crash_between_create_and_status_write(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-create-crash").await?;
    let (emu, _) = emulator(quiet(), &models_seed()?).await?;
    // CreateAsset takes effect at once; its answer comes 5 s later.
    emu.store().settings.faults.operations.insert(
        "CreateAsset".into(),
        OpFaults {
            answer_delay: Duration::from_secs(5),
            ..OpFaults::default()
        },
    );
    let operator = Operator::start(env, &ns, &emu.endpoint(), "create-crash-1")?;
    let yaml = "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: press}\nspec: {assetModelId: externalId:machine-model}\n";
    ensure!(apply_yaml(env, &ns, yaml)?.status.success());
    eventually(
        "CreateAsset took effect",
        Duration::from_secs(60),
        || async { (!effective(&emu, Op::CreateAsset).is_empty()).then_some(()) },
    )
    .await?;
    operator.kill();
    let api = env.assets(&ns);
    let obj = api.get("press").await?;
    ensure!(
        obj.status
            .as_ref()
            .and_then(|s| s.asset_id.clone())
            .is_none(),
        "the status write must not have happened"
    );
    emu.store().settings.faults.operations.clear();
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "create-crash-2")?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    ensure!(emu.store().snapshot()["assets"].as_array().map(Vec::len) == Some(1));
    let creates = effective(&emu, Op::CreateAsset);
    ensure!(creates.values().sum::<usize>() == 1, "{creates:?}");
    let uid = api.get("press").await?.uid().context("uid")?;
    ensure!(creates.contains_key(&token::created_asset_id(&uid)));
    Ok(())
}

pub async fn drift_is_found_by_sweeps_and_corrected(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-drift").await?;
    let (emu, _) = emulator(quiet(), &models_seed()?).await?;
    let _operator = Operator::start_with(env, &ns, &emu.endpoint(), "drift", &["--resync", "2s"])?;
    let yaml = "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: line}\nspec: {assetModelId: externalId:line-model}\n---\napiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: press}\nspec: {assetModelId: externalId:machine-model, name: Press 7, parent: {name: line, hierarchy: Machines}}\n";
    ensure!(apply_yaml(env, &ns, yaml)?.status.success());
    let api = env.assets(&ns);
    wait_all_ready(&api, 2, Duration::from_secs(60)).await?;
    let id_of = |name: &'static str| {
        let api = api.clone();
        async move { api.get(name).await.ok()?.status?.asset_id }
    };
    let (id, line) = (
        id_of("press").await.context("press")?,
        id_of("line").await.context("line")?,
    );
    // At rest, sweeps list in bulk: no asset is described on its own (the full resync is an
    // hour away). The reconcile that follows the last status write has settled by then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let start = emu.store().journal().len();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let calls = |op: Op| {
        emu.store().journal()[start..]
            .iter()
            .filter(|e| e.operation == op)
            .count()
    };
    ensure!(
        calls(Op::DescribeAsset) == 0,
        "described at rest: {}",
        calls(Op::DescribeAsset)
    );
    ensure!(
        calls(Op::ListAssets) >= 4,
        "two models, listed at each sweep: {}",
        calls(Op::ListAssets)
    );
    ensure!(
        calls(Op::ListAssociatedAssets) >= 2,
        "the line's machines: {}",
        calls(Op::ListAssociatedAssets)
    );
    // Renamed in the console: found by the next sweep, set back, reported as drift.
    emu.store()
        .update_asset(&id, &json!({"assetName": "Renamed in the console"}))
        .map_err(|e| anyhow::anyhow!(e.message))?;
    eventually("name set back", Duration::from_secs(30), || async {
        asset_json(&emu, &id).filter(|a| a["name"] == "Press 7" && a["state"] == "ACTIVE")
    })
    .await?;
    let reasons = eventually("DriftCorrected event", Duration::from_secs(20), || async {
        let reasons = event_reasons(&env.client, &ns, "press").await;
        reasons
            .iter()
            .any(|r| r == "DriftCorrected")
            .then_some(reasons)
    })
    .await?;
    ensure!(!reasons.iter().any(|r| r == "AssetUpdated"), "{reasons:?}");
    // Detached in the console: found by a sweep (the line no longer lists it), linked again.
    let link = json!({"hierarchyId": "externalId:line-machines", "childAssetId": id});
    emu.store()
        .disassociate_assets(&line, &link)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    eventually("linked again", Duration::from_secs(30), || async {
        (effective(&emu, Op::AssociateAssets).get(&line) == Some(&2)).then_some(())
    })
    .await?;
    Ok(())
}

pub async fn reparent_moves_the_child(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-reparent").await?;
    let (emu, _) = emulator(quiet(), &models_seed()?).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "reparent")?;
    let yaml = "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: line-1}\nspec: {assetModelId: externalId:line-model}\n---\napiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: line-2}\nspec: {assetModelId: externalId:line-model}\n---\napiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: press}\nspec: {assetModelId: externalId:machine-model, parent: {name: line-1, hierarchy: Machines}}\n";
    ensure!(apply_yaml(env, &ns, yaml)?.status.success());
    let api = env.assets(&ns);
    wait_all_ready(&api, 3, Duration::from_secs(60)).await?;
    let id_of = |name: &'static str| {
        let api = api.clone();
        async move { api.get(name).await.ok()?.status?.asset_id }
    };
    let (press, line1, line2) = (
        id_of("press").await,
        id_of("line-1").await,
        id_of("line-2").await,
    );
    let press = press.context("press")?;
    ensure!(parent_of(&emu, &press) == line1);

    let patch = |parent: Value| json!({"spec": {"parent": parent}});
    api.patch(
        "press",
        &PatchParams::default(),
        &Patch::Merge(patch(
            json!({"name": "line-2", "hierarchy": "externalId:line-machines"}),
        )),
    )
    .await?;
    eventually("moved under line-2", Duration::from_secs(60), || async {
        (parent_of(&emu, &press) == line2).then_some(())
    })
    .await?;
    wait_all_ready(&api, 3, Duration::from_secs(30)).await?;
    let reasons = event_reasons(&env.client, &ns, "press").await;
    ensure!(
        reasons.iter().any(|r| r == "DetachedFromParent"),
        "{reasons:?}"
    );
    // Events of one reason are folded into a series by the recorder: one LinkedToParent.
    ensure!(reasons.iter().any(|r| r == "LinkedToParent"), "{reasons:?}");

    // Removing the parent detaches the asset.
    api.patch(
        "press",
        &PatchParams::default(),
        &Patch::Merge(patch(Value::Null)),
    )
    .await?;
    eventually("detached", Duration::from_secs(60), || async {
        parent_of(&emu, &press).is_none().then_some(())
    })
    .await?;
    eventually("no link recorded", Duration::from_secs(30), || async {
        let obj = api.get("press").await.ok()?;
        obj.status?.parent_link.is_none().then_some(())
    })
    .await?;
    Ok(())
}

pub async fn failed_deletion_is_retried_with_a_new_token(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-failed-delete").await?;
    let mut settings = quiet();
    settings.timings.delete = Duration::from_secs(3);
    let (emu, seeded) = emulator(settings, &plant_seed(1, 1, 0)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "failed-delete")?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    let uid = api.get("line-0-0").await?.uid().context("uid")?;
    let line = seeded.assets["line-0-0"].clone();
    api.delete("line-0-0", &DeleteParams::default()).await?;
    eventually("DELETING", Duration::from_secs(60), || async {
        asset_json(&emu, &line).filter(|a| a["state"] == "DELETING")
    })
    .await?;
    emu.store()
        .force_failed(&line, "INTERNAL_FAILURE", "deletion failed (injected)")
        .map_err(|e| anyhow::anyhow!(e.message))?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    ensure!(asset_json(&emu, &line).is_none());
    let tokens: Vec<String> = emu
        .store()
        .journal()
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
        .filter_map(|e| e.client_token.clone())
        .collect();
    ensure!(
        tokens
            == [
                token::delete_asset(&uid, &line, 0),
                token::delete_asset(&uid, &line, 1)
            ],
        "{tokens:?}"
    );
    let reasons = event_reasons(&env.client, &ns, "line-0-0").await;
    ensure!(reasons.iter().any(|r| r == "DeletionFailed"), "{reasons:?}");
    Ok(())
}

pub async fn bad_input_is_refused_or_explained(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-ownership-input").await?;
    let (emu, _) = emulator(quiet(), &models_seed()?).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "ownership-input")?;
    let head =
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: bad}\n";
    for (spec, message) in [
        (
            "spec: {assetId: externalId:press-7, assetModelId: externalId:machine-model}",
            "set exactly one of spec.assetId",
        ),
        (
            "spec: {deletionPolicy: Delete}",
            "set exactly one of spec.assetId",
        ),
        (
            "spec: {assetModelId: externalId:machine-model, parent: {name: line, namespace: other, hierarchy: Machines}}",
            "parent.namespace is not supported",
        ),
        (
            "spec: {assetModelId: externalId:machine-model, tags: {sitewise.operator.dev/owner: me}}",
            "reserved for the operator",
        ),
    ] {
        let out = apply_yaml(env, &ns, &format!("{head}{spec}\n"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains(message),
            "{spec}: {stderr}"
        );
    }
    let api = env.assets(&ns);
    let yaml = "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: no-model}\nspec: {assetModelId: externalId:no-such-model}\n---\napiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: line}\nspec: {assetModelId: externalId:line-model}\n---\napiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: lost-child}\nspec: {assetModelId: externalId:machine-model, parent: {name: line, hierarchy: Robots}}\n";
    ensure!(apply_yaml(env, &ns, yaml)?.status.success());
    let missing = wait_reason(&api, "no-model", "ModelNotFound").await?;
    let note = |o: &SiteWiseAsset| {
        o.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    ensure!(
        note(&missing).contains("no-such-model"),
        "{}",
        note(&missing)
    );
    let lost = wait_reason(&api, "lost-child", "HierarchyNotFound").await?;
    ensure!(
        note(&lost).contains("Robots") && note(&lost).contains("Machines"),
        "{}",
        note(&lost)
    );
    // Nothing was created for the resource whose model does not exist; deleting it is clean.
    api.delete("no-model", &DeleteParams::default()).await?;
    eventually("no-model gone", Duration::from_secs(60), || async {
        api.get_opt("no-model").await.ok()?.is_none().then_some(())
    })
    .await?;
    ensure!(effective(&emu, Op::DeleteAsset).is_empty());
    Ok(())
}
