//! The HR portal's side of a referral: submit, read the coarse status, cancel.
//!
//! There is deliberately no way to list or search referrals: a portal only learns about a
//! referral through the id and status token it was given at submission.

use actix_web::http::header::{self, HeaderName};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::intake::{self, Submitted};
use super::model::{request_fingerprint, CoarseStatus, NewReferral};
use super::service;
use super::store::ReferralRow;
use super::token::referral_token;
use crate::auth::HrPortal;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, PathId};
use crate::ids::ReferralId;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The coarse view of a referral a portal may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralStatus {
    #[schema(value_type = String)]
    pub id: ReferralId,
    pub status: CoarseStatus,
    pub created_at: DateTime<Utc>,
    /// When it closed or was cancelled. (No "last updated" time: it would show the portal each
    /// step of the provider's workflow, which the coarse status exists to hide.)
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&ReferralRow> for ReferralStatus {
    fn from(r: &ReferralRow) -> Self {
        ReferralStatus {
            id: r.id.clone(),
            status: r.status.coarse(),
            created_at: r.created_at.and_utc(),
            closed_at: r.closed_at.map(|t| t.and_utc()),
        }
    }
}

/// The Idempotency-Key header: an sf-string (quoted) per the IETF draft, or a bare token. The
/// documented parameter pattern states this same rule; keep the two equal.
fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let raw = req
        .headers()
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::BadRequest("the Idempotency-Key header is required".into()))?
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be printable ASCII".into()))?
        .trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let ok = (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(key.to_owned())
    } else {
        Err(ApiError::BadRequest(
            "Idempotency-Key must be 1–255 printable characters".into(),
        ))
    }
}

fn created_response(status: u16, body: Vec<u8>, replayed: bool) -> HttpResponse {
    let mut resp = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED));
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_TYPE, "application/json"));
    if replayed {
        resp.insert_header(("idempotent-replayed", "true"));
    }
    resp.body(body)
}

/// Submits a request for help. The employer is the caller's; the contact block and note are
/// sealed before they reach the database; the referral is offered to a provider (or queued as
/// unroutable) in the same transaction. Retrying with the same `Idempotency-Key` and body
/// returns the original response.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header,
        description = "Unique per submission (IETF httpapi idempotency-key draft); 1–255 printable \
            ASCII characters other than `\"` and `\\`, bare or as a quoted sf-string",
        pattern = r#"^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$"#,
        min_length = 1, max_length = 257)),
    request_body = NewReferral,
    responses(
        (status = 201, description = "Received; the status token is in this response only",
         body = Submitted,
         headers(
             ("Location" = String),
             ("Idempotent-Replayed" = String, description = "`true` on a replay"),
         )),
        (status = 400, description = "Missing Idempotency-Key, or malformed JSON",
         body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an HR portal, or the employer is deactivated",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still in flight, or \
            answered a referral whose personal data has since been erased",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields (among them `out_of_area` with a \
            country-only `region` or with `in_person`, and an `exclude_providers` id that is not \
            one of `GET /v1/portal/providers`), or an Idempotency-Key reused with a different body",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/referrals")]
pub async fn submit(
    portal: HrPortal,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<NewReferral>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let (new, raw) = body.into_parts()?;
    let errors = new.cross_member_errors();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let fingerprint =
        request_fingerprint(&state.keys.pepper, portal.caller.client_id.as_str(), &raw);
    let (keys, ttl) = (state.keys.clone(), state.config.offer_ttl);
    let answer = intake::submit(
        &state.db,
        keys,
        ttl,
        state.routing.clone(),
        &state.crisis,
        portal,
        key,
        fingerprint,
        new,
    )
    .await?;
    let mut resp = created_response(answer.status, answer.body, answer.replayed);
    resp.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&format!("/v1/referrals/{}", answer.id))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

/// Reads a referral's coarse status. Never the provider, never contact data.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("Referral-Token" = String, Header, description = "The status token from the submission"),
    ),
    responses(
        (status = 200, description = "The coarse status", body = ReferralStatus),
        (status = 404, description = "No such referral for this caller and token",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/referrals/{id}")]
pub async fn read_status(
    portal: HrPortal,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let token = referral_token(&req);
    let row = service::read(&state.db, portal, id.into_option(), token).await?;
    Ok(no_store(&row))
}

/// Cancels a referral: the provider holding it is told through its feed and gets its slot back.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("Referral-Token" = String, Header, description = "The status token from the submission"),
    ),
    responses(
        (status = 200, description = "Cancelled", body = ReferralStatus),
        (status = 404, description = "No such referral for this caller and token",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed or cancelled",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/referrals/{id}/cancel")]
pub async fn cancel(
    portal: HrPortal,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let token = referral_token(&req);
    let row = service::cancel(&state.db, portal, id.into_option(), token).await?;
    Ok(no_store(&row))
}

fn no_store(row: &ReferralRow) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ReferralStatus::from(row))
}
