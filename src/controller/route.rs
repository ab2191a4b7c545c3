//! Which connection a reconcile runs through. Before any SiteWise call, the resource's
//! connection is decided ([`crate::connections::select`]) from its reference, its namespace's
//! default annotation and the connection it was first reached through (recorded in
//! `status.connection` before the first call); the reconcile then runs in the scope of that
//! connection's client. A refusal is reported as `Ready=False` and polled, and nothing is sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::status::{Events, StatusWriter, Tracked, not_ready};
use crate::backoff::jittered;
use crate::connections::select::{self, Choice, Refusal};
use crate::connections::{Lane, Registry, scoped};
use crate::crd::{NAMESPACE_CONNECTION_ANNOTATION, SiteWiseConnection};
use crate::error::{Error, Result};

/// How often a refused resource looks again (a connection created or fixed meanwhile).
const REFUSED_POLL: Duration = Duration::from_secs(15);

/// How soon a resource whose connection has no free slot looks again.
const SLOT_POLL: Duration = Duration::from_millis(500);

/// What the router needs: the clients, the connections and the namespaces (default
/// annotation, labels for namespace selectors).
pub struct Routing {
    pub registry: Arc<Registry>,
    /// `None` when connections are disabled: every resource uses the operator's own.
    pub caches: Option<Caches>,
}

