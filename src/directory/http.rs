//! Admin API for the directory: employers, providers, contracts. Every call is audited.

use actix_web::http::header;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::model::{join_codes, split_codes, Language, Modality, Region, Service};
use super::store::{
    self, ContractChange, ContractRow, EmployerRow, NewContract, ProviderChange, ProviderRow,
};
use crate::app::AppState;
use crate::audit::audited;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Page, PageQuery};

fn created(location: String, body: impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}

// ---------------------------------------------------------------------------------------------
// Employers

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
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
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
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
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
            id: r.id,
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
    let row = audited(&state.db, admin.0, 201, move |conn| {
        let row = store::insert_employer(conn, body.name.trim())?;
        let id = row.id.clone();
        Ok((row, vec![id]))
    })
    .await?;
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
    let rows = audited(&state.db, admin.0, 200, move |conn| {
        let rows = store::list_employers(conn, after.as_deref(), limit)?;
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        Ok((rows, ids))
    })
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        let row = store::find_employer(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        let name = body.name.as_deref().map(str::trim);
        if store::update_employer(conn, &id, name, None)? == 0 {
            return Err(ApiError::NotFound);
        }
        let row = store::find_employer(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        if store::update_employer(conn, &id, None, Some(false))? == 0 {
            return Err(ApiError::NotFound);
        }
        let row = store::find_employer(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
    Ok(web::Json(row.into()))
}

// ---------------------------------------------------------------------------------------------
// Providers

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Takes new referrals.
    #[default]
    Active,
    /// Keeps its current referrals but is offered no new ones.
    Paused,
}

impl ProviderStatus {
    fn code(self) -> &'static str {
        match self {
            ProviderStatus::Active => "active",
            ProviderStatus::Paused => "paused",
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Harbour Counselling",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// Services offered; at least one.
    #[validate(length(min = 1, max = 7))]
    #[schema(min_items = 1, max_items = 7)]
    pub services: Vec<Service>,
    /// Languages spoken (BCP 47 primary subtags); at least one.
    #[validate(length(min = 1, max = 50))]
    #[schema(min_items = 1, max_items = 50)]
    pub languages: Vec<Language>,
    /// Regions served: ISO 3166-1 countries or ISO 3166-2 subdivisions; at least one.
    #[validate(length(min = 1, max = 200))]
    #[schema(min_items = 1, max_items = 200)]
    pub regions: Vec<Region>,
    /// Modalities offered; at least one.
    #[validate(length(min = 1, max = 4))]
    #[schema(min_items = 1, max_items = 4)]
    pub modalities: Vec<Modality>,
    /// Offers interpretation, so it can take referrals in languages it does not speak.
    #[serde(default)]
    pub interpretation: bool,
    /// Staffed for crisis referrals 24/7.
    #[serde(default)]
    pub crisis_capable: bool,
    /// The most referrals it holds at once.
    #[validate(range(min = 0, max = 100000))]
    #[schema(minimum = 0, maximum = 100000)]
    #[serde(deserialize_with = "crate::extract::integer")]
    pub capacity: u32,
    #[serde(default)]
    pub status: ProviderStatus,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    #[validate(length(min = 1, max = 7))]
    #[schema(min_items = 1, max_items = 7)]
    pub services: Option<Vec<Service>>,
    #[validate(length(min = 1, max = 50))]
    #[schema(min_items = 1, max_items = 50)]
    pub languages: Option<Vec<Language>>,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_items = 1, max_items = 200)]
    pub regions: Option<Vec<Region>>,
    #[validate(length(min = 1, max = 4))]
    #[schema(min_items = 1, max_items = 4)]
    pub modalities: Option<Vec<Modality>>,
    pub interpretation: Option<bool>,
    pub crisis_capable: Option<bool>,
    #[validate(range(min = 0, max = 100000))]
    #[schema(minimum = 0, maximum = 100000)]
    #[serde(default, deserialize_with = "crate::extract::optional_integer")]
    pub capacity: Option<u32>,
    pub status: Option<ProviderStatus>,
}

