//! Protection against deleting too much: deletion protection enforced by the API server
//! (`deploy/deletion-protection.yaml`, also in the chart), and `childPolicy: Block`, which holds
//! a deletion while children are linked.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use sitewise_emulator::ops::Op;

use crate::harness::*;

const POLICY: &str = "deploy/deletion-protection.yaml";
const CHART_TEMPLATE: &str = "deploy/helm/sitewise-operator/templates/deletion-protection.yaml";

/// The YAML documents of `text`, without Helm's `{{ }}` lines.
pub fn documents(text: &str) -> anyhow::Result<Vec<serde_yaml::Value>> {
    let plain: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("{{"))
        .map(|l| format!("{l}\n"))
        .collect();
    serde_yaml::Deserializer::from_str(&plain)
        .map(|doc| Ok(<serde_yaml::Value as serde::Deserialize>::deserialize(doc)?))
        .filter(|doc| !matches!(doc, Ok(serde_yaml::Value::Null)))
        .collect()
}

pub async fn deletion_protection_is_enforced_by_the_api_server(env: &Env) -> anyhow::Result<()> {
    ensure!(
        documents(&std::fs::read_to_string(repo().join(POLICY))?)?
            == documents(&std::fs::read_to_string(repo().join(CHART_TEMPLATE))?)?,
        "the chart's deletion protection differs from {POLICY}"
    );
    kubectl(&env.plane.kubeconfig, &["apply", "-f", POLICY])?;
    let ns = env.namespace("e2e-protected").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 0)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "protected")?;
    let manifest = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\n\
         metadata: {{name: line-0-0, namespace: {ns}, annotations: {{sitewise.operator.dev/deletion-protection: \"true\"}}}}\n\
         spec: {{assetId: externalId:line-0-0, deletionPolicy: Delete}}\n"
    );
    let api = apply_ready(env, &ns, &manifest, 1).await?;

    let delete = |dry_run: bool| {
        let mut args = vec!["delete", "sitewiseasset", "line-0-0", "-n", ns.as_str()];
        if dry_run {
            args.push("--dry-run=server");
        }
        kubectl_output(&env.plane.kubeconfig, &args, None)
    };
    // A new policy takes a moment to reach the API server's admission chain; a server-side dry
    // run goes through admission without deleting anything.
    eventually(
        "the policy is in force",
        Duration::from_secs(30),
        || async {
            delete(true)
                .ok()
                .filter(|out| !out.status.success())
                .map(|_| ())
        },
    )
    .await?;
    let refused = delete(false)?;
    ensure!(
        !refused.status.success(),
        "a protected resource was deleted"
    );
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    let lift = format!(
        "kubectl annotate sitewiseasset line-0-0 -n {ns} sitewise.operator.dev/deletion-protection-"
    );
    ensure!(
        message.contains("is protected from deletion") && message.contains(&lift),
        "{message}"
    );
    let obj = api.get("line-0-0").await?;
    ensure!(obj.metadata.deletion_timestamp.is_none());
    ensure!(journal_count(&emu, Op::DeleteAsset) == 0);

    // Lifted the way the message says, the deletion goes through and the asset goes.
    let command: Vec<&str> = lift.split_whitespace().skip(1).collect();
    kubectl(&env.plane.kubeconfig, &command)?;
    let out = delete(false)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    let id = seeded.assets.get("line-0-0").context("seeded line")?;
    ensure!(
        emu.store().snapshot()["assets"]
            .as_array()
            .is_some_and(|assets| assets.iter().all(|a| a["id"] != *id))
    );

    // A protected model resource is refused the same way.
    let model = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAssetModel\n\
         metadata: {{name: press, namespace: {ns}, annotations: {{sitewise.operator.dev/deletion-protection: \"true\"}}}}\n\
         spec: {{}}\n"
    );
    kubectl_output(&env.plane.kubeconfig, &["apply", "-f", "-"], Some(&model))?;
    let refused = kubectl_output(
        &env.plane.kubeconfig,
        &["delete", "sitewiseassetmodel", "press", "-n", &ns],
        None,
    )?;
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    ensure!(
        !refused.status.success()
            && message.contains(&format!(
                "kubectl annotate sitewiseassetmodel press -n {ns} sitewise.operator.dev/deletion-protection-"
            )),
        "{message}"
    );
    Ok(())
}

fn journal_count(emu: &sitewise_emulator::Emulator, op: Op) -> usize {
    emu.store()
        .journal()
        .iter()
        .filter(|e| e.operation == op)
        .count()
}

/// `childPolicy: Block` holds a site until its children's resources are gone: nothing is
/// changed in SiteWise meanwhile, and status names the children that block.
pub async fn block_holds_a_site_until_its_children_are_gone(env: &Env) -> anyhow::Result<()> {
    use sitewise_operator::crd::DeletionPhase;
    let ns = env.namespace("e2e-block").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(2, 0, 0)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "block")?;
    let manifest = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: site, namespace: {ns}}}\n\
         spec: {{assetId: externalId:site, deletionPolicy: Delete, childPolicy: Block}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: area-0, namespace: {ns}}}\n\
         spec: {{assetId: externalId:area-0, deletionPolicy: Delete}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: area-1, namespace: {ns}}}\n\
         spec: {{assetId: externalId:area-1, deletionPolicy: Delete}}\n"
    );
    let api = apply_ready(env, &ns, &manifest, 3).await?;

    // A policy that does not exist is refused by the schema, naming the ones that do.
    let bad = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: bad, namespace: {ns}}}\n\
         spec: {{assetId: externalId:area-0, childPolicy: Explode}}\n"
    );
    let refused = kubectl_output(&env.plane.kubeconfig, &["apply", "-f", "-"], Some(&bad))?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success()
            && stderr.contains("Unsupported value: \"Explode\"")
            && stderr.contains("\"Detach\"")
            && stderr.contains("\"Block\""),
        "{stderr}"
    );

    api.delete("site", &Default::default()).await?;
    let blocked_by = eventually(
        "the site's deletion is blocked",
        Duration::from_secs(60),
        || async {
            let deletion = api.get("site").await.ok()?.status?.deletion?;
            (deletion.phase == DeletionPhase::Blocked && deletion.blocked_by.len() == 2)
                .then_some(deletion.blocked_by)
        },
    )
    .await?;
    for area in ["area-0", "area-1"] {
        ensure!(
            blocked_by
                .iter()
                .any(|b| b.ends_with(&format!("(SiteWiseAsset {ns}/{area})"))),
            "{blocked_by:?}"
        );
    }
    // A few more polls: still blocked, and nothing was changed in SiteWise.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ensure!(api.get("site").await.is_ok());
    ensure!(journal_count(&emu, Op::DisassociateAssets) == 0);
    ensure!(journal_count(&emu, Op::DeleteAsset) == 0);
    let reasons = event_reasons(&env.client, &ns, "site").await;
    ensure!(
        reasons.iter().filter(|r| *r == "DeletionBlocked").count() == 1,
        "{reasons:?}"
    );

    // The children's resources go (they detach themselves); then the site goes.
    for area in ["area-0", "area-1"] {
        api.delete(area, &Default::default()).await?;
    }
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    for name in ["site", "area-0", "area-1"] {
        let id = seeded.assets.get(name).context("seeded")?;
        ensure!(
            emu.store()
                .journal()
                .iter()
                .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
                .filter(|e| e.resolved_id.as_deref() == Some(id.as_str()))
                .count()
                == 1
        );
    }
    ensure!(
        journal_count(&emu, Op::DisassociateAssets) == 2,
        "one detach per link"
    );
    Ok(())
}

