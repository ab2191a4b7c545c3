//! The `SiteWiseAsset` controller: wiring (watch, finalizer, concurrency, shutdown), the thin
//! reconcile entry and the error policy. The entry dispatches through kube-runtime's
//! `finalizer` helper to [`apply::apply`] or [`cleanup::cleanup`], then [`settle`] turns the
//! outcome into a requeue: errors are reported once (status, event, metric) and carry the
//! retry delay chosen for them to [`error_policy`].

pub mod apply;
pub mod claim;
pub mod cleanup;
pub mod gate;
pub mod health;
pub mod models;
pub mod plan;
pub mod recent;
pub mod route;
pub mod status;
pub mod sweep;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{self, Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::Instrument;

use crate::backoff::{BackoffPolicy, FailureCounts, jittered};
use crate::crd::{FINALIZER, SiteWiseAsset, SiteWiseAssetModel};
use crate::error::{Error, ErrorClass, Result};
use crate::leader::Fence;
use crate::metrics::Metrics;
use crate::sitewise::SiteWise;
use status::{Events, StatusWriter};

/// Timing of requeues and retries.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Throttles and transient failures.
    pub backoff: BackoffPolicy,
    /// ConflictingOperationException and hierarchies that moved.
    pub conflict_backoff: BackoffPolicy,
    /// Kubernetes API failures; short, so the work resumes soon after an outage.
    pub kube_backoff: BackoffPolicy,
    /// Polls while SiteWise is busy (CREATING, UPDATING, DELETING).
    pub poll_interval: Duration,
    /// Sweep of settled assets by listing; resync of stable assets the listings cannot vouch
    /// for (managed tags or property settings).
    pub resync: Duration,
    /// Reconcile of each settled asset on its own, for what no listing shows.
    pub full_resync: Duration,
    /// Retry after a permanent error.
    pub terminal_retry: Duration,
    /// Re-check of an asset SiteWise does not know.
    pub not_found_retry: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backoff: BackoffPolicy {
                base: Duration::from_secs(2),
                max: Duration::from_secs(15),
            },
            conflict_backoff: BackoffPolicy {
                base: Duration::from_secs(2),
                max: Duration::from_secs(30),
            },
            kube_backoff: BackoffPolicy {
                base: Duration::from_secs(1),
                max: Duration::from_secs(9),
            },
            poll_interval: Duration::from_secs(3),
            resync: Duration::from_secs(300),
            full_resync: Duration::from_secs(3600),
            terminal_retry: Duration::from_secs(600),
            not_found_retry: Duration::from_secs(60),
        }
    }
}

/// What reconciles share, independent of Kubernetes (so unit tests can build one).
pub struct Context<S> {
    pub sitewise: S,
    pub settings: Settings,
    pub failures: FailureCounts,
    pub gate: gate::RetryGate,
    pub metrics: Arc<Metrics>,
    /// Closed when this replica may no longer hold the leader lease.
    pub fence: Fence,
    /// Identity of this cluster in ownership claims.
    pub cluster_id: String,
    /// The resources the operator sees (parent references, stale claims).
    pub resources: Arc<dyn claim::Resources>,
    /// The namespace watched, `None` for all.
    pub namespace: Option<String>,
    /// Resources whose finalizer this process removed. Removing the finalizer is the last
    /// write to a resource being deleted, but an earlier write (a status written in the same
    /// pass, or the release's own where another finalizer keeps the object) is a watch event
    /// that schedules one more reconcile, and the cache may still show the finalizer then:
    /// without this record that reconcile would run the cleanup again, announce the asset
    /// "already gone" after "deleted", and fail to remove a finalizer that is no longer there.
    pub released: recent::RecentKeys,
    /// What deletions learned in earlier passes (links, claims).
    pub deletions: cleanup::DeletionMemory,
    /// SiteWise's delete time, learned: when to confirm a deletion.
    pub pace: cleanup::DeletePace,
    /// The models each connection's assets use: what a sweep lists.
    pub models: sweep::Models,
}

impl<S> Context<S> {
    pub fn new(sitewise: S, settings: Settings, metrics: Arc<Metrics>) -> Self {
        Self {
            sitewise,
            settings,
            failures: FailureCounts::default(),
            gate: gate::RetryGate::default(),
            metrics,
            fence: Fence::unfenced(),
            cluster_id: "unit-test-cluster".into(),
            resources: Arc::new(claim::NoResources),
            namespace: None,
            released: recent::RecentKeys::default(),
            deletions: cleanup::DeletionMemory::default(),
            pace: cleanup::DeletePace::default(),
            models: sweep::Models::default(),
        }
    }

    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    pub fn with_cluster_id(mut self, cluster_id: impl Into<String>) -> Self {
        self.cluster_id = cluster_id.into();
        self
    }

