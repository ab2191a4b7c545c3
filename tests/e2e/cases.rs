//! The end-to-end cases. Each checks Kubernetes (resources, finalizers, status, events) and the
//! emulator (journal, state) against the real operator binary.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Settings, Timings};
use sitewise_emulator::faults::OpFaults;
use sitewise_emulator::ops::Op;
use sitewise_emulator::store::JournalEntry;
use sitewise_operator::crd::FINALIZER;
use sitewise_operator::token;

use crate::harness::*;

fn journal(emu: &Emulator, op: Op) -> Vec<JournalEntry> {
    emu.store()
        .journal()
        .iter()
        .filter(|e| e.operation == op)
        .cloned()
        .collect()
}

/// Calls of `op` that took effect (a success that was not a token replay), per resolved target.
fn effective(emu: &Emulator, op: Op) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in journal(emu, op) {
        if e.status < 300 && !e.replay {
            *counts
                .entry(format!(
                    "{}>{}",
                    e.resolved_id.unwrap_or_default(),
                    e.child.unwrap_or_default()
                ))
                .or_insert(0) += 1;
        }
    }
    counts
}

fn asset_count(emu: &Emulator) -> usize {
    emu.store().snapshot()["assets"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

fn asset_state(emu: &Emulator, id: &str) -> Option<String> {
    emu.store().snapshot()["assets"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

fn parent_of(emu: &Emulator, id: &str) -> Option<String> {
    emu.store().snapshot()["associations"]
        .as_array()?
        .iter()
        .find(|a| a["childId"] == id)
        .and_then(|a| a["parentId"].as_str().map(str::to_string))
}

pub async fn ready_with_finalizer(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-ready").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    let operator = Operator::start(env, &ns, &emu.endpoint(), "ready")?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    let obj = eventually("Ready with finalizer", Duration::from_secs(60), || async {
        api.get("line-0-0")
            .await
            .ok()
            .filter(|o| is_ready(o) && o.finalizers().iter().any(|f| f == FINALIZER))
    })
    .await?;
    let status = obj.status.context("status")?;
    ensure!(status.asset_id.as_deref() == seeded.assets.get("line-0-0").map(String::as_str));
    ensure!(status.state.as_deref() == Some("ACTIVE"));
    ensure!(status.asset_arn.is_some_and(|a| a.contains(":asset/")));
    ensure!(status.observed_generation == Some(1));
    let synced = status.conditions.iter().find(|c| c.type_ == "Synced");
    ensure!(
        synced.is_some_and(|c| c.status == "True"),
        "{:?}",
        status.conditions
    );
    let events = eventually("AssetReady event", Duration::from_secs(20), || async {
        let reasons = event_reasons(&env.client, &ns, "line-0-0").await;
        reasons.iter().any(|r| r == "AssetReady").then_some(reasons)
    })
    .await?;
    ensure!(!events.is_empty());
    // Observing never changes SiteWise.
    ensure!(journal(&emu, Op::DeleteAsset).is_empty());
    ensure!(journal(&emu, Op::DisassociateAssets).is_empty());
    let log = operator.log_text().to_lowercase();
    ensure!(
        !log.contains("forbidden"),
        "the operator met an RBAC denial:\n{log}"
    );
    Ok(())
}

pub async fn delete_parent(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-delete").await?;
    let mut settings = quiet();
    settings.timings = Timings {
        delete: Duration::from_millis(2500),
        ..Timings::default()
    };
    let (emu, seeded) = emulator(settings, &plant_seed(1, 1, 2)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "delete")?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    let uid = api.get("line-0-0").await?.uid().context("uid")?;
    let line = seeded.assets["line-0-0"].clone();

    kubectl(
        &env.plane.kubeconfig,
        &[
            "delete",
            "sitewiseasset",
            "line-0-0",
            "-n",
            &ns,
            "--wait=false",
        ],
    )?;
    // While SiteWise reports DELETING, the resource must still be there.
    let seen_deleting_with_resource = AtomicBool::new(false);
    eventually("resource gone", Duration::from_secs(60), || async {
        let state = asset_state(&emu, &line);
        let present = api.get_opt("line-0-0").await.ok()?.is_some();
        if present && state.as_deref() == Some("DELETING") {
            seen_deleting_with_resource.store(true, Ordering::Relaxed);
        }
        (!present).then_some(())
    })
    .await?;
    ensure!(
        seen_deleting_with_resource.load(Ordering::Relaxed),
        "the finalizer was released before SiteWise finished"
    );
    ensure!(
        asset_state(&emu, &line).is_none(),
        "the asset is gone when the resource is"
    );

    // Children disassociated (not deleted), the line detached from its area, the rest intact.
    for m in ["machine-0-0-0", "machine-0-0-1"] {
        let id = &seeded.assets[m];
        ensure!(
            asset_state(&emu, id).as_deref() == Some("ACTIVE"),
            "{m} must stay"
        );
        ensure!(parent_of(&emu, id).is_none(), "{m} must be disassociated");
    }
    ensure!(asset_state(&emu, &seeded.assets["area-0"]).as_deref() == Some("ACTIVE"));
    let deletes = journal(&emu, Op::DeleteAsset);
    let tokens: HashSet<_> = deletes.iter().map(|e| e.client_token.clone()).collect();
    ensure!(
        tokens == HashSet::from([Some(token::delete_asset(&uid, &line, 0))]),
        "DeleteAsset tokens: {tokens:?}"
    );
    ensure!(effective(&emu, Op::DeleteAsset).values().sum::<usize>() == 1);
    ensure!(effective(&emu, Op::DisassociateAssets).len() == 3);
    let reasons = event_reasons(&env.client, &ns, "line-0-0").await;
    for wanted in [
        "ChildDisassociated",
        "DetachedFromParent",
        "DeleteRequested",
        "AssetDeleted",
    ] {
        ensure!(
            reasons.iter().any(|r| r == wanted),
            "missing event {wanted}: {reasons:?}"
        );
    }
    Ok(())
}

pub async fn gitops_prune_of_a_tree(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-prune").await?;
    // Published quotas on: 31 resources deleted at once meet the 30 TPS asset bucket.
    let mut settings = Settings::default();
    settings.timings.delete = Duration::from_millis(500);
    let (emu, seeded) = emulator(settings, &plant_seed(5, 5, 0)).await?;
    ensure!(seeded.assets.len() == 31);
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "prune")?;
    let api = env.assets(&ns);
    let names: Vec<String> = seeded.assets.keys().cloned().collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(120)).await?;

    let started = std::time::Instant::now();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    wait_all_gone(&api, Duration::from_secs(240)).await?;
    eprintln!(
        "[e2e] prune of {} resources converged in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    ensure!(asset_count(&emu) == 0, "no asset remains");
    let deleted = effective(&emu, Op::DeleteAsset);
    ensure!(
        deleted.len() == 31 && deleted.values().all(|n| *n == 1),
        "{deleted:?}"
    );
    // Each link is removed once, by one side: the child whose resource is pruned too; its
    // parent waits for it instead of racing it.
    let links = journal(&emu, Op::DisassociateAssets);
    let removed = effective(&emu, Op::DisassociateAssets);
    ensure!(
        links.len() == 30 && removed.len() == 30,
        "one DisassociateAssets per link: {} calls for {} links",
        links.len(),
        removed.len()
    );
    let total = emu.store().journal().len();
    let counters = emu.store().counters().clone();
    eprintln!("[e2e] prune: {total} SiteWise calls: {counters:?}");
    ensure!(total < 31 * 20, "bounded number of calls: {total}");
    // A clean prune pages nobody: no Warning, and one release event per resource.
    let events = events_in(&env.client, &ns).await;
    let warnings: Vec<_> = events.iter().filter(|e| e.warning).collect();
    ensure!(
        warnings.is_empty(),
        "warnings in a clean prune: {warnings:?}"
    );
    for name in &names {
        let releases: i32 = events
            .iter()
            .filter(|e| e.name == *name && RELEASE_REASONS.contains(&e.reason.as_str()))
            .map(|e| e.count)
            .sum();
        ensure!(
            releases == 1,
            "{name} released {releases} times: {events:?}"
        );
    }
    Ok(())
}

pub async fn namespace_teardown(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-teardown").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 3)).await?;
    let operator = Operator::start(env, &ns, &emu.endpoint(), "teardown")?;
    let api = env.assets(&ns);
    let names: Vec<String> = seeded.assets.keys().cloned().collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(60)).await?;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    eventually("namespace gone", Duration::from_secs(120), || async {
        namespaces.get_opt(&ns).await.ok()?.is_none().then_some(())
    })
    .await?;
    ensure!(
        asset_count(&emu) == 0,
        "every asset deleted through the operator"
    );
    ensure!(effective(&emu, Op::DeleteAsset).len() == names.len());
    // Events cannot be written in a terminating namespace: the log is the record, one line
    // per deleted asset with the resource, the asset ID and the clientToken.
    let log = operator.log_text();
    for (name, id) in &seeded.assets {
        let recorded = log.lines().any(|line| {
            line.contains("DeleteAsset accepted")
                && line.contains(&format!("name={name}"))
                && line.contains(id.as_str())
                && line.contains("client_token=")
        });
        ensure!(recorded, "no audit line for {name} ({id})");
    }
    Ok(())
}

