//! The `SiteWiseAsset` custom resource: its spec (adopt or create, declared fields, parent
//! reference, deletion policy) and the schema rules the API server enforces. The status lives
//! in [`status`]. The CRD YAML in `crds/` is generated from these types
//! (`sitewise-operator crd`).

mod connection;
mod fields;
mod model;
mod status;

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use connection::*;
pub use model::*;
pub use status::*;

/// API group of every resource this operator serves.
pub const API_GROUP: &str = "sitewise.operator.dev";

/// Finalizer the controller keeps on every `SiteWiseAsset` until the asset is gone from
/// SiteWise (or retained by policy).
pub const FINALIZER: &str = "sitewise.operator.dev/asset-cleanup";

/// Annotation that releases a resource whose deletion cannot finish (SiteWise unreachable,
/// permissions gone) without touching the asset. Its value is the reason, recorded in a Warning
/// event and the operator's log.
pub const FORCE_ORPHAN_ANNOTATION: &str = "sitewise.operator.dev/force-orphan";

/// Tag keys under this prefix belong to the operator (ownership claims); `spec.tags` may not
/// use them.
pub const RESERVED_TAG_PREFIX: &str = "sitewise.operator.dev/";

/// Regular expression an asset or model reference must match: a lowercase UUID, or
/// `externalId:` followed by a SiteWise external ID (2 to 128 characters, first and last
/// alphanumeric or `_`). The all-zero UUID is refused by a separate rule because Kubernetes
/// patterns have no look-ahead.
pub const ASSET_ID_PATTERN: &str = r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$";

