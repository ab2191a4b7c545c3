//! Command line and environment configuration (clap). Every flag of `run` has an environment
//! fallback so the Helm chart and the demo configure the operator the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backoff::BackoffPolicy;
use crate::controller::Settings;
use crate::sitewise::aws::SdkSettings;
use crate::sitewise::rate_limit::Rates;
use std::num::NonZeroU32;

#[derive(Debug, Parser)]
#[command(
    name = "sitewise-operator",
    version,
    about = "Kubernetes operator for AWS IoT SiteWise assets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Run(Box<RunArgs>),
    /// Print the SiteWiseAsset and SiteWiseAssetModel CustomResourceDefinitions as YAML.
    Crd,
    /// Show what deleting resources would do, without doing it (read-only). Also usable as a
    /// kubectl plugin: link this binary as `kubectl-sitewise` and run `kubectl sitewise plan`.
    Plan(Box<PlanArgs>),
    /// Show the SiteWise hierarchy under the selected resources' assets, beside the resources
    /// that own each asset (read-only; `kubectl sitewise tree` as a plugin).
    Tree(Box<PlanArgs>),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Resources whose deletion to plan, by name; all the selected ones when none is given.
    pub names: Vec<String>,

    /// Namespace of the resources.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,

    /// Resources of every namespace (names are then not allowed).
    #[arg(long, short = 'A', conflicts_with = "names")]
    pub all_namespaces: bool,

    /// Label selector, e.g. `plant.example.com/site=lyon`.
    #[arg(long, short = 'l')]
    pub selector: Option<String>,

    /// Kubeconfig file; the default kubeconfig (or in-cluster configuration) when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub sitewise: SiteWiseArgs,

    /// The cluster's ID in ownership claims, as the operator is configured (default: the
    /// kube-system namespace's UID).
    #[arg(long, env = "CLUSTER_ID", value_parser = parse_cluster_id)]
    pub cluster_id: Option<String>,

    /// Serve only the operator's own account and Region: no SiteWiseConnections, no namespace
    /// defaults (and no need to list namespaces). Resources that name a connection are refused.
    #[arg(long, env = "DISABLE_CONNECTIONS")]
    pub disable_connections: bool,

    /// STS endpoint override for the connections' AssumeRole and GetCallerIdentity (an STS
    /// VPC endpoint, or a test STS such as moto's server).
    #[arg(long, env = "STS_ENDPOINT", value_parser = parse_endpoint)]
    pub sts_endpoint: Option<String>,
}

impl PlanArgs {
    pub fn sdk_settings(&self) -> SdkSettings {
        SdkSettings {
            app_name: Some("sitewise-plan".into()),
            ..self.sitewise.sdk_settings(3, Duration::from_secs(10))
        }
    }
}

/// Where the SiteWise assets are and the account's quotas: shared by `run` and the read-only
/// commands.
#[derive(Debug, Args)]
pub struct SiteWiseArgs {
    /// AWS region of the SiteWise assets; the standard AWS chain decides when unset.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// SiteWise endpoint override, e.g. http://127.0.0.1:4566 for the emulator.
    #[arg(long, env = "SITEWISE_ENDPOINT", value_parser = parse_endpoint)]
    pub sitewise_endpoint: Option<String>,

    /// The account's SiteWise asset-operation quota in requests per second (published: 30;
    /// adjustable per account). The operator starts at it, slows down when throttled (other
    /// clients share the quota) and recovers; `plan` estimates its time with it. 0 switches
    /// the client-side limit off.
    #[arg(long, env = "SITEWISE_RATE", default_value_t = 30)]
    pub sitewise_rate: u32,

    /// The account's DescribeAsset quota in requests per second (published: 100), adapted
    /// like the asset-operation rate. 0 switches it off.
    #[arg(long, env = "SITEWISE_DESCRIBE_RATE", default_value_t = 100)]
    pub sitewise_describe_rate: u32,
}

impl SiteWiseArgs {
    pub fn sdk_settings(&self, sdk_max_attempts: u32, attempt_timeout: Duration) -> SdkSettings {
        SdkSettings {
            region: self.region.clone(),
            endpoint: self.sitewise_endpoint.clone(),
            sdk_max_attempts,
            attempt_timeout,
            fence: None,
            app_name: None,
        }
    }

