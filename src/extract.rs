//! Request extractors shared by every capability.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::error::{sanitize_serde_message, ApiError, ErrorCode, FieldError};
use crate::forwarded::TrustedProxies;
use crate::validation::{self, RequestSchemas};

/// A JSON body: `Content-Type: application/json` (415 otherwise), within the body limit (413),
/// well-formed (400), an object valid by the schema its operation documents (422 with every
/// invalid member), then read by serde and checked by its `validator` rules (422).
///
/// The error is held, not raised, until the handler calls [`ApiJson::into_inner`]: actix polls a
/// handler's extractors together, and a body error must never overtake the caller check (an
/// unauthenticated caller gets 401, logged, whatever it sent).
pub struct ApiJson<T>(Result<(T, web::Bytes), ApiError>);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0.map(|(value, _)| value)
    }

    /// The value and the exact bytes it came from (to fingerprint a request).
    pub fn into_parts(self) -> Result<(T, web::Bytes), ApiError> {
        self.0
    }
}

/// A raw body within the body limit, with its error (413) held like [`ApiJson`]'s, for
/// handlers that parse other formats and must log their own failures.
pub struct RawBody(Result<web::Bytes, ApiError>);

impl RawBody {
    pub fn into_inner(self) -> Result<web::Bytes, ApiError> {
        self.0
    }
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { Ok(RawBody(body.await)) })
    }
}

/// Reads the body within the body limit (413) and the body deadline (408). Past the deadline
/// the handler answers without the rest of the body, and actix closes a connection whose body
/// was not read to its end: a body trickled a byte at a time holds a connection for
/// `EAP_BODY_TIMEOUT_SECS` at most.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> {
    let limit = req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0);
    let deadline = req
        .app_data::<BodyDeadline>()
        .map_or(std::time::Duration::from_secs(10), |d| d.0);
    let body = web::Bytes::from_request(req, payload);
    async move {
        match tokio::time::timeout(deadline, body).await {
            Ok(read) => read.map_err(|e| match crate::error::from_actix(&e) {
                ApiError::PayloadTooLarge(_) => ApiError::PayloadTooLarge(limit),
                other => other,
            }),
            Err(_) => Err(ApiError::BodyTimeout(deadline.as_secs())),
        }
    }
}

/// A query string, with its error held like [`ApiJson`]'s.
pub struct ApiQuery<T>(Result<T, ApiError>);

impl<T> ApiQuery<T> {
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string();
        let parsed = documented(req)
            .and_then(|(schemas, template)| schemas.check_query(req.method(), &template, query))
            .and_then(|()| parse_query::<T>(query))
            .and_then(|v| match v.validate() {
                Ok(()) => Ok(v),
                Err(e) => Err(validation::validator_errors(&e, false)),
            });
        std::future::ready(Ok(ApiQuery(parsed)))
    }
}

/// The compiled request schemas and the route template they are filed under. Both are always
/// there for a routed request; their absence is a wiring fault, answered 500.
fn documented(req: &HttpRequest) -> Result<(web::Data<RequestSchemas>, String), ApiError> {
    let schemas = req
        .app_data::<web::Data<RequestSchemas>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("the request schemas are not registered".into()))?;
    let template = req
        .match_pattern()
        .ok_or_else(|| ApiError::Internal("a request outside the route table".into()))?;
    Ok((schemas, template))
}

/// Reads a query string that passed its schema check; a serde error is the fallback, naming
/// the parameter it stopped at.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let (pointer, named) = validation::serde_pointer(e.path());
        let (mut name, code) = (
            pointer.trim_start_matches('/').to_owned(),
            serde_code(&message),
        );
        if code == ErrorCode::Required {
            name = missing_name(&message).unwrap_or_default().to_owned();
        } else if !named {
            name.clear();
        }
        ApiError::Validation(vec![FieldError::parameter(
            name,
            code,
            sanitize_serde_message(&message),
        )])
    })
}