/// The connections and the namespaces' metadata, as watched.
pub struct Caches {
    pub connections: Store<SiteWiseConnection>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

/// How a routed reconcile ended.
pub enum Routed<T> {
    /// The work ran, through the resource's connection.
    Ran(T),
    /// The connection was refused; reported, nothing sent.
    Refused(Result<Action>),
    /// A deleting resource that never reached SiteWise had its finalizer removed.
    Released(Result<Action>),
}

impl Routing {
    /// Whether both caches have been filled once.
    async fn synced(&self) -> bool {
        let Some(caches) = &self.caches else {
            return true;
        };
        let wait = async {
            caches.connections.wait_until_ready().await.is_ok()
                && caches.namespaces.wait_until_ready().await.is_ok()
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or(false)
    }

    fn namespace(&self, name: &str) -> (Option<String>, BTreeMap<String, String>) {
        let found = self
            .caches
            .as_ref()
            .and_then(|c| c.namespaces.get(&ObjectRef::new(name)));
        match found {
            Some(ns) => (
                ns.annotations()
                    .get(NAMESPACE_CONNECTION_ANNOTATION)
                    .cloned(),
                ns.labels().clone(),
            ),
            None => (None, BTreeMap::new()),
        }
    }

    /// The connection of a resource of `namespace` that names `reference` and was first
    /// reached through `pinned`, and its client.
    pub fn decide(
        &self,
        namespace: &str,
        reference: Option<&str>,
        pinned: Option<&str>,
    ) -> std::result::Result<(Choice, Lane), Refusal> {
        let (default, labels) = self.namespace(namespace);
        let wanted = select::wanted(reference, default.as_deref());
        let connections = self
            .caches
            .as_ref()
            .map(|c| c.connections.state())
            .unwrap_or_default();
        let choice = select::decide(wanted, pinned, &connections, namespace, &labels)?;
        match self.registry.lane(&choice) {
            Some(lane) => Ok((choice, lane)),
            None => Err(Refusal::NotReady {
                name: choice.pin().to_string(),
                reason: "not checked yet".into(),
            }),
        }
    }
}

/// Runs `work` through the client of the connection `pin` names (as `status.connection`
/// records it); without routing, as is. `None` when that connection has no client (not
/// checked yet, or gone).
pub async fn in_connection<F: Future>(
    routing: Option<&Routing>,
    pin: &str,
    work: F,
) -> Option<F::Output> {
    let Some(routing) = routing else {
        return Some(work.await);
    };
    let lane = routing.registry.lane(&Choice::from_pin(pin))?;
    Some(scoped(lane.client, work).await)
}

/// Runs `work` through the resource's connection, recording it first; without routing
/// (tests, or a cluster without the connection CRD) it runs as is. A resource that was never
/// reached through any connection and is being deleted is released at once: nothing of it
/// can exist in SiteWise, since the connection is recorded before the first call.
#[allow(clippy::too_many_arguments)]
pub async fn run<K, T, Fut>(
    routing: Option<&Routing>,
    api: &Api<K>,
    finalizer_name: &str,
    obj: &Arc<K>,
    reference: Option<&str>,
    status: &StatusWriter<K>,
    events: &Events,
    work: impl FnOnce() -> Fut,
) -> Routed<T>
where
    K: Tracked + Resource<DynamicType = ()> + serde::Serialize + 'static,
    Fut: Future<Output = T>,
{
    let Some(routing) = routing else {
        return Routed::Ran(Box::pin(work()).await);
    };
    // A namespace default not yet seen would send the resource to the operator's own account.
    if !routing.synced().await {
        let refusal = "The caches of connections and namespaces are not filled yet (can the operator list and watch namespaces and sitewiseconnections?); nothing is sent until they are";
        let reported = not_ready(
            status,
            events,
            "ConnectionsNotSynced",
            refusal.into(),
            false,
        )
        .await;
        return Routed::Refused(reported.map(|()| Action::requeue(jittered(REFUSED_POLL))));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut snapshot = status.snapshot();
    let pinned = K::pin(&mut snapshot).and_then(|p| p.clone());
    let deleting = obj.meta().deletion_timestamp.is_some();
    let has_finalizer = obj
        .meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == finalizer_name);
    // The first pass only adds the finalizer (no SiteWise call; outside any connection, a call
    // would be refused). Recording the connection after it keeps the two writes in order, so
    // the next pass never sees a copy without the finalizer.
    if !has_finalizer && !deleting {
        return Routed::Ran(Box::pin(work()).await);
    }
    match routing.decide(&namespace, reference, pinned.as_deref()) {
        Ok((choice, lane)) => {
            // The connection's share of the slots; without one free, look again soon
            // instead of waiting for this account's quota in a slot another account needs.
            let permit = match lane.slots.map(|s| s.try_acquire_owned()) {
                Some(Err(_)) => {
                    return Routed::Refused(Ok(Action::requeue(jittered(SLOT_POLL))));
                }
                Some(Ok(permit)) => Some(permit),
                None => None,
            };
            if pinned.is_none() {
                let pin = choice.pin().to_string();
                let written = status
                    .update(|s| {
                        if let Some(p) = K::pin(s) {
                            *p = Some(pin);
                        }
                    })
                    .await;
                if let Err(e) = written {
                    return Routed::Refused(Err(e));
                }
            }
            // Boxed: a reconcile's future is large, and nesting it in the scope's would put
            // two copies on a worker thread's stack.
            let ran = scoped(lane.client, Box::pin(work())).await;
            drop(permit);
            Routed::Ran(ran)
        }
        // Released by a person without touching SiteWise (the force-orphan annotation): the
        // cleanup's release makes no SiteWise call, so it needs no connection.
        Err(_) if deleting && crate::crd::force_orphan_reason(obj.meta()).is_some() => {
            Routed::Ran(Box::pin(work()).await)
        }
        Err(_) if deleting && pinned.is_none() => {
            Routed::Released(release_unreached(api, finalizer_name, obj, events).await)
        }
        Err(refusal) => {
            tracing::info!(reason = refusal.reason(), message = %refusal.message(), "connection refused; nothing sent");
            let reported =
                not_ready(status, events, refusal.reason(), refusal.message(), true).await;
            Routed::Refused(reported.map(|()| Action::requeue(jittered(REFUSED_POLL))))
        }
    }
}

/// Starts what routing needs: the connection controller (which checks each connection and
/// builds its clients) and a cache of the namespaces' metadata. Returns the routing and the
/// future that runs both until `shutdown`.
pub async fn start(
    client: kube::Client,
    registry: Arc<Registry>,
    recorder: kube::runtime::events::Recorder,
    shutdown: crate::shutdown::Shutdown,
) -> (Caches, impl Future<Output = ()>) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    let api: Api<SiteWiseConnection> = Api::all(client.clone());
    if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
        tracing::warn!(error = %e, "SiteWiseConnections are not served (kubectl apply -f crds/ installs their CRD); resources that name one are refused");
    }
    let (connections, checking) = crate::connections::controller::run(
        client.clone(),
        registry.clone(),
        recorder,
        shutdown.clone().requested(),
    );
    let (namespaces, writer) = kube::runtime::reflector::store();
    let namespace_api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let watching = watcher(namespace_api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .take_until(shutdown.requested())
        .for_each(|event| async move {
            if let Err(e) = event {
                tracing::debug!(error = %e, "namespace watch");
            }
        });
    let running = async move {
        let checking = async {
            checking.await;
            tracing::debug!("connection controller stopped");
        };
        let watching = async {
            watching.await;
            tracing::debug!("namespace watch stopped");
        };
        tokio::join!(checking, watching);
    };
    (
        Caches {
            connections,
            namespaces,
        },
        running,
    )
}

/// Removes the finalizer of a resource that never reached SiteWise.
async fn release_unreached<K>(
    api: &Api<K>,
    finalizer_name: &str,
    obj: &Arc<K>,
    events: &Events,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    finalizer(api, finalizer_name, obj.clone(), |event| async move {
        if let Finalizer::Cleanup(_) = event {
            events
                .normal(
                    "ReleasedUnreached",
                    "Released: this resource never reached SiteWise through a connection",
                )
                .await;
        }
        Ok::<_, Error>(Action::await_change())
    })
    .await
    .map_err(Error::from_finalizer)
}
