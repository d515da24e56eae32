//! The admin's queue of referrals no provider could take, and manual assignment.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::model::Decision;
use crate::app::AppState;
use crate::audit::audited;
use crate::auth::Admin;
use crate::db::schema::referrals;
use crate::directory::model::{Code, Urgency};
use crate::directory::store as directory;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Page, PageQuery};
use crate::referrals::model::Status;
use crate::referrals::store::{self as referral_store, ReferralRow};

/// An unroutable referral as an admin sees it: routing attributes and reasons, never contact
/// data or the employee reference.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unroutable {
    pub id: String,
    pub employer_id: String,
    pub service_type: String,
    pub urgency: String,
    pub modality: String,
    pub language: String,
    pub region: String,
    pub created_at: DateTime<Utc>,
    /// Why each contracted provider could not take it.
    pub routing: Option<Decision>,
}

impl From<ReferralRow> for Unroutable {
    fn from(r: ReferralRow) -> Self {
        Unroutable {
            routing: r
                .routing_reasons
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            id: r.id,
            employer_id: r.employer_id,
            service_type: r.service_type,
            urgency: r.urgency,
            modality: r.modality,
            language: r.language,
            region: r.region,
            created_at: r.created_at.and_utc(),
        }
    }
}

/// Lists referrals no provider could take, oldest first.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page of the queue", body = Page<Unroutable>),
    ),
)]
#[get("/v1/admin/unroutable")]
pub async fn list_unroutable(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Unroutable>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = audited(&state.db, admin.0, 200, move |conn| {
        let rows: Vec<ReferralRow> = referrals::table
            .filter(referrals::status.eq(Status::Unroutable.code()))
            .filter(referrals::id.gt(after.unwrap_or_default()))
            .order(referrals::id.asc())
            .limit(limit)
            .select(ReferralRow::as_select())
            .load(conn)?;
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        Ok((rows, ids))
    })
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        Unroutable::from,
    )))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The provider to offer the referral to. It must be active, under capacity, and under a
    /// contract in force with the referral's employer.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub provider_id: String,
}

/// The result of an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assigned {
    pub id: String,
    pub status: Status,
    pub provider_id: String,
    pub offer_expires_at: Option<DateTime<Utc>>,
}

/// Offers an unroutable referral to a provider the admin chose; the provider sees it in its
/// feed like any other offer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = Assign,
    responses(
        (status = 200, description = "Offered to the provider", body = Assigned),
        (status = 404, description = "No such referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral is not unroutable (any more), or the provider \
            is unknown, inactive, uncontracted or full",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields (a `provider_id` not in the issued \
            id form, a lowercase hyphenated UUID, among them)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/unroutable/{id}/assign")]
pub async fn assign(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<Assign>,
) -> Result<web::Json<Assigned>, ApiError> {
    let provider = body.into_inner()?.provider_id;
    let id = id.get()?;
    let st = state.clone();
    let assigned = audited(&state.db, admin.0, 200, move |conn| {
        let row = referral_store::lock_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
        if row.status != Status::Unroutable.code() {
            return Err(ApiError::Conflict {
                detail: format!("the referral is {}, not unroutable", row.status),
                allowed: None,
            });
        }
        let now = crate::db::now();
        let contracted = directory::contracted_providers(conn, &row.employer_id)?
            .iter()
            .any(|(c, p, _)| p.id == provider && c.in_force(now));
        if !contracted {
            // The directory's current state, not the request's shape: 409, like an unknown
            // binding elsewhere.
            return Err(ApiError::Conflict {
                detail: "provider_id: no contract in force with this referral's employer".into(),
                allowed: None,
            });
        }
        if !directory::claim_slot(conn, &provider, &id)? {
            return Err(ApiError::Conflict {
                detail: "provider_id: the provider is inactive, paused or at capacity".into(),
                allowed: None,
            });
        }
        let urgency = Urgency::from_code(&row.urgency).unwrap_or(Urgency::Routine);
        let deadline = crate::referrals::http::offer_deadline(&st, urgency, now);
        let updated = diesel::update(
            referrals::table
                .find(&id)
                .filter(referrals::version.eq(row.version)),
        )
        .set((
            referrals::status.eq(Status::Offered.code()),
            referrals::provider_id.eq(&provider),
            referrals::offer_expires_at.eq(deadline),
            referrals::version.eq(row.version + 1),
            referrals::updated_at.eq(now),
        ))
        .execute(conn)?;
        if updated != 1 {
            return Err(ApiError::Conflict {
                detail: "the referral changed; retry".into(),
                allowed: None,
            });
        }
        // A provider tried before (it declined, or its offer expired) may be chosen again by a
        // person; the attempt row records the new offer either way.
        if referral_store::tried_providers(conn, &id)?.contains(&provider) {
            diesel::update(crate::db::schema::referral_attempts::table.find((&id, &provider)))
                .set((
                    crate::db::schema::referral_attempts::offered_at.eq(now),
                    crate::db::schema::referral_attempts::outcome.eq(None::<String>),
                ))
                .execute(conn)?;
        } else {
            referral_store::insert_attempt(conn, &id, &provider, now)?;
        }
        referral_store::push_event(conn, &provider, &id, "offered", now)?;
        let out = Assigned {
            id: id.clone(),
            status: Status::Offered,
            provider_id: provider,
            offer_expires_at: Some(deadline.and_utc()),
        };
        Ok((out, vec![id]))
    })
    .await?;
    Ok(web::Json(assigned))
}