/// A SiteWise asset owned by Kubernetes. The resource either adopts an existing asset
/// (`assetId`) or creates one from a model (`assetModelId`); either way the operator claims
/// it with an ownership tag, applies the declared fields, links it under its parent, and on
/// deletion detaches and deletes it (unless `deletionPolicy` is `Retain`).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sitewise.operator.dev",
    version = "v1alpha1",
    kind = "SiteWiseAsset",
    plural = "sitewiseassets",
    singular = "sitewiseasset",
    shortname = "swa",
    category = "sitewise",
    namespaced,
    status = "SiteWiseAssetStatus",
    printcolumn = r#"{"name":"Asset ID","type":"string","jsonPath":".status.assetId"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ownership","type":"string","jsonPath":".status.ownership","priority":1}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.deletionPolicy","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.assetId) ? 1 : 0) + (has(self.assetModelId) ? 1 : 0) + (has(self.assetModelRef) ? 1 : 0) == 1",
        "message": "set exactly one of spec.assetId (adopt an existing asset), spec.assetModelId (create a new asset from that model) or spec.assetModelRef (create it from a SiteWiseAssetModel in this namespace)"
    },
    {
        "rule": "has(self.connectionRef) == has(oldSelf.connectionRef)",
        "message": "connectionRef cannot be added or removed: the asset lives in one AWS account; create a new resource for another"
    },
    {
        "rule": "has(self.assetId) == has(oldSelf.assetId) && has(self.assetModelRef) == has(oldSelf.assetModelRef)",
        "message": "a resource cannot switch between adopting (spec.assetId), creating from a model ID (spec.assetModelId) and creating from a model resource (spec.assetModelRef); create a new SiteWiseAsset instead"
    }
]))]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseAssetSpec {
    /// Adopt: the existing asset this resource owns, by UUID (lowercase, as SiteWise returns it)
    /// or `externalId:<external id>`. The UUID it first resolves to is pinned in
    /// `status.assetId`. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 13, max = 139),
        extend("x-kubernetes-validations" = [
            {
                "rule": "self.matches('^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$')",
                "message": "assetId must be a lowercase asset UUID (8-4-4-4-12 hex digits) or externalId:<id>, where <id> is 2-128 characters of letters, digits, '_', '-', '.', ':' that starts and ends with a letter, digit or '_'"
            },
            {
                "rule": "self != '00000000-0000-0000-0000-000000000000'",
                "message": "assetId must not be the all-zero UUID"
            },
            {
                "rule": "self == oldSelf",
                "message": "assetId is immutable; create a new SiteWiseAsset to own another asset"
            }
        ])
    )]
    pub asset_id: Option<String>,

    /// Create: the asset model to create the asset from, by UUID or `externalId:<id>`. The
    /// asset gets an ID derived from this resource's UID, so a retry or a restart can never
    /// create a second one. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 13, max = 139),
        extend("x-kubernetes-validations" = [
            {
                "rule": "self.matches('^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$')",
                "message": "assetModelId must be a lowercase model UUID (8-4-4-4-12 hex digits) or externalId:<id>, where <id> is 2-128 characters of letters, digits, '_', '-', '.', ':' that starts and ends with a letter, digit or '_'"
            },
            {
                "rule": "self == oldSelf",
                "message": "assetModelId is immutable: SiteWise cannot move an asset to another model"
            }
        ])
    )]
    pub asset_model_id: Option<String>,

    /// Create: the `SiteWiseAssetModel` in this namespace to create the asset from. The asset
    /// is created once that model is Ready, and the model is not deleted while this resource
    /// exists. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self == oldSelf",
        "message": "assetModelRef is immutable: SiteWise cannot move an asset to another model"
    }]))]
    pub asset_model_ref: Option<LocalModelRef>,

    /// The asset's name in SiteWise. When creating, defaults to the resource name. When
    /// adopting, the name is managed only if set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fields::name")]
    pub name: Option<String>,

    /// The asset's description; managed only if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fields::description")]
    pub description: Option<String>,

    /// The asset's external ID (without the `externalId:` prefix). SiteWise never changes an
    /// external ID once set, so neither can this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fields::external_id")]
    pub external_id: Option<String>,

    /// Declared settings of the asset's properties; properties not listed are not managed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub properties: Vec<PropertySpec>,

    /// Tags the asset carries. Keys under `sitewise.operator.dev/` are the operator's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "fields::tags")]
    pub tags: BTreeMap<String, String>,

    /// The asset's parent in the SiteWise hierarchy. Setting it links the asset under the
    /// parent once both are ACTIVE; changing it moves the asset; removing it detaches it.
    // Boxed: the watch cache holds every resource, and without the 88 bytes of an unboxed
    // reference each one fits jemalloc's 896-byte size class instead of the 1,024-byte one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<ParentRef>>,

    /// The `SiteWiseConnection` (AWS account and Region) the asset lives in. Default: the
    /// connection named by the namespace's `sitewise.operator.dev/connection` annotation, else
    /// the operator's own (`--region` and its credentials). Cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,

    /// What happens to the SiteWise asset when this resource is deleted. `Delete` (default)
    /// disassociates its children, detaches it from its parent and deletes it; `Retain` leaves
    /// the asset in SiteWise and removes this resource's ownership claim.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// What a deletion (policy `Delete`) does about child assets still linked under this
    /// asset. `Detach` (default) disassociates them and leaves them in SiteWise; `Block` does not
    /// start the deletion while any is linked, and lists them in `status.deletion.blockedBy`
    /// (children whose own resources are being deleted do not block: they detach themselves);
    /// `Cascade` deletes the descendants no resource manages and detaches the others.
    #[serde(default)]
    pub child_policy: ChildPolicy,
}

/// Declared settings of one asset property.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropertySpec {
    /// The property: its name in the model, `externalId:<id>`, or its UUID.
    #[schemars(length(min = 1, max = 256))]
    pub property: String,
    /// Alias for the property's data stream (e.g. `/lyon/press-7/temperature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub alias: Option<String>,
    /// Unit of the property's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub unit: Option<String>,
    /// Whether property value notifications are published (MQTT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_state: Option<NotificationState>,
}

/// MQTT notification state of a property.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum NotificationState {
    Enabled,
    Disabled,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
        }
    }
}

/// The parent an asset is linked under.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.name) != has(self.assetId)",
        "message": "parent needs exactly one of name (a SiteWiseAsset in this namespace) or assetId (an asset UUID or externalId:<id>)"
    },
    {
        "rule": "!has(self.__namespace__)",
        "message": "parent.namespace is not supported: a parent resource must be in the child's namespace; name an asset elsewhere by parent.assetId"
    }
]))]
pub struct ParentRef {
    /// Name of the parent `SiteWiseAsset` in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// Or the parent asset itself, by UUID or `externalId:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 13, max = 139),
        extend("x-kubernetes-validations" = [{
            "rule": "self.matches('^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$')",
            "message": "parent.assetId must be a lowercase asset UUID or externalId:<id>"
        }])
    )]
    pub asset_id: Option<String>,
    /// The hierarchy of the parent's model to link under: its name, `externalId:<id>`, or UUID.
    #[schemars(length(min = 1, max = 256))]
    pub hierarchy: String,
    /// Not supported; present only so that setting it is refused with an explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A `SiteWiseConnection` by name.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self == oldSelf",
    "message": "connectionRef is immutable: the asset or model lives in one AWS account and Region"
}]))]
pub struct ConnectionRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A `SiteWiseAssetModel` in the same namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalModelRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How a parent is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParentTarget<'a> {
    Resource(&'a str),
    Asset(&'a str),
}

impl ParentRef {
    pub fn target(&self) -> Option<ParentTarget<'_>> {
        match (&self.name, &self.asset_id) {
            (Some(name), None) => Some(ParentTarget::Resource(name)),
            (None, Some(id)) => Some(ParentTarget::Asset(id)),
            _ => None,
        }
    }
}

