//! Scale: 10,000 resources (a plant of 1 site, 10 areas, 100 lines and 9,900 machines, each
//! adopted by its own resource) held by one release-built operator against the real control
//! plane and the emulator. Prints the operator's peak memory (VmHWM) and its CPU at rest, the
//! time a restarted operator takes to observe every resource again at the published
//! DescribeAsset quota, against that quota's bound (N / 100 per second), and what the sweeps
//! that check every resource for drift cost at rest (the restarted operator sweeps every 150 s
//! instead of every five minutes, so that a 200 s rest window holds one or two sweeps; the
//! first comes after the restart's pass, as it does in production).
//!
//! The first adoption runs with the emulator's quotas off: it claims each asset with one
//! TagResource, which the asset-operation quota (30/s) would spread over more than five
//! minutes, and that is not what is measured here. Run with `cargo bench --bench scale`
//! (`SCALE_MACHINES` per line changes the size).

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::*;
use kube::api::PostParams;
use sitewise_emulator::config::Quotas;
use sitewise_emulator::ops::Op;
use support::*;

const LOG: &str = "info,kube_client::client::builder=off";

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) start after ") ".
            let rest = s.rsplit_once(") ")?.1.to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(f64::NAN);
    ticks / 100.0
}

async fn bench() -> anyhow::Result<()> {
    let machines = std::env::var("SCALE_MACHINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(99);
    let env = Env::start().await?;
    let ns = env.namespace("scale").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(10, 10, machines)).await?;
    let n = seeded.assets.len();
    let api = env.assets(&ns);
    let started = Instant::now();
    // Set-up, not measured: no client-side rate either.
    let unlimited = [
        &PRODUCTION_TIMINGS[..],
        &["--sitewise-rate", "0", "--sitewise-describe-rate", "0"],
    ]
    .concat();
    let first =
        Operator::start_logged(&env, &ns, &emu.endpoint(), "scale-1", &unlimited, None, LOG)?;
    for name in seeded.assets.keys() {
        api.create(&PostParams::default(), &resource(name, "Delete")?)
            .await?;
    }
    eprintln!(
        "[scale] {n} resources created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Every 10 s: listing 10,000 objects is work for the API server too.
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let list = api.list(&Default::default()).await?;
        if list.items.len() == n && list.items.iter().all(is_ready) {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "not all Ready after an hour"
        );
    }
    let adopted = started.elapsed().as_secs_f64();
    let first_peak = proc_status_mib(first.pid(), "VmHWM:");
    first.kill();

    // A restarted operator at the published quotas observes every resource again.
    {
        let mut store = emu.store();
        store.settings.quotas = Quotas::default();
        store.reset_limiter();
    }
    let from = emu.store().journal().len();
    let restarted = Instant::now();
    let sweep_every = Duration::from_secs(150);
    let timings: Vec<&str> = PRODUCTION_TIMINGS
        .iter()
        .map(|&arg| if arg == "5m" { "150s" } else { arg })
        .collect();
    let operator =
        Operator::start_logged(&env, &ns, &emu.endpoint(), "scale-2", &timings, None, LOG)?;
    // Until the restarted operator goes quiet (no SiteWise call for 3 s).
    let mut last = (0, restarted.elapsed());
    let observed = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let calls = emu.store().journal().len() - from;
        if calls != last.0 {
            last = (calls, restarted.elapsed());
        } else if calls > 0 && restarted.elapsed() - last.1 > Duration::from_secs(3) {
            break last.1.as_secs_f64();
        }
        ensure!(
            restarted.elapsed() < Duration::from_secs(3600),
            "still busy after an hour"
        );
    };
    let journal = emu.store().journal()[from..].to_vec();
    let described: std::collections::HashSet<String> = journal
        .iter()
        .filter(|e| e.operation == Op::DescribeAsset && e.status < 300)
        .filter_map(|e| e.resolved_id.clone())
        .collect();
    let throttled = journal
        .iter()
        .filter(|e| e.error_code.as_deref() == Some("ThrottlingException"))
        .count();
    // Everything the process did from its start until it went quiet.
    let cpu_before = cpu_seconds(operator.pid());
    let peak = proc_status_mib(operator.pid(), "VmHWM:");
    let resident = proc_status_mib(operator.pid(), "VmRSS:");
    let anonymous = proc_status_mib(operator.pid(), "RssAnon:");
    let file = proc_status_mib(operator.pid(), "RssFile:");
    let (_, exposition) = admin_get(&operator, "/metrics").await?;
    let calls_before = emu.store().journal().len();
    let rest = Duration::from_secs(200);
    tokio::time::sleep(rest).await;
    let cpu_at_rest = (cpu_seconds(operator.pid()) - cpu_before) / rest.as_secs_f64();
    let at_rest = emu.store().journal()[calls_before..].to_vec();
    let count = |op: Op| at_rest.iter().filter(|e| e.operation == op).count();
    let peak_at_rest = proc_status_mib(operator.pid(), "VmHWM:");
    let (_, exposition_at_rest) = admin_get(&operator, "/metrics").await?;
    let heap_mib = |name: &str| metric_value(&exposition, name).unwrap_or(f64::NAN) / 1048576.0;
    let allocated = heap_mib("sitewise_operator_heap_allocated_bytes");
    let heap_resident = heap_mib("sitewise_operator_heap_resident_bytes");
    let swept = |exposition: &str, outcome: &str| {
        metric_value(
            exposition,
            &format!("sitewise_operator_swept_resources_total{{outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let swept_in_restart = swept(&exposition, "current") / n as f64;
    let (vouched, sweep_failures) = (
        swept(&exposition_at_rest, "current") - swept(&exposition, "current"),
        swept(&exposition_at_rest, "failed"),
    );
    let sweeps = vouched / n as f64;
    let list = api.list(&Default::default()).await?;
    ensure!(
        list.items.iter().all(is_ready),
        "every resource still Ready"
    );
    let bound = n as f64 / 100.0;
    println!("scale: {n} resources, one operator (release build)");
    println!(
        "  first adoption (no quotas):    {adopted:7.1} s (checked every 10 s), operator peak {first_peak:6.1} MiB"
    );
    println!(
        "  restart until quiet:           {observed:7.1} s  bound {bound:5.1} s (DescribeAsset at 100/s)  ratio {:4.2}x",
        observed / bound
    );
    println!(
        "                                 {} of {n} assets described, {} calls, {throttled} throttled, operator CPU {cpu_before:.1} s",
        described.len(),
        journal.len()
    );
    println!(
        "  operator after the restart:    peak {peak:6.1} MiB, resident {resident:6.1} MiB ({anonymous:.1} MiB heap and stacks, {file:.1} MiB of the binary)"
    );
    println!(
        "                                 jemalloc: {allocated:.1} MiB allocated, {heap_resident:.1} MiB resident; {swept_in_restart:.2} sweeps until then"
    );
    println!(
        "  at rest ({:.0} s, sweep every {} s): {:5.1} % of a core, peak {peak_at_rest:.1} MiB, {} SiteWise calls: {} ListAssets, {} ListAssociatedAssets, {} DescribeAsset",
        rest.as_secs_f64(),
        sweep_every.as_secs(),
        100.0 * cpu_at_rest,
        at_rest.len(),
        count(Op::ListAssets),
        count(Op::ListAssociatedAssets),
        count(Op::DescribeAsset),
    );
    println!(
        "                                 {vouched:.0} resources found as declared by sweeps ({sweeps:.2} sweeps of {n}), {sweep_failures:.0} in failed sweeps; a resync of each on its own would take {n} DescribeAsset per sweep"
    );
    println!("  load average {}", load());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    support::run(bench)
}
