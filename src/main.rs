//! The `sitewise-operator` binary: `run` starts the controller and the admin server, `crd`
//! prints the CustomResourceDefinition.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};

use sitewise_operator::admin::{self, AdminState};
use sitewise_operator::config::{Cli, Command, PlanArgs, RunArgs};
use sitewise_operator::connections::{Registry, Scoped};
use sitewise_operator::controller::{self, Context, RunOptions, claim};
use sitewise_operator::leader::{ElectionConfig, Elector};
use sitewise_operator::metrics::{HeapStats, Instrumented, Metrics};
use sitewise_operator::shutdown::Shutdown;
use sitewise_operator::sitewise::aws::{AwsSiteWise, sdk_client};
use sitewise_operator::sitewise::rate_limit::RateLimited;
use sitewise_operator::telemetry;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's counters, refreshed (its statistics are a snapshot taken at each epoch).
fn jemalloc_stats() -> Option<HeapStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(HeapStats {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

// Reconciles are deep async state machines (a deletion's steps nest several levels of
// futures), and a debug build keeps them large; worker threads get room for that.
fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 * 1024 * 1024)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("sitewise-operator: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}

async fn start() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => sitewise_operator::crd_yaml().map(|yaml| print!("{yaml}")),
        Command::Run(args) => run(*args).await,
        Command::Plan(args) => plan(*args, false).await,
        Command::Tree(args) => plan(*args, true).await,
    };
    // One line that names the cause, whatever failed; the exit code says it failed.
    if let Err(e) = result {
        eprintln!("sitewise-operator: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let shutdown = Shutdown::listen()?;
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    // Fail fast and clearly when something the operator cannot run without is missing,
    // rather than running on without probes or waiting for ever.
    let admin_listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for /livez, /readyz and /metrics: {e}",
                args.admin_addr
            )
        })?;
    wait_for_api_server(&client, args.startup_timeout).await?;
    let cluster_id = match &args.cluster_id {
        Some(id) => id.clone(),
        None => claim::cluster_id_from_kube_system(&client).await?,
    };
    tracing::info!(cluster_id = %cluster_id, "ownership claims name this cluster");
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("sitewise-operator-{}", uuid::Uuid::new_v4().simple()));
    let elector = args.leader_election.then(|| {
        Elector::new(
            client.clone(),
            ElectionConfig {
                namespace: args.leader_election_namespace.clone(),
                lease_name: args.leader_election_lease.clone(),
                identity: identity.clone(),
                lease_duration: args.leader_lease_duration,
            },
        )
    });
    let metrics = Arc::new(Metrics::default());
    metrics.set_leader(false);
    let mut sdk_settings = args.sdk_settings();
    sdk_settings.app_name = Some(identity.clone());
    sdk_settings.fence = elector.as_ref().map(Elector::fence);
    let sdk = sdk_client(&sdk_settings).await;
    // Counted as sent: the rate limit delays calls before they reach the SDK.
    let operator_client = Arc::new(RateLimited::new(
        Instrumented::new(AwsSiteWise::new(sdk), metrics.clone()),
        args.rates(),
    ));
    // Every call goes through the connection of the reconcile that makes it; the operator's
    // own client is the connection of resources that name none.
    let registry = Arc::new(Registry::new(
        operator_client,
        sdk_settings.clone(),
        args.sts_endpoint.clone(),
        metrics.clone(),
    ));
    let mut ctx = Context::new(Scoped, args.controller_settings(), metrics.clone())
        .with_cluster_id(cluster_id);
    let ready = Arc::new(AtomicBool::new(false));
    let admin_state = AdminState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        heap_stats: Some(jemalloc_stats),
    };
    tokio::spawn(async move {
        if let Err(e) = admin::serve(admin_listener, admin_state).await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    let options = RunOptions {
        shutdown: shutdown.clone(),
        namespace: args.namespace.clone(),
        concurrency: args.concurrency(),
        instance: Some(identity.clone()),
        connections: Some(registry),
        watch_connections: !args.disable_connections,
    };
    let Some(elector) = elector else {
        metrics.set_leader(true);
        return controller::run(client, ctx, options, ready).await;
    };
    // A standby is healthy and ready: readiness gates rollouts and `helm install --wait`, and a
    // Deployment whose standby never turns ready never finishes a rollout.
    ready.store(true, Ordering::Relaxed);
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        () = shutdown.clone().requested() => {
            tracing::info!("stopping on standby");
            return Ok(());
        }
    }
    metrics.set_leader(true);
    // Checked twice: before a call is queued (cheap, early) and in the SDK right before the
    // request leaves (after the rate limiter's wait), which is what makes the fence hold.
    ctx = ctx.with_fence(elector.fence());
    let result = tokio::select! {
        // Returns once a shutdown request has let the running reconciles finish.
        result = controller::run(client, ctx, options, ready) => result,
        lost = elector.keep() => {
            // Exit so the pod restarts as a candidate; the fence already stopped mutations.
            tracing::error!(error = %lost, "stopping: leadership lost");
            return Err(lost);
        }
    };
    metrics.set_leader(false);
    elector.release().await;
    result
}

