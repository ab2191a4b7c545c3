//! What running the operator as a Deployment relies on: a standby that reports ready, a leader
//! that gives its Lease up on SIGTERM, and status that GitOps health checks (kstatus, Argo CD)
//! read right.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::harness::*;

/// `GET path` on the operator's admin server: the status code and the body.
async fn admin_get(operator: &Operator, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = operator.log_text();
    let addr = regex::Regex::new(r"admin server listening.*?addr=(127\.0\.0\.1:\d+)")?
        .captures(&log)
        .and_then(|c| c.get(1))
        .context("no admin address in the operator's log")?
        .as_str()
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

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
        ensure!(code == 200 && metrics.contains(&format!("sitewise_operator_leader {leading}")));
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
    ensure!(metrics.contains("sitewise_operator_leader 1"));
    Ok(())
}
