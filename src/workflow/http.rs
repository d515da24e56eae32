use std::collections::HashSet;

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::model::{allowed_actions, next, Action, DeclineReason, Outcome, TransitionError};
use super::store;
use crate::app::AppState;
use crate::audit::{self, store::record_alone};
use crate::auth::ProviderCaller;
use crate::db::{write_tx, AnyConnection};
use crate::directory::model::{Code, Language, Modality, Region, Service, Urgency};
use crate::directory::store as directory;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Cursor, Page, Paging};
use crate::referrals::model::{aad, Contact, Status};
use crate::referrals::seal;
use crate::referrals::store::{self as referral_store, ReferralRow};
use crate::routing::model::RoutingRequest;

/// A referral as its provider sees it: routing attributes and workflow state, no contact data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderReferral {
    pub id: String,
    pub service_type: String,
    pub urgency: String,
    pub modality: String,
    pub language: String,
    pub region: String,
    pub status: Status,
    pub outcome: Option<String>,
    /// Also sent as the `ETag`; send it back in `If-Match` to act on the referral.
    pub version: i32,
    /// Accept or decline before this, or the offer moves on.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// What this provider may do now.
    pub allowed_actions: Vec<Action>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&ReferralRow> for ProviderReferral {
    fn from(r: &ReferralRow) -> Self {
        let status = Status::from_code(&r.status).unwrap_or(Status::Submitted);
        ProviderReferral {
            id: r.id.clone(),
            service_type: r.service_type.clone(),
            urgency: r.urgency.clone(),
            modality: r.modality.clone(),
            language: r.language.clone(),
            region: r.region.clone(),
            status,
            outcome: r.outcome.clone(),
            version: r.version,
            offer_expires_at: r.offer_expires_at.map(|t| t.and_utc()),
            allowed_actions: allowed_actions(status).to_vec(),
            created_at: r.created_at.and_utc(),
            closed_at: r.closed_at.map(|t| t.and_utc()),
        }
    }
}

fn with_etag(r: &ReferralRow) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", r.version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ProviderReferral::from(r))
}

/// The provider's referral, or a logged 404: another provider's referral, one no longer offered
/// to it, and an id that does not exist all look the same.
fn mine(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: Option<&str>,
) -> Result<ReferralRow, ApiError> {
    let row = match id {
        Some(id) => referral_store::find_referral(conn, id)?,
        None => None,
    };
    match row.filter(|r| r.provider_id.as_deref() == Some(provider.provider_id.as_str())) {
        Some(r) => Ok(r),
        None => {
            record_alone(conn, &[provider.caller.event(id, 404)])?;
            Err(ApiError::NotFound)
        }
    }
}

/// What `If-Match` asks for: any current representation (`*`), or one of the listed versions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Precondition {
    Any,
    Versions(Vec<i32>),
}

impl Precondition {
    fn holds(&self, version: i32) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Versions(v) => v.contains(&version),
        }
    }
}

/// `If-Match: "3"` (or `3`), a list (`"3", "4"`), or `*`. Missing is 428. RFC 9110 §13.1.1:
/// `*` matches any current representation (every referral a provider can act on has one), and
/// the comparison is strong, so a weak tag (`W/"3"`) or anything unparseable matches no version:
/// 412.
fn if_match(req: &HttpRequest) -> Result<Precondition, ApiError> {
    let raw = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(ApiError::PreconditionRequired("If-Match"))?
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)?
        .trim();
    if raw == "*" {
        return Ok(Precondition::Any);
    }
    Ok(Precondition::Versions(
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.starts_with("W/"))
            .filter_map(|t| t.trim_matches('"').parse().ok())
            .collect(),
    ))
}

