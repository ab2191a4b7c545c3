//! End-to-end cases of asset models as resources: a plant declared with its models, applied in
//! the worst order and pruned with one `kubectl delete -f`; a model changed in Git; and bad
//! input (a missing child model, a cycle, schema refusals).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use sitewise_emulator::Emulator;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::Seed;
use sitewise_operator::crd::SiteWiseAssetModel;
use sitewise_operator::token;

use crate::harness::*;

const SAMPLE: &str = "deploy/samples/plant-from-models.yaml";

fn models(env: &Env, namespace: &str) -> Api<SiteWiseAssetModel> {
    Api::namespaced(env.client.clone(), namespace)
}

async fn wait_models_ready(api: &Api<SiteWiseAssetModel>, count: usize) -> anyhow::Result<()> {
    eventually("all models Ready", Duration::from_secs(90), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        (list.items.len() == count && list.items.iter().all(|m| m.is_ready())).then_some(())
    })
    .await
}

/// The journal sequence numbers of the effective calls of `op`, by target.
fn effective_seqs(emu: &Emulator, op: Op) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in emu.store().journal().iter().filter(|e| e.operation == op) {
        if e.status < 300 && !e.replay {
            let target = e
                .resolved_id
                .clone()
                .or(e.target.clone())
                .unwrap_or_default();
            out.entry(target).or_default().push(e.seq);
        }
    }
    out
}

