//! The `SiteWiseAsset` custom resource: its spec, status and the schema rules the API server
//! enforces. The CRD YAML in `crds/` is generated from these types (`sitewise-operator crd`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every resource this operator serves.
pub const API_GROUP: &str = "sitewise.operator.dev";

/// Finalizer the controller keeps on every `SiteWiseAsset` until the asset is gone from
/// SiteWise (or retained by policy).
pub const FINALIZER: &str = "sitewise.operator.dev/asset-cleanup";

/// Annotation that releases a resource whose deletion cannot finish (SiteWise unreachable,
/// permissions gone) without touching the asset. Its value is the reason, recorded in a Warning
/// event and the operator's log.
pub const FORCE_ORPHAN_ANNOTATION: &str = "sitewise.operator.dev/force-orphan";

/// Regular expression an `assetId` must match: a lowercase UUID, or `externalId:` followed by a
/// SiteWise external ID (2 to 128 characters, first and last alphanumeric or `_`). The all-zero
/// UUID is refused by a separate rule because Kubernetes patterns have no look-ahead.
pub const ASSET_ID_PATTERN: &str = r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|externalId:[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_])$";

/// A SiteWise asset owned by Kubernetes: while this resource exists the operator mirrors the
/// asset's state into `status`; when it is deleted the operator detaches the asset from its
/// hierarchy and deletes it in SiteWise (unless `deletionPolicy` is `Retain`).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
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
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.deletionPolicy","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseAssetSpec {
    /// The SiteWise asset this resource owns: its UUID (lowercase, as SiteWise returns it) or
    /// `externalId:<external id>`. It cannot be changed once set; to own another asset, create
    /// another resource.
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
    pub asset_id: String,

    /// What happens to the SiteWise asset when this resource is deleted. `Delete` (default)
    /// disassociates its children, detaches it from its parent and deletes it; `Retain` leaves
    /// the asset untouched in SiteWise.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl SiteWiseAsset {
    /// The reason given in the force-orphan annotation, when set and not empty.
    pub fn force_orphan_reason(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(FORCE_ORPHAN_ANNOTATION)
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
    }
}

/// What the operator does to the SiteWise asset when the resource is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Disassociate children, detach from the parent, delete the asset and wait until it is gone.
    #[default]
    Delete,
    /// Release the resource and leave the asset untouched in SiteWise.
    Retain,
}

/// Observed state of the asset and of the operator's work on it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseAssetStatus {
    /// The asset's UUID as resolved by SiteWise (also when `spec.assetId` is an external ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// The asset's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_arn: Option<String>,
    /// The asset's name in SiteWise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_name: Option<String>,
    /// The asset's state in SiteWise: CREATING, ACTIVE, UPDATING, DELETING or FAILED; `NotFound`
    /// when SiteWise does not know the asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Error details SiteWise reports for the asset (set when the state is FAILED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AssetErrorDetails>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the asset is ACTIVE), `Synced` (the last observation of SiteWise succeeded),
    /// `Terminal` (a permanent error needs a person) and `Deleting` (deletion in progress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Progress of the deletion, present once the resource is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionProgress>,
}

/// Error details SiteWise attaches to an asset's status.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetErrorDetails {
    /// SiteWise error code, e.g. VALIDATION_ERROR or INTERNAL_FAILURE.
    pub code: String,
    /// SiteWise error message.
    pub message: String,
}

/// A standard Kubernetes condition (same fields as `metav1.Condition`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: Ready, Synced, Terminal or Deleting.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// A CamelCase reason for the condition's last transition.
    pub reason: String,
    /// A human-readable message with details.
    #[serde(default)]
    pub message: String,
    /// When the condition last changed status (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Where a deletion stands. Written before every SiteWise call so a restarted operator resumes
/// where the previous one stopped.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionProgress {
    /// Current phase of the deletion.
    pub phase: DeletionPhase,
    /// Child assets still associated with the asset when last observed.
    #[serde(default)]
    pub children_remaining: u32,
    /// The SiteWise call in flight or last made, e.g. `DisassociateAssets child=<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_operation: Option<String>,
    /// Number of failed attempts since the last successful step.
    #[serde(default)]
    pub attempts: u32,
    /// The last error met while deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is scheduled (RFC 3339), after an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<String>,
    /// How many times the asset was found linked again after the operator had detached it
    /// (someone re-associated a child). Part of the disassociation clientTokens, so a new
    /// detach is not taken by SiteWise for a replay of the earlier one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// When the deletion started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Phases of a deletion, in order.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPhase {
    /// Reading the asset and its links.
    #[default]
    Observing,
    /// Waiting for the asset to leave CREATING or UPDATING.
    WaitingForStableState,
    /// Disassociating child assets.
    DisassociatingChildren,
    /// Detaching the asset from its parent.
    DetachingFromParent,
    /// DeleteAsset sent.
    DeleteRequested,
    /// SiteWise reports DELETING; polling until it answers 404.
    AwaitingDeletion,
    /// The asset is gone (or retained); the finalizer is being released.
    Done,
}
