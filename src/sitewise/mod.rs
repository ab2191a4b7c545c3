//! The narrow view of IoT SiteWise the controller needs: a trait over the calls the asset
//! lifecycle uses (observe, create, update, link, tag, detach, delete), the domain types they
//! return and the error every implementation reports.
//! `aws` implements it on aws-sdk-iotsitewise; `fake` is an in-memory version for unit tests;
//! `rate_limit` keeps any implementation under the account quotas.

pub mod aws;
mod decorate;
pub mod fake;
mod models;
pub mod rate_limit;

pub use decorate::Decorate;
pub use models::*;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// State of an asset as SiteWise reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssetState {
    Creating,
    Active,
    Updating,
    Deleting,
    Failed,
    /// A state this operator does not know yet (newer service); treated as transitional.
    Other(String),
}

impl AssetState {
    pub fn parse(s: &str) -> Self {
        match s {
            "CREATING" => Self::Creating,
            "ACTIVE" => Self::Active,
            "UPDATING" => Self::Updating,
            "DELETING" => Self::Deleting,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        }
    }

    /// Only ACTIVE and FAILED assets accept association changes and deletion.
    pub fn is_stable(&self) -> bool {
        matches!(self, Self::Active | Self::Failed)
    }
}

impl fmt::Display for AssetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `DescribeAsset` tells about an asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetDescription {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub external_id: Option<String>,
    pub description: Option<String>,
    pub model_id: String,
    pub state: AssetState,
    /// `(code, message)` from `assetStatus.error`.
    pub error: Option<(String, String)>,
    /// The hierarchies (from the asset's model) the asset can have children under.
    pub hierarchies: Vec<Hierarchy>,
    pub properties: Vec<Property>,
    /// `assetLastUpdateDate` as SiteWise sent it (epoch seconds); changes with every update,
    /// so it tells one observed version of the asset from another.
    pub last_update: String,
}

impl Default for AssetState {
    fn default() -> Self {
        Self::Other("UNKNOWN".into())
    }
}

impl AssetDescription {
    pub fn hierarchy_ids(&self) -> impl Iterator<Item = &str> {
        self.hierarchies.iter().map(|h| h.id.as_str())
    }
}

/// A hierarchy of an asset's model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hierarchy {
    pub id: String,
    pub external_id: Option<String>,
    pub name: String,
}

/// A property of an asset, with the settings the operator manages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Property {
    pub id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub alias: Option<String>,
    pub unit: Option<String>,
    /// `ENABLED` or `DISABLED`, when SiteWise reports a notification.
    pub notification_state: Option<String>,
}

/// Settings written by `UpdateAssetProperty`, which replaces all of them (an omitted alias is
/// removed), so every call carries the complete set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertySettings {
    pub alias: Option<String>,
    pub unit: Option<String>,
    pub notification_state: Option<String>,
}

/// A `CreateAsset` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewAsset {
    /// The caller-chosen asset UUID.
    pub asset_id: String,
    /// Model UUID or `externalId:<id>`.
    pub model_id: String,
    pub name: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What `CreateAsset` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedAsset {
    pub id: String,
    pub arn: String,
    pub state: AssetState,
}

/// An `UpdateAsset` request: `UpdateAsset` requires the name on every call and replaces the
/// description, so both are always sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetUpdate {
    pub name: String,
    pub description: Option<String>,
    /// Only when the asset has none yet (SiteWise never changes an external ID).
    pub external_id: Option<String>,
}

/// One asset listed by `ListAssociatedAssets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssociatedAsset {
    pub id: String,
    /// The listed asset's own hierarchy IDs (not the hierarchy linking it).
    pub hierarchy_ids: Vec<String>,
}

/// Direction of a `ListAssociatedAssets` traversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Child,
    Parent,
}

/// The SiteWise operations the operator calls, each named after its API operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    DescribeAsset,
    ListAssociatedAssets,
    DisassociateAssets,
    DeleteAsset,
    CreateAsset,
    UpdateAsset,
    UpdateAssetProperty,
    AssociateAssets,
    ListTagsForResource,
    TagResource,
    UntagResource,
    DescribeAssetModel,
    CreateAssetModel,
    UpdateAssetModel,
    DeleteAssetModel,
    ListAssets,
}

