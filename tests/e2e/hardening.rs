//! End-to-end cases of the operator under attack: a leader frozen while its calls wait, then
//! resumed after another replica took the lease.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::ensure;
use kube::api::{DeleteParams, ListParams};
use sitewise_emulator::faults::OpFaults;
use sitewise_emulator::ops::Op;

use crate::harness::*;

const MUTATIONS: [Op; 6] = [
    Op::DeleteAsset,
    Op::DisassociateAssets,
    Op::AssociateAssets,
    Op::TagResource,
    Op::UntagResource,
    Op::UpdateAsset,
];

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub async fn paused_leader_sends_nothing_after_resume(env: &Env) -> anyhow::Result<()> {
    let ns = env.namespace("e2e-pause").await?;
    let (emu, seeded) = emulator(quiet(), &plant_seed(1, 2, 6)).await?;
    let election = [
        "--leader-election",
        "--leader-election-namespace",
        "sitewise-system",
        "--leader-election-lease",
        "e2e-pause",
        "--leader-lease-duration",
        "3s",
        // Mutations wait in the rate limiter and, throttled, in the SDK's own retry backoff
        // while the leader is frozen; all of them are due the moment it resumes.
        "--sitewise-rate",
        "3",
        "--sdk-max-attempts",
        "4",
    ];
    let endpoint = emu.endpoint();
    let mut first =
        Operator::start_as(env, &ns, &endpoint, "pause-a", &election, Some("replica-a"))?;
    eventually("replica-a leads", Duration::from_secs(30), || async {
        first
            .log_text()
            .contains("acquired leadership")
            .then_some(())
    })
    .await?;
    let second = Operator::start_as(env, &ns, &endpoint, "pause-b", &election, Some("replica-b"))?;
    let api = env.assets(&ns);
    let names: Vec<String> = seeded
        .assets
        .keys()
        .filter(|n| n.starts_with("line") || n.starts_with("machine"))
        .cloned()
        .collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(90)).await?;

    for op in ["DeleteAsset", "DisassociateAssets"] {
        emu.store().settings.faults.operations.insert(
            op.into(),
            OpFaults {
                throttle: 0.6,
                ..OpFaults::default()
            },
        );
    }
    let deletion_started = epoch_now();
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let sent_by = |app: &'static str, after: f64| {
        emu.store()
            .journal()
            .iter()
            .filter(|e| e.app.as_deref() == Some(app) && e.time > after)
            .filter(|e| MUTATIONS.contains(&e.operation))
            .map(|e| format!("{:?} {:?} at {:.3}", e.operation, e.resolved_id, e.time))
            .collect::<Vec<_>>()
    };
    eventually(
        "replica-a detaching and deleting",
        Duration::from_secs(30),
        || async {
            let attempts = emu
                .store()
                .journal()
                .iter()
                .filter(|e| e.app.as_deref() == Some("replica-a") && e.time > deletion_started)
                .filter(|e| matches!(e.operation, Op::DeleteAsset | Op::DisassociateAssets))
                .count();
            (attempts >= 4).then_some(())
        },
    )
    .await?;
    // Frozen for three lease durations, with calls waiting in its rate limiter.
    first.signal("-STOP")?;
    tokio::time::sleep(Duration::from_secs(9)).await;
    ensure!(
        second.log_text().contains("acquired leadership"),
        "replica-b must have taken the lease"
    );
    let resumed = epoch_now();
    first.signal("-CONT")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.store().settings.faults.operations.clear();
    wait_all_gone(&api, Duration::from_secs(90)).await?;
    let late = sent_by("replica-a", resumed);
    ensure!(late.is_empty(), "the resumed ex-leader sent: {late:?}");
    ensure!(
        !sent_by("replica-b", 0.0).is_empty(),
        "replica-b finished the work"
    );
    let mut stopped = false;
    for _ in 0..150 {
        if first.exited() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(stopped, "the ex-leader must exit to restart as a candidate");
    // Each asset deleted once: throttled attempts had no effect.
    let deletes = emu
        .store()
        .journal()
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
        .count();
    ensure!(deletes == names.len(), "each asset deleted once: {deletes}");
    let remaining: Vec<_> = names
        .iter()
        .filter(|n| emu.store().find_asset(&seeded.assets[*n]).is_some())
        .collect();
    ensure!(remaining.is_empty(), "left behind: {remaining:?}");
    Ok(())
}

pub async fn api_server_outage_is_recovered_within_a_few_polls(
    _shared: &Env,
) -> anyhow::Result<()> {
    // A control plane of its own: the outage must not hit the other cases. Its start-up
    // future is not Send, so it runs on a blocking thread of its own.
    let runtime = tokio::runtime::Handle::current();
    let mut own = tokio::task::spawn_blocking(move || runtime.block_on(Env::start())).await??;
    let ns = own.namespace("e2e-outage").await?;
    let mut settings = quiet();
    settings.timings.delete = Duration::from_secs(1);
    let (emu, seeded) = emulator(settings, &plant_seed(1, 2, 3)).await?;
    // Production backoff (up to 5 minutes) with 1 s polls.
    let operator = Operator::start_with(
        &own,
        &ns,
        &emu.endpoint(),
        "outage",
        &[
            "--backoff-base",
            "1s",
            "--backoff-max",
            "5m",
            "--poll-interval",
            "1s",
        ],
    )?;
    let api = own.assets(&ns);
    let names: Vec<String> = seeded
        .assets
        .keys()
        .filter(|n| n.starts_with("line") || n.starts_with("machine"))
        .cloned()
        .collect();
    create_all(&api, &names, "Delete").await?;
    wait_all_ready(&api, names.len(), Duration::from_secs(60)).await?;
    api.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let log_before = operator.log_text().lines().count();
    own.plane.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(25)).await;
    own.plane.start_apiserver().await?;
    let returned = std::time::Instant::now();
    let api = own.assets(&ns);
    // Within a few 1 s polls of the return (Kubernetes failures back off to 3 s at most); the
    // backoff that used to grow during the outage held resources for 20 s and more.
    wait_all_gone(&api, Duration::from_secs(10)).await?;
    eprintln!(
        "[e2e] outage of 25 s: all {} resources gone {:.1} s after the API server returned",
        names.len(),
        returned.elapsed().as_secs_f64()
    );
    let log = operator.log_text();
    let during: Vec<&str> = log.lines().skip(log_before).collect();
    let errors = during.iter().filter(|l| l.contains(" ERROR ")).count();
    let warnings = during.iter().filter(|l| l.contains(" WARN ")).count();
    eprintln!("[e2e] outage: {errors} ERROR and {warnings} WARN log lines");
    ensure!(errors == 0, "no ERROR flood: {errors} lines");
    let deletes = emu
        .store()
        .journal()
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
        .count();
    ensure!(deletes == names.len(), "each asset deleted once: {deletes}");
    Ok(())
}