fn transition_error(e: TransitionError) -> ApiError {
    match e {
        TransitionError::NotAllowed(allowed) => ApiError::Conflict {
            detail: "this action is not allowed in the referral's current status".into(),
            allowed: Some(
                allowed
                    .iter()
                    .map(|a| {
                        serde_json::to_value(a)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
        },
        TransitionError::Outcome(allowed) => ApiError::validation(
            "outcome",
            "not_allowed",
            format!(
                "closing from this status needs one of: {}",
                allowed
                    .iter()
                    .map(|o| o.code())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// Applies a provider action under `If-Match`, in one transaction with its access event and
/// the provider's own feed entry. Capacity is given back when the referral closes.
fn act(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: Option<String>,
    expected: Precondition,
    action: Action,
    outcome: Option<Outcome>,
) -> Result<ReferralRow, ApiError> {
    let id = mine(conn, provider, id.as_deref())?.id;
    let result = write_tx(conn, |conn| {
        let row = locked_mine(conn, provider, &id)?;
        if !expected.holds(row.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let now = crate::db::now();
        if action == Action::Accept && row.offer_expires_at.is_some_and(|t| t <= now) {
            return Err(ApiError::Conflict {
                detail: "the offer has expired; it is being offered elsewhere".into(),
                allowed: Some(vec![]),
            });
        }
        let status = Status::from_code(&row.status).unwrap_or(Status::Submitted);
        let to = next(status, action, outcome).map_err(transition_error)?;
        let closing = to == Status::Closed;
        let change = referral_store::Move {
            status: Some(to.code().to_owned()),
            outcome: closing.then(|| outcome.map(|o| o.code().to_owned())),
            offer_expires_at: (action == Action::Accept).then_some(None),
            closed_at: closing.then_some(Some(now)),
            ..Default::default()
        };
        if !referral_store::apply(conn, &id, row.version, &change, now)? {
            return Err(ApiError::PreconditionFailed);
        }
        if action == Action::Accept {
            referral_store::close_attempt(conn, &id, &provider.provider_id, "accepted")?;
        }
        if closing {
            directory::release_slot(conn, &provider.provider_id, &id)?;
        }
        referral_store::push_event(conn, &provider.provider_id, &id, to.code(), now)?;
        audit::record(conn, &[provider.caller.event(Some(&id), 200)])?;
        referral_store::find_referral(conn, &id)?.ok_or(ApiError::NotFound)
    });
    log_refusal(conn, provider, &id, result)
}

/// The referral, locked, if it is still this provider's (it may have moved on since `mine`).
fn locked_mine(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: &str,
) -> Result<ReferralRow, ApiError> {
    referral_store::lock_referral(conn, id)?
        .filter(|r| r.provider_id.as_deref() == Some(provider.provider_id.as_str()))
        .ok_or(ApiError::NotFound)
}

/// Logs the refusals worth an auditor's eye once the work's transaction has rolled back: a
/// referral that moved to another provider between the check and the transaction (the same
/// logged 404 as any other), and an attempt to read erased contact data (410).
fn log_refusal<T>(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let status = match &result {
        Err(ApiError::NotFound) => 404,
        Err(ApiError::Gone(_)) => 410,
        _ => return result,
    };
    record_alone(conn, &[provider.caller.event(Some(id), status)])?;
    result
}

/// The provider's referral: routing attributes, status, version (`ETag`), deadline, and what it
/// may do now. No contact data.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses(
        (status = 200, description = "The referral", body = ProviderReferral,
         headers(("ETag" = String))),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/referrals/{id}")]
pub async fn get_referral(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_option();
    let row = state
        .db
        .run(move |conn| {
            let row = mine(conn, &provider, id.as_deref())?;
            record_alone(conn, &[provider.caller.event(Some(&row.id), 200)])?;
            Ok(row)
        })
        .await?;
    Ok(with_etag(&row))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferralQuery {
    /// Only referrals in this status.
    pub status: Option<Status>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The referrals offered to or held by this provider.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])), params(ReferralQuery),
    responses(
        (status = 200, description = "One page", body = Page<ProviderReferral>),
        (status = 422, description = "Invalid query parameters",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/referrals")]
pub async fn list_referrals(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    query: ApiQuery<ReferralQuery>,
) -> Result<web::Json<Page<ProviderReferral>>, ApiError> {
    let q = query.into_inner()?;
    let (after, limit) = crate::pagination::PageQuery::new(q.after, q.limit).resolve()?;
    let status = q.status.map(|s| s.code());
    let provider_id = provider.provider_id.clone();
    let rows = crate::audit::audited(&state.db, provider.caller, 200, move |conn| {
        let rows = store::provider_referrals(conn, &provider_id, status, after.as_deref(), limit)?;
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        Ok((rows, ids))
    })
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        |r| ProviderReferral::from(&r),
    )))
}

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
    let id = id.into_option();
    let row = state
        .db
        .run(move |conn| act(conn, &provider, id, expected, Action::Accept, None))
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
    let id = id.into_option();
    let st = state.clone();
    state
        .db
        .run(move |conn| {
            let id = mine(conn, &provider, id.as_deref())?.id;
            let result = write_tx(conn, |conn| {
                let row = locked_mine(conn, &provider, &id)?;
                if !expected.holds(row.version) {
                    return Err(ApiError::PreconditionFailed);
                }
                let status = Status::from_code(&row.status).unwrap_or(Status::Submitted);
                next(status, Action::Decline, None).map_err(transition_error)?;
                let now = crate::db::now();
                let comment = match (
                    &body.comment,
                    row.key_id.as_deref(),
                    row.wrapped_key.as_deref(),
                ) {
                    (Some(c), Some(key_id), Some(wrapped)) => {
                        let key = seal::unwrap(&st.keys.master, key_id, &id, wrapped)
                            .map_err(|e| ApiError::Internal(format!("unwrap: {e}")))?;
                        Some(seal::seal(
                            &key,
                            &aad(&id, &format!("decline/{}", provider.provider_id)),
                            c.as_bytes(),
                        ))
                    }
                    _ => None,
                };
                directory::release_slot(conn, &provider.provider_id, &id)?;
                store::record_decline(
                    conn,
                    &id,
                    &provider.provider_id,
                    body.reason.code(),
                    comment.as_deref(),
                )?;
                referral_store::push_event(conn, &provider.provider_id, &id, "declined", now)?;
                reoffer(conn, &st, &row, now)?;
                audit::record(conn, &[provider.caller.event(Some(&id), 204)])?;
                Ok(())
            });
            log_refusal(conn, &provider, &id, result)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Offers the referral to the next eligible provider never tried for it, or queues it as
/// unroutable. Used after a decline (and by the offer sweeper).
pub fn reoffer(
    conn: &mut AnyConnection,
    state: &AppState,
    row: &ReferralRow,
    now: chrono::NaiveDateTime,
) -> Result<(), ApiError> {
    let parse = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError::Internal(format!(
                "stored {what} of {} is not a known code",
                row.id
            )))
        }
    };
    let service = Service::from_code(&row.service_type);
    let urgency = Urgency::from_code(&row.urgency);
    let modality = Modality::from_code(&row.modality);
    parse("service", service.is_some())?;
    parse("urgency", urgency.is_some())?;
    parse("modality", modality.is_some())?;
    let (Some(service), Some(urgency), Some(modality)) = (service, urgency, modality) else {
        unreachable!("checked above")
    };
    let request = RoutingRequest {
        service,
        urgency,
        modality,
        language: Language::parse(&row.language).map_err(|e| ApiError::Internal(e.into()))?,
        region: Region::parse(&row.region).map_err(|e| ApiError::Internal(e.into()))?,
    };
    let tried: HashSet<String> = referral_store::tried_providers(conn, &row.id)?
        .into_iter()
        .collect();
    let decision =
        crate::routing::store::place(conn, &row.employer_id, &request, &tried, &row.id, now)?;
    let reasons =
        serde_json::to_string(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
    let change = match &decision.chosen {
        Some(p) => referral_store::Move {
            status: Some(Status::Offered.code().to_owned()),
            provider_id: Some(Some(p.clone())),
            offer_expires_at: Some(Some(crate::referrals::http::offer_deadline(
                state, urgency, now,
            ))),
            routing_reasons: Some(Some(reasons)),
            ..Default::default()
        },
        None => referral_store::Move {
            status: Some(Status::Unroutable.code().to_owned()),
            provider_id: Some(None),
            offer_expires_at: Some(None),
            routing_reasons: Some(Some(reasons)),
            ..Default::default()
        },
    };
    if !referral_store::apply(conn, &row.id, row.version, &change, now)? {
        return Err(ApiError::PreconditionFailed);
    }
    if let Some(p) = &decision.chosen {
        referral_store::insert_attempt(conn, &row.id, p, now)?;
        referral_store::push_event(conn, p, &row.id, "offered", now)?;
    }
    Ok(())
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
    let row = state
        .db
        .run(move |conn| act(conn, &provider, id, expected, action, body.outcome))
        .await?;
    Ok(with_etag(&row))
}

/// How to reach the person, and their note.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactReveal {
    pub referral_id: String,
    pub contact: Contact,
    pub note: Option<String>,
}

/// Reveals the sealed contact block and note, only for a referral this provider has accepted
/// and not closed. Every read is its own access-log event (`contact.read`), written before the
/// data is returned.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses(
        (status = 200, description = "The contact block", body = ContactReveal,
         headers(("Cache-Control" = String, description = "no-store"))),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted, or already closed",
         body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The personal data was erased (on request or by retention)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/referrals/{id}/contact")]
pub async fn contact(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_option();
    let st = state.clone();
    let reveal = state
        .db
        .run(move |conn| {
            let id = mine(conn, &provider, id.as_deref())?.id;
            // Read under lock and log in the same transaction: a cancellation or erasure that
            // commits meanwhile either happens before (nothing is shown) or waits.
            let result = write_tx(conn, |conn| {
            let row = locked_mine(conn, &provider, &id)?;
            // Erased or purged: gone for good, whatever the status, so a provider stops retrying.
            if row.erased_at.is_some() {
                return Err(ApiError::Gone("the personal data of this referral has been erased"));
            }
            let status = Status::from_code(&row.status).unwrap_or(Status::Submitted);
            if !matches!(status, Status::Accepted | Status::Contacted | Status::Scheduled | Status::InProgress) {
                return Err(ApiError::Conflict {
                    detail: "contact details are shown only for a referral this provider has accepted and not closed".into(),
                    allowed: None,
                });
            }
            let (Some(key_id), Some(wrapped), Some(sealed)) = (row.key_id.as_deref(), row.wrapped_key.as_deref(), row.sealed_contact.as_deref()) else {
                return Err(ApiError::Conflict { detail: "the personal data of this referral has been erased".into(), allowed: None });
            };
            let key = seal::unwrap(&st.keys.master, key_id, &row.id, wrapped).map_err(|e| ApiError::Internal(format!("unwrap: {e}")))?;
            let contact: Contact = serde_json::from_slice(&seal::open(&key, &aad(&row.id, "contact"), sealed).map_err(|e| ApiError::Internal(format!("open: {e}")))?)
                // serde's message would quote decrypted text; keep only where it failed.
                .map_err(|e| ApiError::Internal(format!("contact block does not parse ({:?} at {}:{})", e.classify(), e.line(), e.column())))?;
            let note = match row.sealed_note.as_deref() {
                Some(n) => Some(
                    String::from_utf8(seal::open(&key, &aad(&row.id, "note"), n).map_err(|e| ApiError::Internal(format!("open: {e}")))?)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                ),
                None => None,
            };
            // Fail closed: the event is committed with the read, before any of it leaves.
            audit::record(conn, &[provider.caller.event(Some(&row.id), 200)])?;
            Ok(ContactReveal { referral_id: row.id, contact, note })
            });
            log_refusal(conn, &provider, &id, result)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(reveal))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous call; omit to start from the beginning.
    #[param(
        pattern = r"^[0-9]{1,18}\.[0-9]{1,18}$",
        min_length = 3,
        max_length = 37
    )]
    pub after: Option<String>,
    /// Events per call, 1–1000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Long poll: with no event yet, wait up to this many seconds (0–60) for one. Also accepted
    /// as `Prefer: wait=N` (RFC 7240).
    #[validate(range(min = 0, max = 60))]
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u32>,
}

/// `Prefer: wait=N`, capped at 60 s.
fn prefer_wait(req: &HttpRequest) -> Option<u32> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| v.trim().trim_matches('"').parse::<u32>().ok())
                .flatten()
        })
        .map(|w| w.min(60))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    pub referral_id: String,
    /// `offered`, `offer_expired`, `cancelled`, `declined`, `accepted`, `contacted`, `scheduled`,
    /// `in_progress`, `closed`, `erased` (the person's data was destroyed: delete any copy; an
    /// open offer or assignment is withdrawn with it).
    pub kind: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    pub events: Vec<FeedEvent>,
    /// Pass back as `after`. Present even when no events came, so polling can resume.
    pub next_cursor: String,
}

