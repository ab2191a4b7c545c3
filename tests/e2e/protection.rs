//! Deletion protection enforced by the API server (`deploy/deletion-protection.yaml`, also in
//! the chart): a protected resource cannot be deleted until a person lifts the protection.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use sitewise_emulator::ops::Op;

use crate::harness::*;

const POLICY: &str = "deploy/deletion-protection.yaml";
const CHART_TEMPLATE: &str = "deploy/helm/sitewise-operator/templates/deletion-protection.yaml";

/// The YAML documents of `text`, without Helm's `{{ }}` lines.
fn documents(text: &str) -> anyhow::Result<Vec<serde_yaml::Value>> {
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
    kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-f", "-"],
        Some(&manifest),
    )?;
    let api = env.assets(&ns);
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;

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
    Ok(())
}

fn journal_count(emu: &sitewise_emulator::Emulator, op: Op) -> usize {
    emu.store()
        .journal()
        .iter()
        .filter(|e| e.operation == op)
        .count()
}
