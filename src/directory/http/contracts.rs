//! Admin API for contracts between employers and providers. Every call is audited.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::created;
use crate::auth::Admin;
use crate::directory::model::window_end;
use crate::directory::service::{self, too_late, ContractEdit};
use crate::directory::store::{ContractRow, NewContract};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::{ContractId, EmployerId, ProviderId};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractInput {
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub employer_id: String,
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub provider_id: String,
    /// Lower is preferred when several providers are eligible.
    #[validate(range(min = 0, max = 1000))]
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(deserialize_with = "crate::extract::integer")]
    pub priority: i32,
    /// When the contract starts; now if omitted.
    pub starts_at: Option<DateTime<Utc>>,
    /// How long it lasts, in days (1–36500); open-ended if omitted. A window is a start and a
    /// length, so every well-formed one is non-empty (the contract's `ends_at` is derived).
    #[validate(range(min = 1, max = 36500))]
    #[schema(minimum = 1, maximum = 36500)]
    #[serde(default, deserialize_with = "crate::extract::optional_integer")]
    pub days: Option<u32>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractPatch {
    #[validate(range(min = 0, max = 1000))]
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::extract::optional_integer")]
    pub priority: Option<i32>,
    /// Moves the window; its length is kept unless `days` is given too.
    pub starts_at: Option<DateTime<Utc>>,
    /// The window's new length in days from its (new) start, 1–36500; `null` makes the contract
    /// open-ended.
    #[validate(range(min = 1, max = 36500))]
    #[serde(default, deserialize_with = "double_option_integer")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub days: Option<Option<u32>>,
}

/// `days` in a patch: absent (keep the length), `null` (open-ended) or a whole number of days;
/// absent and `null` must differ, which `Option` alone cannot tell.
fn double_option_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    crate::extract::optional_integer(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Contract {
    pub id: String,
    pub employer_id: String,
    pub provider_id: String,
    pub priority: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// False once deactivated.
    pub active: bool,
    /// Active and within its window now: routing uses it.
    pub in_force: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ContractRow> for Contract {
    fn from(r: ContractRow) -> Self {
        Contract {
            in_force: r.in_force(crate::db::now()),
            id: r.id.into_string(),
            employer_id: r.employer_id.into_string(),
            provider_id: r.provider_id.into_string(),
            priority: r.priority,
            starts_at: r.starts_at.and_utc(),
            ends_at: r.ends_at.map(|t| t.and_utc()),
            active: r.active,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// Binds an employer to a provider. Both must exist and be active; one contract per pair.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), request_body = ContractInput,
    responses(
        (status = 201, description = "Created", body = Contract, headers(("Location" = String))),
        (status = 409, description = "A contract for this employer and provider exists, or the \
            employer or provider is unknown or inactive",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields (an `employer_id` or `provider_id` \
            not in the issued id form, a lowercase hyphenated UUID, among them)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/contracts")]
pub async fn create_contract(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<ContractInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let starts_at = body
        .starts_at
        .map(crate::db::stored)
        .unwrap_or_else(crate::db::now);
    let new = NewContract {
        starts_at,
        ends_at: body
            .days
            .map(|d| window_end(starts_at, d).ok_or_else(|| too_late("/days")))
            .transpose()?,
        // Both were checked against the issued id form (422 otherwise).
        employer_id: EmployerId::from_trusted(body.employer_id),
        provider_id: ProviderId::from_trusted(body.provider_id),
        priority: body.priority,
    };
    let row = service::create_contract(admin.0, &state.db, new).await?;
    Ok(created(
        format!("/v1/admin/contracts/{}", row.id),
        Contract::from(row),
    ))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContractQuery {
    /// Only this employer's contracts.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[param(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub employer_id: Option<String>,
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

/// Lists contracts, optionally for one employer.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(ContractQuery),
    responses(
        (status = 200, description = "One page", body = Page<Contract>),
        (status = 422, description = "Invalid query parameters (an `employer_id` not in the issued \
            form, a lowercase hyphenated UUID, among them)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/contracts")]
pub async fn list_contracts(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<ContractQuery>,
) -> Result<web::Json<Page<Contract>>, ApiError> {
    let q = query.into_inner()?;
    let (after, limit) = PageQuery::new(q.after, q.limit).resolve()?;
    // Checked against the issued id form (422 otherwise).
    let employer = q.employer_id.map(EmployerId::from_trusted);
    let rows = service::list_contracts(admin.0, &state.db, employer, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.as_str(),
        Contract::from,
    )))
}

/// Reads one contract.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Contract id")),
    responses(
        (status = 200, description = "The contract", body = Contract),
        (status = 404, description = "No such contract",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/contracts/{id}")]
pub async fn get_contract(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Contract>, ApiError> {
    let id = ContractId::from_trusted(id.get()?);
    let row = service::get_contract(admin.0, &state.db, id).await?;
    Ok(web::Json(row.into()))
}

/// Changes a contract's priority or window; absent fields stay as they are.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Contract id")),
    request_body = ContractPatch,
    responses(
        (status = 200, description = "The updated contract", body = Contract),
        (status = 404, description = "No such contract",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/v1/admin/contracts/{id}")]
pub async fn update_contract(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<ContractPatch>,
) -> Result<web::Json<Contract>, ApiError> {
    let body = body.into_inner()?;
    let id = ContractId::from_trusted(id.get()?);
    let edit = ContractEdit {
        priority: body.priority,
        starts_at: body.starts_at.map(crate::db::stored),
        days: body.days,
    };
    let row = service::update_contract(admin.0, &state.db, id, edit).await?;
    Ok(web::Json(row.into()))
}

/// Ends a contract at once: routing stops offering this employer's referrals to the provider.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Contract id")),
    responses(
        (status = 200, description = "The deactivated contract", body = Contract),
        (status = 404, description = "No such contract",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/contracts/{id}/deactivate")]
pub async fn deactivate_contract(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Contract>, ApiError> {
    let id = ContractId::from_trusted(id.get()?);
    let row = service::deactivate_contract(admin.0, &state.db, id).await?;
    Ok(web::Json(row.into()))
}