pub async fn retain_policy(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-retain").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "retain")?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Retain").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    api.delete("line-0-0", &DeleteParams::default()).await?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    let line = &seeded.assets["line-0-0"];
    ensure!(asset_state(&emu, line).as_deref() == Some("ACTIVE"));
    ensure!(parent_of(&emu, line).as_deref() == Some(seeded.assets["area-0"].as_str()));
    ensure!(parent_of(&emu, &seeded.assets["machine-0-0-0"]).as_deref() == Some(line.as_str()));
    ensure!(journal(&emu, Op::DeleteAsset).is_empty());
    ensure!(journal(&emu, Op::DisassociateAssets).is_empty());
    let reasons = event_reasons(&env.client, &ns, "line-0-0").await;
    ensure!(reasons.iter().any(|r| r == "AssetRetained"), "{reasons:?}");
    Ok(())
}

pub async fn throttling_and_conflicts(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-faults").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 5)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "faults")?;
    let api = env.assets(&ns);
    let names: Vec<String> = seeded
        .assets
        .keys()
        .filter(|n| n.starts_with("line") || n.starts_with("machine"))
        .cloned()
        .collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(60)).await?;
    {
        let mut store = emu.store();
        for op in [
            "DisassociateAssets",
            "DeleteAsset",
            "ListAssociatedAssets",
            "DescribeAsset",
        ] {
            store.settings.faults.operations.insert(
                op.into(),
                OpFaults {
                    throttle: 0.3,
                    conflict: 0.15,
                    ..OpFaults::default()
                },
            );
        }
    }
    let before = emu.store().journal().len();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    wait_all_gone(&api, Duration::from_secs(180)).await?;
    let counters = emu.store().counters().clone();
    let met = |code: &str| -> u64 { counters.values().filter_map(|c| c.get(code)).sum() };
    ensure!(met("ThrottlingException") > 0 && met("ConflictingOperationException") > 0);
    let deleted = effective(&emu, Op::DeleteAsset);
    ensure!(
        deleted.len() == names.len() && deleted.values().all(|n| *n == 1),
        "{deleted:?}"
    );
    ensure!(asset_state(&emu, &seeded.assets["area-0"]).as_deref() == Some("ACTIVE"));
    let calls = emu.store().journal().len() - before;
    eprintln!(
        "[e2e] faults: {} resources deleted with {calls} calls ({} throttled, {} conflicts)",
        names.len(),
        met("ThrottlingException"),
        met("ConflictingOperationException")
    );
    // Measured: 209 to 268 calls for 6 resources; a retry storm costs thousands.
    ensure!(calls < names.len() * 100, "no hot loop: {calls} calls");
    Ok(())
}