impl Operation {
    /// Every operation the operator calls.
    pub const ALL: [Operation; 16] = [
        Self::DescribeAsset,
        Self::ListAssociatedAssets,
        Self::DisassociateAssets,
        Self::DeleteAsset,
        Self::CreateAsset,
        Self::UpdateAsset,
        Self::UpdateAssetProperty,
        Self::AssociateAssets,
        Self::ListTagsForResource,
        Self::TagResource,
        Self::UntagResource,
        Self::DescribeAssetModel,
        Self::CreateAssetModel,
        Self::UpdateAssetModel,
        Self::DeleteAssetModel,
        Self::ListAssets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescribeAsset => "DescribeAsset",
            Self::ListAssociatedAssets => "ListAssociatedAssets",
            Self::DisassociateAssets => "DisassociateAssets",
            Self::DeleteAsset => "DeleteAsset",
            Self::CreateAsset => "CreateAsset",
            Self::UpdateAsset => "UpdateAsset",
            Self::UpdateAssetProperty => "UpdateAssetProperty",
            Self::AssociateAssets => "AssociateAssets",
            Self::ListTagsForResource => "ListTagsForResource",
            Self::TagResource => "TagResource",
            Self::UntagResource => "UntagResource",
            Self::DescribeAssetModel => "DescribeAssetModel",
            Self::CreateAssetModel => "CreateAssetModel",
            Self::UpdateAssetModel => "UpdateAssetModel",
            Self::DeleteAssetModel => "DeleteAssetModel",
            Self::ListAssets => "ListAssets",
        }
    }
}

/// How a SiteWise failure should be handled; decided once, where the error is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// ThrottlingException or LimitExceededException: slow down and retry.
    Throttled,
    /// ConflictingOperationException: the resource is busy; observe again shortly.
    Conflict,
    /// ResourceNotFoundException.
    NotFound,
    /// ResourceAlreadyExistsException (an ID, external ID or link that exists already).
    AlreadyExists,
    /// PreconditionFailedException: the resource changed since the ETag sent as `If-Match`
    /// was read; read it again.
    PreconditionFailed,
    /// InternalFailureException, other 5xx, timeouts and connection failures: retry.
    Unavailable,
    /// InvalidRequestException: the request is refused as it stands.
    InvalidRequest,
    /// Anything else (access denied, unknown codes): needs a person.
    Permanent,
}

/// A failed SiteWise call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SiteWise {operation} failed with {code}: {message}")]
pub struct SiteWiseError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    /// The error code (exception name) as SiteWise sent it, or a client-side description.
    pub code: String,
    pub message: String,
}

impl SiteWiseError {
    pub fn new(
        operation: Operation,
        kind: ErrorKind,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation: operation.as_str(),
            kind,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Classifies a SiteWise error code (exception name) or an HTTP status.
    pub fn kind_for(code: &str, http_status: Option<u16>) -> ErrorKind {
        match code {
            "ThrottlingException" | "LimitExceededException" | "TooManyRequestsException" => {
                ErrorKind::Throttled
            }
            "ConflictingOperationException" => ErrorKind::Conflict,
            "ResourceNotFoundException" => ErrorKind::NotFound,
            "ResourceAlreadyExistsException" => ErrorKind::AlreadyExists,
            "InternalFailureException" | "ServiceUnavailableException" => ErrorKind::Unavailable,
            "InvalidRequestException" => ErrorKind::InvalidRequest,
            "PreconditionFailedException" => ErrorKind::PreconditionFailed,
            _ => match http_status {
                Some(429) => ErrorKind::Throttled,
                Some(412) => ErrorKind::PreconditionFailed,
                Some(s) if s >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::Permanent,
            },
        }
    }
}

pub type SiteWiseResult<T> = Result<T, SiteWiseError>;

/// The SiteWise calls the controller makes. Implementations return domain types and classified
/// errors, never SDK types, so the controller logic is testable without a network.
pub trait SiteWise: Send + Sync + 'static {
    /// `DescribeAsset`; `asset_id` is a UUID or `externalId:<id>`.
    fn describe_asset(
        &self,
        asset_id: &str,
    ) -> impl Future<Output = SiteWiseResult<AssetDescription>> + Send;

