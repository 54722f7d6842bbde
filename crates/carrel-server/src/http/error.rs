//! The one place where errors become HTTP responses in the contract's shape:
//! `{error_code, message, details, timestamp, request_id}`.

use std::borrow::Cow;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carrel_ratelimit::Decision;
use carrel_store::{Refusal, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

use super::context;
use crate::accounts::AccountError;
use crate::app::admin::AdminRefusal;
use crate::app::catalog::CatalogRefusal;
use crate::auth::tokens::TokenError;
use crate::catalog::CatalogError;
use crate::limits::RateLimited;

/// Every `error_code` of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    PasswordPolicy,
    Unauthorized,
    InvalidCredentials,
    EmailNotVerified,
    Forbidden,
    CsrfFailed,
    ResourceNotFound,
    MethodNotAllowed,
    Conflict,
    CopyUnavailable,
    LoanLimitReached,
    PatronBlocked,
    RenewalLimitReached,
    HoldPending,
    HoldExists,
    HoldLimitReached,
    /// 409: the circulation rule in force has `holds_allowed = false` (an
    /// addition to the contract).
    HoldsNotAllowed,
    PaymentDeclined,
    OnlinePaymentsDisabled,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    InternalError,
    ServiceUnavailable,
    /// 507: the disk under the database or the upload store is full (an
    /// addition to the contract).
    InsufficientStorage,
}

/// The body of every non-2xx response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error_code: ErrorCode,
    pub message: String,
    /// Structured context, e.g. `{"fields": {"email": "..."}}` for validation errors.
    #[schema(value_type = Object)]
    pub details: Value,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub request_id: String,
}

/// Marks a response whose body already has the contract's shape, so the
/// normalising middleware leaves it alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContractErrorBody;

/// An API error: status, code, a safe message, details and extra headers.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    details: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    /// Adds a response header (e.g. `Retry-After`, `Allow`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400: the request could not be parsed (malformed JSON, bad query string).
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationError, message)
    }

    /// 422: well-formed but invalid; `fields` maps each bad field to a reason.
    pub fn invalid_fields(fields: impl IntoIterator<Item = (String, String)>) -> Self {
        let fields: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationError,
            "one or more fields are invalid",
        )
        .with_detail("fields", Value::Object(fields))
    }

    /// 404 for anything missing or not visible to the caller.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ResourceNotFound,
            "resource not found",
        )
    }

    /// 503: a dependency (the database) is down or too slow.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            message,
        )
    }

    /// 507: no space left where the write goes (database or upload store).
    /// `what` names the full store in the log (`database`, `cover storage`).
    pub fn insufficient_storage(what: &'static str) -> Self {
        tracing::error!(store = what, "no space left to write");
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::InsufficientStorage,
            "the server has no space left to store this; try again later",
        )
    }

    /// 500. The cause is logged here with the request id; the client sees nothing of it.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal server error",
        )
    }

    /// The contract's default error for a bare status produced outside our handlers
    /// (framework rejections, timeouts, panics).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => (ErrorCode::ValidationError, "malformed request"),
            StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "authentication required"),
            StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "forbidden"),
            StatusCode::NOT_FOUND => (ErrorCode::ResourceNotFound, "resource not found"),
            StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (ErrorCode::UnsupportedMediaType, "unsupported media type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => (ErrorCode::ValidationError, "invalid request"),
            StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimitExceeded, "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::REQUEST_TIMEOUT => {
                return Self::unavailable("the request could not be completed in time");
            }
            s if s.is_client_error() => (ErrorCode::ValidationError, "invalid request"),
            _ => (ErrorCode::InternalError, "internal server error"),
        };
        let status = if status.is_server_error() && code == ErrorCode::InternalError {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            status
        };
        Self::new(status, code, message)
    }

    /// Replaces the status, keeping code, message and details.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// One entry of `details`.
    pub fn detail(&self, key: &str) -> Option<&Value> {
        self.details.get(key)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict { constraint } => {
                tracing::debug!(%constraint, "unique constraint refused a write");
                ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::Conflict,
                    "conflicts with an existing resource",
                )
            }
            StoreError::Refused(reason) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, reason)
            }
            StoreError::Circulation(refusal) => refusal_error(refusal),
            StoreError::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::unavailable("the database is unavailable")
            }
            StoreError::StorageFull(_) => ApiError::insufficient_storage("database"),
            other => ApiError::internal(&other),
        }
    }
}