    pub fn with_resources(mut self, resources: Arc<dyn claim::Resources>) -> Self {
        self.resources = resources;
        self
    }

    /// Whether `namespace` is watched (its resources are in the cache).
    pub fn watches(&self, namespace: &str) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == namespace)
    }

    /// Delay before the next attempt after an error of `class`; counts the failure (except
    /// for `Pending`, which is not a failure) and returns the consecutive failure count.
    pub fn retry_delay(&self, key: &str, class: ErrorClass) -> (Duration, u32) {
        self.retry_delay_at(key, class, "")
    }

    /// [`Context::retry_delay`] for a failure at `step`: only the same step failing again
    /// counts as consecutive (see [`FailureCounts::record_failure_at`]).
    pub fn retry_delay_at(&self, key: &str, class: ErrorClass, step: &str) -> (Duration, u32) {
        let mut rng = rand::rng();
        match class {
            ErrorClass::Pending => (
                jittered(self.settings.poll_interval),
                self.failures.get(key),
            ),
            ErrorClass::Throttled | ErrorClass::Transient => {
                let n = self.failures.record_failure_at(key, step);
                (self.settings.backoff.delay(n, &mut rng), n)
            }
            ErrorClass::Conflict => {
                let n = self.failures.record_failure_at(key, step);
                (self.settings.conflict_backoff.delay(n, &mut rng), n)
            }
            ErrorClass::Terminal => {
                let n = self.failures.record_failure_at(key, step);
                (jittered(self.settings.terminal_retry), n)
            }
            // Counted apart: an API-server outage must not leave SiteWise retries slow after it.
            ErrorClass::Kubernetes => {
                let n = self.failures.record_failure(&kube_key(key));
                (self.settings.kube_backoff.delay(n, &mut rng), n)
            }
        }
    }
}

pub(crate) fn kube_key(key: &str) -> String {
    format!("{key}#kubernetes")
}

/// Per-resource state (failure counts, retry gate) is keyed by UID: a resource deleted and
/// created again under the same name starts afresh.
fn resource_key(obj: &SiteWiseAsset) -> String {
    obj.metadata.uid.clone().unwrap_or_else(|| obj.name_any())
}

struct App<S> {
    ctx: Context<S>,
    client: Client,
    recorder: Recorder,
    /// The connection of each reconcile; `None` runs every call through the context's client.
    routing: Option<route::Routing>,
}

async fn reconcile<S: SiteWise>(obj: Arc<SiteWiseAsset>, app: Arc<App<S>>) -> Result<Action> {
    let namespace = obj.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<SiteWiseAsset> = Api::namespaced(app.client.clone(), &namespace);
    let key = resource_key(&obj);
    let deleting = obj.metadata.deletion_timestamp.is_some();
    if deleting && app.ctx.released.contains(&key, std::time::Instant::now()) {
        tracing::debug!(name = %obj.name_any(), "already released; waiting for the object to go");
        return Ok(Action::await_change());
    }
    if let Some(wait) =
        app.ctx
            .gate
            .remaining(&key, gate::trigger_key(&obj), std::time::Instant::now())
    {
        return Ok(Action::requeue(wait));
    }
    let status = StatusWriter::for_resource(api.clone(), &obj);
    let events = Events::for_resource(app.recorder.clone(), obj.as_ref());
    let span = tracing::info_span!(
        "reconcile",
        namespace = %namespace,
        name = %obj.name_any(),
        asset = %obj.declared_reference()
    );
    let reference = obj.spec.connection_ref.as_ref().map(|c| c.name.as_str());
    let work = || {
        finalizer(&api, FINALIZER, obj.clone(), |event| async {
            match event {
                Finalizer::Apply(obj) => apply::apply(&obj, &app.ctx, &status, &events).await,
                Finalizer::Cleanup(obj) => cleanup::cleanup(&obj, &app.ctx, &status, &events).await,
            }
        })
        .instrument(span.clone())
    };
    let routed = route::run(
        app.routing.as_ref(),
        &api,
        FINALIZER,
        &obj,
        reference,
        &status,
        &events,
        work,
    )
    .await;
    let result = match routed {
        route::Routed::Ran(result) => result,
        route::Routed::Refused(result) => {
            return settle(&obj, &app.ctx, &status, &events, result)
                .instrument(span)
                .await;
        }
        route::Routed::Released(result) => {
            if result.is_ok() {
                app.ctx.released.mark(&key, std::time::Instant::now());
            }
            return settle(&obj, &app.ctx, &status, &events, result)
                .instrument(span)
                .await;
        }
    };
    let result = match result {
        // A deleting object reconciled without error has had its finalizer removed.
        Ok(action) if deleting => {
            app.ctx.released.mark(&key, std::time::Instant::now());
            Ok(action)
        }
        // The object went away between the release and the finalizer removal.
        Err(finalizer::Error::RemoveFinalizer(kube::Error::Api(e))) if e.code == 404 => {
            app.ctx.released.mark(&key, std::time::Instant::now());
            Ok(Action::await_change())
        }
        other => other.map_err(Error::from_finalizer),
    };
    settle(&obj, &app.ctx, &status, &events, result)
        .instrument(span)
        .await
}