/// A client from `kubeconfig`, or from the environment (in-cluster or default kubeconfig).
async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// `plan` (`tree`): reads the selected resources, every resource (owners of children) and
/// SiteWise, and prints what their deletion would do (the hierarchy beside the resources).
async fn plan(args: PlanArgs, tree: bool) -> anyhow::Result<()> {
    use kube::api::{Api, ListParams};
    use sitewise_operator::crd::SiteWiseAsset;
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let selected: Api<SiteWiseAsset> = if args.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &args.namespace)
    };
    let mut targets = selected.list(&params).await?.items;
    if !args.names.is_empty() {
        for name in &args.names {
            if !targets
                .iter()
                .any(|t| t.metadata.name.as_deref() == Some(name))
            {
                anyhow::bail!("SiteWiseAsset {}/{name} not found", args.namespace);
            }
        }
        targets.retain(|t| {
            t.metadata
                .name
                .as_ref()
                .is_some_and(|n| args.names.contains(n))
        });
    }
    // plan reads the operator's own account; a resource of another connection would be
    // planned against the wrong account, so it is refused rather than guessed at.
    if let Some(other) = targets.iter().find(|t| {
        let pinned = t.status.as_ref().and_then(|s| s.connection.as_deref());
        t.spec.connection_ref.is_some()
            || pinned.is_some_and(|p| p != sitewise_operator::crd::OPERATOR_CONNECTION)
    }) {
        anyhow::bail!(
            "SiteWiseAsset {}/{} lives in a SiteWiseConnection; plan and tree read only the operator's own account and region (select resources of that connection out)",
            other.metadata.namespace.as_deref().unwrap_or_default(),
            other.metadata.name.as_deref().unwrap_or_default()
        );
    }
    let all = Api::<SiteWiseAsset>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let sdk = sdk_client(&args.sdk_settings()).await;
    let sitewise = RateLimited::new(AwsSiteWise::new(sdk), args.sitewise.rates());
    if tree {
        let trees = sitewise_operator::preview::tree(&sitewise, &targets, &all, 10).await?;
        print!("{}", sitewise_operator::preview::render_tree(&trees));
        return Ok(());
    }
    let cluster_id = match &args.cluster_id {
        Some(id) => id.clone(),
        None => claim::cluster_id_from_kube_system(&client).await?,
    };
    let rates = (
        args.sitewise.sitewise_rate,
        args.sitewise.sitewise_describe_rate,
    );
    let plan =
        sitewise_operator::preview::plan(&sitewise, &targets, &all, &cluster_id, rates).await?;
    print!("{}", sitewise_operator::preview::render(&plan));
    Ok(())
}

/// Waits until the API server answers, for at most `timeout`.
async fn wait_for_api_server(
    client: &kube::Client,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.apiserver_version(),
        )
        .await;
        match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("the Kubernetes API server did not answer within {timeout:?}: {e}")
            }
            Err(_) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("the Kubernetes API server did not answer within {timeout:?}")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}
