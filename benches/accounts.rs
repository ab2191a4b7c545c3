//! A throttled account does not slow another: two `SiteWiseConnection`s (two Regions of the
//! emulator, each with its own state and quota), one whose asset quota is 5 requests per
//! second ("busy"), one at the published 30 ("calm"). N adopted leaf assets in each are deleted
//! at once, first the calm ones alone, then both sets together; it prints the calm account's
//! wall time against its quota bound (N DeleteAsset at 30/s) in both runs, the busy account's
//! against its own, the throttled share in each account, and the machine's load.
//! `cargo bench --bench accounts` (`ACCOUNTS_ASSETS` changes N, default 150).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::*;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::Quotas;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::Seed;
use sitewise_operator::crd::SiteWiseAsset;
use support::*;

const ACCOUNT: &str = "123456789012";

struct Tenant {
    connection: &'static str,
    region: &'static str,
    asset_tps: f64,
}

const BUSY: Tenant = Tenant {
    connection: "busy",
    region: "eu-west-1",
    asset_tps: 5.0,
};
const CALM: Tenant = Tenant {
    connection: "calm",
    region: "us-east-2",
    asset_tps: 30.0,
};

/// The model and two rounds of `n` assets.
fn seed(connection: &str, n: usize) -> anyhow::Result<Seed> {
    let assets: Vec<_> = (0..2)
        .flat_map(|round| (0..n).map(move |i| format!("{connection}-{round}-{i}")))
        .map(|id| serde_json::json!({"name": id, "externalId": id, "model": "externalId:machine-model"}))
        .collect();
    Ok(serde_json::from_value(serde_json::json!({
        "models": [{"name": "Machine", "externalId": "machine-model"}],
        "assets": assets
    }))?)
}

fn resource(ns: &str, connection: &str, external_id: &str) -> anyhow::Result<SiteWiseAsset> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "sitewise.operator.dev/v1alpha1",
        "kind": "SiteWiseAsset",
        "metadata": {"name": external_id, "namespace": ns},
        "spec": {"assetId": format!("externalId:{external_id}"),
                 "connectionRef": {"name": format!("{ns}-{connection}")}}
    }))?)
}

fn tenant_calls(emu: &Emulator, t: &Tenant, from: usize) -> (usize, usize, usize) {
    let shared = emu.tenant(ACCOUNT, t.region);
    let store = sitewise_emulator::lock(&shared);
    let journal = &store.journal()[from.min(store.journal().len())..];
    let deleted = journal
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
        .count();
    let throttled = journal
        .iter()
        .filter(|e| e.error_code.as_deref() == Some("ThrottlingException"))
        .count();
    (journal.len(), deleted, throttled)
}

/// Creates `n` resources per tenant in `tenants`, waits until Ready, deletes them all at once
/// and returns each tenant's wall time until its last resource was gone.
async fn round(
    env: &Env,
    emu: &Emulator,
    ns: &str,
    round: usize,
    n: usize,
    tenants: &[&Tenant],
) -> anyhow::Result<Vec<(f64, usize, usize, usize)>> {
    let api: Api<SiteWiseAsset> = env.assets(ns);
    for t in tenants {
        for i in 0..n {
            let id = format!("{}-{round}-{i}", t.connection);
            api.create(&PostParams::default(), &resource(ns, t.connection, &id)?)
                .await?;
        }
    }
    wait_all_ready(&api, n * tenants.len(), Duration::from_secs(900)).await?;
    let from: Vec<usize> = tenants
        .iter()
        .map(|t| {
            sitewise_emulator::lock(&emu.tenant(ACCOUNT, t.region))
                .journal()
                .len()
        })
        .collect();
    let started = Instant::now();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let mut done: Vec<Option<f64>> = vec![None; tenants.len()];
    while done.iter().any(Option::is_none) {
        let left = api.list(&ListParams::default()).await?.items;
        for (k, t) in tenants.iter().enumerate() {
            let prefix = format!("{}-{round}-", t.connection);
            if done[k].is_none()
                && !left.iter().any(|o| {
                    o.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(&prefix))
                })
            {
                done[k] = Some(started.elapsed().as_secs_f64());
            }
        }
        ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "round {round} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(tenants
        .iter()
        .zip(done)
        .zip(from)
        .map(|((t, seconds), from)| {
            let (calls, deleted, throttled) = tenant_calls(emu, t, from);
            (seconds.unwrap_or_default(), calls, deleted, throttled)
        })
        .collect())
}

