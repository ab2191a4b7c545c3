//! Teardown at the quota: a plant of 1 site, 10 areas, 100 lines and 1,000 machines, created
//! from the spec (children name their parent resource), then pruned at once, against the real
//! control plane, the emulator (2 s delete delay) and the release-built operator. Three runs:
//! the defaults at the published quota (30 asset calls/s), the client-side limiter off (a
//! naive client at the same quota), and an account whose asset quota is raised to 100/s.
//!
//! For each run it prints the wall time, the quota bound (N DeleteAsset + N-1
//! DisassociateAssets at the asset quota) and their ratio, SiteWise calls by operation, the
//! throttled share, API-server status writes and events per deleted asset, and the operator's
//! peak memory; then the machine's load. It checks that every asset was deleted exactly once
//! and every link removed once. Run with `cargo bench --bench teardown` (`TEARDOWN_AREAS`,
//! `_LINES`, `_MACHINES` change the plant's shape).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use harness::*;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use sitewise_emulator::config::Quotas;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::Seed;
use sitewise_operator::crd::SiteWiseAsset;
use support::*;

struct Run {
    name: &'static str,
    /// Asset-operation quota of the emulated account.
    asset_tps: f64,
    operator_args: &'static [&'static str],
}

struct Figures {
    assets: usize,
    seconds: f64,
    bound: f64,
    calls: BTreeMap<String, usize>,
    /// Calls without effect, by operation and outcome (error code, or a replayed token).
    unsuccessful: BTreeMap<String, usize>,
    total: usize,
    throttled: usize,
    status_writes: f64,
    events: f64,
    peak_mib: f64,
    disassociate_per_link: f64,
    timeline: Timeline,
}

/// Where the time of a prune goes, in seconds after the delete-collection was sent.
struct Timeline {
    /// The delete-collection returned: every resource had its deletion mark.
    marked: f64,
    first_call: f64,
    last_delete: f64,
    last_call: f64,
}