pub async fn restart_mid_deletion(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-restart").await?;
    let mut settings = quiet();
    settings.timings.delete = Duration::from_secs(3);
    let (emu, seeded) = emulator(settings, &plant_seed(1, 1, 4)).await?;
    emu.store().settings.faults.operations.insert(
        "DisassociateAssets".into(),
        OpFaults {
            latency: Duration::from_millis(700),
            ..OpFaults::default()
        },
    );
    let api = env.assets(&ns);
    let operator = Operator::start(env, &ns, &emu.endpoint(), "restart-1")?;
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    let uid = api.get("line-0-0").await?.uid().context("uid")?;
    let line = seeded.assets["line-0-0"].clone();
    api.delete("line-0-0", &DeleteParams::default()).await?;

    // First crash: in the middle of the disassociations.
    eventually(
        "two disassociations done",
        Duration::from_secs(60),
        || async { (journal(&emu, Op::DisassociateAssets).len() >= 2).then_some(()) },
    )
    .await?;
    operator.kill();
    ensure!(
        api.get_opt("line-0-0").await?.is_some(),
        "the finalizer holds while the operator is down"
    );

    // Second crash: right after DeleteAsset was accepted.
    let operator = Operator::start(env, &ns, &emu.endpoint(), "restart-2")?;
    eventually("DeleteAsset accepted", Duration::from_secs(60), || async {
        journal(&emu, Op::DeleteAsset)
            .iter()
            .any(|e| e.status == 202)
            .then_some(())
    })
    .await?;
    operator.kill();
    ensure!(asset_state(&emu, &line).as_deref() == Some("DELETING"));

    let _operator = Operator::start(env, &ns, &emu.endpoint(), "restart-3")?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    ensure!(asset_state(&emu, &line).is_none());
    let disassociated = effective(&emu, Op::DisassociateAssets);
    ensure!(
        disassociated.len() == 5 && disassociated.values().all(|n| *n == 1),
        "each link removed once: {disassociated:?}"
    );
    let deletes = journal(&emu, Op::DeleteAsset);
    ensure!(
        deletes.iter().all(
            |e| e.client_token.as_deref() == Some(token::delete_asset(&uid, &line, 0).as_str())
        )
    );
    ensure!(effective(&emu, Op::DeleteAsset).values().sum::<usize>() == 1);
    Ok(())
}

