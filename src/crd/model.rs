//! The `SiteWiseAssetModel` custom resource: a SiteWise asset model declared in Kubernetes
//! (name, description, external ID, attributes and measurements, hierarchies naming child
//! models by resource or by ID), its status, and the schema rules the API server enforces.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, DeletionPolicy};

/// Finalizer kept on every `SiteWiseAssetModel` until its model is gone from SiteWise (or
/// retained by policy).
pub const MODEL_FINALIZER: &str = "sitewise.operator.dev/model-cleanup";

/// A SiteWise asset model owned by Kubernetes. The operator creates it with an ID derived from
/// this resource's UID, keeps it as declared (UpdateAssetModel with the ETag it read, so a
/// change made elsewhere meanwhile is detected rather than overwritten), and on deletion waits
/// until no asset of the model and no other model's hierarchy uses it, then deletes it.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sitewise.operator.dev",
    version = "v1alpha1",
    kind = "SiteWiseAssetModel",
    plural = "sitewiseassetmodels",
    singular = "sitewiseassetmodel",
    shortname = "swam",
    category = "sitewise",
    namespaced,
    status = "SiteWiseAssetModelStatus",
    printcolumn = r#"{"name":"Model ID","type":"string","jsonPath":".status.assetModelId"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.deletionPolicy","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.connectionRef) == has(oldSelf.connectionRef)",
    "message": "connectionRef cannot be added or removed: the model lives in one AWS account; create a new resource for another"
}]))]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseAssetModelSpec {
    /// The model's name in SiteWise, unique in the account and Region. Defaults to
    /// `<namespace>-<resource name>`, so two namespaces never ask for the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::fields::name")]
    pub name: Option<String>,

    /// The model's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::fields::description")]
    pub description: Option<String>,

    /// The model's external ID (without the `externalId:` prefix); permanent once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::fields::external_id")]
    pub external_id: Option<String>,

    /// The model's attributes and measurements. This list is the whole set: a property
    /// removed here is removed from the model and from every asset of it, with its data.
    /// A property is known by its name (or external ID, when set), so renaming one replaces it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 200),
        extend("x-kubernetes-validations" = [{
            "rule": "self.all(p, self.exists_one(q, q.name == p.name))",
            "message": "property names must be unique within a model"
        }])
    )]
    pub properties: Vec<ModelPropertySpec>,

    /// Where child assets can be linked: each hierarchy names the model its children have.
    /// Removing a hierarchy disassociates every asset linked through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10),
        extend("x-kubernetes-validations" = [{
            "rule": "self.all(h, self.exists_one(g, g.name == h.name))",
            "message": "hierarchy names must be unique within a model"
        }])
    )]
    pub hierarchies: Vec<ModelHierarchySpec>,

    /// Tags the model carries. Keys under `sitewise.operator.dev/` are the operator's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "super::fields::tags")]
    pub tags: BTreeMap<String, String>,

    /// The `SiteWiseConnection` the model lives in (default as for assets). Cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<super::ConnectionRef>,

    /// `Delete` (default): once no asset of the model and no other model uses it, the model
    /// is deleted. `Retain`: the model stays in SiteWise when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// One attribute or measurement of a model.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.type == 'Attribute' || !has(self.defaultValue)",
    "message": "defaultValue is only for properties of type Attribute"
}]))]
pub struct ModelPropertySpec {
    #[schemars(
        length(min = 1, max = 256),
        extend("x-kubernetes-validations" = [{
            "rule": "!self.matches('[[:cntrl:]]')",
            "message": "property name must not contain control characters"
        }])
    )]
    pub name: String,
    /// External ID of the property, unique within the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::fields::member_external_id")]
    pub external_id: Option<String>,
    /// `Attribute` (a static value) or `Measurement` (raw data from equipment).
    #[serde(rename = "type")]
    pub kind: ModelPropertyKind,
    pub data_type: PropertyDataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub unit: Option<String>,
    /// The attribute's default value (attributes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub default_value: Option<String>,
}

/// The kinds of property this resource declares.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ModelPropertyKind {
    Attribute,
    #[default]
    Measurement,
}

/// Data types of a property's values.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PropertyDataType {
    String,
    Integer,
    #[default]
    Double,
    Boolean,
}

impl PropertyDataType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Integer => "INTEGER",
            Self::Double => "DOUBLE",
            Self::Boolean => "BOOLEAN",
        }
    }
}

/// A hierarchy of the model.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelHierarchySpec {
    #[schemars(
        length(min = 1, max = 256),
        extend("x-kubernetes-validations" = [{
            "rule": "!self.matches('[[:cntrl:]]')",
            "message": "hierarchy name must not contain control characters"
        }])
    )]
    pub name: String,
    /// External ID of the hierarchy, unique within the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::fields::member_external_id")]
    pub external_id: Option<String>,
    /// The model of the children linked through this hierarchy.
    pub child_model: ModelRef,
}

/// A model named by its resource (in the same namespace) or by its SiteWise ID.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.name) != has(self.assetModelId)",
    "message": "a model reference needs exactly one of name (a SiteWiseAssetModel in this namespace) or assetModelId (a model UUID or externalId:<id>)"
}]))]
pub struct ModelRef {
    /// Name of a `SiteWiseAssetModel` in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// Or a model by UUID or `externalId:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 13, max = 139),
        extend("x-kubernetes-validations" = [{
            "rule": "self.matches('^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$')",
            "message": "assetModelId must be a lowercase model UUID or externalId:<id>"
        }])
    )]
    pub asset_model_id: Option<String>,
}

/// Observed state of the model and of the operator's work on it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseAssetModelStatus {
    /// The model's UUID (derived from this resource's UID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_model_arn: Option<String>,
    /// CREATING, ACTIVE, UPDATING, PROPAGATING, DELETING or FAILED; `NotFound` when SiteWise
    /// does not know the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, `Terminal`, `Deleting`, and the kstatus `Stalled` and `Reconciling`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Tag keys applied from `spec.tags`, so a key removed from the spec is removed from the
    /// model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    /// The connection the model was first reached through (`(operator)` for the operator's
    /// own); a resource never moves to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// What the deletion waits for before DeleteAssetModel (assets of the model, models whose
    /// hierarchies use it), as last observed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
}

impl SiteWiseAssetModel {
    /// The name the model has in SiteWise.
    pub fn model_name(&self) -> String {
        self.spec.name.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                self.metadata.namespace.as_deref().unwrap_or_default(),
                self.metadata.name.as_deref().unwrap_or_default()
            )
        })
    }

    /// The model's UUID once the operator has created it.
    pub fn model_id(&self) -> Option<&str> {
        self.status.as_ref()?.asset_model_id.as_deref()
    }

    /// Whether the model is ACTIVE and as declared (`Ready=True`).
    pub fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }

    /// Names of the model resources this one's hierarchies name.
    pub fn child_model_names(&self) -> impl Iterator<Item = &str> {
        self.spec
            .hierarchies
            .iter()
            .filter_map(|h| h.child_model.name.as_deref())
    }
}
