//! SiteWise errors as they travel on the wire: the HTTP status of each exception, the
//! `x-amzn-ErrorType` header and a JSON body with `message` and the modeled members, which is
//! what the AWS SDKs (Rust `json_errors.rs`, botocore `RestJSONParser`) decode.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The exceptions of the SiteWise control-plane model, with their HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorCode {
    InvalidRequestException,
    UnauthorizedException,
    ResourceNotFoundException,
    ConflictingOperationException,
    ResourceAlreadyExistsException,
    LimitExceededException,
    PreconditionFailedException,
    ThrottlingException,
    TooManyTagsException,
    InternalFailureException,
    ServiceUnavailableException,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequestException | Self::TooManyTagsException => StatusCode::BAD_REQUEST,
            Self::UnauthorizedException => StatusCode::UNAUTHORIZED,
            Self::ResourceNotFoundException => StatusCode::NOT_FOUND,
            Self::ConflictingOperationException | Self::ResourceAlreadyExistsException => {
                StatusCode::CONFLICT
            }
            Self::LimitExceededException => StatusCode::GONE,
            Self::PreconditionFailedException => StatusCode::PRECONDITION_FAILED,
            Self::ThrottlingException => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalFailureException => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailableException => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequestException => "InvalidRequestException",
            Self::UnauthorizedException => "UnauthorizedException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::ConflictingOperationException => "ConflictingOperationException",
            Self::ResourceAlreadyExistsException => "ResourceAlreadyExistsException",
            Self::LimitExceededException => "LimitExceededException",
            Self::PreconditionFailedException => "PreconditionFailedException",
            Self::ThrottlingException => "ThrottlingException",
            Self::TooManyTagsException => "TooManyTagsException",
            Self::InternalFailureException => "InternalFailureException",
            Self::ServiceUnavailableException => "ServiceUnavailableException",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::InvalidRequestException,
            Self::UnauthorizedException,
            Self::ResourceNotFoundException,
            Self::ConflictingOperationException,
            Self::ResourceAlreadyExistsException,
            Self::LimitExceededException,
            Self::PreconditionFailedException,
            Self::ThrottlingException,
            Self::TooManyTagsException,
            Self::InternalFailureException,
            Self::ServiceUnavailableException,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A SiteWise error response.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Modeled members besides `message` (`resourceId`, `resourceArn`, `resourceName`).
    pub members: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            members: Map::new(),
        }
    }

    /// Adds `resourceId` and `resourceArn`, required members of ConflictingOperation,
    /// ResourceAlreadyExists and PreconditionFailed.
    pub fn on_resource(mut self, id: &str, arn: &str) -> Self {
        self.members.insert("resourceId".into(), json!(id));
        self.members.insert("resourceArn".into(), json!(arn));
        self
    }

    /// ResourceAlreadyExistsException about the existing resource `id`/`arn`.
    pub fn already_exists(message: impl Into<String>, id: &str, arn: &str) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExistsException, message).on_resource(id, arn)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequestException, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFoundException, message)
    }

    /// The AWS validation message format, naming the field.
    pub fn validation(field: &str, value: &str, constraint: &str) -> Self {
        let shown: String = value.chars().take(64).collect();
        Self::invalid(format!(
            "1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub fn body(&self) -> Value {
        let mut body = self.members.clone();
        body.insert("message".into(), json!(self.message));
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), axum::Json(self.body())).into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.code.as_str()),
        );
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
