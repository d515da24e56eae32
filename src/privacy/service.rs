//! Erasure on request: authorise, then crypto-shred with the caller's access event in the same
//! transaction.

use super::store::{forget_old_pages, shred};
use crate::audit::{self, AuditEvent};
use crate::auth::{Caller, HrPortal};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::referrals::service::authorised;
use crate::referrals::store as referral_store;

/// The portal's erasure, with the referral's status token.
pub async fn erase(
    db: &Db,
    portal: HrPortal,
    id: Option<String>,
    token: Option<String>,
) -> Result<(), ApiError> {
    db.run(move |conn| {
        // Authorise first, on its own, so a refusal stays logged after a rollback below.
        let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
        erase_now(conn, &id, portal.caller.event(Some(id.as_str())))
    })
    .await
}

/// The admin's erasure, for a request that reached the programme another way.
pub async fn admin_erase(db: &Db, admin: Caller, id: ReferralId) -> Result<(), ApiError> {
    db.run(move |conn| erase_now(conn, &id, admin.event(Some(id.as_str()))))
        .await
}

/// Both erasures: shreds the referral with the caller's event in the same transaction, then
/// empties SQLite's write-ahead log of the pages that still hold the sealed data.
fn erase_now(conn: &mut AnyConnection, id: &ReferralId, event: AuditEvent) -> Result<(), ApiError> {
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