/// The closed code for a serde message.
fn serde_code(message: &str) -> ErrorCode {
    if message.starts_with("unknown field") {
        ErrorCode::UnknownField
    } else if message.starts_with("missing field") {
        ErrorCode::Required
    } else if message.starts_with("invalid type") {
        ErrorCode::InvalidType
    } else {
        ErrorCode::InvalidValue
    }
}

/// The member serde found missing (a name from the type, never from the caller).
fn missing_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
        let documented = documented(req);
        let method = req.method().clone();
        let body = read_body(req, payload);
        Box::pin(async move {
            let parsed = async {
                if !is_json {
                    return Err(ApiError::UnsupportedMediaType("application/json"));
                }
                let body = body.await?;
                let (schemas, template) = documented?;
                schemas.check_body(&method, &template, &json_object(&body)?)?;
                let value = read_json::<T>(&body)?;
                value
                    .validate()
                    .map_err(|e| validation::validator_errors(&e, true))?;
                Ok((value, body))
            };
            Ok(ApiJson(parsed.await))
        })
    }
}

/// The body as a JSON object: 400 when it is not well-formed JSON, 422 when it is JSON but not
/// an object (every body here is one).
pub fn json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("a JSON body is required".into()));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::BadRequest("the body is not well-formed JSON".into()))?;
    if !value.is_object() {
        return Err(ApiError::invalid_member(
            "",
            ErrorCode::InvalidType,
            "the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Parses a JSON object into `T`, naming the member of a shape error by JSON pointer without
/// echoing the submitted value.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde lets a struct deserialize from a JSON array too; every body here is an object.
    json_object(body)?;
    read_json(body)
}

/// [`parse_json`] for a body already known to be an object: serde's reading after the schema
/// check, its error mapping the fallback.
fn read_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // The path ends at an unknown member but stops at the parent of a missing one.
                let (mut pointer, _) = validation::serde_pointer(e.path());
                let code = serde_code(&message);
                if code == ErrorCode::Required {
                    if let Some(name) = missing_name(&message) {
                        pointer = format!("{pointer}/{name}");
                    }
                }
                ApiError::Validation(vec![FieldError::member(
                    pointer,
                    code,
                    sanitize_serde_message(&message),
                )])
            }
            _ => ApiError::BadRequest("the body is not well-formed JSON".into()),
        }
    })?;
    de.end()
        .map_err(|_| ApiError::BadRequest("the body is not well-formed JSON".into()))?;
    Ok(value)
}

/// Every id this API issues is a UUID, so anything else in an `{id}` path segment names nothing.
/// Checking here keeps such text (a NUL byte, megabytes of junk) out of SQL and the access log.
pub fn parse_id(raw: &str) -> Option<String> {
    uuid::Uuid::try_parse(raw)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The `{id}` of the route, checked by [`parse_id`]. Like [`ApiJson`] it holds its error until
/// the handler asks, so the caller check answers first.
pub struct PathId(Option<String>);

impl PathId {
    /// The id, or 404.
    pub fn get(self) -> Result<String, ApiError> {
        self.0.ok_or(ApiError::NotFound)
    }

    pub fn into_option(self) -> Option<String> {
        self.0
    }
}

impl FromRequest for PathId {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(PathId(req.match_info().get("id").and_then(parse_id))))
    }
}

/// The shape of every id this service issues: a UUID, lowercase and hyphenated, as it writes
/// them. Id fields and parameters document it as [`ISSUED_ID_PATTERN`]; text of any other shape
/// names nothing, and checking it first keeps such text (a NUL byte, which PostgreSQL refuses in
/// `text`) out of SQL.
pub fn is_issued_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// [`is_issued_id`] as a schema pattern (the attributes repeat the literal; a test compares).
pub const ISSUED_ID_PATTERN: &str =
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// A body field or parameter that names an object by id: anything not shaped like an id this
/// service issued is a 422 (a well-formed id of nothing is the caller's 404 or 409).
pub fn issued_id(value: &str) -> Result<(), validator::ValidationError> {
    if is_issued_id(value) {
        return Ok(());
    }
    let mut e = validator::ValidationError::new("issued_id");
    e.message = Some("must be an id this service issued (a lowercase, hyphenated UUID)".into());
    Err(e)
}

