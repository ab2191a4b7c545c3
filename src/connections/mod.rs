//! Several AWS accounts and Regions from one operator. Each `SiteWiseConnection` gets its own
//! SiteWise client (its Region, the role it assumes, its quotas: its own rate limiter and
//! throttle accounting, its own metrics label); [`select`] decides which one a resource uses;
//! a reconcile runs inside the scope of that one client ([`scoped`]), and [`Scoped`] sends every
//! SiteWise call of the reconcile through it. A call made outside any scope is refused, so
//! nothing is ever sent to an account by default.

pub mod check;
pub mod controller;
pub mod select;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::crd::SiteWiseConnection;
use crate::metrics::{Instrumented, Metrics};
use crate::sitewise::aws::{AwsSiteWise, SdkSettings};
use crate::sitewise::rate_limit::RateLimited;
use crate::sitewise::{Decorate, ErrorKind, Operation, SiteWiseError, SiteWiseResult};
use check::{CheckError, Identity};
use select::Choice;

/// The SiteWise client of one connection: counted, then rate limited at its quotas.
pub type ConnClient = RateLimited<Instrumented<AwsSiteWise>>;

tokio::task_local! {
    static CURRENT: Arc<ConnClient>;
}

/// Runs `work` with every SiteWise call of [`Scoped`] going to `client`.
pub async fn scoped<F: Future>(client: Arc<ConnClient>, work: F) -> F::Output {
    CURRENT.scope(client, work).await
}

/// The [`crate::sitewise::SiteWise`] of the controller: each call goes to the connection of the
/// reconcile it is made from, and is refused outside one.
pub struct Scoped;

impl Decorate for Scoped {
    type Inner = ConnClient;

    fn inner(
        &self,
        operation: Operation,
    ) -> SiteWiseResult<impl std::ops::Deref<Target = ConnClient> + Send + '_> {
        CURRENT.try_with(Arc::clone).map_err(|_| {
            SiteWiseError::new(
                operation,
                ErrorKind::Permanent,
                "NoConnection",
                "no SiteWise connection was selected for this call; it was not sent",
            )
        })
    }

    async fn around<T: Send>(
        &self,
        _operation: Operation,
        call: impl Future<Output = SiteWiseResult<T>> + Send,
    ) -> SiteWiseResult<T> {
        call.await
    }
}

/// What a reconcile runs through: a connection's client, and its share of the reconcile
/// slots (`None` for the operator's own connection, which has all of them).
#[derive(Clone)]
pub struct Lane {
    pub client: Arc<ConnClient>,
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

/// How long a connection's check (AssumeRole and GetCallerIdentity) may take.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

struct Built {
    fingerprint: String,
    reach: check::Reach,
}

/// The clients of every connection, built when a connection is checked and rebuilt when its
/// spec changes how it is reached.
pub struct Registry {
    operator: Arc<ConnClient>,
    template: SdkSettings,
    sts_endpoint: Option<String>,
    metrics: Arc<Metrics>,
    named: Mutex<HashMap<String, Arc<Built>>>,
}

impl Registry {
    /// `operator` serves resources that name no connection; `template` carries the retry
    /// budget, timeouts, fence and app name every connection's client gets.
    pub fn new(
        operator: Arc<ConnClient>,
        template: SdkSettings,
        sts_endpoint: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            operator,
            template,
            sts_endpoint,
            metrics,
            named: Mutex::new(HashMap::new()),
        }
    }

    /// The client (and slots) of `choice`, once its connection has been checked.
    pub fn lane(&self, choice: &Choice) -> Option<Lane> {
        match choice {
            Choice::Operator => Some(Lane {
                client: self.operator.clone(),
                slots: None,
            }),
            Choice::Named(name) => self
                .named
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .map(|b| Lane {
                    client: b.reach.sitewise.clone(),
                    slots: b.reach.slots.clone(),
                }),
        }
    }

    /// Builds (or keeps) the connection's clients and asks STS who they act as, within
    /// [`CHECK_TIMEOUT`] (an STS that does not answer must not hold a reconcile, or a shutdown).
    pub async fn check(&self, connection: &SiteWiseConnection) -> Result<Identity, CheckError> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.check_now(connection)).await {
            Ok(result) => result,
            Err(_) => Err(CheckError {
                reason: "IdentityCheckFailed",
                message: format!(
                    "STS did not answer within {} s; is its endpoint reachable from the operator?",
                    CHECK_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    async fn check_now(&self, connection: &SiteWiseConnection) -> Result<Identity, CheckError> {
        let name = connection.metadata.name.clone().unwrap_or_default();
        let fingerprint = check::fingerprint(&connection.spec);
        let existing = self
            .named
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .filter(|b| b.fingerprint == fingerprint)
            .cloned();
        let built = match existing {
            Some(built) => built,
            None => {
                let reach = check::reach(
                    &name,
                    &connection.spec,
                    &self.template,
                    self.sts_endpoint.as_deref(),
                    &self.metrics,
                )
                .await;
                let reach = match reach {
                    Ok(reach) => reach,
                    Err(e) => {
                        self.forget(&name);
                        return Err(e);
                    }
                };
                let built = Arc::new(Built { fingerprint, reach });
                self.named
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.clone(), built.clone());
                built
            }
        };
        check::identity(&built.reach.sts).await
    }

    /// Drops a connection's clients (it was deleted or no longer works).
    pub fn forget(&self, name: &str) {
        self.named
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitewise::SiteWise;
    use crate::sitewise::aws::emulator_client;
    use crate::sitewise::rate_limit::Rates;

    fn client(metrics: &Arc<Metrics>) -> Arc<ConnClient> {
        // Nothing listens on port 9: a call that reaches this client fails to connect.
        let aws = AwsSiteWise::new(emulator_client("http://127.0.0.1:9"));
        Arc::new(RateLimited::new(
            Instrumented::for_connection(aws, metrics.clone(), "eu"),
            Rates {
                asset_operations: None,
                describe_asset: None,
            },
        ))
    }

    #[tokio::test]
    async fn a_call_outside_a_connection_is_refused_and_one_inside_goes_to_it() {
        let metrics = Arc::new(Metrics::default());
        let refused = Scoped.describe_asset("a").await.expect_err("no scope");
        assert_eq!(refused.code, "NoConnection");
        assert_eq!(refused.kind, ErrorKind::Permanent);
        assert!(
            !metrics.encode().contains("DescribeAsset"),
            "nothing was sent"
        );
        let sent = scoped(client(&metrics), Scoped.describe_asset("a"))
            .await
            .expect_err("nothing listens");
        assert_ne!(sent.code, "NoConnection");
        assert!(
            metrics
                .encode()
                .contains(r#"connection="eu",operation="DescribeAsset""#),
            "counted under the connection"
        );
    }
}