/// Turns the outcome of a reconcile into the final result: success resets the resource's
/// backoff; an error is reported (status, event, metric) once, here, and returned with the
/// retry delay chosen for its class.
pub async fn settle<S>(
    obj: &SiteWiseAsset,
    ctx: &Context<S>,
    status: &StatusWriter,
    events: &Events,
    result: Result<Action>,
) -> Result<Action> {
    let key = resource_key(obj);
    match result {
        Ok(action) => {
            ctx.failures.reset(&key);
            ctx.failures.reset(&kube_key(&key));
            ctx.gate.release(&key);
            ctx.metrics.reconciled("ok");
            Ok(action)
        }
        Err(err) => {
            let class = err.class();
            ctx.metrics.reconciled(class.as_str());
            let step = failed_step(&err, status);
            let (delay, attempts) = match err.poll_after() {
                Some(poll) => (poll, ctx.failures.get(&key)),
                None => ctx.retry_delay_at(&key, class, &step),
            };
            ctx.gate.hold(
                &key,
                gate::trigger_key(obj),
                std::time::Instant::now() + delay,
            );
            if class == ErrorClass::Pending {
                tracing::debug!(error = %err, "waiting on SiteWise");
            } else if class == ErrorClass::Kubernetes {
                // Status and events go through the same API server: one log line, no writes.
                tracing::warn!(error = %err, retry_in = ?delay, "Kubernetes API call failed");
            } else {
                tracing::warn!(error = %err, class = class.as_str(), retry_in = ?delay, "reconcile failed");
                report(obj, status, events, err.root(), class, delay, attempts).await;
            }
            Err(Error::Reported {
                source: Box::new(err),
                retry_after: delay,
            })
        }
    }
}

/// Where a reconcile failed: the phase and the call (or the kind of error).
fn failed_step(err: &Error, status: &StatusWriter) -> String {
    let phase = status
        .snapshot()
        .deletion
        .map(|d| format!("{:?}", d.phase))
        .unwrap_or_else(|| "Apply".into());
    let call = match err.root() {
        Error::SiteWise(e) => e.operation.to_string(),
        other => other.class().as_str().to_string(),
    };
    format!("{phase}/{call}")
}