/// Characters that change how a label reads without being seen: bidirectional embeddings,
/// overrides, isolates and marks (a name that displays as another, a file name that reverses
/// its extension) and zero-width spaces, joiners and invisible operators (two names that look
/// identical and differ). U+2065 is unassigned and not listed. The documented pattern repeats
/// these ranges.
pub const INVISIBLE: &[std::ops::RangeInclusive<char>] = &[
    '\u{061c}'..='\u{061c}',
    '\u{200b}'..='\u{200f}',
    '\u{202a}'..='\u{202e}',
    '\u{2060}'..='\u{2064}',
    '\u{2066}'..='\u{2069}',
    '\u{feff}'..='\u{feff}',
];

/// The zero-width joiner and non-joiner: in the person's own words they are part of the
/// spelling — Persian and Indic names (می‌خواهم), emoji sequences (👨‍👩‍👧) — so
/// [`person_text`] admits them where [`plain_text`] does not.
pub const JOINERS: [char; 2] = ['\u{200c}', '\u{200d}'];

/// A list of ids this service issued (see [`issued_id`]).
pub fn issued_ids(values: &[String]) -> Result<(), validator::ValidationError> {
    values.iter().try_for_each(|v| issued_id(v))
}

/// A label for people: no control characters, no [`INVISIBLE`] characters, not blank. The documented pattern
/// (`validation::PLAIN_TEXT_PATTERN`) is read by ECMA-262, whose white space also counts
/// U+FEFF, so this does too: the two agree (a test compares them).
pub fn plain_text(value: &str) -> Result<(), validator::ValidationError> {
    text_rule(value, &[]).map_err(|()| {
        let mut e = validator::ValidationError::new("plain_text");
        e.message = Some(
            "must be printable text, not blank, without bidirectional or zero-width characters"
                .into(),
        );
        e
    })
}

/// What a person writes about themselves (a referral's `preferred_name` and
/// `best_time_to_contact`): [`plain_text`], but the [`JOINERS`] are allowed, for a person's
/// name must be taken as they spell it. Bidirectional controls and the other invisible
/// characters stay refused, and joiners alone are blank. The documented pattern
/// (`validation::PERSON_TEXT_PATTERN`) agrees (a test compares them). Names shown in admin
/// views (employers, providers, clients) keep the strict rule: there a joiner can make two
/// names look alike.
pub fn person_text(value: &str) -> Result<(), validator::ValidationError> {
    text_rule(value, &JOINERS).map_err(|()| {
        let mut e = validator::ValidationError::new("person_text");
        e.message = Some(
            "must be printable text, not blank, without bidirectional or zero-width characters \
             (zero-width joiners and non-joiners are allowed)"
                .into(),
        );
        e
    })
}

fn text_rule(value: &str, allowed: &[char]) -> Result<(), ()> {
    let blank = value
        .chars()
        .all(|c| c.is_whitespace() || c == '\u{feff}' || allowed.contains(&c));
    let hidden = |c: char| {
        c.is_control() || (INVISIBLE.iter().any(|r| r.contains(&c)) && !allowed.contains(&c))
    };
    if blank || value.chars().any(hidden) {
        return Err(());
    }
    Ok(())
}

/// The id of the current request, in request extensions for handlers and extractors.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The largest accepted body (`EAP_BODY_LIMIT_BYTES`), as app data: the body extractors name
/// it in their 413 without reaching for the whole application state.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How long a body may take to arrive (`EAP_BODY_TIMEOUT_SECS`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub std::time::Duration);

