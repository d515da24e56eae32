//! Admin API for employers. Every call is audited.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::created;
use crate::auth::Admin;
use crate::directory::service;
use crate::directory::service::{EmployerUpdate, EmployerView, Rerouting};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::{EmployerId, ProviderId};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployerInput {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Northshore Health Trust",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub name: String,
    /// Providers the employer is affiliated with (its own clinical services, sister
    /// organisations, shared staff): its referrals are never offered or assigned to them. Ids
    /// of existing providers (409 otherwise), at most 200.
    #[serde(default)]
    #[validate(length(max = 200), custom(function = "crate::extract::issued_ids"))]
    #[schema(max_items = 200)]
    pub affiliated_provider_ids: Vec<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployerPatch {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub name: Option<String>,
    /// Providers the employer is affiliated with (its own clinical services, sister
    /// organisations, shared staff): its referrals are never offered or assigned to them. Ids
    /// of existing providers (409 otherwise), at most 200. Replaces the whole list; an open offer to a
    /// newly affiliated provider is withdrawn and the referral routed again.
    #[validate(length(max = 200), custom(function = "crate::extract::issued_ids"))]
    #[schema(max_items = 200)]
    pub affiliated_provider_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Employer {
    pub id: String,
    pub name: String,
    /// False once deactivated: no new clients or contracts, no new referrals.
    pub active: bool,
    /// Providers the employer is affiliated with: never offered its referrals.
    pub affiliated_provider_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EmployerView> for Employer {
    fn from((r, affiliated_provider_ids): EmployerView) -> Self {
        Employer {
            affiliated_provider_ids,
            id: r.id.into_string(),
            name: r.name,
            active: r.active,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// Creates an employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), request_body = EmployerInput,
    responses(
        (status = 201, description = "Created", body = Employer, headers(("Location" = String))),
        (status = 409, description = "An `affiliated_provider_ids` entry names no provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/employers")]
pub async fn create_employer(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<EmployerInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let name = body.name.trim().to_owned();
    let affiliated = provider_ids(body.affiliated_provider_ids);
    let view =
        service::create_employer(admin.0, &state.db, name, affiliated, rerouting(&state)).await?;
    Ok(created(
        format!("/v1/admin/employers/{}", view.0.id),
        Employer::from(view),
    ))
}

/// Lists employers.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<Employer>),
    ),
)]
#[get("/v1/admin/employers")]
pub async fn list_employers(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Employer>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = service::list_employers(admin.0, &state.db, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |(r, _)| r.id.as_str(),
        Employer::from,
    )))
}

/// Reads one employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Employer id")),
    responses(
        (status = 200, description = "The employer", body = Employer),
        (status = 404, description = "No such employer",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/employers/{id}")]
pub async fn get_employer(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Employer>, ApiError> {
    let id = EmployerId::from_trusted(id.get()?);
    let view = service::get_employer(admin.0, &state.db, id).await?;
    Ok(web::Json(view.into()))
}

/// Renames an employer and/or replaces its affiliations.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Employer id")),
    request_body = EmployerPatch,
    responses(
        (status = 200, description = "The updated employer", body = Employer),
        (status = 404, description = "No such employer",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An `affiliated_provider_ids` entry names no provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/v1/admin/employers/{id}")]
pub async fn update_employer(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<EmployerPatch>,
) -> Result<web::Json<Employer>, ApiError> {
    let body = body.into_inner()?;
    let id = EmployerId::from_trusted(id.get()?);
    let update = EmployerUpdate {
        name: body.name.map(|n| n.trim().to_owned()),
        active: None,
        affiliated: body
            .affiliated_provider_ids
            .map(|ids| (provider_ids(ids), rerouting(&state))),
    };
    let view = service::update_employer(admin.0, &state.db, id, update).await?;
    Ok(web::Json(view.into()))
}

/// Deactivates an employer: its portals can no longer submit referrals. Idempotent.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Employer id")),
    responses(
        (status = 200, description = "The deactivated employer", body = Employer),
        (status = 404, description = "No such employer",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/employers/{id}/deactivate")]
pub async fn deactivate_employer(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Employer>, ApiError> {
    let id = EmployerId::from_trusted(id.get()?);
    let update = EmployerUpdate {
        active: Some(false),
        ..Default::default()
    };
    let view = service::update_employer(admin.0, &state.db, id, update).await?;
    Ok(web::Json(view.into()))
}

/// Ids the body's schema already checked as issued ids.
fn provider_ids(ids: Vec<String>) -> Vec<ProviderId> {
    ids.into_iter().map(ProviderId::from_trusted).collect()
}

fn rerouting(state: &AppState) -> Rerouting {
    Rerouting {
        ttl: state.config.offer_ttl,
        keys: state.keys.clone(),
    }
}
