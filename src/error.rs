//! The one error type, mapped once to RFC 9457 `application/problem+json`.
//!
//! Handlers and extractors return `ApiError`; `ResponseError` gives the status, and the
//! request middleware (`telemetry::request_lifecycle`) renders every error response — ours and
//! actix-web's own — through [`render`], adding the request id and the instance path. Causes of
//! 500 and 503 are logged there and never returned.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid member of a request body, or one invalid parameter. It says where (`pointer` or
/// `parameter`, exactly one of the two), why (`code`), and for a value of a documented form what
/// was expected; it never repeats the submitted value, nor a member or parameter name that is
/// not a plain identifier (such a name can itself carry personal data).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    #[serde(flatten)]
    pub at: ErrorLocation,
    pub code: ErrorCode,
    /// Human-readable explanation; never echoes the submitted value.
    pub message: String,
    /// For a pattern, format or list of allowed values: the expected form in words, with an
    /// example, e.g. `E.164: + and 2–15 digits, no spaces, e.g. +447700900123`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// The documented shape of a [`FieldError`]: one object whose `pointer` and `parameter` are
/// both optional, exactly one present. Written out because utoipa would describe the flattened
/// location as an `allOf` over a `oneOf`, which client generators cannot make a class of.
impl utoipa::PartialSchema for FieldError {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        serde_json::from_value(serde_json::json!({
            "type": "object",
            "description": "One invalid member of a request body, or one invalid parameter. It \
                says where (`pointer` or `parameter`, exactly one of the two), why (`code`), and \
                for a value of a documented form what was expected; it never repeats the \
                submitted value, nor a member or parameter name that is not a plain identifier \
                (such a name can itself carry personal data).",
            "required": ["code", "message"],
            "properties": {
                "pointer": {
                    "type": "string",
                    "description": "An RFC 6901 JSON pointer into the request body: \
                        `/contact/phone`, `/languages/0`; `\"\"` is the whole body. A member \
                        whose name is not a plain identifier (ASCII letters and `_`, at most \
                        40) is not named: the pointer is then the object that holds it.",
                },
                "parameter": {
                    "type": "string",
                    "description": "The name of the query, path or header parameter, e.g. \
                        `outcome`, `Idempotency-Key`. Empty for a query parameter that is not \
                        documented and whose name is not a plain identifier (the message gives \
                        its position instead).",
                },
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "message": {
                    "type": "string",
                    "description": "Human-readable explanation; never echoes the submitted \
                        value.",
                },
                "expected": {
                    "type": "string",
                    "description": "For a pattern, format or list of allowed values: the \
                        expected form in words, with an example, e.g. `E.164: + and 2–15 \
                        digits, no spaces, e.g. +447700900123`.",
                },
            },
        }))
        .expect("a valid schema")
    }
}

impl utoipa::ToSchema for FieldError {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((ErrorCode::name().into(), ErrorCode::schema()));
    }
}

/// Where an invalid value is: serialized as the one member `pointer` or `parameter`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorLocation {
    /// An RFC 6901 JSON pointer into the request body: `/contact/phone`, `/languages/0`; `""`
    /// is the whole body. A member whose name is not a plain identifier (ASCII letters and `_`,
    /// at most 40) is not named: the pointer is then the object that holds it.
    Pointer(String),
    /// The name of the query, path or header parameter, e.g. `outcome`, `Idempotency-Key`.
    /// Empty for a query parameter that is not documented and whose name is not a plain
    /// identifier (the message gives its position instead).
    Parameter(String),
}

impl std::fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorLocation::Pointer(p) if p.is_empty() => f.write_str("the body"),
            ErrorLocation::Pointer(p) => f.write_str(p),
            ErrorLocation::Parameter(name) => write!(f, "parameter {name}"),
        }
    }
}

