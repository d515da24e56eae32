//! The token endpoint's work (RFC 6749 §4.4): parse the request, spend the rate budgets, verify
//! the secret on a hashing slot, issue the token, and log the outcome, whatever it is.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::ResponseError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::sync::Semaphore;

use super::model::{verify_secret, Code, Subject, TokenService};
use super::store;
use crate::audit::{self, AuditEvent, Operation};
use crate::db::Db;
use crate::error::ApiError;
use crate::extract::{is_issued_id, RequestCtx};
use crate::ids::ClientId;
use crate::ratelimit::{address_key, Decision, Limits, Verdict};

const FORM_TYPE: &str = "application/x-www-form-urlencoded";
const NOT_A_FORM: &str = "the body must be application/x-www-form-urlencoded";
const MALFORMED_BASIC: &str = "malformed Basic credentials";
const THROTTLED: &str = "too many token requests for this client or from this address; retry later";
/// The grant types this endpoint accepts (RFC 6749 §4.4); the metadata document
/// (`/.well-known/oauth-authorization-server`) advertises this list.
pub const GRANT_TYPES: &[&str] = &["client_credentials"];
/// How `parse` lets a client authenticate, by their RFC 7591 §2 names: HTTP Basic, or
/// `client_id` and `client_secret` in the form body. The metadata document advertises this list.
pub const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];
/// How long a request waits for a hashing slot before the endpoint sheds it.
const HASHING_WAIT: Duration = Duration::from_secs(2);

/// An RFC 6749 §5.2 refusal, answered as such rather than as a problem document.
pub struct TokenFailure {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
    claimed_client: Option<String>,
    /// The client tried HTTP Basic, so the answer carries `WWW-Authenticate: Basic`.
    pub basic: bool,
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
}

/// What the request carried, as the handler read it.
pub struct TokenInput {
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// The body, or why it could not be read (too large, say).
    pub body: Result<Bytes, ApiError>,
}

/// What the token endpoint needs.
pub struct TokenEndpoint<'a> {
    pub db: &'a Db,
    pub limits: &'a Limits,
    pub hashing: &'a Semaphore,
    pub tokens: &'a TokenService,
}

/// An issued access token.
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
}

/// The answer, and the rate budget the response headers describe (even on a refusal).
pub struct TokenOutcome {
    pub budget: Option<Verdict>,
    pub result: Result<Result<Issued, TokenFailure>, ApiError>,
}

/// Handles one token request. An unknown client and a wrong secret take the same time and get
/// the same answer; every outcome is written to the access log (the client id when it has an
/// issued id's form, never the secret).
pub async fn issue(deps: TokenEndpoint<'_>, ctx: RequestCtx, input: TokenInput) -> TokenOutcome {
    let mut budget = None;
    let result = run(deps, ctx, input, &mut budget).await;
    TokenOutcome { budget, result }
}

async fn run(
    deps: TokenEndpoint<'_>,
    ctx: RequestCtx,
    input: TokenInput,
    budget: &mut Option<Verdict>,
) -> Result<Result<Issued, TokenFailure>, ApiError> {
    let op = audit::operation("POST", "/oauth/token")
        .ok_or_else(|| ApiError::Internal("token operation missing".into()))?;
    let body = match input.body {
        Ok(b) => b,
        Err(e) => {
            // A failed token request is logged like any other, even one refused for its size.
            let event = AuditEvent::anonymous(&ctx, op, e.status_code().as_u16());
            record(deps.db, event).await?;
            return Err(e);
        }
    };
    let parsed = parse(
        input.content_type.as_deref(),
        input.authorization.as_deref(),
        &body,
    );
    let claimed = parsed.as_ref().ok().map(|t| t.client_id.clone());
    let address = address_key(ctx.source.as_deref());
    let (shown, retry_after) = throttle(deps.limits, &address, claimed.as_deref());
    *budget = shown;
    if let Some(retry_after) = retry_after {
        // A throttled token request is a failed one, and failed token requests are logged.
        let refusal = ApiError::TooManyRequests {
            retry_after,
            detail: THROTTLED,
        };
        let mut event = AuditEvent::anonymous(&ctx, op, refusal.status_code().as_u16());
        if let Some(id) = &claimed {
            event = event.claimed_actor(id);
        }
        record(deps.db, event).await?;
        return Err(refusal);
    }
    // Wait briefly for a hashing slot; past that, shed load rather than queue without bound.
    let _permit = tokio::time::timeout(HASHING_WAIT, deps.hashing.acquire())
        .await
        .map_err(|_| {
            ApiError::Unavailable("token endpoint saturated: no hashing slot within 2 s".into())
        })?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let db = deps.db.clone();
    let (subject, event) = tokio::task::spawn_blocking(move || authenticate(&db, &ctx, op, parsed))
        .await
        .map_err(|e| ApiError::Internal(format!("token task failed: {e}")))??;
    // Logged before any token leaves, in the writers' turn (not from the hashing thread).
    record(deps.db, event).await?;
    if let Ok(subject) = &subject {
        deps.limits.proven.insert(&subject.client_id, &address);
    }
    Ok(subject.map(|subject| Issued {
        access_token: deps
            .tokens
            .issue(&subject, jsonwebtoken::get_current_timestamp()),
        expires_in: deps.tokens.ttl().as_secs(),
    }))
}

