//! Report: the status writer (one JSON patch of the whole status subresource per change,
//! skipped when nothing changed), condition helpers and the event publisher. Both sinks have an
//! in-memory form so the reconcile logic is unit-tested without an API server.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::crd::{
    Condition, SiteWiseAsset, SiteWiseAssetModel, SiteWiseAssetModelStatus, SiteWiseAssetStatus,
    SiteWiseConnection, SiteWiseConnectionStatus,
};
use crate::error::Result;

/// A resource kind whose status the [`StatusWriter`] writes.
pub trait Tracked:
    Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync
{
    type Status: Clone + PartialEq + Default + serde::Serialize + Send;
    fn status_of(&self) -> Option<&Self::Status>;
    fn conditions(status: &mut Self::Status) -> &mut Vec<Condition>;
    /// Where the status records the connection the resource was first reached through.
    fn pin(_status: &mut Self::Status) -> Option<&mut Option<String>> {
        None
    }
    /// Sets the conditions derived from the others (kstatus), before every write.
    fn derive(status: &mut Self::Status);
}

impl Tracked for SiteWiseAsset {
    type Status = SiteWiseAssetStatus;
    fn status_of(&self) -> Option<&SiteWiseAssetStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &mut SiteWiseAssetStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
    fn pin(status: &mut SiteWiseAssetStatus) -> Option<&mut Option<String>> {
        Some(&mut status.connection)
    }
    fn derive(status: &mut SiteWiseAssetStatus) {
        crate::controller::health::derive(status)
    }
}

impl Tracked for SiteWiseAssetModel {
    type Status = SiteWiseAssetModelStatus;
    fn status_of(&self) -> Option<&SiteWiseAssetModelStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &mut SiteWiseAssetModelStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
    fn pin(status: &mut SiteWiseAssetModelStatus) -> Option<&mut Option<String>> {
        Some(&mut status.connection)
    }
    fn derive(s: &mut SiteWiseAssetModelStatus) {
        crate::controller::health::derive_conditions(
            &mut s.conditions,
            &mut s.observed_generation,
            "model",
        )
    }
}

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const TERMINAL: &str = "Terminal";
pub const DELETING: &str = "Deleting";

/// Sets condition `type_`, keeping its transition time when the status does not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    let message = message.into();
    let now = jiff::Timestamp::now().to_string();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: now,
            observed_generation: generation,
        }),
    }
}

pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

pub fn condition<'a>(status: &'a SiteWiseAssetStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

impl Tracked for SiteWiseConnection {
    type Status = SiteWiseConnectionStatus;
    fn status_of(&self) -> Option<&SiteWiseConnectionStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &mut SiteWiseConnectionStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
    fn derive(s: &mut SiteWiseConnectionStatus) {
        crate::controller::health::derive_conditions(
            &mut s.conditions,
            &mut s.observed_generation,
            "connection",
        )
    }
}

/// Sets `Ready=False` with `reason`; a Warning event is published when `warn` is set and the
/// reason is new, so a condition that holds for hours is announced once.
pub async fn not_ready<K: Tracked>(
    status: &StatusWriter<K>,
    events: &Events,
    reason: &str,
    message: String,
    warn: bool,
) -> Result<()> {
    let generation = status.generation();
    let mut snapshot = status.snapshot();
    let before = K::conditions(&mut snapshot)
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.reason.clone());
    status
        .update(|s| {
            set_condition(
                K::conditions(s),
                READY,
                false,
                reason,
                message.clone(),
                generation,
            );
        })
        .await?;
    if warn && before.as_deref() != Some(reason) {
        events.warning(reason, message).await;
    }
    Ok(())
}

/// Where status goes.
enum StatusSink<K: Tracked> {
    Kube {
        api: Box<Api<K>>,
        name: String,
    },
    /// Every written status, in order (unit tests).
    Memory(Mutex<Vec<K::Status>>),
}

/// Holds the latest status of one resource during a reconcile and writes it: at once
/// ([`StatusWriter::update`]) or later, with the next write ([`StatusWriter::stage`]), so a
/// deletion writes when its phase changes rather than before every call.
pub struct StatusWriter<K: Tracked = SiteWiseAsset> {
    sink: StatusSink<K>,
    generation: Option<i64>,
    current: Mutex<K::Status>,
    /// What the API server has (as far as this reconcile knows).
    written: Mutex<K::Status>,
}

impl<K: Tracked> StatusWriter<K> {
    pub fn for_resource(api: Api<K>, obj: &K) -> Self {
        Self {
            sink: StatusSink::Kube {
                api: Box::new(api),
                name: obj.name_any(),
            },
            generation: obj.meta().generation,
            current: Mutex::new(obj.status_of().cloned().unwrap_or_default()),
            written: Mutex::new(obj.status_of().cloned().unwrap_or_default()),
        }
    }