/// A feed cursor is its position as `txid.id` in decimal. Any text matching the documented
/// pattern (`^[0-9]{1,18}\.[0-9]{1,18}$`) is a position, since 18 digits always fit an i64, so
/// every cursor the schema admits is accepted: one never handed out just resumes from there.
fn cursor(p: store::Position) -> String {
    format!("{}.{}", p.txid, p.id)
}

fn parse_cursor(c: &str) -> Option<store::Position> {
    let (txid, id) = c.split_once('.')?;
    let digits = |s: &str| (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(txid) || !digits(id) {
        return None;
    }
    Some(store::Position {
        txid: txid.parse().ok()?,
        id: id.parse().ok()?,
    })
}

pub struct FeedPosition;

impl Cursor for FeedPosition {
    type Position = store::Position;
    const PATTERN: &'static str = r"^[0-9]{1,18}\.[0-9]{1,18}$";
    const MIN_LENGTH: usize = 3;
    const MAX_LENGTH: usize = 37;

    fn decode(c: &str) -> Result<store::Position, ApiError> {
        parse_cursor(c).ok_or_else(|| {
            ApiError::validation(
                "after",
                "invalid",
                "must be a cursor from this feed (txid.id)",
            )
        })
    }
}

/// The feed's paging, which `FeedQuery` documents.
pub type FeedPaging = Paging<FeedPosition, 1000, 100>;

/// The provider's change feed, oldest first, with a cursor that never skips or repeats an
/// event, even when transactions commit out of order. Each delivered referral is an access-log
/// event; an empty poll is not logged.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(
        FeedQuery,
        ("Prefer" = Option<String>, Header,
         description = "`wait=N` (RFC 7240): the same as the `wait` parameter"),
    ),
    responses(
        (status = 200, description = "Events after the cursor (after waiting, if asked, for the \
            first one)",
         body = Feed,
         headers((
             "Preference-Applied" = String,
             description = "`wait=N` when `Prefer: wait` was honoured"
         ))),
        (status = 422, description = "Invalid cursor or limit",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/events")]
pub async fn poll_feed(
    provider: ProviderCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: ApiQuery<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let (after, limit) = FeedPaging::new(q.after, q.limit).resolve()?;
    let after = after.unwrap_or_default();
    let preferred = prefer_wait(&req);
    let wait = q.wait.or(preferred).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(u64::from(wait));
    let wake = state.db.notifier.handle(&provider.provider_id);
    let mut backoff = std::time::Duration::from_millis(25);
    let mut slot = None;
    let rows = loop {
        // Register for the wake-up before looking, so an event committed in between is not missed.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // An empty answer from memory when the provider is known to have nothing newer; the
        // ticket, taken before the query, keeps a write that lands meanwhile from being missed.
        let notifier = &state.db.notifier;
        let ticket = notifier.ticket(&provider.provider_id);
        let rows = if notifier.known_empty(&provider.provider_id, after) {
            (Vec::new(), false)
        } else {
            let (caller, provider_id) = (provider.caller.clone(), provider.provider_id.clone());
            let rows = state
                .db
                .run(move |conn| {
                    // Read first, outside a transaction: an empty poll takes no lock and writes
                    // nothing. Delivered referrals are logged (committed) before any of them leaves.
                    let rows = store::feed(conn, &provider_id, after, limit)?;
                    if rows.is_empty() {
                        let held_back = store::withheld(conn, &provider_id, after)?;
                        return Ok((rows, held_back));
                    }
                    let mut seen = HashSet::new();
                    let delivered: Vec<_> = rows
                        .iter()
                        .filter(|e| seen.insert(e.referral_id.clone()))
                        .map(|e| caller.event(Some(&e.referral_id), 200))
                        .collect();
                    record_alone(conn, &delivered)?;
                    Ok((rows, false))
                })
                .await?;
            let (rows, held_back) = rows;
            if rows.is_empty() && !held_back {
                notifier.learn_empty(&provider.provider_id, ticket, after);
            }
            (rows, held_back)
        };
        let (rows, held_back) = rows;
        if !rows.is_empty()
            || tokio::time::Instant::now() >= deadline
            || state.db.notifier.is_closing()
        {
            break rows;
        }
        if slot.is_none() {
            slot = Some(
                state
                    .db
                    .notifier
                    .try_wait(state.config.max_long_polls)
                    .ok_or(ApiError::TooManyRequests {
                        retry_after: 1,
                        detail: "too many long polls are waiting on this instance; \
                                 retry shortly, or poll without wait",
                    })?,
            );
        }
        // Waiting holds no database connection and no worker thread. Held back (written, but
        // behind the commit horizon, so no second notification will come): look again, backing off to 1 s (the horizon is cluster-wide and a long
        // transaction elsewhere can hold it). Otherwise wait for a wake-up, re-reading every 5 s
        // in case one was lost (a listener reconnecting).
        let recheck = if held_back {
            let b = backoff;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            b
        } else {
            std::time::Duration::from_secs(5)
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + recheck)) => {}
        }
    };
    let next_cursor = cursor(rows.last().map_or(after, |e| e.position()));
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if q.wait.is_none() && preferred.is_some() {
        resp.insert_header(("preference-applied", format!("wait={wait}")));
    }
    Ok(resp.json(Feed {
        events: rows
            .into_iter()
            .map(|e| FeedEvent {
                referral_id: e.referral_id,
                kind: e.kind,
                at: e.created_at.and_utc(),
            })
            .collect(),
        next_cursor,
    }))
}