fn apply(env: &Env, ns: &str, args: &[&str], yaml: Option<&str>) -> anyhow::Result<String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    let out = kubectl_output(&env.plane.kubeconfig, &all, yaml)?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn plant_from_models_applied_in_any_order_then_pruned(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-models").await?;
    let mut settings = quiet();
    settings.timings.create = Duration::from_millis(300);
    settings.timings.delete = Duration::from_millis(300);
    let (emu, _) = emulator(settings, &Seed::default()).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "models")?;
    apply(env, &ns, &["apply", "-f", SAMPLE], None)?;
    let model_api = models(env, &ns);
    wait_models_ready(&model_api, 4).await?;
    let assets = env.assets(&ns);
    wait_all_ready(&assets, 7, Duration::from_secs(120)).await?;

    // Each model has the ID derived from its resource; each asset is of its resource's model.
    let mut model_ids = BTreeMap::new();
    for m in model_api.list(&ListParams::default()).await?.items {
        let id = m.model_id().context("model id")?.to_string();
        ensure!(id == token::created_model_id(&m.uid().context("uid")?));
        model_ids.insert(m.name_any(), id);
    }
    let snapshot = emu.store().snapshot();
    let model_of: BTreeMap<String, String> = snapshot["assets"]
        .as_array()
        .context("assets")?
        .iter()
        .filter_map(|a| {
            Some((
                a["id"].as_str()?.to_string(),
                a["modelId"].as_str()?.to_string(),
            ))
        })
        .collect();
    ensure!(model_of.len() == 7, "{model_of:?}");
    for a in assets.list(&ListParams::default()).await?.items {
        let wanted = &a.spec.asset_model_ref.as_ref().context("ref")?.name;
        let id = a
            .status
            .clone()
            .and_then(|s| s.asset_id)
            .context("asset id")?;
        ensure!(
            model_of.get(&id) == model_ids.get(wanted),
            "{} of {wanted}",
            a.name_any()
        );
    }
    let machine = emu.store().find_model("externalId:turin-machine").cloned();
    ensure!(machine.is_some_and(|m| m.properties.len() == 2));

    apply(env, &ns, &["delete", "-f", SAMPLE, "--wait=false"], None)?;
    wait_all_gone(&assets, Duration::from_secs(120)).await?;
    eventually("all models gone", Duration::from_secs(120), || async {
        model_api
            .list(&ListParams::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await?;
    let snapshot = emu.store().snapshot();
    ensure!(snapshot["assets"].as_array().map(Vec::len) == Some(0));
    ensure!(
        snapshot["models"].as_array().map(Vec::len) == Some(0),
        "{}",
        snapshot["models"]
    );

    // Each model deleted once, after the last asset of it, and a parent model before its child.
    let asset_deletes = effective_seqs(&emu, Op::DeleteAsset);
    ensure!(asset_deletes.len() == 7 && asset_deletes.values().all(|s| s.len() == 1));
    let model_deletes = effective_seqs(&emu, Op::DeleteAssetModel);
    ensure!(
        model_deletes.len() == 4 && model_deletes.values().all(|s| s.len() == 1),
        "{model_deletes:?}"
    );
    for (name, id) in &model_ids {
        let deleted_at = model_deletes[id][0];
        let last_asset = asset_deletes
            .iter()
            .filter(|(asset, _)| model_of.get(*asset) == Some(id))
            .map(|(_, s)| s[0])
            .max()
            .context("assets of the model")?;
        ensure!(
            deleted_at > last_asset,
            "model {name} deleted before its last asset"
        );
    }
    for (parent, child) in [("site", "area"), ("area", "line"), ("line", "machine")] {
        ensure!(
            model_deletes[&model_ids[parent]][0] < model_deletes[&model_ids[child]][0],
            "{parent} before {child}"
        );
    }
    let warnings: Vec<_> = events_in(&env.client, &ns)
        .await
        .into_iter()
        .filter(|e| e.warning)
        .map(|e| format!("{} {}", e.name, e.reason))
        .collect();
    ensure!(warnings.is_empty(), "no Warning event: {warnings:?}");
    Ok(())
}

pub async fn model_changes_and_bad_hierarchies(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-model-input").await?;
    let (emu, _) = emulator(quiet(), &Seed::default()).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "model-input")?;
    let head = "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAssetModel\n";
    // Refused by the schema, with a message that says what to fix.
    for (spec, message) in [
        (
            "spec: {hierarchies: [{name: H, childModel: {name: a, assetModelId: externalId:x1}}]}",
            "exactly one of name",
        ),
        (
            "spec: {properties: [{name: T, type: Measurement, dataType: DOUBLE, defaultValue: '1'}]}",
            "defaultValue is only for properties of type Attribute",
        ),
        (
            "spec: {properties: [{name: T, type: Measurement, dataType: DOUBLE}, {name: T, type: Attribute, dataType: STRING}]}",
            "property names must be unique",
        ),
        (
            "spec: {properties: [{name: T, type: Metric, dataType: DOUBLE}]}",
            "Unsupported value: \"Metric\"",
        ),
    ] {
        let out = kubectl_output(
            &env.plane.kubeconfig,
            &["apply", "-n", &ns, "-f", "-"],
            Some(&format!("{head}metadata: {{name: bad}}\n{spec}\n")),
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains(message),
            "{spec}: {stderr}"
        );
    }
    let out = kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-n", &ns, "-f", "-"],
        Some(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {name: bad}\nspec: {assetModelRef: {name: m}, childPolicy: Sometimes}\n",
        ),
    )?;
    ensure!(String::from_utf8_lossy(&out.stderr).contains("Unsupported value: \"Sometimes\""));

    // A missing child model and a cycle are conditions a person can act on.
    let api = models(env, &ns);
    let yaml = format!(
        "{head}metadata: {{name: orphan}}\nspec: {{hierarchies: [{{name: Parts, childModel: {{name: part}}}}]}}\n---\n\
         {head}metadata: {{name: left}}\nspec: {{hierarchies: [{{name: R, childModel: {{name: right}}}}]}}\n---\n\
         {head}metadata: {{name: right}}\nspec: {{hierarchies: [{{name: L, childModel: {{name: left}}}}]}}\n"
    );
    apply(env, &ns, &["apply", "-f", "-"], Some(&yaml))?;
    for (name, wanted) in [
        (
            "orphan",
            "WaitingForChildModel: Hierarchy Parts names SiteWiseAssetModel part, which does not exist",
        ),
        (
            "left",
            "HierarchyCycle: The hierarchies of these SiteWiseAssetModels form a cycle: left -> right -> left",
        ),
        (
            "right",
            "HierarchyCycle: The hierarchies of these SiteWiseAssetModels form a cycle: right -> left -> right",
        ),
    ] {
        eventually(
            &format!("{name}: {wanted}"),
            Duration::from_secs(30),
            || async {
                api.get(name)
                    .await
                    .ok()
                    .filter(|m| ready_text(m).starts_with(wanted))
            },
        )
        .await?;
    }
    ensure!(emu.store().snapshot()["models"].as_array().map(Vec::len) == Some(0));

    // Creating the missing child lets the parent converge; a spec change is an update.
    let part = format!(
        "{head}metadata: {{name: part}}\nspec: {{properties: [{{name: Weight, type: Attribute, dataType: DOUBLE}}]}}\n"
    );
    apply(env, &ns, &["apply", "-f", "-"], Some(&part))?;
    for name in ["part", "orphan"] {
        eventually(
            &format!("{name} Ready"),
            Duration::from_secs(60),
            || async { api.get(name).await.ok().filter(|m| m.is_ready()) },
        )
        .await?;
    }
    let part_id = api.get("part").await?.model_id().context("id")?.to_string();
    let weight_id = emu.store().find_model(&part_id).context("part")?.properties[0]["id"].clone();
    let changed = part.replace(
        "dataType: DOUBLE}]",
        "dataType: DOUBLE}, {name: Colour, type: Attribute, dataType: STRING, defaultValue: grey}]",
    );
    apply(env, &ns, &["apply", "-f", "-"], Some(&changed))?;
    eventually(
        "part updated and Ready",
        Duration::from_secs(60),
        || async {
            let m = api.get("part").await.ok()?;
            let generation = m.metadata.generation;
            let status = m.status.clone()?;
            (m.is_ready() && status.observed_generation == generation).then_some(())
        },
    )
    .await?;
    let model = emu.store().find_model(&part_id).context("part")?.clone();
    ensure!(model.properties.len() == 2, "{:?}", model.properties);
    ensure!(
        model.properties[0]["id"] == weight_id,
        "Weight keeps its ID"
    );
    let updates = effective_seqs(&emu, Op::UpdateAssetModel);
    ensure!(
        updates.get(&part_id).map(Vec::len) == Some(1),
        "{updates:?}"
    );
    Ok(())
}
