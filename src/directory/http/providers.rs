//! Admin API for providers. Every call is audited.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::created;
use crate::auth::Admin;
use crate::directory::model::{
    join_codes, join_plain, split_codes, split_plain, Language, Modality, ProviderStatus, Region,
    Service,
};
use crate::directory::service;
use crate::directory::store::{ProviderChange, ProviderRow};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::ProviderId;
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

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
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub name: String,
    /// Services offered; at least one.
    #[validate(length(min = 1, max = 7))]
    #[schema(min_items = 1, max_items = 7)]
    pub services: Vec<Service>,
    /// Languages spoken (BCP 47 primary subtags, in any letter case; stored and returned lower
    /// case); at least one.
    #[validate(length(min = 1, max = 50))]
    #[schema(min_items = 1, max_items = 50)]
    pub languages: Vec<Language>,
    /// Regions served: ISO 3166-1 countries or ISO 3166-2 subdivisions (in any letter case;
    /// stored and returned upper case); at least one.
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
    /// Staffed to treat health, care and mental-health workers, confidentially from their
    /// professional networks: ranked first for a referral from such a person.
    #[serde(default)]
    pub serves_helping_professionals: bool,
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
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
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
    /// Staffed to treat health, care and mental-health workers, confidentially from their
    /// professional networks: ranked first for a referral from such a person.
    pub serves_helping_professionals: Option<bool>,
    #[validate(range(min = 0, max = 100000))]
    #[schema(minimum = 0, maximum = 100000)]
    #[serde(default, deserialize_with = "crate::extract::optional_integer")]
    pub capacity: Option<u32>,
    pub status: Option<ProviderStatus>,
}

impl From<ProviderPatch> for ProviderChange {
    fn from(p: ProviderPatch) -> Self {
        ProviderChange {
            name: p.name.map(|n| n.trim().to_owned()),
            status: p.status,
            services: p.services.map(|s| join_codes(&s)),
            languages: p.languages.map(|l| join_plain(&l)),
            regions: p.regions.map(|r| join_plain(&r)),
            modalities: p.modalities.map(|m| join_codes(&m)),
            interpretation: p.interpretation,
            crisis_capable: p.crisis_capable,
            capacity: p.capacity.map(|c| c as i32),
            active: None,
            serves_helping_professionals: p.serves_helping_professionals,
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
            serves_helping_professionals: Some(p.serves_helping_professionals),
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
    #[schema(value_type = Vec<crate::directory::model::Language>)]
    pub languages: Vec<String>,
    #[schema(value_type = Vec<crate::directory::model::Region>)]
    pub regions: Vec<String>,
    pub modalities: Vec<Modality>,
    pub interpretation: bool,
    pub crisis_capable: bool,
    /// Staffed to treat health, care and mental-health workers, confidentially from their
    /// professional networks: ranked first for a referral from such a person.
    pub serves_helping_professionals: bool,
    pub capacity: u32,
    /// Referrals it holds now.
    pub active_referrals: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Provider {
    fn of(r: ProviderRow, load: i64) -> Self {
        Provider {
            status: r.status,
            services: split_codes(&r.services),
            languages: split_plain(&r.languages),
            regions: split_plain(&r.regions),
            modalities: split_codes(&r.modalities),
            id: r.id.into_string(),
            name: r.name,
            active: r.active,
            interpretation: r.interpretation,
            crisis_capable: r.crisis_capable,
            serves_helping_professionals: r.serves_helping_professionals,
            capacity: r.capacity.max(0) as u32,
            active_referrals: load.max(0) as u32,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
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
    let (row, load) = service::create_provider(admin.0, &state.db, change).await?;
    let provider = Provider::of(row, load);
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
    let rows = service::list_providers(admin.0, &state.db, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |(r, _)| r.id.as_str(),
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
    let id = ProviderId::from_trusted(id.get()?);
    let (row, load) = service::get_provider(admin.0, &state.db, id).await?;
    Ok(web::Json(Provider::of(row, load)))
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
    let id = ProviderId::from_trusted(id.get()?);
    let (row, load) = service::update_provider(admin.0, &state.db, id, change).await?;
    Ok(web::Json(Provider::of(row, load)))
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
    let id = ProviderId::from_trusted(id.get()?);
    let (row, load) = service::deactivate_provider(admin.0, &state.db, id).await?;
    Ok(web::Json(Provider::of(row, load)))
}
