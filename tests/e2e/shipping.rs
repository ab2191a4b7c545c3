//! What running the operator as a Deployment relies on: a standby that reports ready, a leader
//! that gives its Lease up on SIGTERM, and status that GitOps health checks (kstatus, Argo CD)
//! read right.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::harness::*;

pub async fn standby_is_ready_and_shutdown_releases_the_lease(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-shutdown").await?;
    let (emu, _) = emulator(quiet(), &plant_seed(1, 1, 1)).await?;
    // A long lease: a takeover well before it runs out can only come from a release.
    let election = [
        "--leader-election",
        "--leader-election-namespace",
        "sitewise-system",
        "--leader-election-lease",
        "e2e-shutdown",
        "--leader-lease-duration",
        "15s",
    ];
    let start = |name| Operator::start_as(env, &ns, &emu.endpoint(), name, &election, Some(name));
    // A connection whose STS cannot be reached (no internet here): its checks must not hold
    // a shutdown, nor must a cache not yet filled when the signal comes.
    let probe = format!("{ns}-unreachable");
    kubectl_apply(
        env,
        &format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseConnection\nmetadata: {{name: {probe}}}\n\
             spec: {{region: eu-west-1, roleArn: 'arn:aws:iam::111111111111:role/sitewise-operator-x', namespaces: [{ns}]}}\n"
        ),
    )?;
    let mut first = start("shutdown-1")?;
    eventually("first replica leads", Duration::from_secs(30), || async {
        first
            .log_text()
            .contains("acquired leadership")
            .then_some(())
    })
    .await?;
    let second = start("shutdown-2")?;
    eventually("second replica waits", Duration::from_secs(30), || async {
        second
            .log_text()
            .contains("waiting for leadership")
            .then_some(())
    })
    .await?;

    for (replica, leading) in [(&first, 1), (&second, 0)] {
        let (code, body) = admin_get(replica, "/readyz").await?;
        ensure!(code == 200, "/readyz answered {code}: {body}");
        let (code, metrics) = admin_get(replica, "/metrics").await?;
        let gauge = format!("sitewise_operator_leader {leading}");
        ensure!(
            code == 200 && metrics.lines().any(|l| l == gauge),
            "{metrics}"
        );
        // jemalloc's counters: some heap is live, and its pages hold at least that much.
        let bytes = |name: &str| metric_value(&metrics, name).unwrap_or(0.0);
        let (allocated, resident) = (
            bytes("sitewise_operator_heap_allocated_bytes"),
            bytes("sitewise_operator_heap_resident_bytes"),
        );
        ensure!(
            allocated > 0.0 && resident >= allocated,
            "heap figures: {allocated} allocated, {resident} resident\n{metrics}"
        );
    }

    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "sitewise-system");
    first.signal("-TERM")?;
    let signalled = Instant::now();
    eventually(
        "the leader exits on SIGTERM",
        Duration::from_secs(30),
        || {
            let exited = first.exited();
            async move { exited.then_some(()) }
        },
    )
    .await?;
    // Read as soon as the old leader is gone: without a release it would still hold the Lease
    // for up to 15 s.
    let holder = leases
        .get("e2e-shutdown")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    ensure!(
        holder.as_deref() != Some("shutdown-1"),
        "the Lease is still held by the stopped leader"
    );
    ensure!(first.log_text().contains("released leadership"));
    eventually(
        "the standby takes over",
        Duration::from_secs(30),
        || async {
            second
                .log_text()
                .contains("acquired leadership")
                .then_some(())
        },
    )
    .await?;
    eprintln!(
        "[e2e] failover after SIGTERM: {:.2} s (lease duration 15 s)",
        signalled.elapsed().as_secs_f64()
    );
    let (_, metrics) = admin_get(&second, "/metrics").await?;
    ensure!(metrics.lines().any(|l| l == "sitewise_operator_leader 1"));

    // Stopped right after taking over (a rolling update stops standbys one after the other):
    // the Lease is released all the same.
    let mut second = second;
    second.signal("-TERM")?;
    let signalled = Instant::now();
    eventually(
        "the new leader exits on SIGTERM",
        Duration::from_secs(30),
        || {
            let exited = second.exited();
            async move { exited.then_some(()) }
        },
    )
    .await?;
    eprintln!(
        "[e2e] second leader stopped in {:.2} s",
        signalled.elapsed().as_secs_f64()
    );
    ensure!(second.log_text().contains("released leadership"));
    kubectl(
        &env.plane.kubeconfig,
        &["delete", "sitewiseconnection", &probe, "--wait=false"],
    )?;
    Ok(())
}

