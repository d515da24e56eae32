use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::store::{self, Kind, OrgRow};
use crate::app::AppState;
use crate::audit;
use crate::auth::{Admin, Caller};
use crate::db::write_tx;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{Page, PageQuery};

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(min_length = 1, max_length = 200, example = "Northshore Health Trust")]
    pub name: String,
}

/// An employer or a provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Self {
        Org {
            id: r.id,
            name: r.name,
            active: r.active,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

fn path_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Employer => "/v1/admin/employers",
        Kind::Provider => "/v1/admin/providers",
    }
}

async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    kind: Kind,
    body: ApiJson<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let row = store::insert(conn, kind, body.name.trim())?;
                audit::record(conn, &[caller.event(Some(&row.id), 201)])?;
                Ok(row)
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("{}/{}", path_of(kind), row.id)))
        .json(Org::from(row)))
}

async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    kind: Kind,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Org>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let rows = store::list(conn, kind, after.as_deref(), limit)?;
                let events: Vec<_> = rows
                    .iter()
                    .map(|r| caller.event(Some(&r.id), 200))
                    .collect();
                audit::record(conn, &events)?;
                Ok(rows)
            })
        })
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        Org::from,
    )))
}

async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    kind: Kind,
    id: String,
) -> Result<web::Json<Org>, ApiError> {
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let row = store::find(conn, kind, &id)?.ok_or(ApiError::NotFound)?;
                audit::record(conn, &[caller.event(Some(&row.id), 200)])?;
                Ok(row)
            })
        })
        .await?;
    Ok(web::Json(row.into()))
}

/// Creates an employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), request_body = CreateOrg,
    responses(
        (status = 201, description = "Created", body = Org, headers(("Location" = String))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/employers")]
pub async fn create_employer(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    create(admin.0, state, Kind::Employer, body).await
}

/// Lists employers.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<Org>),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid paging parameters", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/employers")]
pub async fn list_employers(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Org>>, ApiError> {
    list(admin.0, state, Kind::Employer, query).await
}

/// Reads one employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "Employer id")),
    responses(
        (status = 200, description = "The employer", body = Org),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such employer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/employers/{id}")]
pub async fn get_employer(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<Org>, ApiError> {
    read(admin.0, state, Kind::Employer, id.into_inner()).await
}

/// Creates a provider.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), request_body = CreateOrg,
    responses(
        (status = 201, description = "Created", body = Org, headers(("Location" = String))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/providers")]
pub async fn create_provider(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    create(admin.0, state, Kind::Provider, body).await
}

/// Lists providers.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<Org>),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid paging parameters", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/providers")]
pub async fn list_providers(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Org>>, ApiError> {
    list(admin.0, state, Kind::Provider, query).await
}

/// Reads one provider.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 200, description = "The provider", body = Org),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/providers/{id}")]
pub async fn get_provider(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<Org>, ApiError> {
    read(admin.0, state, Kind::Provider, id.into_inner()).await
}
