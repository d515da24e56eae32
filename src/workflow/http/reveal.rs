//! The audited contact reveal.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::ProviderCaller;
use crate::error::{ApiError, Problem};
use crate::extract::PathId;
use crate::ids::ReferralId;
use crate::referrals::model::Contact;
use crate::state::AppState;
use crate::workflow::actions;

/// How to reach the person, and their note.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactReveal {
    #[schema(value_type = String)]
    pub referral_id: ReferralId,
    pub contact: Contact,
    pub note: Option<String>,
}

/// Reveals the sealed contact block and note, only for a referral this provider has accepted
/// and not closed. Every read is its own access-log event (`contact.read`), written before the
/// data is returned.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses(
        (status = 200, description = "The contact block", body = ContactReveal,
         headers(("Cache-Control" = String, description = "no-store"))),
        (status = 404, description = "Not this provider's referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted, or already closed",
         body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The personal data was erased (on request or by retention)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/referrals/{id}/contact")]
pub async fn contact(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.clone();
    let revealed = actions::reveal_contact(&state.db, keys, provider, id.into_option()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ContactReveal {
            referral_id: revealed.referral_id,
            contact: revealed.contact,
            note: revealed.note,
        }))
}