impl Timeline {
    fn of(
        journal: &[sitewise_emulator::store::JournalEntry],
        started: f64,
        marked: f64,
    ) -> Timeline {
        let last = |op: Option<Op>| {
            journal
                .iter()
                .filter(|e| op.is_none_or(|op| e.operation == op && e.status < 300))
                .map(|e| e.time - started)
                .fold(f64::NAN, f64::max)
        };
        Timeline {
            marked,
            first_call: journal.first().map_or(f64::NAN, |e| e.time - started),
            last_delete: last(Some(Op::DeleteAsset)),
            last_call: last(None),
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn models() -> anyhow::Result<Seed> {
    let mut seed = plant_seed(0, 0, 0);
    seed.assets.clear();
    Ok(seed)
}

/// The plant as a GitOps repository would declare it: created from models, each child naming
/// its parent resource and hierarchy.
fn plant(areas: usize, lines: usize, machines: usize) -> anyhow::Result<Vec<SiteWiseAsset>> {
    let resource = |name: &str, model: &str, parent: Option<(&str, &str)>| {
        let mut spec = serde_json::json!({"assetModelId": format!("externalId:{model}")});
        if let Some((parent, hierarchy)) = parent {
            spec["parent"] =
                serde_json::json!({"name": parent, "hierarchy": format!("externalId:{hierarchy}")});
        }
        serde_json::from_value::<SiteWiseAsset>(serde_json::json!({
            "apiVersion": "sitewise.operator.dev/v1alpha1",
            "kind": "SiteWiseAsset",
            "metadata": {"name": name},
            "spec": spec,
        }))
    };
    let mut all = vec![resource("site", "site-model", None)?];
    for a in 0..areas {
        let area = format!("area-{a}");
        all.push(resource(&area, "area-model", Some(("site", "site-areas")))?);
        for l in 0..lines {
            let line = format!("line-{a}-{l}");
            all.push(resource(&line, "line-model", Some((&area, "area-lines")))?);
            for m in 0..machines {
                let machine = format!("machine-{a}-{l}-{m}");
                all.push(resource(
                    &machine,
                    "machine-model",
                    Some((&line, "line-machines")),
                )?);
            }
        }
    }
    Ok(all)
}

/// `apiserver_request_total` for SiteWiseAssets, by verb and subresource.
async fn apiserver_requests(client: &kube::Client) -> anyhow::Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| {
        l.starts_with("apiserver_request_total{") && l.contains("resource=\"sitewiseassets\"")
    }) {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *counts
            .entry(format!("{} {}", label("verb"), label("subresource")))
            .or_insert(0.0) += value;
    }
    Ok(counts)
}

/// Events published in `ns` (a repeated event counts each time).
async fn event_total(client: &kube::Client, ns: &str) -> i32 {
    events_in(client, ns)
        .await
        .iter()
        .map(|e| e.count.max(1))
        .sum()
}

/// Journal entries of the prune, without the calls made before it.
fn prune_journal(
    emu: &sitewise_emulator::Emulator,
    from: usize,
) -> Vec<sitewise_emulator::store::JournalEntry> {
    emu.store().journal()[from..].to_vec()
}

async fn wait_quiet(emu: &sitewise_emulator::Emulator) {
    let mut last = usize::MAX;
    loop {
        let now = emu.store().journal().len();
        if now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn teardown(env: &Env, run: &Run, shape: (usize, usize, usize)) -> anyhow::Result<Figures> {
    let ns = env.namespace(run.name).await?;
    let mut settings = quiet();
    settings.timings.delete = Duration::from_secs(2);
    let (emu, _) = emulator(settings, &models()?).await?;
    let args = [&PRODUCTION_TIMINGS[..], run.operator_args].concat();
    // Logs as in production: a debug log would cost the operator more than its work.
    let operator = Operator::start_logged(
        env,
        &ns,
        &emu.endpoint(),
        run.name,
        &args,
        None,
        "info,kube_client::client::builder=off",
    )?;
    let api: Api<SiteWiseAsset> = env.assets(&ns);
    let resources = plant(shape.0, shape.1, shape.2)?;
    let n = resources.len();
    for obj in &resources {
        api.create(&PostParams::default(), obj).await?;
    }
    wait_all_ready(&api, n, Duration::from_secs(1800)).await?;
    wait_quiet(&emu).await;

    // The prune meets the account's quotas.
    {
        let mut store = emu.store();
        store.settings.quotas = Quotas {
            asset_tps: run.asset_tps,
            ..Quotas::default()
        };
        store.reset_limiter();
    }
    let from = emu.store().journal().len();
    let requests_before = apiserver_requests(&env.client).await?;
    let events_before = event_total(&env.client, &ns).await;
    let started = Instant::now();
    let started_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let marked = started.elapsed().as_secs_f64();
    wait_all_gone(&api, Duration::from_secs(3600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = proc_status_mib(operator.pid(), "VmHWM:");
    let requests_after = apiserver_requests(&env.client).await?;
    let journal = prune_journal(&emu, from);

    let mut calls = BTreeMap::new();
    let mut unsuccessful = BTreeMap::new();
    for e in &journal {
        *calls.entry(format!("{:?}", e.operation)).or_insert(0) += 1;
        let outcome = match (&e.error_code, e.replay) {
            (Some(code), _) => Some(code.clone()),
            (None, true) => Some("replayed".to_string()),
            (None, false) => None,
        };
        if let Some(outcome) = outcome {
            *unsuccessful
                .entry(format!("{:?} {outcome}", e.operation))
                .or_insert(0) += 1;
        }
    }
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    let mut unlinked: BTreeMap<String, usize> = BTreeMap::new();
    for e in journal.iter().filter(|e| e.status < 300 && !e.replay) {
        let target = e.resolved_id.clone().unwrap_or_default();
        match e.operation {
            Op::DeleteAsset => *deleted.entry(target).or_default() += 1,
            Op::DisassociateAssets => {
                *unlinked
                    .entry(format!("{target}>{}", e.child.clone().unwrap_or_default()))
                    .or_default() += 1
            }
            _ => {}
        }
    }
    ensure!(
        deleted.len() == n && deleted.values().all(|c| *c == 1),
        "every asset deleted exactly once ({} of {n})",
        deleted.len()
    );
    ensure!(
        unlinked.len() == n - 1 && unlinked.values().all(|c| *c == 1),
        "every link removed once ({} of {})",
        unlinked.len(),
        n - 1
    );
    ensure!(
        emu.store().snapshot()["assets"].as_array().map(Vec::len) == Some(0),
        "nothing left"
    );
    let throttled = journal
        .iter()
        .filter(|e| e.error_code.as_deref() == Some("ThrottlingException"))
        .count();
    let disassociate_calls = calls.get("DisassociateAssets").copied().unwrap_or(0);
    let delta = |key: &str| {
        requests_after.get(key).copied().unwrap_or(0.0)
            - requests_before.get(key).copied().unwrap_or(0.0)
    };
    let event_count = event_total(&env.client, &ns).await - events_before;
    Ok(Figures {
        assets: n,
        seconds,
        bound: (2 * n - 1) as f64 / run.asset_tps,
        calls,
        unsuccessful,
        total: journal.len(),
        throttled,
        status_writes: delta("PATCH status") / n as f64,
        events: f64::from(event_count) / n as f64,
        peak_mib: peak,
        disassociate_per_link: disassociate_calls as f64 / (n - 1) as f64,
        timeline: Timeline::of(&journal, started_epoch, marked),
    })
}

fn print(run: &Run, f: &Figures) {
    println!(
        "{:<28} {:7.1} s  bound {:6.1} s  ratio {:5.2}x  calls {:5}  throttled {:5.1} %",
        run.name,
        f.seconds,
        f.bound,
        f.seconds / f.bound,
        f.total,
        100.0 * f.throttled as f64 / f.total.max(1) as f64
    );
    println!(
        "{:<28} per asset: {:4.2} calls, {:4.2} status writes, {:4.2} events; DisassociateAssets per link {:4.2}; operator peak {:5.1} MiB",
        "",
        f.total as f64 / f.assets as f64,
        f.status_writes,
        f.events,
        f.disassociate_per_link,
        f.peak_mib
    );
    println!(
        "{:<28} all marked at {:.2} s, first call at {:.2} s, last DeleteAsset at {:.2} s, last call at {:.2} s, all gone at {:.2} s",
        "",
        f.timeline.marked,
        f.timeline.first_call,
        f.timeline.last_delete,
        f.timeline.last_call,
        f.seconds
    );
    let by_op: Vec<String> = f.calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
    println!("{:<28} {}", "", by_op.join(", "));
    let without_effect: Vec<String> = f
        .unsuccessful
        .iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    println!(
        "{:<28} without effect: {}",
        "",
        if without_effect.is_empty() {
            "none".to_string()
        } else {
            without_effect.join(", ")
        }
    );
}

async fn bench() -> anyhow::Result<()> {
    let shape = (
        env_usize("TEARDOWN_AREAS", 10),
        env_usize("TEARDOWN_LINES", 10),
        env_usize("TEARDOWN_MACHINES", 10),
    );
    let env = Env::start().await?;
    let runs = [
        Run {
            name: "defaults-at-30",
            asset_tps: 30.0,
            operator_args: &[],
        },
        Run {
            name: "limiter-off-at-30",
            asset_tps: 30.0,
            operator_args: &["--sitewise-rate", "0", "--sitewise-describe-rate", "0"],
        },
        Run {
            name: "quota-100",
            asset_tps: 100.0,
            operator_args: &["--sitewise-rate", "100"],
        },
    ];
    let only = std::env::var("TEARDOWN_RUNS").unwrap_or_default();
    let mut results = Vec::new();
    for run in runs
        .iter()
        .filter(|r| only.is_empty() || only.split(',').any(|o| o == r.name))
    {
        let load_before = load();
        let figures = teardown(&env, run, shape)
            .await
            .with_context(|| run.name.to_string())?;
        eprintln!("[teardown] {} done ({:.1} s)", run.name, figures.seconds);
        results.push((run, figures, load_before, load()));
    }
    println!(
        "teardown: plant of {} assets pruned at once (emulator: 2 s delete delay; bound = (2N-1) asset calls at the quota)",
        results.first().map(|r| r.1.assets).unwrap_or(0)
    );
    for (run, figures, before, after) in &results {
        print(run, figures);
        println!("{:<28} load average before {before}, after {after}", "");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    support::run(bench)
}