    /// Every page of `ListAssociatedAssets`.
    fn list_associated_assets(
        &self,
        asset_id: &str,
        direction: Direction,
        hierarchy_id: Option<&str>,
    ) -> impl Future<Output = SiteWiseResult<Vec<AssociatedAsset>>> + Send;

    /// `DisassociateAssets` of `child_id` from `parent_id` through `hierarchy_id`.
    fn disassociate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<()>> + Send;

    /// `DeleteAsset`; returns the state SiteWise reports (normally DELETING).
    fn delete_asset(
        &self,
        asset_id: &str,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<AssetState>> + Send;

    /// `CreateAsset` with a caller-chosen asset ID.
    fn create_asset(
        &self,
        asset: &NewAsset,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<CreatedAsset>> + Send;

    /// `UpdateAsset`; returns the state SiteWise reports (normally UPDATING).
    fn update_asset(
        &self,
        asset_id: &str,
        update: &AssetUpdate,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<AssetState>> + Send;

    /// `UpdateAssetProperty` with the complete settings of the property.
    fn update_asset_property(
        &self,
        asset_id: &str,
        property_id: &str,
        settings: &PropertySettings,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<()>> + Send;

    /// `AssociateAssets` of `child_id` under `parent_id` through `hierarchy_id`.
    fn associate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<()>> + Send;

    /// `ListTagsForResource` of an asset ARN.
    fn list_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = SiteWiseResult<BTreeMap<String, String>>> + Send;

    /// `TagResource`: adds or replaces `tags`.
    fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = SiteWiseResult<()>> + Send;

    /// `UntagResource`: removes `keys`.
    fn untag_resource(
        &self,
        arn: &str,
        keys: &[String],
    ) -> impl Future<Output = SiteWiseResult<()>> + Send;

    /// `DescribeAssetModel`; `model_id` is a UUID or `externalId:<id>`.
    fn describe_asset_model(
        &self,
        model_id: &str,
    ) -> impl Future<Output = SiteWiseResult<ModelDescription>> + Send;

    /// `CreateAssetModel` with a caller-chosen model ID.
    fn create_asset_model(
        &self,
        model: &NewModel,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<CreatedAsset>> + Send;

    /// `UpdateAssetModel` of the version whose ETag is `if_match`; returns the state SiteWise
    /// reports (normally UPDATING or PROPAGATING).
    fn update_asset_model(
        &self,
        model_id: &str,
        definition: &ModelDefinition,
        if_match: &str,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<AssetState>> + Send;

    /// `DeleteAssetModel`, of the version whose ETag is `if_match` when given.
    fn delete_asset_model(
        &self,
        model_id: &str,
        if_match: Option<&str>,
        client_token: &str,
    ) -> impl Future<Output = SiteWiseResult<AssetState>> + Send;

    /// One page of `ListAssets` for the assets of one model: the first when `next_token` is
    /// `None`, else the one the previous page pointed to.
    fn list_assets_page(
        &self,
        model_id: &str,
        next_token: Option<&str>,
    ) -> impl Future<Output = SiteWiseResult<AssetPage>> + Send;
}

/// Every asset of one model, page by page (`ListAssets`): `visit` sees each summary, and only
/// one page is held at a time.
pub async fn each_asset_of_model<S: SiteWise>(
    sitewise: &S,
    model_id: &str,
    mut visit: impl FnMut(AssetSummary),
) -> SiteWiseResult<()> {
    let mut next_token: Option<String> = None;
    loop {
        let page = sitewise
            .list_assets_page(model_id, next_token.as_deref())
            .await?;
        page.assets.into_iter().for_each(&mut visit);
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(()),
        }
    }
}

/// Every page of `ListAssets` for the assets of one model.
pub async fn list_assets_of_model<S: SiteWise>(
    sitewise: &S,
    model_id: &str,
) -> SiteWiseResult<Vec<AssetSummary>> {
    let mut assets = Vec::new();
    each_asset_of_model(sitewise, model_id, |asset| assets.push(asset)).await?;
    Ok(assets)
}
