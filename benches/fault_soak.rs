//! Fault soak: a plant of 201 assets pruned at once, first without faults, then with 30 %
//! throttling, 5 % internal errors and 50 ms of latency on every SiteWise operation, against
//! the real control plane, the emulator (published quotas) and the release-built operator
//! with its production retry settings. Prints both times, their ratio, the calls and faults
//! met and the machine's load; checks that nothing was lost, nothing deleted twice and no
//! permanent error was reported. Run with `cargo bench --bench fault_soak`.

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::*;
use kube::api::{DeleteParams, ListParams};
use sitewise_emulator::config::Settings;
use sitewise_emulator::faults::OpFaults;
use sitewise_emulator::ops::Op;
use support::*;

struct Figures {
    seconds: f64,
    calls: usize,
    throttled: usize,
    internal: usize,
}

async fn soak(env: &Env, name: &str, faults: Option<OpFaults>) -> anyhow::Result<Figures> {
    let ns = env.namespace(name).await?;
    let mut settings = Settings::default();
    settings.timings.delete = Duration::from_secs(1);
    let (emu, seeded) = emulator(settings, &plant_seed(4, 7, 6)).await?;
    let _operator = Operator::start_with(env, &ns, &emu.endpoint(), name, &PRODUCTION_TIMINGS)?;
    let api = env.assets(&ns);
    let names: Vec<String> = seeded.assets.keys().cloned().collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(900)).await?;
    if let Some(faults) = faults {
        emu.store()
            .settings
            .faults
            .operations
            .insert("*".into(), faults);
    }
    let before = emu.store().journal().len();
    let started = Instant::now();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    wait_all_gone(&api, Duration::from_secs(3600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let journal = emu.store().journal()[before..].to_vec();
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
    {
        *deleted
            .entry(e.resolved_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    ensure!(
        deleted.len() == names.len() && deleted.values().all(|n| *n == 1),
        "every asset deleted exactly once"
    );
    ensure!(
        emu.store().snapshot()["assets"].as_array().map(Vec::len) == Some(0),
        "nothing left"
    );
    let events = events_in(&env.client, &ns).await;
    ensure!(
        !events.iter().any(|e| e.reason == "PermanentError"),
        "no permanent error reported"
    );
    let code = |c: &str| {
        journal
            .iter()
            .filter(|e| e.error_code.as_deref() == Some(c))
            .count()
    };
    Ok(Figures {
        seconds,
        calls: journal.len(),
        throttled: code("ThrottlingException"),
        internal: code("InternalFailureException"),
    })
}

async fn run() -> anyhow::Result<()> {
    let env = Env::start().await?;
    eprintln!("[soak] load average before: {}", load());
    let clean = soak(&env, "soak-clean", None).await?;
    eprintln!(
        "[soak] fault-free: {:.1} s, {} calls",
        clean.seconds, clean.calls
    );
    let faulty = soak(
        &env,
        "soak-faults",
        Some(OpFaults {
            throttle: 0.3,
            internal_failure: 0.05,
            latency: Duration::from_millis(50),
            ..OpFaults::default()
        }),
    )
    .await?;
    println!(
        "fault soak: 201 assets pruned at once (emulator at the published quotas, 1 s delete delay)"
    );
    println!(
        "  fault-free:                          {:7.1} s  {:5} calls",
        clean.seconds, clean.calls
    );
    println!(
        "  30% throttle, 5% internal, 50 ms:    {:7.1} s  {:5} calls ({} throttled, {} internal errors)",
        faulty.seconds, faulty.calls, faulty.throttled, faulty.internal
    );
    println!(
        "  ratio: {:.2}x the fault-free time (target: at most 3x)",
        faulty.seconds / clean.seconds
    );
    println!("  every asset deleted exactly once, nothing left, no permanent error");
    println!("  load average after: {}", load());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