pub async fn force_orphan_releases_a_stuck_deletion(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-orphan").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "orphan")?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    // The operator loses its SiteWise permissions: every call is refused.
    emu.store()
        .settings
        .faults
        .scripted
        .extend(
            [Op::DescribeAsset, Op::ListAssociatedAssets].map(|operation| {
                sitewise_emulator::faults::ScriptedFault {
                    operation,
                    target: None,
                    error: sitewise_emulator::error::ErrorCode::UnauthorizedException,
                    count: 1000,
                    message: Some("not authorized".into()),
                }
            }),
        );
    api.delete("line-0-0", &DeleteParams::default()).await?;
    eventually("Terminal condition", Duration::from_secs(30), || async {
        let obj = api.get("line-0-0").await.ok()?;
        obj.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Terminal" && c.status == "True")
            .then_some(())
    })
    .await?;
    let annotated = std::time::Instant::now();
    kubectl(
        &env.plane.kubeconfig,
        &[
            "annotate",
            "sitewiseasset",
            "line-0-0",
            "-n",
            &ns,
            "sitewise.operator.dev/force-orphan=IAM role removed (OPS-123)",
        ],
    )?;
    wait_all_gone(&api, Duration::from_secs(20)).await?;
    // The terminal retry is 30 s: the annotation passed the retry gate at once.
    ensure!(annotated.elapsed() < Duration::from_secs(20));
    let line = &seeded.assets["line-0-0"];
    ensure!(
        asset_state(&emu, line).as_deref() == Some("ACTIVE"),
        "the asset stays"
    );
    ensure!(journal(&emu, Op::DeleteAsset).is_empty());
    let reasons = event_reasons(&env.client, &ns, "line-0-0").await;
    ensure!(reasons.iter().any(|r| r == "AssetOrphaned"), "{reasons:?}");
    Ok(())
}