    pub fn rates(&self) -> Rates {
        Rates {
            asset_operations: NonZeroU32::new(self.sitewise_rate),
            describe_asset: NonZeroU32::new(self.sitewise_describe_rate),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig file; without it the in-cluster configuration (or the default kubeconfig) is used.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace to watch; all namespaces when unset.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub sitewise: SiteWiseArgs,

    /// Attempts the AWS SDK makes per call before the operator's own backoff takes over.
    #[arg(long, env = "SITEWISE_SDK_MAX_ATTEMPTS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub sdk_max_attempts: u32,

    /// Time limit of one SiteWise HTTP attempt.
    #[arg(long, env = "SITEWISE_CALL_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub call_timeout: Duration,

    /// First retry delay after a throttle or transient failure.
    #[arg(long, env = "BACKOFF_BASE", default_value = "2s", value_parser = parse_positive_duration)]
    pub backoff_base: Duration,

    /// Longest retry delay after repeated throttles or transient failures. The shared rate
    /// limit already bounds the load on SiteWise; a longer per-resource delay mostly stretches
    /// the tail of a large deletion under sustained faults.
    #[arg(long, env = "BACKOFF_MAX", default_value = "15s", value_parser = parse_positive_duration)]
    pub backoff_max: Duration,

    /// Longest retry delay after repeated ConflictingOperationException.
    #[arg(long, env = "CONFLICT_BACKOFF_MAX", default_value = "30s", value_parser = parse_positive_duration)]
    pub conflict_backoff_max: Duration,

    /// Poll interval while SiteWise is busy with an asset (CREATING, UPDATING, DELETING).
    #[arg(long, env = "POLL_INTERVAL", default_value = "3s", value_parser = parse_positive_duration)]
    pub poll_interval: Duration,

    /// Drift detection of stable assets: a sweep at this interval checks them all against
    /// ListAssets (250 assets per call) and their parents' ListAssociatedAssets, and reconciles
    /// only those that differ; assets whose spec manages tags or property settings, which no
    /// listing shows, are resynced on their own at this interval.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = parse_positive_duration)]
    pub resync: Duration,

    /// Each stable asset is also reconciled on its own (DescribeAsset and the calls its spec
    /// needs) at this interval, for drift no listing shows.
    #[arg(long, env = "FULL_RESYNC_INTERVAL", default_value = "1h", value_parser = parse_positive_duration)]
    pub full_resync: Duration,

    /// Retry interval after a permanent error (invalid request, access denied).
    #[arg(long, env = "TERMINAL_RETRY", default_value = "10m", value_parser = parse_positive_duration)]
    pub terminal_retry: Duration,

    /// Resources reconciled at the same time (never two reconciles of one resource); 0 derives
    /// it from `--sitewise-rate` (half the rate, at least 16). A reconcile holds its slot while
    /// it waits for its turn at the SiteWise rate and while it writes to the API server, so a
    /// higher quota needs more slots to be spent.
    #[arg(long, env = "CONCURRENCY", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=256))]
    pub concurrency: u16,

    /// Address of the admin server (/livez, /readyz, /metrics).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,

    /// Run only while holding a Lease, so that several replicas can run safely.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,

    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "sitewise-system")]
    pub leader_election_namespace: String,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE",
        default_value = "sitewise-operator"
    )]
    pub leader_election_lease: String,

    /// How long a leader's Lease is valid without renewal (renewed every third of it).
    #[arg(long, env = "LEADER_LEASE_DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub leader_lease_duration: Duration,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long start-up waits for the Kubernetes API server before giving up (exit 1).
    #[arg(long, env = "STARTUP_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub startup_timeout: Duration,

    /// Identity of this cluster in the ownership tags of the assets it manages (and in the
    /// optional IAM policy that limits deletion to them). Defaults to the UID of the
    /// kube-system namespace, which is stable for the life of a cluster.
    #[arg(long, env = "CLUSTER_ID", value_parser = parse_cluster_id)]
    pub cluster_id: Option<String>,

    /// Serve only the operator's own account and Region: no SiteWiseConnections, no namespace
    /// defaults (and no need to list namespaces). Resources that name a connection are refused.
    #[arg(long, env = "DISABLE_CONNECTIONS")]
    pub disable_connections: bool,

    /// STS endpoint override for the connections' AssumeRole and GetCallerIdentity (an STS
    /// VPC endpoint, or a test STS such as moto's server).
    #[arg(long, env = "STS_ENDPOINT", value_parser = parse_endpoint)]
    pub sts_endpoint: Option<String>,
}

/// A cluster ID goes into a tag value (`<cluster id>/<resource UID>`, at most 256 characters):
/// 1 to 128 characters without '/' or white space.
pub fn parse_cluster_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 128 && s.chars().all(|c| !c.is_whitespace() && c != '/');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a cluster ID: use 1-128 characters without '/' or white space"
        ))
    }
}

impl RunArgs {
    pub fn sdk_settings(&self) -> SdkSettings {
        self.sitewise
            .sdk_settings(self.sdk_max_attempts, self.call_timeout)
    }

    /// `--concurrency`, or the count derived from the asset-operation rate.
    pub fn concurrency(&self) -> u16 {
        if self.concurrency > 0 {
            return self.concurrency;
        }
        u16::try_from(self.sitewise.sitewise_rate.div_ceil(2))
            .unwrap_or(u16::MAX)
            .clamp(16, 256)
    }

