//! A provider's actions on an offered or held referral, under `If-Match`.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::{if_match, with_etag, ProviderReferral};
use crate::auth::ProviderCaller;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, PathId};
use crate::state::AppState;
use crate::workflow::actions::{self, Declined};
use crate::workflow::model::{Action, DeclineReason, Outcome};

/// Accepts an offer. The referral is this provider's until it closes.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("If-Match" = String, Header, description = "The referral's ETag (strong), a list of \
            ETags, or `*` (any current version, RFC 9110 §13.1.1); 428 when missing, 412 when \
            none matches"),
    ),
    responses(
        (status = 200, description = "Accepted", body = ProviderReferral,
         headers(("ETag" = String))),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the current status; `allowed` lists what is",
         body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The referral changed since that version",
         body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/referrals/{id}/accept")]
pub async fn accept(
    provider: ProviderCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let row = actions::act(
        &state.db,
        provider,
        id.into_option(),
        expected,
        Action::Accept,
        None,
    )
    .await?;
    Ok(with_etag(&row))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decline {
    pub reason: DeclineReason,
    /// For the EAP's administrators; sealed with the referral's key. No personal data, please.
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub comment: Option<String>,
}

/// Declines an offer. The referral is offered to the next eligible provider that has not been
/// tried, or queued as unroutable; this provider's slot is freed.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("If-Match" = String, Header, description = "The referral's ETag (strong), a list of \
            ETags, or `*` (any current version, RFC 9110 §13.1.1); 428 when missing, 412 when \
            none matches"),
    ),
    request_body = Decline,
    responses(
        (status = 204, description = "Declined; the referral has left this provider"),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the current status",
         body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The referral changed since that version",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown reason code or invalid fields",
         body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/referrals/{id}/decline")]
pub async fn decline(
    provider: ProviderCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<Decline>,
) -> Result<HttpResponse, ApiError> {
    // A malformed body is wrong whatever the referral's state: report it before the
    // precondition, which only a well-formed request can meaningfully fail.
    let body = body.into_inner()?;
    let expected = if_match(&req)?;
    let declined = Declined {
        reason: body.reason,
        comment: body.comment,
    };
    let (keys, ttl) = (state.keys.clone(), state.config.offer_ttl);
    let id = id.into_option();
    actions::decline(&state.db, keys, ttl, provider, id, expected, declined).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The statuses a provider reports.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    Contacted,
    Scheduled,
    InProgress,
    Closed,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub status: ReportedStatus,
    /// Required with `closed`.
    pub outcome: Option<Outcome>,
}

/// Reports progress: `contacted`, `scheduled`, `in_progress`, or `closed` with an outcome. An
/// invalid step is 409 listing the allowed ones. Closing frees the provider's slot.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("If-Match" = String, Header, description = "The referral's ETag (strong), a list of \
            ETags, or `*` (any current version, RFC 9110 §13.1.1); 428 when missing, 412 when \
            none matches"),
    ),
    request_body = StatusUpdate,
    responses(
        (status = 200, description = "Updated", body = ProviderReferral,
         headers(("ETag" = String))),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the current status; `allowed` lists what is",
         body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The referral changed since that version",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status or an outcome that does not fit",
         body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/referrals/{id}/status")]
pub async fn update_status(
    provider: ProviderCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<StatusUpdate>,
) -> Result<HttpResponse, ApiError> {
    // A malformed body is wrong whatever the referral's state: report it before the
    // precondition, which only a well-formed request can meaningfully fail.
    let body = body.into_inner()?;
    let expected = if_match(&req)?;
    let action = match body.status {
        ReportedStatus::Contacted => Action::Contacted,
        ReportedStatus::Scheduled => Action::Scheduled,
        ReportedStatus::InProgress => Action::InProgress,
        ReportedStatus::Closed => Action::Close,
    };
    let id = id.into_option();
    let row = actions::act(&state.db, provider, id, expected, action, body.outcome).await?;
    Ok(with_etag(&row))
}