/// Who is asking from where, for the access log: the request id and the peer address.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub source: Option<String>,
}

impl FromRequest for RequestCtx {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(RequestCtx::of(req)))
    }
}

impl RequestCtx {
    /// The command line's own context: a request id of its own (`cli-…`) and the source
    /// `local-cli`, so its access events are told apart from every request's.
    pub fn command_line() -> Self {
        RequestCtx {
            request_id: format!("cli-{}", uuid::Uuid::now_v7()),
            source: Some("local-cli".into()),
        }
    }

    pub fn of(req: &HttpRequest) -> Self {
        RequestCtx {
            request_id: req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            // The socket peer; a forwarding header only when the peer is a trusted proxy (a
            // header is the caller's to forge).
            source: req.peer_addr().map(|a| {
                req.app_data::<TrustedProxies>()
                    .map_or(a.ip(), |t| t.client_address(a.ip(), req.headers()))
                    .to_string()
            }),
        }
    }
}

/// An integer body field as JSON Schema reads `type: integer`: any number with no fractional
/// part, so `3.0` is 3 (serde alone refuses it, and a client generating from the schema may send
/// it). Out of range for the field, or fractional, is the usual `invalid_value`.
pub fn integer<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::{Deserialize, Error, Unexpected};
    let n = serde_json::Number::deserialize(d)?;
    // 2^53: beyond it a float no longer holds every integer exactly.
    let exact = n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    });
    exact
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| D::Error::invalid_value(Unexpected::Other("number"), &"an integer in range"))
}

