//! The `SiteWiseConnection` controller: checks each connection (builds its clients, asks STS
//! who they act as) and reports it: `Ready=True` with the account and identity, or
//! `Ready=False` with a reason a person can act on (`UnknownRegion`, `AssumeRoleFailed`,
//! `IdentityCheckFailed`). Checked again every few minutes, sooner while failing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use super::Registry;
use crate::backoff::jittered;
use crate::controller::status::{self, Events, StatusWriter};
use crate::crd::SiteWiseConnection;
use crate::error::{Error, Result};

const RECHECK: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_secs(20);

struct Ctx {
    registry: Arc<Registry>,
    client: Client,
    recorder: Recorder,
}

async fn reconcile(obj: Arc<SiteWiseConnection>, ctx: Arc<Ctx>) -> Result<Action> {
    let api: Api<SiteWiseConnection> = Api::all(ctx.client.clone());
    let status = StatusWriter::for_resource(api, obj.as_ref());
    let events = Events::for_resource(ctx.recorder.clone(), obj.as_ref());
    if obj.metadata.deletion_timestamp.is_some() {
        ctx.registry.forget(&obj.name_any());
        return Ok(Action::await_change());
    }
    let generation = status.generation();
    let was_ready = obj.is_ready();
    match ctx.registry.check(&obj).await {
        Ok(identity) => {
            status
                .update(|s| {
                    s.account = Some(identity.account.clone());
                    s.identity = Some(identity.arn.clone());
                    s.observed_generation = generation;
                    status::set_condition(
                        &mut s.conditions,
                        status::READY,
                        true,
                        "Connected",
                        format!("Acting as {} in account {}", identity.arn, identity.account),
                        generation,
                    );
                })
                .await?;
            if !was_ready {
                events
                    .normal(
                        "Connected",
                        format!(
                            "Region {}, account {}, identity {}",
                            obj.spec.region, identity.account, identity.arn
                        ),
                    )
                    .await;
            }
            Ok(Action::requeue(jittered(RECHECK)))
        }
        Err(e) => {
            status.stage(|s| s.observed_generation = generation);
            status::not_ready(&status, &events, e.reason, e.message.clone(), true).await?;
            tracing::warn!(connection = %obj.name_any(), reason = e.reason, message = %e.message, "connection does not work");
            Ok(Action::requeue(jittered(RETRY)))
        }
    }
}

fn error_policy(_obj: Arc<SiteWiseConnection>, _err: &Error, _ctx: Arc<Ctx>) -> Action {
    Action::requeue(jittered(RETRY))
}

/// Runs the connection controller until `shutdown`; returns the cache of connections.
pub fn run(
    client: Client,
    registry: Arc<Registry>,
    recorder: Recorder,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> (
    kube::runtime::reflector::Store<SiteWiseConnection>,
    impl std::future::Future<Output = ()>,
) {
    let api: Api<SiteWiseConnection> = Api::all(client.clone());
    let (reader, writer) = kube::runtime::reflector::store();
    let objects = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(crate::controller::trim::<SiteWiseConnection>)
        .reflect(writer)
        .applied_objects();
    // Stopped at once, not gracefully: a check only reads, and a graceful stop requested before
    // the first list of connections arrives would wait for a store that no longer fills.
    let controller = Controller::for_stream(objects, reader);
    let store = controller.store();
    let ctx = Arc::new(Ctx {
        registry,
        client,
        recorder,
    });
    let running = controller
        .run(reconcile, error_policy, ctx)
        .take_until(shutdown)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "connection reconcile");
            }
        });
    (store, running)
}
