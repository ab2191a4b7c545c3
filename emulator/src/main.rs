//! The `sitewise-emulator` binary: serves the emulated SiteWise API with the configured
//! timings, quotas, faults and optional seed until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use sitewise_emulator::config::{Quotas, Settings, Timings};
use sitewise_emulator::faults::{FaultConfig, OpFaults};
use sitewise_emulator::seed::Seed;
use sitewise_emulator::{Emulator, seed};

#[derive(Debug, Parser)]
#[command(
    name = "sitewise-emulator",
    version,
    about = "A local AWS IoT SiteWise control plane"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_BIND", default_value = "127.0.0.1:4566")]
    bind: SocketAddr,
    /// Region used in ARNs.
    #[arg(long, env = "EMULATOR_REGION", default_value = "us-east-1")]
    region: String,
    /// Account used in ARNs.
    #[arg(long, env = "EMULATOR_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
    /// CREATING -> ACTIVE delay.
    #[arg(long, env = "EMULATOR_CREATE_DELAY", default_value = "0s", value_parser = parse_duration)]
    create_delay: Duration,
    /// UPDATING -> ACTIVE delay.
    #[arg(long, env = "EMULATOR_UPDATE_DELAY", default_value = "0s", value_parser = parse_duration)]
    update_delay: Duration,
    /// DELETING -> gone delay.
    #[arg(long, env = "EMULATOR_DELETE_DELAY", default_value = "0s", value_parser = parse_duration)]
    delete_delay: Duration,
    /// Switch the request-rate quotas off.
    #[arg(long, env = "EMULATOR_NO_QUOTAS")]
    no_quotas: bool,
    /// Requests per second shared by the asset operations.
    #[arg(long, default_value_t = 30.0)]
    asset_tps: f64,
    /// Requests per second shared by the model operations.
    #[arg(long, default_value_t = 10.0)]
    model_tps: f64,
    /// Requests per second of DescribeAsset.
    #[arg(long, default_value_t = 100.0)]
    describe_asset_tps: f64,
    /// Child assets per parent asset.
    #[arg(long, default_value_t = 100)]
    max_children: usize,
    /// Depth of an asset hierarchy.
    #[arg(long, default_value_t = 10)]
    max_depth: usize,
    /// How long clientTokens are remembered.
    #[arg(long, default_value = "8h", value_parser = parse_duration)]
    token_retention: Duration,
    /// Random faults of one operation (or `*`), e.g.
    /// `DeleteAsset:throttle=0.2,internal=0.05,conflict=0.1,latency=50ms,late=2s,lost=0.1`
    /// (`late`: the call takes effect and its answer comes that much later; `lost`: the
    /// probability that the answer never comes). Repeatable.
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<(String, OpFaults)>,
    /// JSON file with a fault configuration (see the README), merged before --fault.
    #[arg(long)]
    faults_file: Option<PathBuf>,
    /// JSON file with models and assets to create at start.
    #[arg(long, env = "EMULATOR_SEED")]
    seed: Option<PathBuf>,
    /// An access key of another account, `KEY=ACCOUNT`: requests signed with it are served
    /// by that account's state. Repeatable.
    #[arg(long = "account-key", value_parser = parse_account_key)]
    account_keys: Vec<(String, String)>,
    /// STS endpoint asked (GetCallerIdentity) for the account of any other access key.
    #[arg(long, env = "EMULATOR_STS_ENDPOINT")]
    sts_endpoint: Option<String>,
}

fn parse_account_key(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, account))
            if !key.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit()) =>
        {
            Ok((key.to_string(), account.to_string()))
        }
        _ => Err(format!("'{s}' is not KEY=ACCOUNT (a 12-digit account ID)")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("'{s}' needs a unit: ms, s, m or h"))?;
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 500ms, 3s or 5m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{s}': {e}"))
}

fn parse_fault(s: &str) -> Result<(String, OpFaults), String> {
    let (op, spec) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' must look like Operation:throttle=0.1,latency=20ms"))?;
    let mut faults = OpFaults::default();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' must be key=value"))?;
        let prob = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("'{value}' must be a probability between 0 and 1"))
        };
        match key {
            "throttle" => faults.throttle = prob()?,
            "internal" => faults.internal_failure = prob()?,
            "conflict" => faults.conflict = prob()?,
            "latency" => faults.latency = parse_duration(value)?,
            "late" => faults.answer_delay = parse_duration(value)?,
            "lost" => faults.lost = prob()?,
            _ => {
                return Err(format!(
                    "unknown fault '{key}' (throttle, internal, conflict, latency, late, lost)"
                ));
            }
        }
    }
    Ok((op.to_string(), faults))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut faults = match &args.faults_file {
        Some(path) => serde_json::from_str::<FaultConfig>(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?,
        None => FaultConfig::default(),
    };
    faults.operations.extend(args.faults.iter().cloned());
    let settings = Settings {
        region: args.region.clone(),
        account_id: args.account_id.clone(),
        timings: Timings {
            create: args.create_delay,
            update: args.update_delay,
            delete: args.delete_delay,
        },
        quotas: Quotas {
            enabled: !args.no_quotas,
            asset_tps: args.asset_tps,
            model_tps: args.model_tps,
            describe_asset_tps: args.describe_asset_tps,
            max_children_per_parent: args.max_children,
            max_hierarchy_depth: args.max_depth,
        },
        token_retention: args.token_retention,
        faults,
        account_keys: args.account_keys.iter().cloned().collect(),
        sts_endpoint: args.sts_endpoint.clone(),
    };
    let emulator = Emulator::start(args.bind, settings).await?;
    if let Some(path) = &args.seed {
        let seed: Seed = serde_json::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        let seeded = seed::apply(&mut emulator.store(), &seed)
            .map_err(|e| anyhow::anyhow!("seeding failed: {}", e.message))?;
        tracing::info!(
            models = seeded.models.len(),
            assets = seeded.assets.len(),
            "seeded"
        );
    }
    tracing::info!(endpoint = %emulator.endpoint(), "SiteWise emulator listening");
    println!("sitewise-emulator listening on {}", emulator.endpoint());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn fault_flags_parse() {
        let (op, f) = parse_fault("DeleteAsset:throttle=0.2,latency=50ms").expect("valid");
        assert_eq!(op, "DeleteAsset");
        assert_eq!(f.throttle, 0.2);
        assert_eq!(f.latency, Duration::from_millis(50));
        let (_, f) = parse_fault("CreateAsset:late=2s").expect("valid");
        assert_eq!(f.answer_delay, Duration::from_secs(2));
        assert!(parse_fault("DeleteAsset:throttle=2").is_err());
        assert!(parse_fault("DeleteAsset").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").is_err());
    }
}
