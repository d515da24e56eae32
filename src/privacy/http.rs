//! Erasure on request: the person asks through the portal (with the referral's status token),
//! or an admin acts on a request received another way. Both crypto-shred at once.

use actix_web::{delete, web, HttpRequest, HttpResponse};

use super::store::{forget_old_pages, shred};
use crate::app::AppState;
use crate::audit::{self, audited};
use crate::auth::{Admin, HrPortal};
use crate::db::write_tx;
use crate::error::{ApiError, Problem};
use crate::extract::PathId;
use crate::referrals::http::{authorised, referral_token};
use crate::referrals::store as referral_store;

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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an HR portal", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral for this caller and token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral changed while erasing; retry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/referrals/{id}/personal-data")]
pub async fn erase(
    portal: HrPortal,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_option();
    let token = referral_token(&req);
    state
        .db
        .run(move |conn| {
            // Authorise first, on its own, so a refusal stays logged after a rollback below.
            let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
            write_tx(conn, |conn| {
                let row = referral_store::lock_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
                shred(conn, &row, crate::db::now())?;
                audit::record(conn, &[portal.caller.event(Some(&id), 204)])
            })?;
            forget_old_pages(conn);
            Ok(())
        })
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral changed while erasing; retry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/admin/referrals/{id}/personal-data")]
pub async fn admin_erase(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    audited(&state.db, admin.0, 204, move |conn| {
        let row = referral_store::lock_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
        shred(conn, &row, crate::db::now())?;
        Ok(((), vec![id]))
    })
    .await?;
    state
        .db
        .run(|conn| {
            forget_old_pages(conn);
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