async fn record(db: &Db, event: AuditEvent) -> Result<(), ApiError> {
    db.run(move |c| audit::store::record_alone(c, &[event]))
        .await
}

/// Checks the client's credentials and grant (blocking: one argon2 verification, always);
/// returns the outcome with the access event that must be logged before it is answered.
fn authenticate(
    db: &Db,
    ctx: &RequestCtx,
    op: Operation,
    parsed: Result<TokenRequest, TokenFailure>,
) -> Result<(Result<Subject, TokenFailure>, AuditEvent), ApiError> {
    let outcome = match parsed {
        Ok(tr) => verify(db, tr)?,
        Err(failure) => Err(failure),
    };
    let event = match &outcome {
        Ok(subject) => {
            let mut event =
                AuditEvent::anonymous(ctx, op, op.ok).resource(Some(&subject.client_id));
            event.actor_client_id = Some(subject.client_id.clone());
            event.actor_role = Some(subject.role.code().to_owned());
            event.tenant_id = subject.employer_id.clone().or(subject.provider_id.clone());
            event
        }
        Err(failure) => {
            let mut event = AuditEvent::anonymous(ctx, op, failure.status.as_u16());
            if let Some(id) = &failure.claimed_client {
                event = event.claimed_actor(id);
            }
            event
        }
    };
    Ok((outcome, event))
}

fn verify(db: &Db, tr: TokenRequest) -> Result<Result<Subject, TokenFailure>, ApiError> {
    // Only text of an issued id's shape can name a client; other text (a NUL byte, which
    // PostgreSQL refuses) never reaches SQL. The hash below still runs.
    let client = match ClientId::parse(&tr.client_id) {
        Some(id) => store::find(&mut *db.get()?, &id)?,
        None => None,
    }
    .filter(|c| c.revoked_at.is_none());
    // Always run one argon2 verification, so timing does not reveal whether the id exists.
    let ok = verify_secret(&tr.secret, client.as_ref().map(|c| c.secret_hash.as_str()));
    let failure = |error, description, status| TokenFailure {
        status,
        error,
        description,
        claimed_client: Some(tr.client_id.clone()),
        basic: tr.basic,
    };
    let Some(client) = client.filter(|_| ok) else {
        return Ok(Err(failure(
            "invalid_client",
            "client authentication failed",
            StatusCode::UNAUTHORIZED,
        )));
    };
    match tr.grant_type.as_deref() {
        Some(grant) if GRANT_TYPES.contains(&grant) => {}
        None => {
            return Ok(Err(failure(
                "invalid_request",
                "grant_type is required",
                StatusCode::BAD_REQUEST,
            )))
        }
        Some(_) => {
            return Ok(Err(failure(
                "unsupported_grant_type",
                "only client_credentials is supported",
                StatusCode::BAD_REQUEST,
            )))
        }
    }
    Ok(Ok(Subject {
        secret_version: client.secret_version(),
        client_id: client.id.into_string(),
        role: client.role,
        employer_id: client.employer_id.map(|e| e.into_string()),
        provider_id: client.provider_id.map(|p| p.into_string()),
    }))
}

/// Spends the token budgets (see `ratelimit`) before any hashing: the source address's, then
/// the claimed client id's from that address, then, for an address that never obtained a token
/// for that client, the client's ceiling for such addresses. Guessing a secret costs a request
/// from small budgets, a flood of guesses cannot occupy the hashing slots, and guesses from
/// elsewhere cannot spend the budget the real client uses. A refusal stops the spending there.
/// Returns the budget the headers describe (the refusing one, else the one with the least
/// left), and the wait when refused.
fn throttle(
    limits: &Limits,
    address: &str,
    claimed: Option<&str>,
) -> (Option<Verdict>, Option<u64>) {
    let refused = |v: &Option<Verdict>| v.is_some_and(|v| !v.allowed());
    let mut applied = vec![limits.token_address.check(address)];
    // Only an issued id can name a client; keying a budget by any other text would let
    // unauthenticated callers fill the limiter with large keys. Such text authenticates
    // nobody and spends the address's budget alone.
    if let Some(id) = claimed.filter(|id| is_issued_id(id)) {
        if !refused(&applied[0]) {
            let by_pair = limits.token_client.check(&format!("{id} {address}"));
            if !refused(&by_pair) && !limits.proven.contains(id, address) {
                applied.push(limits.token_client_unproven.check(id));
            }
            applied.push(by_pair);
        }
    }
    let verdicts = applied.into_iter().flatten();
    let shown = verdicts.clone().min_by_key(|v| match v.decision {
        Decision::Limited { .. } => 0,
        Decision::Allowed { remaining, .. } => u64::from(remaining) + 1,
    });
    let retry_after = verdicts
        .filter_map(|v| match v.decision {
            Decision::Limited { retry_after } => Some(retry_after),
            Decision::Allowed { .. } => None,
        })
        .max();
    (shown, retry_after)
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

fn parse(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<TokenRequest, TokenFailure> {
    let is_form = content_type.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(FORM_TYPE))
    });
    if !is_form {
        return Err(TokenFailure::invalid_request(NOT_A_FORM));
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
    let basic = authorization
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
            let (id, secret) = basic_credentials(&b64)
                .ok_or_else(|| TokenFailure::invalid_request(MALFORMED_BASIC))?;
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

/// The id and secret of HTTP Basic credentials.
fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    Some((form_decode(id)?, form_decode(secret)?))
}