pub async fn leader_election_fails_over(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-leader").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    let election = [
        "--leader-election",
        "--leader-election-namespace",
        "sitewise-system",
        "--leader-election-lease",
        "e2e-leader",
        "--leader-lease-duration",
        "3s",
    ];
    let first = Operator::start_with(env, &ns, &emu.endpoint(), "leader-1", &election)?;
    eventually("first replica leads", Duration::from_secs(30), || async {
        first
            .log_text()
            .contains("acquired leadership")
            .then_some(())
    })
    .await?;
    let second = Operator::start_with(env, &ns, &emu.endpoint(), "leader-2", &election)?;
    eventually("second replica waits", Duration::from_secs(30), || async {
        second
            .log_text()
            .contains("waiting for leadership")
            .then_some(())
    })
    .await?;
    let api = env.assets(&ns);
    create_all(&api, &["line-0-0".into()], "Delete").await?;
    wait_all_ready(&api, 1, Duration::from_secs(60)).await?;
    ensure!(
        !second.log_text().contains("controller started"),
        "the standby replica must not reconcile"
    );

    // The leader dies; the standby takes over once the lease expires and finishes the work.
    first.kill();
    api.delete("line-0-0", &DeleteParams::default()).await?;
    wait_all_gone(&api, Duration::from_secs(60)).await?;
    let log = second.log_text();
    ensure!(log.contains("acquired leadership") && log.contains("controller started"));
    ensure!(asset_state(&emu, &seeded.assets["line-0-0"]).is_none());
    ensure!(effective(&emu, Op::DeleteAsset).values().sum::<usize>() == 1);
    Ok(())
}

pub async fn malformed_asset_id_is_refused(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-invalid").await?;
    let manifest = |name: &str, id: &str| {
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{assetId: \"{id}\"}}\n"
        )
    };
    for (id, expected) in [
        ("Press-7", "assetId must be a lowercase asset UUID"),
        (
            "6F1C2A57-93D4-4C1E-9B8A-51E20D7F3C64",
            "assetId must be a lowercase asset UUID",
        ),
        ("externalId:-bad", "assetId must be a lowercase asset UUID"),
        (
            "00000000-0000-0000-0000-000000000000",
            "must not be the all-zero UUID",
        ),
        ("", "should be at least 13 chars long"),
    ] {
        let out = kubectl_output(
            &env.plane.kubeconfig,
            &["apply", "-f", "-"],
            Some(&manifest("bad", id)),
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "{id:?} was accepted");
        ensure!(stderr.contains(expected), "{id:?}: {stderr}");
    }
    kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-f", "-"],
        Some(&manifest("good", "externalId:press_7")),
    )?;
    let out = kubectl_output(
        &env.plane.kubeconfig,
        &[
            "patch",
            "sitewiseasset",
            "good",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"assetId":"externalId:press_8"}}"#,
        ],
        None,
    )?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("assetId is immutable"));
    Ok(())
}

