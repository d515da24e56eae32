//! The HR portal's side of a referral: submit, read the coarse status, cancel.
//!
//! There is deliberately no way to list or search referrals: a portal only learns about a
//! referral through the id and status token it was given at submission.

use std::collections::HashSet;

use actix_web::http::header::{self, HeaderName};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{
    aad, crisis_resources, employee_ref_digest, generate_status_token, hash_token,
    request_fingerprint, CoarseStatus, CrisisResource, NewReferral, Status,
};
use super::seal::{self, DataKey};
use super::store::{self, ReferralRow};
use crate::app::AppState;
use crate::audit::{self, store::record_alone};
use crate::auth::{Caller, HrPortal};
use crate::db::{write_tx, AnyConnection};
use crate::directory::model::{Code, Urgency};
use crate::directory::store as directory;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, PathId};
use crate::routing::model::RoutingRequest;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REFERRAL_TOKEN: HeaderName = HeaderName::from_static("referral-token");

/// What the portal gets back from a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// UUIDv7.
    pub id: String,
    pub status: CoarseStatus,
    pub created_at: DateTime<Utc>,
    /// Shown once: present it as `Referral-Token` to read or cancel this referral. Only its
    /// hash is stored.
    pub status_token: String,
    /// For `urgency: crisis`: where the person can turn right now, without waiting for a
    /// provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crisis_resources: Option<Vec<CrisisResource>>,
}

/// The coarse view of a referral a portal may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralStatus {
    pub id: String,
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
            status: Status::from_code(&r.status)
                .unwrap_or(Status::Submitted)
                .coarse(),
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

pub fn offer_deadline(state: &AppState, urgency: Urgency, now: NaiveDateTime) -> NaiveDateTime {
    let ttl = match urgency {
        Urgency::Crisis => state.config.offer_ttl.crisis,
        Urgency::Urgent => state.config.offer_ttl.urgent,
        Urgency::Routine => state.config.offer_ttl.routine,
    };
    now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(48))
}

