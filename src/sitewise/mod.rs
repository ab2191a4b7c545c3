//! The narrow view of IoT SiteWise the controller needs: a trait over the four calls the asset
//! lifecycle uses, the domain types they return and the error every implementation reports.
//! `aws` implements it on aws-sdk-iotsitewise; `fake` is an in-memory version for unit tests;
//! `rate_limit` keeps any implementation under the account quotas.

pub mod aws;
pub mod fake;
pub mod rate_limit;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetDescription {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub model_id: String,
    pub state: AssetState,
    /// `(code, message)` from `assetStatus.error`.
    pub error: Option<(String, String)>,
    /// IDs of the hierarchies (from the asset's model) the asset can have children under.
    pub hierarchy_ids: Vec<String>,
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
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescribeAsset => "DescribeAsset",
            Self::ListAssociatedAssets => "ListAssociatedAssets",
            Self::DisassociateAssets => "DisassociateAssets",
            Self::DeleteAsset => "DeleteAsset",
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
            "InternalFailureException" | "ServiceUnavailableException" => ErrorKind::Unavailable,
            "InvalidRequestException" => ErrorKind::InvalidRequest,
            _ => match http_status {
                Some(429) => ErrorKind::Throttled,
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
}
