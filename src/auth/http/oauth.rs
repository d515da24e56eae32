//! The token endpoint (RFC 6749 §4.4) and the public keys that verify its tokens.

use actix_web::http::header;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::model::TokenService;
use crate::auth::token::{issue, TokenEndpoint, TokenFailure, TokenInput};
use crate::error::{ApiError, Problem};
use crate::extract::{RawBody, RequestCtx};
use crate::ratelimit::Applied;
use crate::state::AppState;

const BASIC_CHALLENGE: &str = r#"Basic realm="eap-referrals", charset="UTF-8""#;

/// The token request (RFC 6749 §4.4.2). The client authenticates with HTTP Basic or with
/// `client_id` and `client_secret` here — one or the other, not both.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    #[schema(value_type = GrantType)]
    grant_type: String,
    /// With `client_secret`, instead of HTTP Basic (`client_secret_post`).
    client_id: Option<String>,
    /// With `client_id`, instead of HTTP Basic.
    client_secret: Option<String>,
    /// Accepted and ignored: access is decided by the client's role.
    scope: Option<String>,
}

/// The one grant this server issues tokens for (RFC 6749 §4.4).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GrantType {
    ClientCredentials,
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

fn refusal(failure: &TokenFailure) -> HttpResponse {
    let mut resp = HttpResponse::build(failure.status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if failure.basic {
        resp.insert_header((header::WWW_AUTHENTICATE, BASIC_CHALLENGE));
    }
    resp.json(OAuthError {
        error: failure.error,
        error_description: failure.description,
    })
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    let value = req.headers().get(name)?.to_str().ok()?;
    Some(value.to_owned())
}

/// Issues an access token to a client (OAuth 2.0 client credentials grant).
///
/// An unknown client and a wrong secret take the same time and get the same answer. Every
/// outcome is written to the access log (the client id when it has an issued id's form, never
/// the secret).
#[utoipa::path(
    tag = "auth",
    // Basic, or the credentials in the form (an empty requirement: nothing in a header).
    security(("client_basic" = []), ()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "`invalid_request` or `unsupported_grant_type`",
         body = OAuthError),
        (status = 401, description = "`invalid_client`: unknown client, wrong secret, or revoked",
         body = OAuthError),
        (status = 408, description = "Body not received in time",
         body = Problem, content_type = "application/problem+json"),
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
    let input = TokenInput {
        content_type: header_text(&req, header::CONTENT_TYPE),
        authorization: header_text(&req, header::AUTHORIZATION),
        body: body.into_inner(),
    };
    let deps = TokenEndpoint {
        db: &state.db,
        limits: &state.limits,
        hashing: &state.hashing,
        tokens: &state.tokens,
    };
    let outcome = issue(deps, RequestCtx::of(&req), input).await;
    if let Some(v) = outcome.budget {
        req.extensions_mut().insert(Applied(v));
    }
    Ok(match outcome.result? {
        Ok(issued) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(TokenResponse {
                access_token: issued.access_token,
                token_type: "Bearer",
                expires_in: issued.expires_in,
            }),
        Err(failure) => refusal(&failure),
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