async fn bench() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACCOUNTS_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let env = Env::start().await?;
    let ns = env.namespace("bench-accounts").await?;
    // A real STS (moto's) answers the connections' identity checks.
    let sts = moto(&venv()?, None).await?;
    let mut settings = quiet();
    settings.timings.delete = Duration::from_secs(1);
    let (emu, _) = emulator(settings, &Seed::default()).await?;
    for t in [&BUSY, &CALM] {
        let shared = emu.tenant(ACCOUNT, t.region);
        let mut store = sitewise_emulator::lock(&shared);
        sitewise_emulator::seed::apply(&mut store, &seed(t.connection, n)?)
            .map_err(|e| anyhow::anyhow!("seed: {}", e.message))?;
    }
    let _operator = Operator::start_logged(
        &env,
        &ns,
        &emu.endpoint(),
        "accounts-bench",
        &[&PRODUCTION_TIMINGS[..], &["--sts-endpoint", &sts.endpoint]].concat(),
        None,
        "info,kube_client::client::builder=off",
    )?;
    let endpoint = emu.endpoint();
    let manifest: String = [&BUSY, &CALM]
        .iter()
        .map(|t| {
            format!(
                "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseConnection\nmetadata: {{name: {ns}-{}}}\n\
                 spec: {{region: {}, endpoint: '{endpoint}', namespaces: [{ns}], quotas: {{assetRate: {}}}}}\n---\n",
                t.connection, t.region, t.asset_tps
            )
        })
        .collect();
    kubectl_apply(&env, &manifest)?;
    // The quotas the accounts enforce, once the assets are adopted (adoption is not measured).
    let enforce = |emu: &Emulator| {
        for t in [&BUSY, &CALM] {
            let shared = emu.tenant(ACCOUNT, t.region);
            let mut store = sitewise_emulator::lock(&shared);
            store.settings.quotas = Quotas {
                asset_tps: t.asset_tps,
                ..Quotas::default()
            };
            store.reset_limiter();
        }
    };
    enforce(&emu);
    let load_before = load();
    let alone = round(&env, &emu, &ns, 0, n, &[&CALM]).await?;
    let together = round(&env, &emu, &ns, 1, n, &[&BUSY, &CALM]).await?;
    let bound = |t: &Tenant| n as f64 / t.asset_tps;
    println!(
        "accounts: {n} leaf assets per account deleted at once (bound = N DeleteAsset at the account's asset quota)"
    );
    let line = |label: &str,
                t: &Tenant,
                (seconds, calls, deleted, throttled): (f64, usize, usize, usize)| {
        println!(
            "{label:<34} {seconds:7.1} s  bound {:6.1} s  ratio {:5.2}x  calls {calls:5}  deleted {deleted:4}  throttled {:5.1} %",
            bound(t),
            seconds / bound(t),
            100.0 * throttled as f64 / calls.max(1) as f64
        );
    };
    line("calm (30/s) alone", &CALM, alone[0]);
    line("calm (30/s) while busy is deleting", &CALM, together[1]);
    line("busy (5/s)", &BUSY, together[0]);
    println!(
        "{:<34} load average before {load_before}, after {}",
        "",
        load()
    );
    for (label, (_, _, deleted, _)) in [
        ("calm alone", alone[0]),
        ("calm", together[1]),
        ("busy", together[0]),
    ] {
        ensure!(deleted == n, "{label}: {deleted} of {n} deleted once");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    support::run(bench)
}