/// Whether the resource adopts an existing asset or creates one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    Adopt { reference: &'a str },
    Create { model: ModelSource<'a> },
}

/// The model a created asset comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelSource<'a> {
    /// A model UUID or `externalId:<id>`.
    Id(&'a str),
    /// A `SiteWiseAssetModel` in the resource's namespace.
    Resource(&'a str),
}

impl std::fmt::Display for ModelSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => f.write_str(id),
            Self::Resource(name) => write!(f, "SiteWiseAssetModel {name}"),
        }
    }
}

impl SiteWiseAsset {
    /// Whether this resource holds its asset (created or adopted it), rather than only
    /// observing one another resource claims.
    pub fn holds_its_asset(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| matches!(s.ownership, Some(Ownership::Created | Ownership::Adopted)))
    }

    /// Whether this resource holds asset `asset_id`.
    pub fn holds(&self, asset_id: &str) -> bool {
        self.holds_its_asset()
            && self
                .status
                .as_ref()
                .is_some_and(|s| s.asset_id.as_deref() == Some(asset_id))
    }

    /// The resource's UID (assigned by the API server; every object the operator sees has one).
    pub fn require_uid(&self) -> crate::Result<&str> {
        require_uid(&self.metadata)
    }

    /// The reason given in the force-orphan annotation, when set and not empty.
    pub fn force_orphan_reason(&self) -> Option<&str> {
        force_orphan_reason(&self.metadata)
    }

    /// Adopt or create. The schema guarantees exactly one of the two; should an object
    /// without either reach the operator (schema bypassed), it is treated as adopting
    /// nothing, which is refused later with a readable message.
    pub fn mode(&self) -> Option<Mode<'_>> {
        match (
            &self.spec.asset_id,
            &self.spec.asset_model_id,
            &self.spec.asset_model_ref,
        ) {
            (Some(reference), None, None) => Some(Mode::Adopt { reference }),
            (None, Some(model), None) => Some(Mode::Create {
                model: ModelSource::Id(model),
            }),
            (None, None, Some(model)) => Some(Mode::Create {
                model: ModelSource::Resource(&model.name),
            }),
            _ => None,
        }
    }

    /// The reference a person reads in messages: `spec.assetId`, or the model for created assets.
    pub fn declared_reference(&self) -> String {
        match self.mode() {
            Some(Mode::Adopt { reference }) => reference.to_string(),
            Some(Mode::Create { model }) => format!("(created from model {model})"),
            None => "(none)".to_string(),
        }
    }
}

/// A resource's UID (assigned by the API server; every object the operator sees has one).
pub fn require_uid(meta: &kube::api::ObjectMeta) -> crate::Result<&str> {
    meta.uid
        .as_deref()
        .ok_or(crate::Error::MissingMetadata("uid"))
}

/// The reason given in a resource's force-orphan annotation, when set and not empty.
pub fn force_orphan_reason(meta: &kube::api::ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(FORCE_ORPHAN_ANNOTATION)
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
}

/// What a deletion does about the children still linked under the asset.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ChildPolicy {
    /// Disassociate every child (in every hierarchy) and leave it in SiteWise.
    #[default]
    Detach,
    /// Do not start while any child is linked; for sites and areas that must not be cut loose
    /// by accident.
    Block,
    /// Delete the descendants that no resource manages, depth first; descendants with a
    /// resource of their own (or claimed by another) are detached and left to their owner.
    Cascade,
}

/// What the operator does to the SiteWise asset when the resource is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Disassociate children, detach from the parent, delete the asset and wait until it is gone.
    #[default]
    Delete,
    /// Release the resource and leave the asset in SiteWise (its ownership claim is removed).
    Retain,
}