/// `value` as a Lua 5.1 table constructor, as Argo CD hands a resource to its health scripts
/// (JSON null becomes nil).
fn lua_literal(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' | b'\\' => out.extend(['\\', char::from(byte)]),
                    0x20..=0x7e => out.push(char::from(byte)),
                    _ => out.push_str(&format!("\\{byte}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "[{}] = {}",
                        lua_literal(&serde_json::Value::String(k.clone())),
                        lua_literal(v)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// The Argo CD health check's verdict (`status`, `message`) on `object`, run by Lua 5.1.
fn argocd_health(
    dir: &std::path::Path,
    name: &str,
    object: &serde_json::Value,
) -> anyhow::Result<(String, String)> {
    let script = repo().join("deploy/argocd/health.lua");
    let runner = dir.join(format!("{name}.lua"));
    std::fs::write(
        &runner,
        format!(
            "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\t\", hs.message or \"\")\n",
            lua_literal(object),
            lua_literal(&serde_json::Value::String(
                script.to_string_lossy().into_owned()
            ))
        ),
    )?;
    let out = std::process::Command::new("lua5.1")
        .arg(&runner)
        .output()
        .context("running lua5.1 (scripts/install-node-packages.sh installs it)")?;
    ensure!(
        out.status.success(),
        "lua: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, message) = text.split_once('\t').context("no verdict")?;
    Ok((status.to_string(), message.to_string()))
}

/// kstatus' verdicts (`sigs.k8s.io/cli-utils`) on the objects in `files`, in order.
fn kstatus(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let bin = sitewise_testcluster::built_tool("KSTATUS_BIN", &repo(), "scripts/build-kstatus.sh")?;
    let out = std::process::Command::new(bin).args(files).output()?;
    ensure!(
        out.status.success(),
        "kstatus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.split_once('\t')
                .map(|(s, m)| (s.to_string(), m.to_string()))
                .context("kstatus printed no verdict")
        })
        .collect()
}

pub async fn gitops_health_verdicts(env: &Env) -> anyhow::Result<()> {
    use sitewise_emulator::config::Timings;
    use sitewise_operator::crd::SiteWiseAsset;
    let ns = env.namespace("e2e-health").await?;
    // Slow creations and deletions keep those states long enough to be read.
    let mut settings = quiet();
    settings.timings = Timings {
        create: Duration::from_secs(300),
        delete: Duration::from_secs(300),
        ..Timings::default()
    };
    let (emu, _) = emulator(settings, &plant_seed(1, 2, 0)).await?;
    let _operator = Operator::start(env, &ns, &emu.endpoint(), "health")?;
    let manifests = format!(
        "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: ready, namespace: {ns}}}\nspec: {{assetId: externalId:line-0-0, deletionPolicy: Retain}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: deleting, namespace: {ns}}}\nspec: {{assetId: externalId:line-0-1, deletionPolicy: Delete}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: creating, namespace: {ns}}}\nspec: {{assetModelId: externalId:machine-model}}\n---\n\
         apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: missing, namespace: {ns}}}\nspec: {{assetId: externalId:nowhere}}\n"
    );
    kubectl_output(
        &env.plane.kubeconfig,
        &["apply", "-f", "-"],
        Some(&manifests),
    )?;
    let api = env.assets(&ns);
    let reason = |obj: &SiteWiseAsset, type_: &str| {
        obj.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == "True")
                .map(|c| c.reason.clone())
        })
    };
    for (name, type_) in [
        ("ready", "Ready"),
        ("deleting", "Ready"),
        ("creating", "Reconciling"),
        ("missing", "Stalled"),
    ] {
        eventually(
            &format!("{name} has {type_}"),
            Duration::from_secs(60),
            || async { reason(&api.get(name).await.ok()?, type_) },
        )
        .await?;
    }
    api.delete("deleting", &Default::default()).await?;
    eventually(
        "the deletion waits for SiteWise",
        Duration::from_secs(60),
        || async {
            let obj = api.get("deleting").await.ok()?;
            obj.status.and_then(|s| s.deletion).map(|_| ())
        },
    )
    .await?;

    let dir = env.plane.dir().join("health");
    std::fs::create_dir_all(&dir)?;
    let expected = [
        ("ready", "Current", "Healthy"),
        ("deleting", "Terminating", "Progressing"),
        ("creating", "InProgress", "Progressing"),
        ("missing", "Failed", "Degraded"),
    ];
    let mut files = Vec::new();
    let mut lua = Vec::new();
    for (name, _, _) in expected {
        let object = serde_json::to_value(api.get(name).await?)?;
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&object)?)?;
        files.push(file);
        lua.push(argocd_health(&dir, name, &object)?);
    }
    let kstatus = kstatus(&files)?;
    for (((name, want_kstatus, want_argo), (got_kstatus, kmessage)), (got_argo, amessage)) in
        expected.iter().zip(&kstatus).zip(&lua)
    {
        eprintln!(
            "[e2e] {name}: kstatus {got_kstatus} ({kmessage}); Argo CD {got_argo} ({amessage})"
        );
        ensure!(
            got_kstatus == want_kstatus,
            "{name}: kstatus {got_kstatus}, expected {want_kstatus}"
        );
        ensure!(
            got_argo == want_argo,
            "{name}: Argo CD {got_argo}, expected {want_argo}"
        );
    }

    // The ConfigMap patch users apply carries exactly the tested script.
    let patch: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo().join("deploy/argocd/argocd-cm-patch.yaml"),
    )?)?;
    let embedded =
        patch["data"]["resource.customizations.health.sitewise.operator.dev_SiteWiseAsset"]
            .as_str()
            .context("no health check in the argocd-cm patch")?;
    ensure!(embedded == std::fs::read_to_string(repo().join("deploy/argocd/health.lua"))?);
    Ok(())
}
