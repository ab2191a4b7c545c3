//! `sitewise-operator plan` (also `kubectl sitewise plan`): what a deletion would do, read from
//! the real API server and the emulator, with nothing changed.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use sitewise_emulator::ops::Op;

use crate::harness::*;

fn mutations(emu: &sitewise_emulator::Emulator) -> usize {
    emu.store()
        .journal()
        .iter()
        .filter(|e| {
            matches!(
                e.operation,
                Op::DisassociateAssets | Op::DeleteAsset | Op::TagResource | Op::UntagResource
            )
        })
        .count()
}

/// `sitewise-operator <command> <args> -n <namespace>` against the emulator, as a person with
/// the admin kubeconfig runs it.
fn cli(
    env: &Env,
    emu: &sitewise_emulator::Emulator,
    namespace: &str,
    command: &str,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    Ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_sitewise-operator"))
            .arg(command)
            .args(args)
            .args(["-n", namespace, "--sitewise-endpoint", &emu.endpoint()])
            .args(["--region", "us-east-1"])
            .env("KUBECONFIG", &env.plane.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "emulator")
            .env("AWS_SECRET_ACCESS_KEY", "emulator")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()?,
    )
}

/// The standard output of a `cli` call that must succeed.
pub fn cli_ok(
    env: &Env,
    emu: &sitewise_emulator::Emulator,
    namespace: &str,
    command: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let out = cli(env, emu, namespace, command, args)?;
    ensure!(
        out.status.success(),
        "{command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn plan_shows_what_a_deletion_would_do(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-plan").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 2, 1)).await?;
    let operator = Operator::start(env, &ns, &emu.endpoint(), "plan")?;
    let manifest = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: area-0, namespace: {ns}}}\n\
         spec: {{assetId: externalId:area-0}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: line-0-0, namespace: {ns}}}\n\
         spec: {{assetId: externalId:line-0-0, childPolicy: Block}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: line-0-1, namespace: {ns}}}\n\
         spec: {{assetId: externalId:line-0-1, deletionPolicy: Retain}}\n"
    );
    let api = apply_ready(env, &ns, &manifest, 3).await?;
    drop(operator);
    let before = mutations(&emu);

    let run = |args: &[&str]| cli_ok(env, &emu, &ns, "plan", args);
    let whole = run(&[])?;
    eprintln!("{whole}");
    let section = |name: &str| -> anyhow::Result<String> {
        let start = whole
            .find(&format!("{ns}/{name} "))
            .with_context(|| format!("no {name} in the plan"))?;
        let rest = &whole[start..];
        Ok(rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string())
    };
    let machine = seeded.assets.get("machine-0-0-0").context("seeded")?;
    let line = section("line-0-0")?;
    ensure!(
        line.contains("BLOCKED") && line.contains(machine.as_str()),
        "{line}"
    );
    ensure!(section("line-0-1")?.contains("RETAINED"));
    // The area waits for line-0-0, which detaches itself but is blocked: the plan says so.
    let area = section("area-0")?;
    ensure!(
        area.contains("would not finish") && area.contains("waits for 1 child asset(s)"),
        "{area}"
    );
    ensure!(area.contains("DetachedFromParent"), "{area}");
    ensure!(whole.contains("SiteWise calls:") && whole.contains("DisassociateAssets"));

    // The tree: the hierarchy under the area, each asset beside its resource.
    let tree = cli_ok(env, &emu, &ns, "tree", &[])?;
    eprintln!("{tree}");
    let lines: Vec<&str> = tree.lines().collect();
    ensure!(
        lines.first().is_some_and(
            |l| l.starts_with("\"area-0\"") && l.ends_with(&format!("<- {ns}/area-0 (Ready)"))
        ),
        "{tree}"
    );
    ensure!(
        lines.iter().any(|l| l.contains("[Lines] \"line-0-0\"")
            && l.ends_with(&format!("<- {ns}/line-0-0 (Ready)"))),
        "{tree}"
    );
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("[Machines] \"machine-0-0-0\"") && l.ends_with("<- no resource")),
        "{tree}"
    );
    ensure!(
        lines.iter().filter(|l| l.contains('"')).count() == 5,
        "one tree of five assets: {tree}"
    );

    // Only the retained line: the plan follows the selection.
    let single = run(&["line-0-1"])?;
    ensure!(single.contains("Deleting 1 SiteWiseAsset(s)") && single.contains("RETAINED"));
    let missing = cli(env, &emu, &ns, "plan", &["nothing-here"])?;
    ensure!(!missing.status.success());
    ensure!(String::from_utf8_lossy(&missing.stderr).contains("nothing-here not found"));

    // Read-only: SiteWise and the resources are as they were.
    ensure!(mutations(&emu) == before, "the plan changed SiteWise");
    for obj in api.list(&Default::default()).await? {
        ensure!(obj.metadata.deletion_timestamp.is_none());
    }
    Ok(())
}

/// `N` in "`operation` N" of the plan's call line.
pub fn planned_calls(plan: &str, operation: &str) -> usize {
    plan.lines()
        .find_map(|l| l.strip_prefix("SiteWise calls: "))
        .and_then(|calls| {
            calls.split(", ").find_map(|c| {
                c.strip_prefix(operation)
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The asset IDs the plan says are deleted.
fn planned_deletions(plan: &str) -> std::collections::BTreeSet<String> {
    let mut deleted = std::collections::BTreeSet::new();
    let mut asset = None;
    for line in plan.lines() {
        if let Some((_, rest)) = line.split_once("  asset ") {
            asset = rest.split_whitespace().next().map(str::to_string);
        }
        if line.trim_start().starts_with("=> DELETED")
            && let Some(id) = asset.take()
        {
            deleted.insert(id);
        }
    }
    deleted
}

/// The plan of a prune matches the prune that follows: the same assets deleted, as many links
/// removed, as many DeleteAsset calls.
pub async fn plan_matches_the_deletion_that_follows(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-plan-prune").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 2, 2)).await?;
    let operator = Operator::start(env, &ns, &emu.endpoint(), "plan-prune")?;
    let names: Vec<String> = seeded
        .assets
        .keys()
        .filter(|n| *n != "site")
        .cloned()
        .collect();
    let api = env.assets(&ns);
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(60)).await?;
    let plan = cli_ok(env, &emu, &ns, "plan", &[])?;
    let planned = planned_deletions(&plan);
    ensure!(planned.len() == names.len(), "{plan}");

    delete_all_assets(env, &ns)?;
    wait_all_gone(&api, Duration::from_secs(90)).await?;
    drop(operator);
    let effective = |op: Op| {
        emu.store()
            .journal()
            .iter()
            .filter(|e| e.operation == op && e.status < 300 && !e.replay)
            .filter_map(|e| e.resolved_id.clone())
            .collect::<Vec<_>>()
    };
    let deleted: std::collections::BTreeSet<String> =
        effective(Op::DeleteAsset).into_iter().collect();
    ensure!(
        deleted == planned,
        "planned {planned:?}, deleted {deleted:?}"
    );
    let links_removed = effective(Op::DisassociateAssets).len();
    ensure!(
        planned_calls(&plan, "DisassociateAssets") == links_removed
            && planned_calls(&plan, "DeleteAsset") == deleted.len(),
        "plan: {plan}\nremoved {links_removed} links, deleted {} assets",
        deleted.len()
    );
    Ok(())
}
