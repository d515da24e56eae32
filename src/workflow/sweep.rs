//! Offer deadlines: overdue offers expire and move on to the next eligible provider.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{AttemptOutcome, FeedKind};
use crate::audit::{self, AuditEvent};
use crate::config::OfferTtl;
use crate::db::schema::referrals;
use crate::db::{write_tx, AnyConnection};
use crate::directory::capacity::release_slot;
use crate::error::ApiError;
use crate::keys::MasterKey;
use crate::referrals::model::Status;
use crate::referrals::store::{self as referral_store, ReferralRow};
use crate::routing::offer::reoffer;
use crate::webhooks::model::OperatorEvent;
use crate::webhooks::store::enqueue_alert;

/// Any constant both instances agree on; names the sweeper's advisory lock.
const SWEEP_LOCK: i64 = 0x6561_705f_7377_6565;
const BATCH: i64 = 100;
const SKIPPED: &str = "could not expire an overdue offer; skipped";

/// Expires offers whose deadline is before `now` (a parameter, so tests need no clock), and
/// re-offers each to the next eligible provider never tried, or queues it as unroutable. With
/// several instances on one PostgreSQL only one sweeps at a time (advisory lock); rows being
/// accepted at that moment are skipped (`SKIP LOCKED`) and expire on a later pass if still due.
/// Returns how many offers expired.
pub fn sweep(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
    masters: &[MasterKey],
    now: NaiveDateTime,
) -> Result<usize, ApiError> {
    write_tx(conn, |conn| {
        if !crate::db::try_xact_lock(conn, SWEEP_LOCK)? {
            return Ok(0);
        }
        let query = referrals::table
            .filter(referrals::status.eq(Status::Offered))
            .filter(referrals::offer_expires_at.lt(now))
            .filter(referrals::provider_id.is_not_null())
            .order(referrals::offer_expires_at.asc())
            .limit(BATCH);
        // SQLite has no row locks (one writer at a time); PostgreSQL skips rows a request holds.
        // (The selection is per arm: `as_select` takes its backend from the connection.)
        let due: Vec<ReferralRow> = match conn {
            AnyConnection::Postgresql(c) => query
                .select(ReferralRow::as_select())
                .for_update()
                .skip_locked()
                .load(c)?,
            AnyConnection::Sqlite(c) => query.select(ReferralRow::as_select()).load(c)?,
        };
        let run = format!("sweeper-{}", uuid::Uuid::now_v7());
        let op = crate::audit::model::REFERRAL_EXPIRE;
        let mut expired = 0;
        for row in due {
            let Some(provider) = row.provider_id.clone() else {
                continue;
            };
            // Each referral in a savepoint: one that moved on meanwhile is skipped, not fatal.
            let done = conn.transaction(|conn| {
                release_slot(conn, &provider, &row.id)?;
                referral_store::close_attempt(conn, &row.id, &provider, AttemptOutcome::Expired)?;
                referral_store::push_event(conn, &provider, &row.id, FeedKind::OfferExpired, now)?;
                let expired = OperatorEvent::OfferExpired;
                enqueue_alert(conn, expired, &row.id, row.urgency, now)?;
                reoffer(conn, ttl, masters, &row, now)?;
                let event = AuditEvent::system(&run, op).resource(Some(row.id.as_str()));
                audit::record(conn, &[event])?;
                Ok::<_, ApiError>(())
            });
            match done {
                Ok(()) => expired += 1,
                Err(ApiError::PreconditionFailed) => {}
                // One referral that cannot be moved on must not stop the others expiring.
                Err(e) => {
                    tracing::warn!(referral = %row.id, error = %e, "{SKIPPED}")
                }
            }
        }
        Ok(expired)
    })
}