/// [`integer`] for an optional field (absent or `null` is `None`); use with `#[serde(default)]`.
pub fn optional_integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(serde::Deserialize)]
    struct Wrap<T: TryFrom<i64>>(#[serde(deserialize_with = "integer")] T);
    Ok(<Option<Wrap<T>> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorLocation;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_error(body: &str) -> FieldError {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation(mut v)) => v.remove(0),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[derive(Debug, Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::integer")]
        n: u32,
        #[serde(default, deserialize_with = "super::optional_integer")]
        m: Option<i32>,
    }

    proptest::proptest! {
        /// Only the form the service writes is an issued id: other spellings of a UUID name
        /// the same value but are refused, as the documented pattern refuses them.
        #[test]
        fn issued_ids_are_lowercase_hyphenated_uuids(bytes: [u8; 16], junk in "\\PC{0,40}") {
            let u = uuid::Uuid::from_bytes(bytes);
            let written = u.hyphenated().to_string();
            proptest::prop_assert!(is_issued_id(&written));
            proptest::prop_assert!(issued_id(&written).is_ok());
            proptest::prop_assert!(!is_issued_id(&u.simple().to_string()));
            proptest::prop_assert!(!is_issued_id(&u.braced().to_string()));
            proptest::prop_assert!(!is_issued_id(&u.urn().to_string()));
            let with_nul = format!("{written}\0");
            proptest::prop_assert!(!is_issued_id(&with_nul));
            if written.bytes().any(|b| b.is_ascii_alphabetic()) {
                proptest::prop_assert!(!is_issued_id(&written.to_uppercase()));
            }
            proptest::prop_assert_eq!(
                is_issued_id(&junk),
                uuid::Uuid::try_parse(&junk).is_ok_and(|u| u.hyphenated().to_string() == junk)
            );
        }
    }

    #[test]
    fn integers_are_read_as_json_schema_reads_them() {
        let c: Counts = parse_json(br#"{"n": 3.0, "m": -2.0}"#).unwrap();
        assert_eq!((c.n, c.m), (3, Some(-2)));
        let c: Counts = parse_json(br#"{"n": 7, "m": null}"#).unwrap();
        assert_eq!((c.n, c.m), (7, None));
        let c: Counts = parse_json(br#"{"n": 7}"#).unwrap();
        assert_eq!(c.m, None);
        for bad in [
            r#"{"n": 3.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": 1, "m": 0.5}"#,
        ] {
            assert!(
                matches!(
                    parse_json::<Counts>(bad.as_bytes()),
                    Err(ApiError::Validation(_))
                ),
                "{bad}"
            );
        }
        let e = parse_json::<Counts>(br#"{"n": "3"}"#).unwrap_err();
        assert!(matches!(e, ApiError::Validation(v) if v[0].code == ErrorCode::InvalidType));
    }

    /// serde's reading is the fallback after the schema check; it names members by JSON
    /// pointer too, and never a made-up member name that is not a plain identifier.
    #[test]
    fn shape_errors_name_the_member_by_pointer() {
        let e = field_error(r#"{"name":"a","inner":{"count":"secret-value"}}"#);
        assert_eq!(
            (e.at, e.code),
            (
                ErrorLocation::Pointer("/inner/count".into()),
                ErrorCode::InvalidType
            )
        );
        assert!(!e.message.contains("secret-value"));
        let e = field_error(r#"{"name":"a","inner":{"count":1},"dob":"1990-01-01"}"#);
        assert_eq!(
            (e.at, e.code),
            (
                ErrorLocation::Pointer("/dob".into()),
                ErrorCode::UnknownField
            )
        );
        let e = field_error(r#"{"name":"a","inner":{"count":1,"ssn 123-45-6789":1}}"#);
        assert_eq!(
            (e.at.clone(), e.code),
            (
                ErrorLocation::Pointer("/inner".into()),
                ErrorCode::UnknownField
            )
        );
        assert!(!format!("{e:?}").contains("123-45"), "{e:?}");
        let e = field_error(r#"{"name":"a"}"#);
        assert_eq!(
            (e.at, e.code),
            (ErrorLocation::Pointer("/inner".into()), ErrorCode::Required)
        );
        let e = field_error(r#"[1]"#);
        assert_eq!(
            (e.at, e.code),
            (ErrorLocation::Pointer("".into()), ErrorCode::InvalidType)
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Query {
        from: String,
        limit: Option<u32>,
    }

    /// serde's reading of a query is the fallback after the schema check; it names the
    /// parameter too, and never a made-up name that is not a plain identifier.
    #[test]
    fn query_shape_errors_name_the_parameter() {
        let error = |query: &str| match parse_query::<Query>(query) {
            Err(ApiError::Validation(mut v)) => v.remove(0),
            other => panic!("expected a validation error, got {other:?}"),
        };
        let e = error("from=x&limit=secret-value");
        assert_eq!(
            (e.at, e.code),
            (
                ErrorLocation::Parameter("limit".into()),
                ErrorCode::InvalidValue
            )
        );
        assert!(!e.message.contains("secret-value"), "{}", e.message);
        let e = error("limit=1");
        assert_eq!(
            (e.at, e.code),
            (ErrorLocation::Parameter("from".into()), ErrorCode::Required)
        );
        let e = error("from=x&bogus=1");
        assert_eq!(
            (e.at, e.code),
            (
                ErrorLocation::Parameter("bogus".into()),
                ErrorCode::UnknownField
            )
        );
        let e = error("from=x&ssn%20123-45-6789=1");
        assert_eq!(
            (e.at.clone(), e.code),
            (ErrorLocation::Parameter("".into()), ErrorCode::UnknownField)
        );
        assert!(!format!("{e:?}").contains("123-45"), "{e:?}");
        assert!(parse_query::<Query>("from=x&limit=3").is_ok());
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        for body in [
            "{",
            "not json",
            r#"{"name":"a","inner":{"count":1}} trailing"#,
            "",
        ] {
            assert!(
                matches!(
                    parse_json::<Outer>(body.as_bytes()),
                    Err(ApiError::BadRequest(_))
                ),
                "{body}"
            );
        }
    }
}
