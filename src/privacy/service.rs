//! Erasure on request: authorise, then crypto-shred with the caller's access event in the same
//! transaction; and the replay of recorded erasures into a database restored from a backup.

use std::sync::atomic::Ordering;

use super::store::{forget_old_pages, record_outside, shred, ErasureRecord};
use crate::audit::{self, AuditEvent};
use crate::auth::{Caller, HrPortal};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::outside::OutsideLog;
use crate::referrals::service::authorised;
use crate::referrals::store as referral_store;

/// The portal's erasure, with the referral's status token.
pub async fn erase(
    db: &Db,
    outside: OutsideLog,
    portal: HrPortal,
    id: Option<String>,
    token: Option<String>,
) -> Result<(), ApiError> {
    let wal_dirty = db.wal_dirty.clone();
    db.run(move |conn| {
        // Authorise first, on its own, so a refusal stays logged after a rollback below.
        let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
        let event = portal.caller.event(Some(id.as_str()));
        if !erase_now(conn, &outside, &id, event)? {
            wal_dirty.store(true, Ordering::Relaxed);
        }
        Ok(())
    })
    .await
}

/// The admin's erasure, for a request that reached the programme another way.
pub async fn admin_erase(
    db: &Db,
    outside: OutsideLog,
    admin: Caller,
    id: ReferralId,
) -> Result<(), ApiError> {
    let wal_dirty = db.wal_dirty.clone();
    db.run(move |conn| {
        if !erase_now(conn, &outside, &id, admin.event(Some(id.as_str())))? {
            wal_dirty.store(true, Ordering::Relaxed);
        }
        Ok(())
    })
    .await
}

/// Both erasures (and their replay): shreds the referral with the caller's event and the
/// outside record in the same transaction, then empties SQLite's write-ahead log of the pages
/// that still hold the sealed data. False when that log could not be emptied yet.
fn erase_now(
    conn: &mut AnyConnection,
    outside: &OutsideLog,
    id: &ReferralId,
    event: AuditEvent,
) -> Result<bool, ApiError> {
    let shredded = write_tx(conn, |conn| {
        let row = referral_store::lock_referral(conn, id)?.ok_or(ApiError::NotFound)?;
        let now = crate::db::now();
        let shredded = shred(conn, &row, now)?;
        if shredded {
            record_outside(outside, id, &event.action, now)?;
        }
        audit::record(conn, &[event])?;
        Ok::<_, ApiError>(shredded)
    })?;
    // Erasing again (204 again) has nothing new to push out of the log.
    Ok(!shredded || forget_old_pages(conn))
}

/// What a replay of recorded erasures did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Referrals whose personal data was back (a restored backup) and is destroyed again.
    pub erased: Vec<String>,
    /// Already destroyed in this database.
    pub already: usize,
    /// Not in this database (the backup is older than the referral).
    pub absent: usize,
}

/// Applies every recorded erasure again (`eap-referrals erasures replay`), after a restore from
/// a backup taken before some of them: each referral still holding personal data is shredded
/// exactly as the erasure did, with an access-log event (the operator at the command line,
/// `personal_data.erase`). Idempotent: a referral already shredded is left alone and logged
/// nothing, so running it twice changes nothing the second time. The records are not appended
/// to the outside log again; they are already there.
pub fn replay_erasures(
    conn: &mut AnyConnection,
    records: &[ErasureRecord],
) -> Result<Replayed, ApiError> {
    let op = audit::operation("DELETE", "/v1/admin/referrals/{id}/personal-data")
        .ok_or_else(|| ApiError::Internal("personal_data.erase missing".into()))?;
    let ctx = crate::extract::RequestCtx::command_line();
    let mut done = Replayed::default();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        if !seen.insert(record.referral_id.as_str()) {
            continue;
        }
        let Some(id) = ReferralId::parse(&record.referral_id) else {
            done.absent += 1;
            continue;
        };
        let outcome = write_tx(conn, |conn| {
            let Some(row) = referral_store::lock_referral(conn, &id)? else {
                return Ok::<_, ApiError>(None);
            };
            let shredded = shred(conn, &row, crate::db::now())?;
            if shredded {
                let mut event = AuditEvent::anonymous(&ctx, op, op.ok).resource(Some(id.as_str()));
                event.actor_role = Some(crate::audit::model::OPERATOR_ROLE.into());
                audit::record(conn, &[event])?;
            }
            Ok(Some(shredded))
        })?;
        match outcome {
            Some(true) => done.erased.push(id.into_string()),
            Some(false) => done.already += 1,
            None => done.absent += 1,
        }
    }
    if !done.erased.is_empty() && !forget_old_pages(conn) {
        tracing::warn!("{WAL_BUSY}");
    }
    Ok(done)
}

const WAL_BUSY: &str = "another connection holds a read transaction: the SQLite write-ahead \
                        log still holds the erased pages until the server's next checkpoint";
