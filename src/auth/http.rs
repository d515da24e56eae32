use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::caller::Admin;
use super::model::{generate_secret, hash_secret, verify_secret, Role, Subject, TokenService};
use super::store::{self, ClientRow, NewClient};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::db::write_tx;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId, RawBody, RequestCtx};
use crate::pagination::{Page, PageQuery};

// ---------------------------------------------------------------------------------------------
// Token endpoint (RFC 6749 §4.4) and the public keys.

/// The token request (RFC 6749 §4.4.2). The client authenticates with HTTP Basic or with
/// `client_id` and `client_secret` here — one or the other, not both.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Accepted and ignored: access is decided by the client's role.
    scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// An RFC 9068 JWT access token, signed with EdDSA (Ed25519).
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Lifetime in seconds (at most 900).
    #[schema(example = 600)]
    pub expires_in: u64,
}

/// RFC 6749 §5.2 error response.
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client` or `unsupported_grant_type`.
    #[schema(example = "invalid_client")]
    pub error: &'static str,
    pub error_description: &'static str,
}

struct TokenFailure {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    claimed_client: Option<String>,
    basic: bool,
}

impl TokenFailure {
    fn invalid_request(description: &'static str) -> Self {
        TokenFailure {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
            claimed_client: None,
            basic: false,
        }
    }

    fn response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.basic {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                r#"Basic realm="eap-referrals", charset="UTF-8""#,
            ));
        }
        resp.json(OAuthError {
            error: self.error,
            error_description: self.description,
        })
    }
}

struct TokenRequest {
    client_id: String,
    secret: String,
    grant_type: Option<String>,
    basic: bool,
}

fn form_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn parse_token_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, TokenFailure> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(TokenFailure::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| TokenFailure::invalid_request("the body is not a valid form"))?;
    let get = |name: &str| -> Result<Option<String>, TokenFailure> {
        let mut values = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let first = values.next();
        if values.next().is_some() {
            return Err(TokenFailure::invalid_request("a parameter is repeated"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    let grant_type = get("grant_type")?;
    let form_id = get("client_id")?;
    let form_secret = get("client_secret")?;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, b64)| b64.trim().to_owned());
    let (client_id, secret, used_basic) = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(TokenFailure::invalid_request(
                "use one client authentication method, not both",
            ))
        }
        (Some(b64), None) => {
            let decoded = STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| TokenFailure::invalid_request("malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| TokenFailure::invalid_request("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
            let id = form_decode(id)
                .ok_or_else(|| TokenFailure::invalid_request("malformed Basic credentials"))?;
            let secret = form_decode(secret)
                .ok_or_else(|| TokenFailure::invalid_request("malformed Basic credentials"))?;
            (id, secret, true)
        }
        (None, Some(secret)) => match form_id {
            Some(id) => (id, secret, false),
            None => return Err(TokenFailure::invalid_request("client_id is required")),
        },
        (None, None) => {
            let mut f = TokenFailure::invalid_request("client authentication is required");
            f.status = StatusCode::UNAUTHORIZED;
            f.error = "invalid_client";
            f.claimed_client = form_id;
            return Err(f);
        }
    };
    Ok(TokenRequest {
        client_id,
        secret,
        grant_type,
        basic: used_basic,
    })
}

/// Spends the source address's token budget, then the claimed client's, before any hashing:
/// guessing a secret costs a request from a small budget, and a flood of guesses cannot occupy
/// the hashing slots. Returns the wait when refused.
fn throttle_token(
    state: &AppState,
    req: &HttpRequest,
    ctx: &RequestCtx,
    claimed: Option<&str>,
) -> Option<u64> {
    use crate::ratelimit::{address_key, Applied, Decision};
    let by_address = state
        .limits
        .token_address
        .check(&address_key(ctx.source.as_deref()));
    let by_client = match (by_address, claimed) {
        (Some(v), _) if !v.allowed() => None,
        // Only an issued id can name a client; keying the budget by any other text would let
        // unauthenticated callers fill the limiter with large keys. Such text authenticates
        // nobody and spends the address's budget alone.
        (_, Some(id)) if crate::extract::is_issued_id(id) => state.limits.token_client.check(id),
        (_, _) => None,
    };
    // The headers describe the tighter of the two budgets that applied.
    let shown = by_client
        .filter(|v| !v.allowed() || by_address.is_none_or(|a| a.allowed()))
        .or(by_address);
    if let Some(v) = shown {
        actix_web::HttpMessage::extensions_mut(req).insert(Applied(v));
    }
    [by_address, by_client]
        .into_iter()
        .flatten()
        .find_map(|v| match v.decision {
            Decision::Limited { retry_after } => Some(retry_after),
            Decision::Allowed { .. } => None,
        })
}

/// Issues an access token to a client (OAuth 2.0 client credentials grant).
///
/// An unknown client and a wrong secret take the same time and get the same answer. Every
/// outcome is written to the access log (the client id when it has an issued id's form, never
/// the secret).
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "`invalid_request` or `unsupported_grant_type`",
         body = OAuthError),
        (status = 401, description = "`invalid_client`: unknown client, wrong secret, or revoked",
         body = OAuthError),
        (status = 413, description = "Body too large",
         body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/oauth/token")]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = RequestCtx::of(&req);
    let op = audit::operation("POST", "/oauth/token")
        .ok_or_else(|| ApiError::Internal("token operation missing".into()))?;
    let body = match body.into_inner() {
        Ok(b) => b,
        Err(e) => {
            // A failed token request is logged like any other, even one refused for its size.
            let event =
                AuditEvent::anonymous(&ctx, op, actix_web::ResponseError::status_code(&e).as_u16());
            state
                .db
                .run(move |c| audit::store::record_alone(c, &[event]))
                .await?;
            return Err(e);
        }
    };
    let parsed = parse_token_request(&req, &body);
    let claimed = parsed.as_ref().ok().map(|t| t.client_id.clone());
    if let Some(retry_after) = throttle_token(&state, &req, &ctx, claimed.as_deref()) {
        // A throttled token request is a failed one, and failed token requests are logged.
        let mut event = AuditEvent::anonymous(&ctx, op, 429);
        if let Some(id) = &claimed {
            event = event.claimed_actor(id);
        }
        state
            .db
            .run(move |c| audit::store::record_alone(c, &[event]))
            .await?;
        return Err(ApiError::TooManyRequests {
            retry_after,
            detail: "too many token requests for this client or from this address; retry later",
        });
    }
    // Wait briefly for a hashing slot; past that, shed load rather than queue without bound.
    let _permit = tokio::time::timeout(std::time::Duration::from_secs(2), state.hashing.acquire())
        .await
        .map_err(|_| {
            ApiError::Unavailable("token endpoint saturated: no hashing slot within 2 s".into())
        })?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let st = state.clone();
    let result = web::block(
        move || -> Result<Result<(Subject, String), TokenFailure>, ApiError> {
            let outcome = parsed.and_then(|tr| {
                // Only text of an issued id's shape can name a client; other text (a NUL
                // byte, which PostgreSQL refuses) never reaches SQL. The hash below still runs.
                let client = if crate::extract::is_issued_id(&tr.client_id) {
                    st.db
                        .get()
                        .and_then(|mut conn| Ok(store::find(&mut conn, &tr.client_id)?))
                } else {
                    Ok(None)
                };
                let client = match client {
                    Ok(c) => c.filter(|c| c.revoked_at.is_none()),
                    Err(e) => return Ok(Err(e)),
                };
                // Always run one argon2 verification, so timing does not reveal whether the id exists.
                let ok = verify_secret(&tr.secret, client.as_ref().map(|c| c.secret_hash.as_str()));
                let failure = |error, description, status| TokenFailure {
                    status,
                    error,
                    description,
                    claimed_client: Some(tr.client_id.clone()),
                    basic: tr.basic,
                };
                let client = match client.filter(|_| ok) {
                    Some(c) => c,
                    None => {
                        return Err(failure(
                            "invalid_client",
                            "client authentication failed",
                            StatusCode::UNAUTHORIZED,
                        ))
                    }
                };
                match tr.grant_type.as_deref() {
                    Some("client_credentials") => {}
                    None => {
                        return Err(failure(
                            "invalid_request",
                            "grant_type is required",
                            StatusCode::BAD_REQUEST,
                        ))
                    }
                    Some(_) => {
                        return Err(failure(
                            "unsupported_grant_type",
                            "only client_credentials is supported",
                            StatusCode::BAD_REQUEST,
                        ))
                    }
                }
                let role = client.role().ok_or_else(|| {
                    failure(
                        "invalid_client",
                        "client authentication failed",
                        StatusCode::UNAUTHORIZED,
                    )
                })?;
                Ok(Ok(Subject {
                    client_id: client.id.clone(),
                    role,
                    employer_id: client.employer_id.clone(),
                    provider_id: client.provider_id.clone(),
                    secret_version: client.secret_version(),
                }))
            });
            let mut conn = st.db.get()?;
            match outcome {
                Ok(Ok(subject)) => {
                    let token = st
                        .tokens
                        .issue(&subject, jsonwebtoken::get_current_timestamp());
                    let mut event =
                        AuditEvent::anonymous(&ctx, op, 200).resource(Some(&subject.client_id));
                    event.actor_client_id = Some(subject.client_id.clone());
                    event.actor_role = Some(subject.role.as_str().to_owned());
                    event.tenant_id = subject.employer_id.clone().or(subject.provider_id.clone());
                    audit::store::record_alone(&mut conn, &[event])?;
                    Ok(Ok((subject, token)))
                }
                Ok(Err(e)) => Err(e),
                Err(failure) => {
                    let mut event = AuditEvent::anonymous(&ctx, op, failure.status.as_u16());
                    if let Some(id) = &failure.claimed_client {
                        event = event.claimed_actor(id);
                    }
                    audit::store::record_alone(&mut conn, &[event])?;
                    Ok(Err(failure))
                }
            }
        },
    )
    .await
    .map_err(|e| ApiError::Internal(format!("token task failed: {e}")))??;
    Ok(match result {
        Ok((_, access_token)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: state.tokens.ttl().as_secs(),
            }),
        Err(failure) => failure.response(),
    })
}

/// The public keys that verify access tokens (RFC 7517). During a key rotation both the new
/// and the old key are listed, so tokens signed by either keep verifying until they expire.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "JWK Set", body = super::model::Jwks)),
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(TokenService::jwks(&state.keys))
}

// ---------------------------------------------------------------------------------------------
// Client administration.

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// A label for people, e.g. the portal or system's name.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        example = "Acme HR portal",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    pub role: Role,
    /// Required for `hr_portal`: the employer this client acts for.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    #[serde(default, deserialize_with = "present")]
    pub employer_id: Option<String>,
    /// Required for `provider`: the provider this client acts for.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    #[serde(default, deserialize_with = "present")]
    pub provider_id: Option<String>,
}

/// A binding is given as a string or left out; `null` is refused (422) rather than read as
/// absent, so the server accepts exactly the bodies [`CreateClientRequest`] documents.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The documented body of `POST /v1/admin/clients`: one variant per role, each with exactly
/// the fields that role accepts, so every body the schema admits passes the server's binding
/// rules (`check_binding`). The handler still parses [`CreateClient`], whose field rules this
/// reuses; a test keeps the two in step.
pub struct CreateClientRequest;

impl utoipa::PartialSchema for CreateClientRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let base = serde_json::to_value(<CreateClient as utoipa::PartialSchema>::schema())
            .expect("a schema serializes");
        let field = |name: &str| {
            let mut f = base["properties"][name].clone();
            // Only the string: `null` is refused like any other wrong type.
            if f["type"].is_array() {
                f["type"] = "string".into();
            }
            f
        };
        let variant = |role: &str, description: &str, binding: Option<&str>| {
            let mut properties = serde_json::Map::new();
            properties.insert("name".into(), field("name"));
            properties.insert(
                "role".into(),
                serde_json::json!({"type": "string", "enum": [role]}),
            );
            let mut required = vec!["name", "role"];
            if let Some(b) = binding {
                properties.insert(b.into(), field(b));
                required.push(b);
            }
            serde_json::json!({
                "type": "object",
                "title": role,
                "description": description,
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        };
        serde_json::from_value(serde_json::json!({
            "description": "A new API client. Its role decides its binding: an `hr_portal` acts for one employer, a `provider` for one provider; `admin` and `auditor` are bound to neither.",
            "oneOf": [
                variant("admin", "Manages the directory and API clients.", None),
                variant("auditor", "Reads and verifies the access log.", None),
                variant("hr_portal", "An employer's HR portal.", Some("employer_id")),
                variant("provider", "An EAP provider's system.", Some("provider_id")),
            ],
        }))
        .expect("a valid schema")
    }
}

impl utoipa::ToSchema for CreateClientRequest {}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub role: Role,
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
    pub status: ClientStatus,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

impl From<ClientRow> for ClientView {
    fn from(c: ClientRow) -> Self {
        ClientView {
            role: c.role().unwrap_or(Role::Auditor),
            status: if c.revoked_at.is_some() {
                ClientStatus::Revoked
            } else {
                ClientStatus::Active
            },
            client_id: c.id,
            name: c.name,
            employer_id: c.employer_id,
            provider_id: c.provider_id,
            created_at: utc(c.created_at),
            secret_rotated_at: utc(c.secret_rotated_at),
            revoked_at: c.revoked_at.map(utc),
        }
    }
}

/// A client with its secret. The secret is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    /// 256 random bits; store it now, it is never shown again.
    pub client_secret: String,
}

fn secret_response(status: StatusCode, client: ClientRow, secret: String) -> HttpResponse {
    let location = format!("/v1/admin/clients/{}", client.id);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::CREATED {
        resp.insert_header((header::LOCATION, location));
    }
    resp.json(ClientWithSecret {
        client: client.into(),
        client_secret: secret,
    })
}

/// Hashing is deliberately slow; keep it off the async workers.
async fn hashed(secret: &str) -> Result<String, ApiError> {
    let s = secret.to_owned();
    web::block(move || hash_secret(&s))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))
}

/// Creates an API client and returns its secret once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateClientRequest,
    responses(
        (status = 201, description = "Created; the secret is in this response only",
         body = ClientWithSecret,
         headers(("Location" = String, description = "The new client"))),
        (status = 409, description = "The employer or provider bound to is unknown or inactive",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown fields, or fields the role does not \
            take (a binding not in the issued id form, a lowercase hyphenated UUID, among them)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients")]
pub async fn create_client(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let new = NewClient {
        name: body.name.trim().to_owned(),
        role: body.role,
        employer_id: body.employer_id,
        provider_id: body.provider_id,
    };
    let secret = generate_secret();
    let hash = hashed(&secret).await?;
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let row = store::insert(conn, &new, &hash)?;
                audit::record(conn, &[admin.0.event(Some(&row.id), 201)])?;
                Ok(row)
            })
        })
        .await?;
    Ok(secret_response(StatusCode::CREATED, row, secret))
}

/// Lists API clients (never their secrets).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of clients", body = Page<ClientView>),
    ),
)]
#[get("/v1/admin/clients")]
pub async fn list_clients(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<ClientView>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let rows = store::list(conn, after.as_deref(), limit)?;
                let events: Vec<_> = rows
                    .iter()
                    .map(|r| admin.0.event(Some(&r.id), 200))
                    .collect();
                audit::record(conn, &events)?;
                Ok(rows)
            })
        })
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        ClientView::from,
    )))
}

/// Reads one API client.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/clients/{id}")]
pub async fn get_client(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<ClientView>, ApiError> {
    let id = id.get()?;
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
                audit::record(conn, &[admin.0.event(Some(&row.id), 200)])?;
                Ok(row)
            })
        })
        .await?;
    Ok(web::Json(row.into()))
}

/// Replaces a client's secret. The old secret stops working at once, and so do access tokens
/// issued before the rotation. The new secret is shown once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client with its new secret", body = ClientWithSecret),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client is revoked",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients/{id}/rotate-secret")]
pub async fn rotate_secret(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    let secret = generate_secret();
    let hash = hashed(&secret).await?;
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let now = crate::db::now();
                let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
                if store::set_secret(conn, &id, &hash, now)? == 0 {
                    return Err(ApiError::Conflict {
                        detail: "a revoked client cannot get a new secret".into(),
                        allowed: None,
                    });
                }
                audit::record(conn, &[admin.0.event(Some(&id), 200)])?;
                Ok(ClientRow {
                    secret_rotated_at: now,
                    ..row
                })
            })
        })
        .await?;
    state.auth_cache.forget_client(&row.id);
    Ok(secret_response(StatusCode::OK, row, secret))
}

/// Revokes a client for good: its secret and every token it holds stop working at once.
/// Revoking a revoked client changes nothing and answers the same.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The revoked client", body = ClientView),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A client cannot revoke itself",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients/{id}/revoke")]
pub async fn revoke_client(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<ClientView>, ApiError> {
    let id = id.get()?;
    if id == admin.0.client_id {
        return Err(ApiError::Conflict {
            detail: "a client cannot revoke itself; use another admin client".into(),
            allowed: None,
        });
    }
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let now = crate::db::now();
                store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
                store::revoke(conn, &id, now)?;
                audit::record(conn, &[admin.0.event(Some(&id), 200)])?;
                store::find(conn, &id)?.ok_or(ApiError::NotFound)
            })
        })
        .await?;
    state.auth_cache.forget_client(&row.id);
    Ok(web::Json(row.into()))
}
