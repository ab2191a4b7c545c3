//! The observed side of a `SiteWiseAsset`: what SiteWise reports, the ownership claim, the
//! recorded parent link, conditions, and the progress of a deletion.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    // Boxed, like `deletion`: rarely present, and every cached resource carries the field
    // (10,000 of them in a large plant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<AssetErrorDetails>>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the asset is ACTIVE), `Synced` (the last observation of SiteWise succeeded),
    /// `Terminal` (a permanent error needs a person), `Deleting` (deletion in progress), and
    /// for GitOps tools (kstatus) `Stalled` (no retry will fix it) and `Reconciling`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// How this resource holds its asset: `Created`, `Adopted`, or `NotOwned` (another
    /// resource claims it; this one never changes or deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// The resource that claims the asset, when it is not this one
    /// (`<namespace>/<name>` and the claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The parent link this resource made, used directly when the asset is detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_link: Option<ParentLinkStatus>,
    /// Tag keys applied from `spec.tags`, so a key removed from the spec is removed from the asset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    /// The connection the asset was first reached through (`(operator)` for the operator's
    /// own); a resource never moves to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Progress of the deletion, present once the resource is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Box<DeletionProgress>>,
}

/// How a resource holds its asset.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Ownership {
    /// The operator created the asset for this resource.
    Created,
    /// The resource adopted an existing asset and claimed it.
    Adopted,
    /// Another resource claims the asset; this one only observes it.
    NotOwned,
}

/// A parent link made by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentLinkStatus {
    /// The parent asset's UUID.
    pub parent_id: String,
    /// The hierarchy's UUID.
    pub hierarchy_id: String,
    /// True once AssociateAssets succeeded (false while it is being made).
    #[serde(default)]
    pub associated: bool,
    /// How often the link was found removed by someone else and made again; part of the
    /// AssociateAssets clientToken so a new link is not taken for a replay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
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
    /// Condition type: Ready, Synced, Terminal, Deleting, Stalled or Reconciling.
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
    /// How many times SiteWise accepted DeleteAsset and then reported the asset FAILED; part
    /// of the DeleteAsset clientToken, so the next attempt is a new request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delete_round: u32,
    /// The linked children that keep a `childPolicy: Block` deletion from starting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
    /// Descendants (`childPolicy: Cascade`) this deletion detached to delete them, until
    /// SiteWise reports them gone; written before each is detached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascade: Vec<String>,
    /// When the deletion started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Phases of a deletion, in order.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum DeletionPhase {
    /// Reading the asset and its links.
    #[default]
    Observing,
    /// Waiting for the asset to leave CREATING or UPDATING.
    WaitingForStableState,
    /// Not started: `childPolicy: Block` and children are linked (`blockedBy`).
    Blocked,
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
