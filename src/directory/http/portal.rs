//! The HR portal's view of the directory: the providers its people may be referred to, so a
//! person can name those they do not want to be seen by. Audited like every call.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::HrPortal;
use crate::directory::model::{split_codes, split_plain, Modality, Service};
use crate::directory::service;
use crate::directory::store::ProviderRow;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

/// A provider as an employer's portal sees it: what it offers, never its capacity or load
/// (how busy a provider is is the EAP's business, and the portal has no part in routing).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalProvider {
    /// The id to name in a referral's `exclude_providers`.
    pub id: String,
    pub name: String,
    pub services: Vec<Service>,
    #[schema(value_type = Vec<crate::directory::model::Language>)]
    pub languages: Vec<String>,
    #[schema(value_type = Vec<crate::directory::model::Region>)]
    pub regions: Vec<String>,
    pub modalities: Vec<Modality>,
    /// Staffed to treat health, care and mental-health workers.
    pub serves_helping_professionals: bool,
}

impl From<ProviderRow> for PortalProvider {
    fn from(r: ProviderRow) -> Self {
        PortalProvider {
            services: split_codes(&r.services),
            languages: split_plain(&r.languages),
            regions: split_plain(&r.regions),
            modalities: split_codes(&r.modalities),
            id: r.id.into_string(),
            name: r.name,
            serves_helping_professionals: r.serves_helping_professionals,
        }
    }
}

/// Lists the providers the caller's employer has a contract in force with and that are active:
/// those its people may be referred to, and may exclude (`exclude_providers`).
#[utoipa::path(
    tag = "referrals", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "One page, in id order", body = Page<PortalProvider>),
    ),
)]
#[get("/v1/portal/providers")]
pub async fn list_portal_providers(
    portal: HrPortal,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<PortalProvider>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows =
        service::portal_providers(portal.caller, &state.db, portal.employer_id, after, limit)
            .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.as_str(),
        PortalProvider::from,
    )))
}