    pub fn rates(&self) -> Rates {
        self.sitewise.rates()
    }

    pub fn controller_settings(&self) -> Settings {
        Settings {
            backoff: BackoffPolicy {
                base: self.backoff_base,
                max: self.backoff_max.max(self.backoff_base),
            },
            conflict_backoff: BackoffPolicy {
                base: self.backoff_base,
                max: self.conflict_backoff_max.max(self.backoff_base),
            },
            // A few poll intervals at most: after an API-server outage, the work resumes
            // within that of its return.
            kube_backoff: BackoffPolicy {
                base: self.backoff_base.min(self.poll_interval),
                max: (self.poll_interval * 3).max(self.backoff_base.min(self.poll_interval)),
            },
            poll_interval: self.poll_interval,
            resync: self.resync,
            full_resync: self.full_resync.max(self.resync),
            terminal_retry: self.terminal_retry,
            not_found_retry: self.resync.min(Duration::from_secs(60)),
        }
    }
}

/// A duration that must be more than zero (a zero poll interval or timeout would spin or
/// fail every call).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be more than zero"));
    }
    Ok(d)
}

/// An endpoint override: an absolute `http://` or `https://` URL with a host (and an optional
/// port), nothing after the host but an optional `/`.
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "'{s}' is not a SiteWise endpoint URL ({why}); use e.g. https://iotsitewise.eu-west-1.amazonaws.com or http://127.0.0.1:4566"
        )
    };
    let uri: axum::http::Uri = s.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("no path or query allowed"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// Parses durations such as `500ms`, `3s`, `5m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("'{s}' is not a duration like 500ms, 3s or 5m: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("'{s}' must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "sitewise-operator",
            "run",
            "--sitewise-endpoint",
            "http://127.0.0.1:4566",
            "--backoff-base",
            "500ms",
            "--backoff-max",
            "1m",
        ])
        .expect("valid flags");
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        let settings = args.controller_settings();
        assert_eq!(settings.backoff.base, Duration::from_millis(500));
        assert_eq!(settings.backoff.max, Duration::from_secs(60));
        assert_eq!(args.sdk_settings().sdk_max_attempts, 1);
        assert_eq!(args.concurrency(), 16, "the published quota (30/s)");
    }

    #[test]
    fn concurrency_follows_the_rate_unless_given() {
        let run = |flags: &[&str]| {
            let cli = Cli::try_parse_from([&["sitewise-operator", "run"], flags].concat())
                .expect("valid flags");
            let Command::Run(args) = cli.command else {
                panic!("expected run");
            };
            args.concurrency()
        };
        assert_eq!(run(&[]), 16);
        assert_eq!(run(&["--sitewise-rate", "100"]), 50);
        assert_eq!(run(&["--sitewise-rate", "0"]), 16);
        assert_eq!(run(&["--sitewise-rate", "5000"]), 256);
        assert_eq!(run(&["--sitewise-rate", "100", "--concurrency", "8"]), 8);
    }

    #[test]
    fn bad_values_are_refused_with_a_readable_message() {
        let err = Cli::try_parse_from(["sitewise-operator", "run", "--poll-interval", "soon"])
            .expect_err("must fail");
        assert!(err.to_string().contains("is not a duration"), "{err}");
        assert!(
            Cli::try_parse_from(["sitewise-operator", "run", "--sdk-max-attempts", "0"]).is_err()
        );
        assert!(Cli::try_parse_from(["sitewise-operator", "run", "--log-format", "xml"]).is_err());
        for flag in [
            "--call-timeout",
            "--poll-interval",
            "--backoff-base",
            "--resync",
            "--full-resync",
            "--leader-lease-duration",
        ] {
            let err = Cli::try_parse_from(["sitewise-operator", "run", flag, "0s"])
                .expect_err("zero refused");
            assert!(err.to_string().contains("must be more than zero"), "{err}");
        }
        for endpoint in [
            "127.0.0.1:4566",
            "ftp://x",
            "http://",
            "http://h/p",
            "not a url",
        ] {
            let err =
                Cli::try_parse_from(["sitewise-operator", "run", "--sitewise-endpoint", endpoint])
                    .expect_err("malformed endpoint refused");
            assert!(
                err.to_string().contains("is not a SiteWise endpoint URL"),
                "{err}"
            );
        }
        let ok = Cli::try_parse_from([
            "sitewise-operator",
            "run",
            "--sitewise-endpoint",
            "https://api.iotsitewise.eu-west-1.amazonaws.com/",
        ]);
        assert!(ok.is_ok());
        let err = Cli::try_parse_from(["sitewise-operator", "run", "--cluster-id", "a/b"])
            .expect_err("must fail");
        assert!(err.to_string().contains("is not a cluster ID"), "{err}");
    }
}
