//! The operator's error type. Every error knows its [`ErrorClass`], which decides how soon the
//! resource is retried, whether a Warning event is published and which condition is set.

use std::time::Duration;

use kube::runtime::finalizer;

use crate::sitewise::{ErrorKind, SiteWiseError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    SiteWise(#[from] SiteWiseError),

    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    /// DeleteAsset was accepted; SiteWise has not finished yet. `poll_after` is when to
    /// look again, learned from SiteWise's delete time (the poll interval when unknown).
    #[error("asset {asset_id} is {state} in SiteWise; waiting until it is gone")]
    DeletionPending {
        asset_id: String,
        state: String,
        poll_after: Duration,
    },

    /// Children whose own resources are being deleted are still detaching themselves.
    #[error("asset {asset_id} waits for {remaining} child asset(s) to detach themselves")]
    ChildrenDetaching {
        asset_id: String,
        remaining: u32,
        poll_after: Duration,
    },

    /// `childPolicy: Block` and children are linked: the deletion waits for them to go.
    #[error(
        "asset {asset_id} is not deleted while {children} child asset(s) are linked (childPolicy: Block)"
    )]
    DeletionBlocked {
        asset_id: String,
        children: u32,
        poll_after: Duration,
    },

    /// A model's deletion waits: assets of it, or models whose hierarchies use it, remain.
    #[error(
        "asset model {model_id} is not deleted while {count} asset(s) or model(s) use it: {first}"
    )]
    ModelInUse {
        model_id: String,
        count: usize,
        first: String,
        poll_after: Duration,
    },

    /// DeleteAssetModel was accepted, or the model is busy; SiteWise has not finished yet.
    #[error("asset model {model_id} is {state} in SiteWise; waiting")]
    ModelPending {
        model_id: String,
        state: String,
        poll_after: Duration,
    },

    /// The asset is CREATING or UPDATING and cannot be changed yet.
    #[error("asset {asset_id} is {state}; waiting for ACTIVE or FAILED before deleting it")]
    AssetBusy { asset_id: String, state: String },

    /// What SiteWise reported changed while it was being read or acted on (another deletion
    /// detached the asset, an unexpected answer): observe the asset again shortly.
    #[error("asset {asset_id} is being observed again: {detail}")]
    ObserveAgain { asset_id: String, detail: String },

    #[error("the resource has no {0}")]
    MissingMetadata(&'static str),

    /// SiteWise accepted DeleteAsset and then failed the deletion, round after round.
    #[error(
        "SiteWise failed the deletion of asset {asset_id} {rounds} times (last: {detail}); fix the cause in SiteWise, or release the resource without deleting the asset with the annotation sitewise.operator.dev/force-orphan=\"<reason>\""
    )]
    DeletionFailed {
        asset_id: String,
        rounds: u32,
        detail: String,
    },

    /// This replica's lease may have passed to another: it must not change SiteWise.
    #[error("not the leader any more; another replica may be acting")]
    NotLeader,

    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),

    /// An error that was already reported (status, event, metrics); carries the retry delay
    /// chosen for it to `error_policy`.
    #[error("{source} (retry in {:.1}s)", retry_after.as_secs_f64())]
    Reported {
        #[source]
        source: Box<Error>,
        retry_after: Duration,
    },
}

/// How an error is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Nothing is wrong; SiteWise is still working (DELETING, CREATING, UPDATING). Polled.
    Pending,
    /// ThrottlingException or LimitExceededException: exponential backoff.
    Throttled,
    /// ConflictingOperationException or a hierarchy that moved: observe again after a short backoff.
    Conflict,
    /// 5xx, timeouts, connection errors, Kubernetes API errors: exponential backoff.
    Transient,
    /// Needs a person (invalid request, access denied): Terminal condition, Warning event, slow retry.
    Terminal,
    /// The Kubernetes API failed (an outage, a conflict on write): retried soon on a backoff of
    /// its own, so an outage does not slow SiteWise retries after it; nothing is written to
    /// status or events, which could not be written anyway.
    Kubernetes,
}