/// Why a value was refused: `required` (missing; for a choice such as a phone or an email,
/// none given), `unknown_field` (a member or parameter the document does not list),
/// `invalid_type` (the wrong JSON type), `invalid_value` (not an allowed value, or refused by a
/// rule across fields or by the resource's state), `pattern` (text not of the documented form),
/// `format` (not a valid `email`, `date-time`), `length` (text too short or long), `range` (a
/// number out of range), `item_count` (too few or too many items), `reused` (an
/// `Idempotency-Key` already used with a different body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Required,
    UnknownField,
    InvalidType,
    InvalidValue,
    Pattern,
    Format,
    Length,
    Range,
    ItemCount,
    Reused,
}

impl FieldError {
    /// A member of the body, by its JSON pointer (`""` for the body itself).
    pub fn member(pointer: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        FieldError {
            at: ErrorLocation::Pointer(pointer.into()),
            code,
            message: message.into(),
            expected: None,
        }
    }

    /// A query, path or header parameter, by its name.
    pub fn parameter(name: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        FieldError {
            at: ErrorLocation::Parameter(name.into()),
            code,
            message: message.into(),
            expected: None,
        }
    }

    pub fn expecting(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type.
    #[schema(example = "urn:eap-referrals:problem:validation")]
    pub r#type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence (no personal data, no internal causes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path this problem occurred on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, also in the `X-Request-Id` response header and in every log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For 422: each invalid member or parameter (at most 100), sorted by where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For 405 and 409: what would have been allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 400 with a detail that is safe to show the caller.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no credentials were presented.
    #[error("authentication required")]
    AuthRequired,
    /// 401: missing, malformed, expired or otherwise unacceptable credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden,
    /// 404: also the answer for another tenant's object, so existence never leaks.
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        allowed: Option<Vec<String>>,
    },
    #[error("precondition failed")]
    PreconditionFailed,
    /// 410: the resource existed but its content was destroyed for good (erasure, retention).
    #[error("gone: {0}")]
    Gone(&'static str),
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// The body did not arrive in full within `EAP_BODY_TIMEOUT_SECS` (the seconds).
    #[error("request body timed out")]
    BodyTimeout(u64),
    /// The request head is larger than the service reads (the limit in bytes).
    #[error("request head too large")]
    HeadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("precondition required")]
    PreconditionRequired(&'static str),
    /// 429: wait `retry_after` seconds; the detail says which limit.
    #[error("too many requests")]
    TooManyRequests {
        retry_after: u64,
        detail: &'static str,
    },
    /// 503: the database (or another dependency) cannot be reached; the cause is logged only.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 503: the access log could not be written, so the request was not carried out.
    #[error("access log unavailable: {0}")]
    AuditUnavailable(String),
    /// 500: anything unexpected; the cause is logged only.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for one member of the body, by its JSON pointer.
    pub fn invalid_member(pointer: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::member(pointer, code, message)])
    }

    /// A 422 for one query, path or header parameter, by its name.
    pub fn invalid_parameter(name: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::parameter(name, code, message)])
    }

    /// A well-formed binding to an employer or provider that does not exist or is inactive is
    /// a conflict with the directory's current state (409), not a malformed request: the same
    /// body succeeds once that employer or provider is active.
    pub fn unbound(what: &str) -> Self {
        ApiError::Conflict {
            detail: format!("{what}_id: no active {what} has this id"),
            allowed: None,
        }
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::AuthRequired | ApiError::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden => ("forbidden", "Forbidden"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } => ("conflict", "Conflict"),
            ApiError::PreconditionFailed => ("precondition-failed", "Precondition failed"),
            ApiError::Gone(_) => ("gone", "Gone"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            ApiError::BodyTimeout(_) => ("body-timeout", "Request body timed out"),
            ApiError::HeadTooLarge(_) => ("head-too-large", "Request header fields too large"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::Validation(_) => ("validation", "Validation failed"),
            ApiError::PreconditionRequired(_) => ("precondition-required", "Precondition required"),
            ApiError::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::AuditUnavailable(_) => ("audit-unavailable", "Access log unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// What the caller may read. Internal causes (500, 503) stay in the log.
    fn public_detail(&self) -> Option<String> {
        match self {
            ApiError::BadRequest(d) => Some(d.clone()),
            ApiError::AuthRequired => {
                Some("send an access token: Authorization: Bearer TOKEN".into())
            }
            ApiError::Unauthorized(d) => Some((*d).to_owned()),
            ApiError::Forbidden => Some("this client's role may not call this operation".into()),
            ApiError::NotFound => None,
            ApiError::MethodNotAllowed(m) => Some(format!("allowed methods: {}", m.join(", "))),
            ApiError::Conflict { detail, .. } => Some(detail.clone()),
            ApiError::PreconditionFailed => Some("the resource has changed; fetch it again".into()),
            ApiError::Gone(d) => Some((*d).to_owned()),
            ApiError::PayloadTooLarge(0) => Some("the body is too large".into()),
            ApiError::PayloadTooLarge(limit) => Some(format!("the body exceeds {limit} bytes")),
            ApiError::BodyTimeout(secs) => Some(format!(
                "the body did not arrive in full within {secs} s; the connection is closed"
            )),
            ApiError::HeadTooLarge(limit) => Some(format!(
                "the request line and header fields exceed {limit} bytes"
            )),
            ApiError::UnsupportedMediaType(expected) => {
                Some(format!("expected Content-Type {expected}"))
            }
            ApiError::Validation(list) if list.len() > MAX_FIELD_ERRORS => Some(format!(
                "{} members or parameters are invalid; the first {MAX_FIELD_ERRORS} are listed",
                list.len()
            )),
            ApiError::Validation(_) => Some("one or more fields are invalid".into()),
            ApiError::PreconditionRequired(h) => Some(format!("the {h} header is required")),
            ApiError::TooManyRequests { detail, .. } => Some((*detail).into()),
            ApiError::Unavailable(_) => Some("a dependency is unavailable; retry later".into()),
            ApiError::AuditUnavailable(_) => {
                Some("the access log could not be written, so nothing was done; retry later".into())
            }
            ApiError::Internal(_) => None,
        }
    }

    /// Whether the cause must be logged (it is hidden from the caller).
    pub fn hidden_cause(&self) -> Option<&str> {
        match self {
            ApiError::Unavailable(c) | ApiError::AuditUnavailable(c) | ApiError::Internal(c) => {
                Some(c)
            }
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::AuthRequired | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::AuditUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        render(self, None, None)
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ApiError::NotFound,
            ref other if retryable(other) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

/// Database failures that say nothing about the request and pass by themselves: load (SQLite's
/// busy timeout ran out, PostgreSQL broke a deadlock or a serialisation conflict), a session
/// that ended under the request (a restart, a failover, `pg_terminate_backend`), a server
/// starting, stopping or read-only after a failover, and a disk that is full or refusing writes.
/// The transaction was rolled back, so the client is told to retry (503), never that the
/// service is broken (500).
fn retryable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match e {
        Error::DatabaseError(
            Kind::ClosedConnection | Kind::SerializationFailure | Kind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            RETRYABLE_MESSAGES.iter().any(|m| message.contains(m))
        }
        // The session died inside a transaction, so its state is unknown; the pool drops it.
        Error::BrokenTransactionManager => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => retryable(commit_error),
        _ => false,
    }
}

/// The messages of the failures `retryable` accepts that the drivers give no error kind for
/// (SQLite's result codes and PostgreSQL's SQLSTATEs 57P01–57P03, 53100 and 53300 reach diesel
/// only as text).
const RETRYABLE_MESSAGES: &[&str] = &[
    "database is locked",
    "deadlock detected",
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "too many clients",
    "database or disk is full",
    // PostgreSQL's disk full (SQLSTATE 53100): "could not extend file …: No space left on
    // device", and the same errno when it writes a temporary or WAL file.
    "no space left on device",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
];

/// The most entries one 422 lists, so a hostile body cannot make a huge answer.
pub const MAX_FIELD_ERRORS: usize = 100;

/// Builds the problem+json response; the request middleware passes the request id and path.
pub fn render(err: &ApiError, request_id: Option<&str>, instance: Option<&str>) -> HttpResponse {
    let status = err.status_code();
    let (slug, title) = err.kind();
    let problem = Problem {
        r#type: format!("urn:eap-referrals:problem:{slug}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: err.public_detail(),
        instance: instance.map(str::to_owned),
        request_id: request_id.map(str::to_owned),
        errors: match err {
            ApiError::Validation(list) => {
                Some(list.iter().take(MAX_FIELD_ERRORS).cloned().collect())
            }
            _ => None,
        },
        allowed: match err {
            ApiError::MethodNotAllowed(m) => Some(m.clone()),
            ApiError::Conflict { allowed, .. } => allowed.clone(),
            _ => None,
        },
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_TYPE, "application/problem+json"));
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    match err {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        ApiError::AuthRequired => {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="eap-referrals""#),
            ));
        }
        ApiError::Unauthorized(_) => {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="eap-referrals", error="invalid_token""#),
            ));
        }
        ApiError::MethodNotAllowed(methods) => {
            resp.insert_header((header::ALLOW, methods.join(", ")));
        }
        ApiError::TooManyRequests { retry_after, .. } => {
            resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        ApiError::Unavailable(_) | ApiError::AuditUnavailable(_) => {
            resp.insert_header((header::RETRY_AFTER, "5"));
        }
        _ => {}
    }
    resp.body(serde_json::to_vec(&problem).unwrap_or_default())
}

/// Maps an error raised by actix-web itself (extractors, routing) onto `ApiError`.
pub fn from_actix(err: &actix_web::Error) -> ApiError {
    if let Some(api) = err.as_error::<ApiError>() {
        return api.clone();
    }
    if let Some(e) = err.as_error::<actix_web::error::PayloadError>() {
        return match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge(0),
            _ => ApiError::BadRequest("the request body could not be read".into()),
        };
    }
    if let Some(e) = err.as_error::<actix_web::error::QueryPayloadError>() {
        let actix_web::error::QueryPayloadError::Deserialize(inner) = e else {
            return ApiError::BadRequest("invalid query string".into());
        };
        // `ApiQuery` reports each parameter; this is actix's own `web::Query`, unused here.
        return ApiError::Validation(vec![FieldError::parameter(
            "",
            ErrorCode::InvalidValue,
            sanitize_serde_message(&inner.to_string()),
        )]);
    }
    if err.as_error::<actix_web::error::PathError>().is_some() {
        return ApiError::NotFound;
    }
    let status = err.as_response_error().status_code();
    match status.as_u16() {
        400 => ApiError::BadRequest("the request could not be understood".into()),
        401 => ApiError::AuthRequired,
        403 => ApiError::Forbidden,
        404 => ApiError::NotFound,
        413 => ApiError::PayloadTooLarge(0),
        415 => ApiError::UnsupportedMediaType("application/json"),
        503 => ApiError::Unavailable(err.to_string()),
        s if s >= 500 => ApiError::Internal(err.to_string()),
        _ => ApiError::BadRequest("the request could not be processed".into()),
    }
}