/// `childPolicy: Cascade` deletes an unmanaged subtree three levels deep, one DeleteAsset per
/// asset, and leaves in place a descendant that has a resource of its own (Retain).
pub async fn cascade_deletes_the_unmanaged_subtree(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-cascade").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(2, 2, 2)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "cascade")?;
    let manifest = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: site, namespace: {ns}}}\n\
         spec: {{assetId: externalId:site, deletionPolicy: Delete, childPolicy: Cascade}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: kept, namespace: {ns}}}\n\
         spec: {{assetId: externalId:machine-0-0-0, deletionPolicy: Retain}}\n"
    );
    let api = apply_ready(env, &ns, &manifest, 2).await?;

    // The plan says beforehand how many assets go.
    let plan = crate::plan::cli_ok(env, &emu, &ns, "plan", &["site"])?;
    let planned = crate::plan::planned_calls(&plan, "DeleteAsset");
    ensure!(planned == seeded.assets.len() - 1, "{plan}");

    api.delete("site", &Default::default()).await?;
    eventually("the site is deleted", Duration::from_secs(90), || async {
        api.get_opt("site")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await?;
    let kept = seeded.assets.get("machine-0-0-0").context("seeded")?;
    let state = emu.store().snapshot();
    let remaining: Vec<String> = state["assets"]
        .as_array()
        .context("assets")?
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    ensure!(
        remaining == vec![kept.clone()],
        "left in SiteWise: {remaining:?}"
    );
    ensure!(
        state["associations"].as_array().is_some_and(Vec::is_empty),
        "the kept machine is detached"
    );
    for (name, id) in &seeded.assets {
        let deletes = emu
            .store()
            .journal()
            .iter()
            .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
            .filter(|e| e.resolved_id.as_deref() == Some(id.as_str()))
            .count();
        let expected = usize::from(id != kept);
        ensure!(deletes == expected, "{name}: {deletes} DeleteAsset");
    }
    let kept_resource = api.get("kept").await?;
    ensure!(
        kept_resource.status.is_some_and(|s| s
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")),
        "the kept machine's resource is untouched"
    );
    Ok(())
}