impl ErrorClass {
    /// Stable label for metrics and event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Throttled => "throttled",
            Self::Conflict => "conflict",
            Self::Transient => "transient",
            Self::Terminal => "terminal",
            Self::Kubernetes => "kubernetes",
        }
    }
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::SiteWise(e) => match e.kind {
                ErrorKind::Throttled => ErrorClass::Throttled,
                // A resource that vanished under a call is re-observed like a conflict.
                // A precondition that failed means "read again", like a conflict.
                ErrorKind::Conflict | ErrorKind::NotFound | ErrorKind::PreconditionFailed => {
                    ErrorClass::Conflict
                }
                ErrorKind::Unavailable => ErrorClass::Transient,
                ErrorKind::InvalidRequest | ErrorKind::AlreadyExists | ErrorKind::Permanent => {
                    ErrorClass::Terminal
                }
            },
            Self::Kube(_) => ErrorClass::Kubernetes,
            Self::NotLeader => ErrorClass::Transient,
            Self::DeletionPending { .. }
            | Self::ChildrenDetaching { .. }
            | Self::DeletionBlocked { .. }
            | Self::ModelInUse { .. }
            | Self::ModelPending { .. }
            | Self::AssetBusy { .. } => ErrorClass::Pending,
            Self::ObserveAgain { .. } => ErrorClass::Conflict,
            Self::MissingMetadata(_) | Self::DeletionFailed { .. } => ErrorClass::Terminal,
            Self::Finalizer(e) => match e.as_ref() {
                finalizer::Error::ApplyFailed(inner) | finalizer::Error::CleanupFailed(inner) => {
                    inner.class()
                }
                finalizer::Error::AddFinalizer(_) | finalizer::Error::RemoveFinalizer(_) => {
                    ErrorClass::Kubernetes
                }
                finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer => {
                    ErrorClass::Terminal
                }
            },
            Self::Reported { source, .. } => source.class(),
        }
    }

    /// When to look again, for a wait whose length is known better than the poll interval.
    pub fn poll_after(&self) -> Option<Duration> {
        match self.root() {
            Self::DeletionPending { poll_after, .. }
            | Self::ChildrenDetaching { poll_after, .. }
            | Self::DeletionBlocked { poll_after, .. }
            | Self::ModelInUse { poll_after, .. }
            | Self::ModelPending { poll_after, .. } => Some(*poll_after),
            _ => None,
        }
    }

    /// The innermost error, without the finalizer and reporting wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Self::Finalizer(e) => match e.as_ref() {
                finalizer::Error::ApplyFailed(inner) | finalizer::Error::CleanupFailed(inner) => {
                    inner.root()
                }
                _ => self,
            },
            Self::Reported { source, .. } => source.root(),
            _ => self,
        }
    }

    pub fn from_finalizer(err: finalizer::Error<Error>) -> Self {
        Self::Finalizer(Box::new(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitewise::Operation;

    fn sitewise(code: &str, status: u16) -> Error {
        let kind = SiteWiseError::kind_for(code, Some(status));
        Error::SiteWise(SiteWiseError::new(Operation::DeleteAsset, kind, code, "m"))
    }

    #[test]
    fn sitewise_errors_are_classified_by_code_then_status() {
        assert_eq!(
            sitewise("ThrottlingException", 429).class(),
            ErrorClass::Throttled
        );
        assert_eq!(
            sitewise("LimitExceededException", 410).class(),
            ErrorClass::Throttled
        );
        assert_eq!(
            sitewise("ConflictingOperationException", 409).class(),
            ErrorClass::Conflict
        );
        assert_eq!(
            sitewise("InternalFailureException", 500).class(),
            ErrorClass::Transient
        );
        assert_eq!(sitewise("SomethingNew", 503).class(), ErrorClass::Transient);
        assert_eq!(sitewise("SomethingNew", 429).class(), ErrorClass::Throttled);
        assert_eq!(
            sitewise("InvalidRequestException", 400).class(),
            ErrorClass::Terminal
        );
        assert_eq!(
            sitewise("AccessDeniedException", 403).class(),
            ErrorClass::Terminal
        );
        assert_eq!(
            sitewise("ResourceNotFoundException", 404).class(),
            ErrorClass::Conflict
        );
    }

    #[test]
    fn wrappers_keep_the_class_of_what_they_wrap() {
        let inner = sitewise("ThrottlingException", 429);
        let wrapped = Error::from_finalizer(finalizer::Error::CleanupFailed(inner));
        assert_eq!(wrapped.class(), ErrorClass::Throttled);
        let reported = Error::Reported {
            source: Box::new(wrapped),
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(reported.class(), ErrorClass::Throttled);
        assert!(matches!(reported.root(), Error::SiteWise(_)));
        let pending = Error::DeletionPending {
            asset_id: "a".into(),
            state: "DELETING".into(),
            poll_after: Duration::from_millis(2200),
        };
        assert_eq!(pending.class(), ErrorClass::Pending);
        let wrapped = Error::from_finalizer(finalizer::Error::CleanupFailed(pending));
        assert_eq!(wrapped.poll_after(), Some(Duration::from_millis(2200)));
        let sitewise_error = sitewise("ThrottlingException", 429);
        assert_eq!(sitewise_error.poll_after(), None);
    }
}
