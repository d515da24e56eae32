//! The provider's referrals: one, or a page of them.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use super::{with_etag, ProviderReferral};
use crate::auth::ProviderCaller;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiQuery, PathId};
use crate::pagination::Page;
use crate::referrals::model::Status;
use crate::state::AppState;
use crate::workflow::actions;

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
    let row = actions::read(&state.db, provider, id.into_option()).await?;
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
    let rows = actions::list(&state.db, provider, q.status, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.as_str(),
        |r| ProviderReferral::from(&r),
    )))
}
