//! Leader election on a `coordination.k8s.io/v1` Lease, with fencing.
//!
//! Only the holder of the Lease runs the controller. The holder renews every third of the
//! lease duration; a [`Fence`] says whether this replica still holds a lease that nobody else
//! can have taken (last successful renewal plus the lease duration, minus a safety margin for
//! clock skew and in-flight requests). The cleanup flow checks the fence right before every
//! SiteWise mutation, and a replica whose fence closes exits so that its pod restarts as a
//! candidate. Another replica can only take the Lease once the holder's renewal has expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

/// Whether this replica may act. Always open when leader election is off.
#[derive(Clone, Debug)]
pub struct Fence {
    /// Milliseconds since `origin` until which the lease is ours; `u64::MAX` when unfenced.
    open_until_ms: Arc<AtomicU64>,
    origin: Instant,
}

impl Default for Fence {
    fn default() -> Self {
        Self::unfenced()
    }
}

impl Fence {
    /// A fence that is always open (a single replica without leader election).
    pub fn unfenced() -> Self {
        Self {
            open_until_ms: Arc::new(AtomicU64::new(u64::MAX)),
            origin: Instant::now(),
        }
    }

    /// A fence that stays closed until a lease is acquired.
    pub fn closed() -> Self {
        Self {
            open_until_ms: Arc::new(AtomicU64::new(0)),
            origin: Instant::now(),
        }
    }

    fn open_until(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.origin).as_millis();
        self.open_until_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Closes the fence for good: nothing may act after this.
    pub fn close(&self) {
        self.open_until_ms.store(0, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::SeqCst);
        until == u64::MAX || (self.origin.elapsed().as_millis() as u64) < until
    }
}

#[derive(Clone, Debug)]
pub struct ElectionConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
}

impl ElectionConfig {
    fn renew_every(&self) -> Duration {
        self.lease_duration / 3
    }

    /// How often a standby tries to take the Lease: often enough that a Lease released on
    /// shutdown is taken within about a second (one GET per second per standby).
    fn retry_every(&self) -> Duration {
        self.renew_every().min(Duration::from_secs(1))
    }

    /// The fence closes this long before the lease could be taken by someone else.
    fn safety_margin(&self) -> Duration {
        self.lease_duration / 5
    }
}

/// What happened to an attempt to take or keep the Lease.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldByOther(String),
}

/// Holds the Lease while the process runs.
pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    fence: Fence,
}

impl Elector {
    pub fn new(client: kube::Client, config: ElectionConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            fence: Fence::closed(),
        }
    }

    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) -> anyhow::Result<()> {
        let mut announced = false;
        loop {
            let started = Instant::now();
            match self.try_hold().await {
                Ok(Attempt::Held) => {
                    self.extend_fence(started);
                    tracing::info!(identity = %self.config.identity, lease = %self.config.lease_name, "acquired leadership");
                    return Ok(());
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    if !announced {
                        tracing::info!(%holder, "waiting for leadership");
                        announced = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.config.retry_every()).await;
        }
    }

    /// Renews the Lease until it is lost; returns when this replica must stop acting.
    pub async fn keep(&self) -> anyhow::Error {
        loop {
            tokio::time::sleep(self.config.renew_every()).await;
            let started = Instant::now();
            match self.try_hold().await {
                Ok(Attempt::Held) => self.extend_fence(started),
                Ok(Attempt::HeldByOther(holder)) => {
                    return anyhow::anyhow!("leadership lost to {holder}");
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
            }
            if !self.fence.is_open() {
                return anyhow::anyhow!("the lease could not be renewed in time");
            }
        }
    }

    /// Gives the Lease up on shutdown, so that a standby takes over at its next attempt rather
    /// than after the lease duration. The fence closes first: nothing this replica still has in
    /// flight may act once another replica can hold the Lease. Best effort: when it fails, the
    /// Lease simply expires.
    pub async fn release(&self) {
        self.fence.close();
        let started = Instant::now();
        match self.release_lease().await {
            Ok(true) => tracing::info!(
                lease = %self.config.lease_name,
                took_ms = started.elapsed().as_millis() as u64,
                "released leadership"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release the lease; it expires by itself")
            }
        }
    }

    async fn release_lease(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        // What client-go's ReleaseOnCancel writes: no holder, and a lease that has run out.
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The lease counts from when the renewal request was sent.
    fn extend_fence(&self, sent: Instant) {
        self.fence
            .open_until(sent + self.config.lease_duration - self.config.safety_margin());
    }

    async fn try_hold(&self) -> Result<Attempt, kube::Error> {
        let now = jiff::Timestamp::now();
        let duration_secs =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(15);
        let me = &self.config.identity;
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::HeldByOther("?".into())),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(secs)) => {
                now > renewed
                    .checked_add(jiff::SignedDuration::from_secs(i64::from(secs)))
                    .unwrap_or(*renewed)
            }
            _ => true,
        };
        if holder != *me && !holder.is_empty() && !expired {
            return Ok(Attempt::HeldByOther(holder));
        }
        if holder != *me {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(MicroTime(now));
        // `replace` sends the resourceVersion read above: a concurrent writer makes it fail.
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::HeldByOther(holder)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfenced_replica_may_always_act() {
        assert!(Fence::unfenced().is_open());
        assert!(Fence::default().is_open());
    }

    #[test]
    fn the_fence_closes_when_the_lease_runs_out() {
        let fence = Fence::closed();
        assert!(!fence.is_open());
        fence.open_until(Instant::now() + Duration::from_millis(200));
        assert!(fence.is_open());
        std::thread::sleep(Duration::from_millis(250));
        assert!(!fence.is_open());
    }

    #[test]
    fn renewals_and_margin_fit_in_the_lease() {
        let config = ElectionConfig {
            namespace: "ns".into(),
            lease_name: "l".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
        };
        assert_eq!(config.renew_every(), Duration::from_secs(5));
        assert_eq!(config.safety_margin(), Duration::from_secs(3));
        // Two renewals can fail before the fence closes.
        assert!(config.renew_every() * 2 < config.lease_duration - config.safety_margin());
        assert_eq!(config.retry_every(), Duration::from_secs(1));
    }

    #[test]
    fn a_closed_fence_stays_closed() {
        let fence = Fence::closed();
        fence.open_until(Instant::now() + Duration::from_secs(60));
        fence.close();
        assert!(!fence.is_open());
    }
}
