//! The asset-model side of the SiteWise view: what DescribeAssetModel reports, what
//! CreateAssetModel and UpdateAssetModel send, and the asset summaries ListAssets gives for
//! one model (what a model's deletion waits for).

use std::collections::BTreeMap;

use super::AssetState;

/// A property of a model, as declared (no ID yet) or as SiteWise describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelProperty {
    /// Set when SiteWise knows the property; UpdateAssetModel keeps a property (and its data)
    /// only when its ID is sent again.
    pub id: Option<String>,
    pub name: String,
    pub external_id: Option<String>,
    /// `STRING`, `INTEGER`, `DOUBLE` or `BOOLEAN`.
    pub data_type: String,
    pub unit: Option<String>,
    pub kind: PropertyKind,
}

/// What kind of property a model defines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PropertyKind {
    /// A static value, with an optional default.
    Attribute { default_value: Option<String> },
    /// Raw data from equipment.
    #[default]
    Measurement,
    /// A transform or metric, which this operator does not declare; kept as SiteWise has it.
    Other(String),
}

/// A hierarchy of a model: the place a child asset of `child_model_id` can be linked under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelHierarchy {
    /// Set when SiteWise knows the hierarchy; UpdateAssetModel keeps it (and its links) only
    /// when its ID is sent again.
    pub id: Option<String>,
    pub name: String,
    pub external_id: Option<String>,
    /// The child model's UUID.
    pub child_model_id: String,
}

/// The fields of a model that CreateAssetModel sets and UpdateAssetModel replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDefinition {
    pub name: String,
    pub description: Option<String>,
    /// Sent only while the model has none (SiteWise never changes an external ID).
    pub external_id: Option<String>,
    pub properties: Vec<ModelProperty>,
    pub hierarchies: Vec<ModelHierarchy>,
}

/// A `CreateAssetModel` request with a caller-chosen model ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewModel {
    pub model_id: String,
    pub definition: ModelDefinition,
    pub tags: BTreeMap<String, String>,
}

/// What `DescribeAssetModel` tells about a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDescription {
    pub id: String,
    pub arn: String,
    /// The model's fields; `description` is `None` when SiteWise reports an empty one.
    pub definition: ModelDefinition,
    /// CREATING, ACTIVE, UPDATING, PROPAGATING (as `Other`), DELETING or FAILED.
    pub state: AssetState,
    /// `(code, message)` from `assetModelStatus.error`.
    pub error: Option<(String, String)>,
    /// The `ETag` of this version: UpdateAssetModel and DeleteAssetModel send it as `If-Match`
    /// so that a change made elsewhere since this read is refused, not overwritten.
    pub etag: Option<String>,
}

/// One asset of a model, as `ListAssets` summarises it: its declared fields and state, not its
/// properties or its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetSummary {
    pub id: String,
    pub name: String,
    pub state: AssetState,
    pub description: Option<String>,
    pub external_id: Option<String>,
}

/// One page of `ListAssets`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetPage {
    pub assets: Vec<AssetSummary>,
    /// The token of the next page; `None` on the last.
    pub next_token: Option<String>,
}