/// serde's messages quote the offending value (`invalid type: string "…"`); a request body
/// may hold contact data, so keep only what was expected.
pub fn sanitize_serde_message(msg: &str) -> String {
    // Drop serde_json's " at line L column C" suffix; the field path says where.
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    // The value comes before serde's own ", expected", so split at the last one: a value that
    // itself contains ", expected …" must not leak through.
    let expected = msg.rsplit_once(", expected ").map(|(_, e)| e);
    if msg.starts_with("unknown field") {
        return match expected {
            Some(e) => format!(
                "unknown field; expected one of {}",
                e.trim_start_matches("one of ")
            ),
            None => "unknown field".into(),
        };
    }
    if msg.starts_with("missing field") {
        return "required".into();
    }
    let lead = if msg.starts_with("invalid type") {
        "wrong type"
    } else if msg.starts_with("unknown variant") {
        "unknown value"
    } else if msg.starts_with("invalid length") {
        "wrong length"
    } else {
        "invalid value"
    };
    match expected {
        Some(e) => format!("{lead}; expected {e}"),
        None => lead.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_trouble_that_passes_by_itself_is_503_and_the_rest_500() {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        let db = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_owned()));
        // What the drivers report when a session is ended, the server restarts or fails over,
        // or SQLite's disk fills or turns read-only (the messages as libpq and SQLite word them).
        let retryable = [
            db(
                Kind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            db(
                Kind::Unknown,
                "terminating connection due to administrator command",
            ),
            db(
                Kind::Unknown,
                "FATAL:  the database system is shutting down",
            ),
            db(Kind::Unknown, "no connection to the server\n"),
            db(
                Kind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            db(Kind::Unknown, "database or disk is full"),
            db(
                Kind::Unknown,
                "could not extend file \"base/16384/16700\": No space left on device",
            ),
            db(Kind::Unknown, "attempt to write a readonly database"),
            db(Kind::Unknown, "disk I/O error"),
            db(Kind::Unknown, "database is locked"),
            Error::BrokenTransactionManager,
        ];
        for e in retryable {
            let shown = e.to_string();
            assert_eq!(
                ApiError::from(e).status_code(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{shown}"
            );
        }
        let defects = [
            db(
                Kind::UniqueViolation,
                "duplicate key value violates unique constraint",
            ),
            db(Kind::Unknown, "syntax error at or near \"SELEC\""),
            Error::QueryBuilderError("bad query".into()),
        ];
        for e in defects {
            let shown = e.to_string();
            assert_eq!(
                ApiError::from(e).status_code(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{shown}"
            );
        }
        assert_eq!(
            ApiError::from(Error::NotFound).status_code(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn serde_messages_lose_the_submitted_value() {
        let cases = [
            (
                r#"invalid type: string "alice@example.com", expected u32 at line 1 column 30"#,
                "wrong type; expected u32",
            ),
            (
                r#"unknown variant `alice@example.com`, expected one of `a`, `b`"#,
                "unknown value; expected one of `a`, `b`",
            ),
            (
                r#"invalid value: string "+4412345", expected a phone"#,
                "invalid value; expected a phone",
            ),
            (
                "unknown field `date_of_birth`, expected one of `name`, `phone`",
                "unknown field; expected one of `name`, `phone`",
            ),
            ("missing field `contact`", "required"),
            (
                r#"invalid type: string "x, expected alice@example.com", expected a boolean"#,
                "wrong type; expected a boolean",
            ),
        ];
        for (input, want) in cases {
            let got = sanitize_serde_message(input);
            assert_eq!(got, want);
            assert!(!got.contains("alice") && !got.contains("4412345"), "{got}");
        }
    }

    #[test]
    fn problems_carry_status_type_and_request_id() {
        let resp = render(
            &ApiError::invalid_member("/a", ErrorCode::Required, "is required"),
            Some("req-1"),
            Some("/x"),
        );
        assert_eq!(resp.status(), 422);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }

    #[test]
    fn hidden_causes_do_not_reach_the_body() {
        let err = ApiError::Internal("password=hunter2 in /secret/path".into());
        let problem_detail = err.public_detail();
        assert_eq!(problem_detail, None);
        assert_eq!(err.hidden_cause(), Some("password=hunter2 in /secret/path"));
    }
}
