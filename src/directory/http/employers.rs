//! Admin API for employers. Every call is audited.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::created;
use crate::auth::Admin;
use crate::directory::service;
use crate::directory::store::EmployerRow;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::EmployerId;
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Employer {
    pub id: String,
    pub name: String,
    /// False once deactivated: no new clients or contracts, no new referrals.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EmployerRow> for Employer {
    fn from(r: EmployerRow) -> Self {
        Employer {
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
    let row = service::create_employer(admin.0, &state.db, body.name.trim().to_owned()).await?;
    Ok(created(
        format!("/v1/admin/employers/{}", row.id),
        Employer::from(row),
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
        |r| r.id.as_str(),
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
    let row = service::get_employer(admin.0, &state.db, id).await?;
    Ok(web::Json(row.into()))
}

/// Renames an employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Employer id")),
    request_body = EmployerPatch,
    responses(
        (status = 200, description = "The updated employer", body = Employer),
        (status = 404, description = "No such employer",
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
    let name = body.name.map(|n| n.trim().to_owned());
    let row = service::update_employer(admin.0, &state.db, id, name, None).await?;
    Ok(web::Json(row.into()))
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
    let row = service::update_employer(admin.0, &state.db, id, None, Some(false)).await?;
    Ok(web::Json(row.into()))
}