/// Maps a circulation refusal to its error code (the only place that does).
fn refusal_error(refusal: Refusal) -> ApiError {
    let code = match refusal {
        Refusal::CopyUnavailable => ErrorCode::CopyUnavailable,
        Refusal::LoanLimitReached | Refusal::LoanTypeLimitReached => ErrorCode::LoanLimitReached,
        Refusal::PatronBlocked | Refusal::PatronInactive => ErrorCode::PatronBlocked,
        Refusal::RenewalLimitReached => ErrorCode::RenewalLimitReached,
        Refusal::HoldPending => ErrorCode::HoldPending,
        Refusal::HoldExists => ErrorCode::HoldExists,
        Refusal::HoldLimitReached => ErrorCode::HoldLimitReached,
        Refusal::HoldsNotAllowed => ErrorCode::HoldsNotAllowed,
        Refusal::OwnFine => {
            return crate::http::principal::forbidden().with_message(refusal.to_string());
        }
        Refusal::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
        Refusal::ExceedsBalance => {
            return field_error("amount_cents", "must not exceed the balance of the fine");
        }
        Refusal::AlreadyBorrowed
        | Refusal::NotOnLoan
        | Refusal::NotInTransit
        | Refusal::HoldClosed
        | Refusal::HoldNotWaiting
        | Refusal::FineSettled => ErrorCode::Conflict,
    };
    ApiError::new(StatusCode::CONFLICT, code, refusal.to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ctx = context::current();
        let body = ErrorBody {
            error_code: self.code,
            message: self.message.into_owned(),
            details: Value::Object(self.details),
            timestamp: ctx.started_at.format(&Rfc3339).unwrap_or_default(),
            request_id: ctx.request_id.to_string(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read: the connection cannot carry another
            // request, so say so rather than let a client reuse it and fail.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.extensions_mut().insert(ContractErrorBody);
        response
    }
}

/// Maps account errors to the contract (the only place that does).
pub fn account_error(error: AccountError) -> ApiError {
    use StatusCode as S;
    match error {
        AccountError::InvalidFields(fields) => ApiError::invalid_fields(fields),
        AccountError::PasswordPolicy(violations) => {
            let list: Vec<Value> = violations
                .iter()
                .map(|v| serde_json::json!({"code": v.code(), "message": v.message()}))
                .collect();
            ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                ErrorCode::PasswordPolicy,
                "the password does not meet the password policy",
            )
            .with_detail("violations", Value::Array(list))
        }
        AccountError::InvalidCredentials => ApiError::new(
            S::UNAUTHORIZED,
            ErrorCode::InvalidCredentials,
            "invalid credentials",
        ),
        AccountError::EmailNotVerified => ApiError::new(
            S::FORBIDDEN,
            ErrorCode::EmailNotVerified,
            "verify your email address before signing in",
        ),
        AccountError::Unauthorized => crate::http::principal::unauthorized(),
        AccountError::Forbidden => crate::http::principal::forbidden(),
        AccountError::NotFound => ApiError::not_found(),
        AccountError::Conflict(message) => ApiError::new(S::CONFLICT, ErrorCode::Conflict, message),
        AccountError::InvalidToken => {
            ApiError::bad_request("the token is invalid, expired or already used").with_detail(
                "fields",
                serde_json::json!({"token": "is invalid, expired or already used"}),
            )
        }
        AccountError::Busy => ApiError::unavailable("the server is busy; try again shortly")
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        AccountError::RateLimited(refused) => ApiError::from(refused),
        AccountError::Store(error) => ApiError::from(error),
        AccountError::Internal(message) => {
            tracing::error!(error = %message, "internal error");
            ApiError::new(
                S::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "internal server error",
            )
        }
    }
}

/// 429 with `Retry-After` and the `RateLimit-*` headers of the refusing limit.
impl From<RateLimited> for ApiError {
    fn from(refused: RateLimited) -> Self {
        let retry = refused
            .decision
            .retry_after
            .map_or(1, |d| d.as_secs_f64().ceil().max(1.0) as u64);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimitExceeded,
            "too many requests; slow down",
        )
        .with_detail("limit", serde_json::json!(refused.limit.label()))
        .with_detail("retry_after_seconds", serde_json::json!(retry))
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry));
        for (name, value) in rate_limit_headers(&refused.decision) {
            error = error.with_header(HeaderName::from_static(name), value);
        }
        error
    }
}

