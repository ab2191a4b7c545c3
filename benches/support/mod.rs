//! What the benchmarks share: the machine's load, a process's memory, and the runner.

use std::future::Future;

/// The operator's production timings (the e2e harness polls and resyncs much faster).
pub const PRODUCTION_TIMINGS: [&str; 12] = [
    "--resync",
    "5m",
    "--poll-interval",
    "3s",
    "--backoff-base",
    "2s",
    "--backoff-max",
    "15s",
    "--conflict-backoff-max",
    "30s",
    "--terminal-retry",
    "10m",
];

/// The load average (1, 5 and 15 minutes), to read figures from a shared machine by.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A memory field of `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`), in MiB.
pub fn proc_status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Runs a benchmark on a multi-threaded runtime (`--list`, asked by `cargo test`, lists none).
pub fn run<F: Future<Output = anyhow::Result<()>>>(
    bench: impl FnOnce() -> F,
) -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}
