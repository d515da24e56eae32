//! Erasure on request: the person asks through the portal (with the referral's status token),
//! or an admin acts on a request received another way. Both crypto-shred at once.

use actix_web::{delete, web, HttpRequest, HttpResponse};

use super::service;
use crate::auth::{Admin, HrPortal};
use crate::error::{ApiError, Problem};
use crate::extract::PathId;
use crate::ids::ReferralId;
use crate::referrals::token::referral_token;
use crate::state::AppState;

/// Destroys a referral's personal data now: its data key, sealed contact block and note, the
/// employee reference and the stored replay of its submission. An open offer or assignment is
/// withdrawn (the referral becomes `cancelled`, the provider's slot is freed) and the provider
/// is sent `erased` in its feed; its later contact reads answer 410. The de-identified referral
/// stays, and its coarse status can still be read with the token. Erasing again answers 204.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Referral id"),
        ("Referral-Token" = String, Header, description = "The status token from the submission"),
    ),
    responses(
        (status = 204, description = "Erased (or already erased)"),
        (status = 404, description = "No such referral for this caller and token",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral changed while it was being erased; retry",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/referrals/{id}/personal-data")]
pub async fn erase(
    portal: HrPortal,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let token = referral_token(&req);
    service::erase(
        &state.db,
        state.outside.clone(),
        portal,
        id.into_option(),
        token,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The admin's erasure, for a request that reached the programme another way (the person
/// called the provider or the EAP line). The same effects as the portal's erasure.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses(
        (status = 204, description = "Erased (or already erased)"),
        (status = 404, description = "No such referral",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral changed while it was being erased; retry",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/admin/referrals/{id}/personal-data")]
pub async fn admin_erase(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = ReferralId::from_trusted(id.get()?);
    service::admin_erase(&state.db, state.outside.clone(), admin.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