/// The `RateLimit-*` headers of a limiter decision.
pub(crate) fn rate_limit_headers(d: &Decision) -> [(&'static str, HeaderValue); 3] {
    [
        ("ratelimit-limit", HeaderValue::from(d.limit)),
        ("ratelimit-remaining", HeaderValue::from(d.remaining)),
        (
            "ratelimit-reset",
            HeaderValue::from(d.reset_after.as_secs_f64().ceil() as u64),
        ),
    ]
}

impl From<AdminRefusal> for ApiError {
    fn from(error: AdminRefusal) -> Self {
        match error {
            AdminRefusal::Invalid(fields) => ApiError::invalid_fields(fields),
            AdminRefusal::Store(error) => ApiError::from(error),
        }
    }
}

impl From<CatalogRefusal> for ApiError {
    /// As the catalog's errors: 422 naming the fields, 404, or 409 with the reason.
    fn from(refusal: CatalogRefusal) -> Self {
        CatalogError::from(refusal).into()
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        use StatusCode as S;
        match error {
            CatalogError::InvalidFields(fields) => ApiError::invalid_fields(fields),
            CatalogError::NotFound => ApiError::not_found(),
            CatalogError::Conflict(message) => {
                ApiError::new(S::CONFLICT, ErrorCode::Conflict, message)
            }
            CatalogError::UnsupportedImage => ApiError::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "the file is not a JPEG, PNG, GIF or WebP image",
            ),
            CatalogError::ImageTooLarge => ApiError::new(
                S::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the image is too large",
            ),
            CatalogError::StorageFull => ApiError::insufficient_storage("cover storage"),
            CatalogError::Unavailable(message) => ApiError::unavailable(message),
            CatalogError::Store(error) => ApiError::from(error),
            CatalogError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "internal server error",
                )
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        AccountError::from(error).into()
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        account_error(error)
    }
}

/// Formats an error with its whole `source()` chain, for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// A `details` helper for `{"fields": {name: reason}}` with one field.
pub fn field_error(field: &str, reason: &str) -> ApiError {
    ApiError::invalid_fields([(field.to_owned(), reason.to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_and_an_unavailable_database_503() {
        let full = ApiError::from(StoreError::StorageFull(sqlx::Error::PoolClosed));
        assert_eq!(full.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(full.code(), ErrorCode::InsufficientStorage);
        let down = ApiError::from(StoreError::Unavailable(sqlx::Error::PoolClosed));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        let cover = ApiError::from(CatalogError::from_storage(carrel_media::StorageError::Io {
            op: "writing a cover",
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        }));
        assert_eq!(cover.status(), StatusCode::INSUFFICIENT_STORAGE);
        // Any other storage failure stays a 500.
        let other = ApiError::from(CatalogError::from_storage(carrel_media::StorageError::Io {
            op: "writing a cover",
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