fn join_plain<T: AsRef<str>>(items: &[T]) -> String {
    let mut v: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

impl AsRef<str> for Language {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<ProviderPatch> for ProviderChange {
    fn from(p: ProviderPatch) -> Self {
        ProviderChange {
            name: p.name.map(|n| n.trim().to_owned()),
            status: p.status.map(|s| s.code().to_owned()),
            services: p.services.map(|s| join_codes(&s)),
            languages: p.languages.map(|l| join_plain(&l)),
            regions: p.regions.map(|r| join_plain(&r)),
            modalities: p.modalities.map(|m| join_codes(&m)),
            interpretation: p.interpretation,
            crisis_capable: p.crisis_capable,
            capacity: p.capacity.map(|c| c as i32),
            active: None,
        }
    }
}

impl From<ProviderInput> for ProviderChange {
    fn from(p: ProviderInput) -> Self {
        ProviderPatch {
            name: Some(p.name),
            services: Some(p.services),
            languages: Some(p.languages),
            regions: Some(p.regions),
            modalities: Some(p.modalities),
            interpretation: Some(p.interpretation),
            crisis_capable: Some(p.crisis_capable),
            capacity: Some(p.capacity),
            status: Some(p.status),
        }
        .into()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Provider {
    pub id: String,
    pub name: String,
    /// False once deactivated.
    pub active: bool,
    pub status: ProviderStatus,
    pub services: Vec<Service>,
    pub languages: Vec<String>,
    pub regions: Vec<String>,
    pub modalities: Vec<Modality>,
    pub interpretation: bool,
    pub crisis_capable: bool,
    pub capacity: u32,
    /// Referrals it holds now.
    pub active_referrals: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn split_plain(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Provider {
    fn of(r: ProviderRow, load: i64) -> Self {
        Provider {
            status: if r.status == "paused" {
                ProviderStatus::Paused
            } else {
                ProviderStatus::Active
            },
            services: split_codes(&r.services),
            languages: split_plain(&r.languages),
            regions: split_plain(&r.regions),
            modalities: split_codes(&r.modalities),
            id: r.id,
            name: r.name,
            active: r.active,
            interpretation: r.interpretation,
            crisis_capable: r.crisis_capable,
            capacity: r.capacity.max(0) as u32,
            active_referrals: load.max(0) as u32,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// Reads a provider with its current load.
fn provider_with_load(conn: &mut crate::db::AnyConnection, id: &str) -> Result<Provider, ApiError> {
    let row = store::find_provider(conn, id)?.ok_or(ApiError::NotFound)?;
    let load = store::load(conn, id)?;
    Ok(Provider::of(row, load))
}

/// Creates a provider.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), request_body = ProviderInput,
    responses(
        (status = 201, description = "Created", body = Provider, headers(("Location" = String))),
        (status = 422, description = "Invalid, unknown or missing fields; unknown codes",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/providers")]
pub async fn create_provider(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let change: ProviderChange = body.into_inner()?.into();
    let provider = audited(&state.db, admin.0, 201, move |conn| {
        let row = store::insert_provider(conn, &change)?;
        let id = row.id.clone();
        Ok((Provider::of(row, 0), vec![id]))
    })
    .await?;
    Ok(created(
        format!("/v1/admin/providers/{}", provider.id),
        provider,
    ))
}

/// Lists providers.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<Provider>),
    ),
)]
#[get("/v1/admin/providers")]
pub async fn list_providers(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<Provider>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = audited(&state.db, admin.0, 200, move |conn| {
        let rows = store::list_providers(conn, after.as_deref(), limit)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let loads = store::loads(conn, &ids)?;
        let rows: Vec<(ProviderRow, i64)> = rows
            .into_iter()
            .map(|r| {
                let load = loads.get(&r.id).copied().unwrap_or(0);
                (r, load)
            })
            .collect();
        Ok((rows, ids))
    })
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |(r, _)| &r.id,
        |(r, load)| Provider::of(r, load),
    )))
}

/// Reads one provider.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 200, description = "The provider", body = Provider),
        (status = 404, description = "No such provider",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/providers/{id}")]
pub async fn get_provider(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Provider>, ApiError> {
    let id = id.get()?;
    let provider = audited(&state.db, admin.0, 200, move |conn| {
        Ok((provider_with_load(conn, &id)?, vec![id]))
    })
    .await?;
    Ok(web::Json(provider))
}

/// Changes a provider's attributes; absent fields stay as they are.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Provider id")),
    request_body = ProviderPatch,
    responses(
        (status = 200, description = "The updated provider", body = Provider),
        (status = 404, description = "No such provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields; unknown codes",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/v1/admin/providers/{id}")]
pub async fn update_provider(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
    body: ApiJson<ProviderPatch>,
) -> Result<web::Json<Provider>, ApiError> {
    let change: ProviderChange = body.into_inner()?.into();
    let id = id.get()?;
    let provider = audited(&state.db, admin.0, 200, move |conn| {
        store::find_provider(conn, &id)?.ok_or(ApiError::NotFound)?;
        if !change_is_empty(&change) {
            store::update_provider(conn, &id, &change)?;
        }
        Ok((provider_with_load(conn, &id)?, vec![id]))
    })
    .await?;
    Ok(web::Json(provider))
}

fn change_is_empty(c: &ProviderChange) -> bool {
    c.name.is_none()
        && c.status.is_none()
        && c.services.is_none()
        && c.languages.is_none()
        && c.regions.is_none()
        && c.modalities.is_none()
        && c.interpretation.is_none()
        && c.crisis_capable.is_none()
        && c.capacity.is_none()
        && c.active.is_none()
}

/// Deactivates a provider: it is offered no new referrals. Idempotent.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 200, description = "The deactivated provider", body = Provider),
        (status = 404, description = "No such provider",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/providers/{id}/deactivate")]
pub async fn deactivate_provider(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<Provider>, ApiError> {
    let id = id.get()?;
    let provider = audited(&state.db, admin.0, 200, move |conn| {
        let change = ProviderChange {
            active: Some(false),
            ..Default::default()
        };
        if store::update_provider(conn, &id, &change)? == 0 {
            return Err(ApiError::NotFound);
        }
        Ok((provider_with_load(conn, &id)?, vec![id]))
    })
    .await?;
    Ok(web::Json(provider))
}

// ---------------------------------------------------------------------------------------------
// Contracts

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

/// The longest contract window, in days (100 years).
const MAX_DAYS: u32 = 36500;

/// Where a window of `days` days from `start` ends. Always after `start`, so every request that
/// is valid by its schema gives a non-empty window.
fn window_end(start: chrono::NaiveDateTime, days: u32) -> chrono::NaiveDateTime {
    start + chrono::TimeDelta::days(i64::from(days.clamp(1, MAX_DAYS)))
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
            id: r.id,
            employer_id: r.employer_id,
            provider_id: r.provider_id,
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
        ends_at: body.days.map(|d| window_end(starts_at, d)),
        employer_id: body.employer_id,
        provider_id: body.provider_id,
        priority: body.priority,
    };
    let row = audited(&state.db, admin.0, 201, move |conn| {
        if !store::find_employer(conn, &new.employer_id)?.is_some_and(|e| e.active) {
            return Err(crate::auth::store::unbound("employer"));
        }
        if !store::find_provider(conn, &new.provider_id)?.is_some_and(|p| p.active) {
            return Err(crate::auth::store::unbound("provider"));
        }
        if store::contract_exists(conn, &new.employer_id, &new.provider_id)? {
            return Err(ApiError::Conflict {
                detail:
                    "this employer already has a contract with this provider; update it instead"
                        .into(),
                allowed: None,
            });
        }
        // Two creates can race past the check above; the UNIQUE constraint decides, and the
        // loser gets the same 409.
        let row = store::insert_contract(conn, &new).map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => ApiError::Conflict {
                detail:
                    "this employer already has a contract with this provider; update it instead"
                        .into(),
                allowed: None,
            },
            other => other.into(),
        })?;
        let id = row.id.clone();
        Ok((row, vec![id]))
    })
    .await?;
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
    let employer = q.employer_id;
    let rows = audited(&state.db, admin.0, 200, move |conn| {
        let rows = store::list_contracts(conn, employer.as_deref(), after.as_deref(), limit)?;
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        Ok((rows, ids))
    })
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        let current = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
        let starts_at = body.starts_at.map(crate::db::stored);
        let start = starts_at.unwrap_or(current.starts_at);
        // A new length, or the current one kept when only the start moves: the window stays
        // non-empty whatever is sent.
        let ends_at = match body.days {
            Some(days) => Some(days.map(|d| window_end(start, d))),
            None => starts_at.map(|_| current.ends_at.map(|e| start + (e - current.starts_at))),
        };
        let change = ContractChange {
            priority: body.priority,
            starts_at,
            ends_at,
            active: None,
        };
        if change.priority.is_some() || change.starts_at.is_some() || change.ends_at.is_some() {
            store::update_contract(conn, &id, &change)?;
        }
        let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
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
    let id = id.get()?;
    let row = audited(&state.db, admin.0, 200, move |conn| {
        let change = ContractChange {
            active: Some(false),
            ..Default::default()
        };
        if store::update_contract(conn, &id, &change)? == 0 {
            return Err(ApiError::NotFound);
        }
        let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
        Ok((row, vec![id]))
    })
    .await?;
    Ok(web::Json(row.into()))
}
