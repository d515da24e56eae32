//! The admin's queue of referrals no provider could take, and manual assignment.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::model::Decision;
use super::service;
use crate::auth::Admin;
use crate::directory::model::{Modality, Service, Urgency};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::{EmployerId, ProviderId, ReferralId};
use crate::pagination::{Page, PageQuery};
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;
use crate::state::AppState;

/// An unroutable referral as an admin sees it: routing attributes and reasons, never contact
/// data or the employee reference.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unroutable {
    #[schema(value_type = String)]
    pub id: ReferralId,
    #[schema(value_type = String)]
    pub employer_id: EmployerId,
    pub service_type: Service,
    pub urgency: Urgency,
    pub modality: Modality,
    #[schema(value_type = crate::directory::model::Language)]
    pub language: String,
    #[schema(value_type = crate::directory::model::Region)]
    pub region: String,
    pub created_at: DateTime<Utc>,
    /// Why each contracted provider could not take it; for a referral carrying the person's
    /// own routing preferences, only the decision-wide summary (no per-provider verdicts).
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
    let rows = service::list_unroutable(&state.db, admin.0, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.as_str(),
        Unroutable::from,
    )))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The provider to offer the referral to. It must be active, under capacity, under a
    /// contract in force with the referral's employer, not affiliated with that employer, and
    /// not ruled out by the person's own preferences. Service, language, modality and region
    /// may be overridden (except for care out of area, which stays in the country).
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
    #[schema(value_type = String)]
    pub id: ReferralId,
    pub status: Status,
    #[schema(value_type = String)]
    pub provider_id: ProviderId,
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
        (status = 409, description = "The referral is not unroutable (any more); or the \
            referral's employer is affiliated with the provider (detail starting \
            `affiliated_provider`); or the provider cannot take it: unknown, inactive, \
            uncontracted, full, not offering the service, neither speaking the language nor \
            interpreting, or ruled out by the person's own preferences, all answered alike \
            (detail starting `provider_not_eligible`). Region, modality, crisis capability and \
            an earlier try may be overridden",
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
    let provider = ProviderId::from_trusted(body.into_inner()?.provider_id);
    let id = ReferralId::from_trusted(id.get()?);
    let ttl = state.config.offer_ttl;
    let keys = state.keys.clone();
    let deadline =
        service::assign(&state.db, ttl, keys, admin.0, id.clone(), provider.clone()).await?;
    Ok(web::Json(Assigned {
        id,
        status: Status::Offered,
        provider_id: provider,
        offer_expires_at: Some(deadline.and_utc()),
    }))
}
