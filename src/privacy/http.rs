//! Erasure on request: the person asks through the portal (with the referral's status token),
//! or an admin acts on a request received another way. Both crypto-shred at once.

use actix_web::{delete, web, HttpRequest, HttpResponse};

use super::store::{forget_old_pages, shred};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::{Admin, HrPortal};
use crate::db::write_tx;
use crate::db::AnyConnection;
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
    let id = id.into_option();
    let token = referral_token(&req);
    state
        .db
        .run(move |conn| {
            // Authorise first, on its own, so a refusal stays logged after a rollback below.
            let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
            erase_now(conn, &id, portal.caller.event(Some(&id), 204))
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
    let id = id.get()?;
    state
        .db
        .run(move |conn| erase_now(conn, &id, admin.0.event(Some(&id), 204)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Both erasures: shreds the referral with the caller's event in the same transaction, then
/// empties SQLite's write-ahead log of the pages that still hold the sealed data.
fn erase_now(conn: &mut AnyConnection, id: &str, event: AuditEvent) -> Result<(), ApiError> {
    let shredded = write_tx(conn, |conn| {
        let row = referral_store::lock_referral(conn, id)?.ok_or(ApiError::NotFound)?;
        let shredded = shred(conn, &row, crate::db::now())?;
        audit::record(conn, &[event])?;
        Ok::<_, ApiError>(shredded)
    })?;
    // Erasing again (204 again) has nothing new to push out of the log.
    if shredded {
        forget_old_pages(conn);
    }
    Ok(())
}