    pub fn in_memory(obj: &K) -> Self {
        Self {
            sink: StatusSink::Memory(Mutex::new(Vec::new())),
            generation: obj.meta().generation,
            current: Mutex::new(obj.status_of().cloned().unwrap_or_default()),
            written: Mutex::new(obj.status_of().cloned().unwrap_or_default()),
        }
    }

    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    pub fn snapshot(&self) -> K::Status {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Statuses written so far (in-memory sink only).
    pub fn written(&self) -> Vec<K::Status> {
        match &self.sink {
            StatusSink::Memory(w) => w.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            StatusSink::Kube { .. } => Vec::new(),
        }
    }

    /// The status as last written (or as read at the start of the reconcile).
    pub fn written_snapshot(&self) -> K::Status {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `change` without writing: it goes out with the next write.
    pub fn stage(&self, change: impl FnOnce(&mut K::Status)) {
        change(&mut self.current.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Applies `change` and writes the status if it differs from what was written.
    pub async fn update(&self, change: impl FnOnce(&mut K::Status)) -> Result<()> {
        self.stage(change);
        self.flush().await
    }

    /// Writes the staged changes, if any.
    pub async fn flush(&self) -> Result<()> {
        let next = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            K::derive(&mut current);
            if *current == *self.written.lock().unwrap_or_else(|e| e.into_inner()) {
                return Ok(());
            }
            current.clone()
        };
        self.write(next.clone()).await?;
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    async fn write(&self, next: K::Status) -> Result<()> {
        match &self.sink {
            StatusSink::Memory(written) => {
                written.lock().unwrap_or_else(|e| e.into_inner()).push(next);
                Ok(())
            }
            StatusSink::Kube { api, name } => {
                // `add` replaces the whole status, so fields that became empty are removed too.
                let patch: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "add", "path": "/status", "value": next}
                ]))
                .map_err(|e| crate::error::Error::Kube(kube::Error::SerdeError(e)))?;
                match api
                    .patch_status(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                    .await
                {
                    Ok(_) => Ok(()),
                    // The object is already gone (its finalizer was released): nothing to report on.
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

/// An event as recorded by the in-memory sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

enum EventSink {
    Kube {
        recorder: Box<Recorder>,
        reference: Box<ObjectReference>,
    },
    Memory(Mutex<Vec<RecordedEvent>>),
}

/// Publishes Kubernetes events about one resource. Failures to publish are logged, never fatal.
pub struct Events {
    sink: EventSink,
}

impl Events {
    pub fn for_resource<K: Resource<DynamicType = ()>>(recorder: Recorder, obj: &K) -> Self {
        Self {
            sink: EventSink::Kube {
                recorder: Box::new(recorder),
                reference: Box::new(obj.object_ref(&())),
            },
        }
    }

    pub fn in_memory() -> Self {
        Self {
            sink: EventSink::Memory(Mutex::new(Vec::new())),
        }
    }

    pub fn recorded(&self) -> Vec<RecordedEvent> {
        match &self.sink {
            EventSink::Memory(e) => e.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            EventSink::Kube { .. } => Vec::new(),
        }
    }

    pub async fn normal(&self, reason: &str, note: impl Into<String>) {
        self.publish(false, reason, note.into()).await
    }

    pub async fn warning(&self, reason: &str, note: impl Into<String>) {
        self.publish(true, reason, note.into()).await
    }

    async fn publish(&self, warning: bool, reason: &str, note: String) {
        // The events API limits notes to 1 kB.
        let note: String = note.chars().take(1000).collect();
        match &self.sink {
            EventSink::Memory(events) => {
                events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(RecordedEvent {
                        warning,
                        reason: reason.to_string(),
                        note,
                    })
            }
            EventSink::Kube {
                recorder,
                reference,
            } => {
                let event = Event {
                    type_: if warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: reason.to_string(),
                    note: Some(note),
                    action: reason.to_string(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, reference).await {
                    tracing::warn!(error = %e, reason, "could not publish event");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, READY, false, "AssetCreating", "", Some(1));
        let first = conditions[0].last_transition_time.clone();
        set_condition(&mut conditions, READY, false, "AssetUpdating", "m", Some(2));
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].reason, "AssetUpdating");
        assert_eq!(conditions[0].observed_generation, Some(2));
        std::thread::sleep(std::time::Duration::from_millis(2));
        set_condition(&mut conditions, READY, true, "AssetActive", "", Some(2));
        assert_ne!(conditions[0].last_transition_time, first);
        assert_eq!(conditions.len(), 1);
        remove_condition(&mut conditions, READY);
        assert!(conditions.is_empty());
    }
}