fn replay_aad(referral_id: &str) -> Vec<u8> {
    aad(referral_id, "idempotent-response")
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

/// Creates, seals and routes a referral, inside the caller's transaction. Returns the id and
/// the response body.
fn create(
    conn: &mut AnyConnection,
    state: &AppState,
    caller: &Caller,
    employer_id: &str,
    new: NewReferral,
    (key, fingerprint): (&str, &str),
) -> Result<(String, Vec<u8>), ApiError> {
    {
        let now = crate::db::now();
        let id = uuid::Uuid::now_v7().to_string();
        let token = generate_status_token();
        let data_key = DataKey::generate();
        let contact =
            serde_json::to_vec(&new.contact).map_err(|e| ApiError::Internal(e.to_string()))?;
        let sealed_contact = seal::seal(&data_key, &aad(&id, "contact"), &contact);
        let sealed_note = new
            .note
            .as_ref()
            .map(|n| seal::seal(&data_key, &aad(&id, "note"), n.as_bytes()));
        let (key_id, wrapped) = seal::wrap(&state.keys.master[0], &id, &data_key);

        let request = RoutingRequest {
            service: new.service_type,
            urgency: new.urgency,
            modality: new.modality,
            language: new.language.clone(),
            region: new.region.clone(),
        };
        let decision =
            crate::routing::store::place(conn, employer_id, &request, &HashSet::new(), &id, now)?;
        let (status, offer_expires_at) = match &decision.chosen {
            Some(_) => (
                Status::Offered,
                Some(offer_deadline(state, new.urgency, now)),
            ),
            None => (Status::Unroutable, None),
        };
        store::insert_referral(
            conn,
            &ReferralRow {
                id: id.clone(),
                employer_id: employer_id.to_owned(),
                service_type: new.service_type.code().to_owned(),
                urgency: new.urgency.code().to_owned(),
                modality: new.modality.code().to_owned(),
                language: new.language.as_str().to_owned(),
                region: new.region.as_str().to_owned(),
                employee_ref_hmac: new
                    .employee_ref
                    .as_deref()
                    .map(|r| employee_ref_digest(&state.keys.pepper, employer_id, r)),
                status: status.code().to_owned(),
                outcome: None,
                provider_id: decision.chosen.clone(),
                offer_expires_at,
                version: 1,
                status_token_hash: hash_token(&token),
                key_id: Some(key_id),
                wrapped_key: Some(wrapped),
                sealed_contact: Some(sealed_contact),
                sealed_note,
                routing_reasons: Some(
                    serde_json::to_string(&decision)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                ),
                created_at: now,
                updated_at: now,
                closed_at: None,
                erased_at: None,
            },
        )?;
        if let Some(provider) = &decision.chosen {
            store::insert_attempt(conn, &id, provider, now)?;
            store::push_event(conn, provider, &id, "offered", now)?;
        }
        let body = serde_json::to_vec(&Submitted {
            id: id.clone(),
            status: status.coarse(),
            created_at: now.and_utc(),
            status_token: token,
            crisis_resources: (new.urgency == Urgency::Crisis)
                .then(|| crisis_resources(&state.crisis, &new.region)),
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        // The replayable copy holds the status token, so it is sealed like the contact block.
        let sealed_body = seal::seal(&data_key, &replay_aad(&id), &body);
        store::insert_key(
            conn,
            &caller.client_id,
            key,
            fingerprint,
            &id,
            201,
            &sealed_body,
            now,
        )?;
        audit::record(conn, &[caller.event(Some(&id), 201)])?;
        Ok((id, body))
    }
}

/// Opens a stored response for a replay.
fn replay(
    conn: &mut AnyConnection,
    state: &AppState,
    caller: &Caller,
    referral_id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let row = store::find_referral(conn, referral_id)?.ok_or(ApiError::NotFound)?;
    let (Some(key_id), Some(wrapped)) = (row.key_id.as_deref(), row.wrapped_key.as_deref()) else {
        return Err(ApiError::Conflict {
            detail:
                "this Idempotency-Key answered a referral whose personal data has since been erased"
                    .into(),
            allowed: None,
        });
    };
    let key = seal::unwrap(&state.keys.master, key_id, referral_id, wrapped)
        .map_err(|e| ApiError::Internal(format!("unwrap: {e}")))?;
    let body = seal::open(&key, &replay_aad(referral_id), sealed)
        .map_err(|e| ApiError::Internal(format!("replay: {e}")))?;
    // A replay hands out the status token again: it is an access like the first.
    audit::record(conn, &[caller.event(Some(referral_id), 201)])?;
    Ok(body)
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
        (status = 422, description = "Invalid or unknown fields, or an Idempotency-Key reused with \
            a different body",
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
    let fingerprint = request_fingerprint(&state.keys.pepper, &portal.caller.client_id, &raw);
    let st = state.clone();
    // One transaction: the key, the work, the stored response and the access event commit
    // together or not at all, so a failed attempt leaves the key free for a retry.
    let (id, status, body, replayed) = state
        .db
        .run(move |conn| {
            // A portal of a deactivated employer is refused, and the refusal is logged on its
            // own (the work's transaction below would roll it back).
            if !directory::find_employer(conn, &portal.employer_id)?.is_some_and(|e| e.active) {
                record_alone(conn, &[portal.caller.event(None, 403)])?;
                return Err(ApiError::Forbidden);
            }
            write_tx(conn, |conn| {
                let caller = &portal.caller;
                if !store::lock_key(conn, &caller.client_id, &key)? {
                    return Err(ApiError::Conflict {
                        detail: "a request with this Idempotency-Key is still being processed; retry shortly".into(),
                        allowed: None,
                    });
                }
                match store::find_key(conn, &caller.client_id, &key, crate::db::now())? {
                    // Erased since: the record keeps neither the body's fingerprint nor the
                    // response, and the same person must not be submitted again by a retry.
                    Some(store::KeyRecord { referral_id: Some(_), response_sealed: None, .. }) => Err(ApiError::Conflict {
                        detail: "this Idempotency-Key answered a referral whose personal data has since been erased".into(),
                        allowed: None,
                    }),
                    Some(record) if record.request_hash != fingerprint => Err(ApiError::validation(
                        "Idempotency-Key",
                        "reused",
                        "this key was already used with a different request body",
                    )),
                    Some(store::KeyRecord {
                        referral_id: Some(referral_id),
                        response_status: Some(status),
                        response_sealed: Some(sealed),
                        ..
                    }) => {
                        let body = replay(conn, &st, caller, &referral_id, &sealed)?;
                        Ok((referral_id, status as u16, body, true))
                    }
                    Some(_) => Err(ApiError::Internal("an idempotency record without its response".into())),
                    None => {
                        let (id, body) = create(conn, &st, caller, &portal.employer_id, new, (&key, &fingerprint))?;
                        Ok((id, 201, body, false))
                    }
                }
            })
        })
        .await?;
    let mut resp = created_response(status, body, replayed);
    resp.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&format!("/v1/referrals/{id}"))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

/// Finds the caller's referral by id and status token. Any mismatch — no such id, another
/// employer's referral, a wrong or missing token — is the same 404, and is logged as a denial.
pub(crate) fn authorised(
    conn: &mut AnyConnection,
    portal: &HrPortal,
    id: Option<&str>,
    token: Option<&str>,
) -> Result<ReferralRow, ApiError> {
    let row = match id {
        Some(id) => store::find_referral(conn, id)?,
        None => None,
    };
    let ok = row.filter(|r| {
        r.employer_id == portal.employer_id
            && token.is_some_and(|t| hash_token(t) == r.status_token_hash)
    });
    match ok {
        Some(r) => Ok(r),
        None => {
            record_alone(conn, &[portal.caller.event(id, 404)])?;
            Err(ApiError::NotFound)
        }
    }
}

pub(crate) fn referral_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(REFERRAL_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
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
    let id = id.into_option();
    let token = referral_token(&req);
    let view = state
        .db
        .run(move |conn| {
            let row = authorised(conn, &portal, id.as_deref(), token.as_deref())?;
            audit::store::record_alone(conn, &[portal.caller.event(Some(&row.id), 200)])?;
            Ok(ReferralStatus::from(&row))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
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
    let id = id.into_option();
    let token = referral_token(&req);
    let view = state
        .db
        .run(move |conn| {
            // Authorise first, on its own, so a refusal stays logged after the rollback below.
            let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
            write_tx(conn, |conn| {
                let row = store::lock_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
                let current = Status::from_code(&row.status).unwrap_or(Status::Submitted);
                if current.is_final() {
                    return Err(ApiError::Conflict {
                        detail: format!("the referral is already {}", current.code()),
                        allowed: Some(vec![]),
                    });
                }
                let now = crate::db::now();
                if let Some(provider) = store::withdraw(conn, &row, current, "cancelled", now)? {
                    store::push_event(conn, provider, &id, "cancelled", now)?;
                }
                audit::record(conn, &[portal.caller.event(Some(&id), 200)])?;
                let row = store::find_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
                Ok(ReferralStatus::from(&row))
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
}