async fn report(
    obj: &SiteWiseAsset,
    status: &StatusWriter,
    events: &Events,
    err: &Error,
    class: ErrorClass,
    delay: Duration,
    attempts: u32,
) {
    let message = err.to_string();
    let reason = match class {
        ErrorClass::Throttled => "Throttled",
        ErrorClass::Conflict => "Conflict",
        ErrorClass::Transient => "TransientError",
        ErrorClass::Terminal => "PermanentError",
        ErrorClass::Pending => "Pending",
        ErrorClass::Kubernetes => "KubernetesError",
    };
    let generation = status.generation();
    let deleting =
        obj.metadata.deletion_timestamp.is_some() || status.snapshot().deletion.is_some();
    let next_retry = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
        .map(|t| t.to_string())
        .ok();
    let written = status
        .update(|s| {
            status::set_condition(
                &mut s.conditions,
                status::SYNCED,
                false,
                reason,
                message.clone(),
                generation,
            );
            if class == ErrorClass::Terminal {
                status::set_condition(
                    &mut s.conditions,
                    status::TERMINAL,
                    true,
                    reason,
                    message.clone(),
                    generation,
                );
            } else {
                status::remove_condition(&mut s.conditions, status::TERMINAL);
            }
            if deleting {
                let deletion = s.deletion.get_or_insert_default();
                deletion.attempts = attempts;
                deletion.last_error = Some(message.clone());
                deletion.next_retry = next_retry;
            }
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write the error into status");
    }
    let note = format!(
        "{message}; attempt {attempts}, next retry in {}s",
        delay.as_secs()
    );
    match class {
        ErrorClass::Terminal | ErrorClass::Transient => events.warning(reason, note).await,
        _ => {
            events
                .normal("RetryScheduled", format!("{reason}: {note}"))
                .await
        }
    }
}

/// The requeue after a failed reconcile of either kind: the delay chosen when it was reported.
fn error_policy<K, S>(_obj: Arc<K>, err: &Error, app: Arc<App<S>>) -> Action {
    match err {
        Error::Reported { retry_after, .. } => Action::requeue(*retry_after),
        _ => Action::requeue(jittered(app.ctx.settings.backoff.base)),
    }
}

/// Removes from a watched object what no reconcile reads, so 10,000 resources fit in a small
/// heap.
pub fn trim<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

async fn reconcile_model<S: SiteWise>(
    obj: Arc<SiteWiseAssetModel>,
    app: Arc<App<S>>,
) -> Result<Action> {
    let namespace = obj.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<SiteWiseAssetModel> = Api::namespaced(app.client.clone(), &namespace);
    let status = StatusWriter::for_resource(api.clone(), obj.as_ref());
    let events = Events::for_resource(app.recorder.clone(), obj.as_ref());
    let reference = obj.spec.connection_ref.as_ref().map(|c| c.name.as_str());
    let work = || models::reconcile(obj.clone(), &app.ctx, &api, &status, &events);
    let routed = route::run(
        app.routing.as_ref(),
        &api,
        crate::crd::MODEL_FINALIZER,
        &obj,
        reference,
        &status,
        &events,
        work,
    )
    .await;
    match routed {
        route::Routed::Ran(result) => result,
        route::Routed::Refused(result) | route::Routed::Released(result) => {
            models::settle(&obj, &app.ctx, &status, &events, result).await
        }
    }
}

fn log_outcome<K: kube::Resource, E: std::fmt::Display>(
    outcome: std::result::Result<
        (kube::runtime::reflector::ObjectRef<K>, Action),
        controller::Error<E, watcher::Error>,
    >,
) {
    match outcome {
        Ok((obj, _)) => tracing::debug!(name = %obj.name, "reconciled"),
        Err(controller::Error::ReconcilerFailed(err, obj)) => {
            tracing::debug!(name = %obj.name, error = %err, "reconcile will be retried")
        }
        // A requeue scheduled before the object went away: nothing is wrong.
        Err(controller::Error::ObjectNotFound(obj)) => {
            tracing::debug!(name = %obj.name, "gone before its requeue")
        }
        Err(err) => tracing::warn!(error = %err, "controller error"),
    }
}

/// Whether a watch cache has had its first list.
fn ready_now<K: kube::Resource + Clone>(store: &kube::runtime::reflector::Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    futures::FutureExt::now_or_never(store.wait_until_ready()).is_some()
}

/// Runs a controller that stops gracefully on shutdown (running reconciles finish), except
/// when shutdown comes before its cache's first list: then nothing runs yet, and kube-runtime
/// would wait for a list it no longer reads, so it is dropped at once.
async fn stop_gracefully(
    controller: impl std::future::Future<Output = ()>,
    cache_ready: impl Fn() -> bool,
    shutdown: crate::shutdown::Shutdown,
) {
    let unready_at_shutdown = async {
        shutdown.requested().await;
        if cache_ready() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = controller => {}
        () = unready_at_shutdown => tracing::debug!("stopped before the first list"),
    }
}

/// Where the controller looks and how hard it works.
pub struct RunOptions {
    pub namespace: Option<String>,
    pub concurrency: u16,
    pub instance: Option<String>,
    /// Stops the controller once running reconciles have finished.
    pub shutdown: crate::shutdown::Shutdown,
    /// The clients of the operator's own connection and of every `SiteWiseConnection`;
    /// `None` sends every call through the context's own client (tests).
    pub connections: Option<Arc<crate::connections::Registry>>,
    /// Watch `SiteWiseConnection`s and namespaces (several accounts and Regions); off, every
    /// resource uses the operator's own connection.
    pub watch_connections: bool,
}

/// Runs the controller until shutdown is requested. `ready` turns true once the CRD is confirmed and
/// the watch starts.
pub async fn run<S: SiteWise>(
    client: Client,
    ctx: Context<S>,
    options: RunOptions,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let api: Api<SiteWiseAsset> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list SiteWiseAssets ({e}); is the CRD installed (kubectl apply -f crds/) and \
             does the operator's ServiceAccount have the ClusterRole from deploy/?"
        );
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "sitewise-operator".into(),
            instance: options.instance,
        },
    );
    // The cache keeps what the controller reads, not what it never does: managedFields and
    // kubectl's last-applied copy of the spec are dropped before objects reach the store
    // (kube-rs's stream control: `watcher` + `modify` + `reflect`, then `for_stream`). The
    // initial state arrives as a stream of watch events (streaming lists, on by default since
    // Kubernetes 1.32), not as one list response of every object held in memory at once.
    let (reader, writer) = kube::runtime::reflector::store();
    let objects = watcher(api, watcher::Config::default().streaming_lists())
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .applied_objects();
    // Resources a sweep found not as declared are reconciled through the same queue.
    let (swept_tx, swept_rx) = futures::channel::mpsc::unbounded();
    let controller = Controller::for_stream(objects, reader)
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .reconcile_on(swept_rx)
        .graceful_shutdown_on(options.shutdown.clone().requested());
    let model_api: Api<SiteWiseAssetModel> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Helm installs CRDs only on first install: after an upgrade from a release without the
    // model CRD, assets are still served, and the log says what to apply.
    let models_served = match model_api.list(&ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "SiteWiseAssetModels are not served (kubectl apply -f crds/ installs their CRD); managing assets only");
            false
        }
    };
    let (model_reader, model_writer) = kube::runtime::reflector::store();
    let model_objects = watcher(model_api, watcher::Config::default().streaming_lists())
        .default_backoff()
        .modify(trim::<SiteWiseAssetModel>)
        .reflect(model_writer)
        .applied_objects();
    let model_controller = Controller::for_stream(model_objects, model_reader)
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .graceful_shutdown_on(options.shutdown.clone().requested());
    let caches = claim::Caches {
        assets: controller.store(),
        models: model_controller.store(),
    };
    let (asset_store, model_store) = (controller.store(), model_controller.store());
    let mut ctx = ctx.with_resources(Arc::new(caches));
    ctx.namespace = options.namespace.clone();
    let (routing, connections) = match options.connections.clone() {
        Some(registry) if options.watch_connections => {
            let (caches, running) = route::start(
                client.clone(),
                registry.clone(),
                recorder.clone(),
                options.shutdown.clone(),
            )
            .await;
            let routing = route::Routing {
                registry,
                caches: Some(caches),
            };
            (Some(routing), futures::future::Either::Left(running))
        }
        Some(registry) => {
            let routing = route::Routing {
                registry,
                caches: None,
            };
            (
                Some(routing),
                futures::future::Either::Right(futures::future::ready(())),
            )
        }
        None => (
            None,
            futures::future::Either::Right(futures::future::ready(())),
        ),
    };
    let app = Arc::new(App {
        ctx,
        client,
        recorder,
        routing,
    });
    ready.store(true, Ordering::Relaxed);
    tracing::info!(namespace = ?options.namespace, concurrency = options.concurrency, "controller started");
    // Boxed: one more future nested in `run`'s would exceed the compiler's layout depth.
    let sweeps = Box::pin(sweep::run(
        app.clone(),
        controller.store(),
        swept_tx,
        options.shutdown.clone(),
    ));
    let assets = controller
        .run(reconcile, error_policy, app.clone())
        .for_each(|outcome| async move { log_outcome(outcome) });
    let models = async {
        if models_served {
            model_controller
                .run(reconcile_model, error_policy, app)
                .for_each(|outcome| async move { log_outcome(outcome) })
                .await
        }
    };
    let assets = async {
        stop_gracefully(
            assets,
            move || ready_now(&asset_store),
            options.shutdown.clone(),
        )
        .await;
        tracing::debug!("asset controller stopped");
    };
    let models = async {
        stop_gracefully(
            models,
            move || ready_now(&model_store),
            options.shutdown.clone(),
        )
        .await;
        tracing::debug!("model controller stopped");
    };
    let connections = async {
        connections.await;
        tracing::debug!("connection controller and namespace watch stopped");
    };
    let sweeps = async {
        sweeps.await;
        tracing::debug!("sweeps stopped");
    };
    tokio::join!(assets, models, connections, sweeps);
    tracing::info!("controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
