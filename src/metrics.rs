//! Prometheus metrics (prometheus-client): reconcile outcomes, SiteWise calls by operation and
//! outcome, completed deletions and their duration. [`Instrumented`] wraps any [`SiteWise`] to
//! count its calls, so the count covers exactly what reached the SiteWise client.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::future::Future;

use crate::sitewise::{Decorate, Operation, SiteWise, SiteWiseResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// The `SiteWiseConnection` (account and Region) called, `(operator)` for the operator's own.
    connection: String,
    operation: String,
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    swept: Family<OutcomeLabels, Counter>,
    deletions: Counter,
    orphaned: Counter,
    deletion_seconds: Histogram,
    leader: Gauge,
    heap_allocated: Gauge,
    heap_resident: Gauge,
}

/// What the global allocator reports about the heap, read at every scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the program holds in live allocations.
    pub allocated: u64,
    /// Bytes of the allocator's pages in memory (live allocations, free space the allocator
    /// keeps, and its own bookkeeping).
    pub resident: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sitewise_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let calls = Family::<CallLabels, Counter>::default();
        let swept = Family::<OutcomeLabels, Counter>::default();
        let deletions = Counter::default();
        let orphaned = Counter::default();
        let deletion_seconds = Histogram::new(exponential_buckets(0.5, 2.0, 14));
        let leader = Gauge::default();
        let heap_allocated = Gauge::default();
        let heap_resident = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles by outcome (ok, pending, throttled, conflict, transient, terminal)",
            reconciles.clone(),
        );
        registry.register(
            "sitewise_calls",
            "SiteWise API calls by connection, operation and outcome (ok or the error code)",
            calls.clone(),
        );
        registry.register(
            "swept_resources",
            "Resources checked by sweeps, by outcome: current (as declared), failed (the listing failed), or why one was sent to reconcile (fields, state, link, parent changed, not listed, ...)",
            swept.clone(),
        );
        registry.register(
            "deletions",
            "Assets deleted from SiteWise through a finalizer",
            deletions.clone(),
        );
        registry.register(
            "orphaned",
            "Resources released without deleting their asset (force-orphan annotation)",
            orphaned.clone(),
        );
        registry.register(
            "deletion_duration_seconds",
            "Time from the start of a deletion until SiteWise reported the asset gone",
            deletion_seconds.clone(),
        );
        registry.register(
            "leader",
            "Whether this replica runs the controller: it holds the Lease, or runs without leader election (standby: 0)",
            leader.clone(),
        );
        registry.register(
            "heap_allocated_bytes",
            "Bytes in live heap allocations, as the allocator (jemalloc) counts them",
            heap_allocated.clone(),
        );
        registry.register(
            "heap_resident_bytes",
            "Bytes of heap pages in memory: live allocations plus what the allocator keeps free or uses itself",
            heap_resident.clone(),
        );
        Self {
            registry,
            reconciles,
            calls,
            swept,
            deletions,
            orphaned,
            deletion_seconds,
            leader,
            heap_allocated,
            heap_resident,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, outcome: &str) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn sitewise_call(&self, connection: &str, operation: Operation, outcome: &str) {
        self.calls
            .get_or_create(&CallLabels {
                connection: connection.to_string(),
                operation: operation.as_str().to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn swept(&self, outcome: &str, resources: usize) {
        self.swept
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc_by(u64::try_from(resources).unwrap_or(u64::MAX));
    }

    pub fn deletion_finished(&self, seconds: f64) {
        self.deletions.inc();
        self.deletion_seconds.observe(seconds);
    }

    pub fn orphaned(&self) {
        self.orphaned.inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn set_heap(&self, stats: HeapStats) {
        let clamp = |bytes: u64| i64::try_from(bytes).unwrap_or(i64::MAX);
        self.heap_allocated.set(clamp(stats.allocated));
        self.heap_resident.set(clamp(stats.resident));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }
}

/// A [`SiteWise`] that counts every call of the one it wraps.
pub struct Instrumented<S> {
    inner: S,
    metrics: Arc<Metrics>,
    connection: String,
}

impl<S> Instrumented<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self::for_connection(inner, metrics, crate::crd::OPERATOR_CONNECTION)
    }

    /// Counts the calls of one `SiteWiseConnection` under its name.
    pub fn for_connection(inner: S, metrics: Arc<Metrics>, connection: &str) -> Self {
        Self {
            inner,
            metrics,
            connection: connection.to_string(),
        }
    }

    fn count<T>(&self, operation: Operation, result: SiteWiseResult<T>) -> SiteWiseResult<T> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        self.metrics
            .sitewise_call(&self.connection, operation, outcome);
        result
    }
}

impl<S: SiteWise> Decorate for Instrumented<S> {
    type Inner = S;

    fn inner(&self, _: Operation) -> SiteWiseResult<impl std::ops::Deref<Target = S> + Send + '_> {
        Ok(&self.inner)
    }

    async fn around<T: Send>(
        &self,
        operation: Operation,
        call: impl Future<Output = SiteWiseResult<T>> + Send,
    ) -> SiteWiseResult<T> {
        let result = call.await;
        self.count(operation, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitewise::fake::FakeSiteWise;

    #[tokio::test]
    async fn calls_are_counted_by_connection_operation_and_outcome() {
        let fake = FakeSiteWise::new();
        fake.add_asset("a1", None, &[]);
        let metrics = Arc::new(Metrics::default());
        let sw = Instrumented::new(fake.clone(), metrics.clone());
        let eu = Instrumented::for_connection(fake, metrics.clone(), "eu");
        assert!(sw.describe_asset("a1").await.is_ok());
        assert!(sw.describe_asset("missing").await.is_err());
        assert!(sw.describe_asset("a1").await.is_ok());
        assert!(eu.describe_asset("a1").await.is_ok());
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"sitewise_operator_sitewise_calls_total{connection="(operator)",operation="DescribeAsset",outcome="ok"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"sitewise_operator_sitewise_calls_total{connection="(operator)",operation="DescribeAsset",outcome="ResourceNotFoundException"} 1"#
        ));
        assert!(text.contains(
            r#"sitewise_operator_sitewise_calls_total{connection="eu",operation="DescribeAsset",outcome="ok"} 1"#
        ));
    }
}
