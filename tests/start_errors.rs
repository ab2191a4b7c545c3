//! Start-up errors the operator cannot run without are fatal: the binary exits non-zero with
//! one line on stderr naming the cause, instead of running on without probes or retrying for
//! ever.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A kubeconfig for an API server at a loopback port nothing listens on.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .expect("kubeconfig written");
    path
}

fn operator(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sitewise-operator"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("operator runs");
    (out, started.elapsed())
}

fn one_stderr_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    lines[0].to_string()
}

#[test]
fn a_taken_admin_port_is_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (out, took) = operator(&[
        "run",
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
        "--admin-addr",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_stderr_line(&out);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn an_unreachable_api_server_is_fatal_after_the_startup_timeout_even_with_leader_election() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let (out, took) = operator(&[
        "run",
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
        "--admin-addr",
        "127.0.0.1:0",
        "--leader-election",
        "--cluster-id",
        "c1",
        "--startup-timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_stderr_line(&out);
    assert!(
        line.contains("the Kubernetes API server did not answer within 2s"),
        "{line}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn malformed_flags_are_refused_before_anything_starts() {
    for args in [
        &["run", "--sitewise-endpoint", "127.0.0.1:4566"][..],
        &["run", "--call-timeout", "0s"][..],
        &["run", "--poll-interval", "0s"][..],
    ] {
        let (out, _) = operator(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not a SiteWise endpoint URL")
                || stderr.contains("must be more than zero"),
            "{stderr}"
        );
    }
}