pub async fn rbac_is_least_privilege(env: &Env) -> anyhow::Result<()> {
    let g = "sitewise.operator.dev";
    for (verb, resource, group, sub) in [
        ("get", "sitewiseassets", g, None),
        ("list", "sitewiseassets", g, None),
        ("watch", "sitewiseassets", g, None),
        ("patch", "sitewiseassets", g, None),
        ("patch", "sitewiseassets", g, Some("status")),
        ("get", "sitewiseassetmodels", g, None),
        ("list", "sitewiseassetmodels", g, None),
        ("watch", "sitewiseassetmodels", g, None),
        ("patch", "sitewiseassetmodels", g, None),
        ("patch", "sitewiseassetmodels", g, Some("status")),
        ("create", "events", "events.k8s.io", None),
        ("patch", "events", "events.k8s.io", None),
    ] {
        ensure!(
            env.can_i(verb, resource, group, sub, "plant-a").await?,
            "needed: {verb} {resource}/{sub:?}"
        );
    }
    for (verb, resource, group, sub) in [
        ("create", "sitewiseassets", g, None),
        ("delete", "sitewiseassets", g, None),
        ("update", "sitewiseassets", g, Some("status")),
        ("create", "sitewiseassetmodels", g, None),
        ("delete", "sitewiseassetmodels", g, None),
        ("get", "secrets", "", None),
        ("list", "pods", "", None),
        ("create", "events", "", None),
        ("delete", "events", "events.k8s.io", None),
        (
            "create",
            "customresourcedefinitions",
            "apiextensions.k8s.io",
            None,
        ),
        ("get", "leases", "coordination.k8s.io", None),
    ] {
        ensure!(
            !env.can_i(verb, resource, group, sub, "plant-a").await?,
            "not needed, must be denied: {verb} {resource}/{sub:?}"
        );
    }
    // The cluster ID: the kube-system namespace, and no other.
    ensure!(env.can_get_namespace("kube-system").await?);
    ensure!(!env.can_get_namespace("default").await?);
    // Leader election: its Lease, in its own namespace only.
    for verb in ["get", "create", "update"] {
        ensure!(
            env.can_i(
                verb,
                "leases",
                "coordination.k8s.io",
                None,
                "sitewise-system"
            )
            .await?,
            "needed: {verb} leases in sitewise-system"
        );
    }
    ensure!(
        !env.can_i(
            "delete",
            "leases",
            "coordination.k8s.io",
            None,
            "sitewise-system"
        )
        .await?
    );
    Ok(())
}

fn helm_run(helm: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(helm)
        .args(args)
        .current_dir(repo())
        .output()?;
    ensure!(
        out.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rules_of(yaml: &str, kind: &str) -> anyhow::Result<serde_yaml::Value> {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)?;
        if value["kind"] == kind {
            return Ok(value["rules"].clone());
        }
    }
    anyhow::bail!("no {kind}")
}

pub async fn helm_chart_is_valid_and_matches_deploy(env: &Env) -> anyhow::Result<()> {
    let chart = "deploy/helm/sitewise-operator";
    let helm = sitewise_testcluster::built_tool("HELM_BIN", &repo(), "scripts/build-helm.sh")?;
    helm_run(&helm, &["lint", chart])?;
    let rendered = helm_run(
        &helm,
        &[
            "template",
            "sitewise",
            chart,
            "--namespace",
            "sitewise-system",
            "--include-crds",
            "--kube-version",
            "1.34.4",
            "--set",
            "sitewise.endpoint=http://sitewise-emulator:4566",
            "--set",
            "watchNamespace=plant",
            "--set",
            "clusterId=lyon-prod-1",
            "--set",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/sitewise-operator",
        ],
    )?;
    ensure!(rendered.contains("SITEWISE_ENDPOINT") && rendered.contains("WATCH_NAMESPACE"));
    ensure!(rendered.contains(r#"{name: CLUSTER_ID, value: "lyon-prod-1"}"#));
    ensure!(
        rendered.contains(
            "eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/sitewise-operator"
        )
    );
    // Every object is valid for a real API server (schemas, CRD, RBAC, Deployment).
    let out = kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&rendered),
    )?;
    ensure!(
        out.status.success(),
        "server-side dry run refused the chart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "customresourcedefinition",
        "serviceaccount",
        "clusterrole",
        "clusterrolebinding",
        "role",
        "rolebinding",
        "service",
        "deployment",
        "validatingadmissionpolicy",
        "validatingadmissionpolicybinding",
    ] {
        let listed = applied.lines().any(|line| {
            line.strip_prefix(kind)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('/'))
        });
        ensure!(listed, "{kind} missing: {applied}");
    }
    let deploy_rbac = std::fs::read_to_string(repo().join("deploy/rbac.yaml"))?;
    for kind in ["ClusterRole", "Role"] {
        ensure!(
            rules_of(&rendered, kind)? == rules_of(&deploy_rbac, kind)?,
            "the chart's {kind} differs from deploy/rbac.yaml"
        );
    }
    Ok(())
}
