//! Crypto-shredding: the one function that destroys a referral's personal data, the retention
//! purge that applies it to every referral that fell due, and the dry-run listing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{self, RetentionPolicy, Rule};
use crate::audit::{self, AuditEvent};
use crate::db::schema::{idempotency_keys, referral_attempts, referrals};
use crate::db::{write_tx, AnyConnection};
use crate::directory::model::Code;
use crate::error::ApiError;
use crate::referrals::model::Status;
use crate::referrals::store::{self as referral_store, ReferralRow};
use crate::workflow::model::{AttemptOutcome, FeedKind};

/// Names the purge's advisory lock; any constant every instance agrees on.
pub const PURGE_LOCK: i64 = 0x6561_705f_7075_7267;
const BATCH: i64 = 100;
const CHECKPOINT_FAILED: &str = "WAL checkpoint after shredding failed; a later one will do";
const PURGE_SKIPPED: &str = "could not purge a referral; skipped";

/// Destroys a referral's personal data, read under lock by the caller: the data key (wrapped),
/// the sealed contact, note and routing preferences, decline comments sealed under the same key, the employee
/// reference HMAC, and what the Idempotency-Key record holds of the submission (a keyed
/// fingerprint of the body and the sealed replay, which holds the status token).
/// A referral still open is withdrawn first: cancelled, the provider's slot freed. The provider
/// it was offered to or held by (if any) gets `erased` in its feed, so it deletes its own copy.
/// Returns false, changing nothing, when the data was already destroyed.
pub fn shred(
    conn: &mut AnyConnection,
    row: &ReferralRow,
    now: NaiveDateTime,
) -> Result<bool, ApiError> {
    if row.erased_at.is_some() {
        return Ok(false);
    }
    if !row.status.is_final() {
        referral_store::withdraw(conn, row, AttemptOutcome::Erased, now)?;
    }
    if let Some(provider) = &row.provider_id {
        referral_store::push_event(conn, provider, &row.id, FeedKind::Erased, now)?;
    }
    diesel::update(referral_attempts::table.filter(referral_attempts::referral_id.eq(&row.id)))
        .set(referral_attempts::sealed_comment.eq(None::<Vec<u8>>))
        .execute(conn)?;
    // The key record stays until it expires, so a retry of the submission is told the data was
    // erased (409) instead of creating the referral again; its keyed fingerprint of the body
    // and its sealed replay go now.
    diesel::update(idempotency_keys::table.filter(idempotency_keys::referral_id.eq(&row.id)))
        .set((
            idempotency_keys::request_hash.eq(""),
            idempotency_keys::response_sealed.eq(None::<Vec<u8>>),
        ))
        .execute(conn)?;
    diesel::update(referrals::table.find(&row.id))
        .set((
            referrals::key_id.eq(None::<String>),
            referrals::wrapped_key.eq(None::<Vec<u8>>),
            referrals::sealed_contact.eq(None::<Vec<u8>>),
            referrals::sealed_note.eq(None::<Vec<u8>>),
            referrals::sealed_preferences.eq(None::<Vec<u8>>),
            referrals::employee_ref_hmac.eq(None::<String>),
            referrals::erased_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// On SQLite, moves the write-ahead log into the database file and empties it: the log still
/// holds the pages written when the referral was submitted, ciphertext and wrapped key included.
/// Best effort: with a reader in the way the log empties at a later checkpoint.
pub fn forget_old_pages(conn: &mut AnyConnection) {
    use diesel::connection::SimpleConnection;
    if let AnyConnection::Sqlite(c) = conn {
        if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "{CHECKPOINT_FAILED}");
        }
    }
}

/// One referral whose personal data is (or would be) destroyed by the purge. Ids and codes only.
#[derive(Debug, Clone)]
pub struct Due {
    pub referral_id: String,
    pub status: String,
    pub rule: Rule,
    pub due_at: NaiveDateTime,
}

/// Candidates by the SQL pre-filter (the same thresholds as the model, including its fallback
/// to the submission time for a final referral without a closing time); the model decides.
fn candidates(
    policy: &RetentionPolicy,
    now: NaiveDateTime,
) -> referrals::BoxedQuery<'static, <AnyConnection as diesel::Connection>::Backend> {
    let closed = [Status::Closed, Status::Cancelled];
    let waiting = [Status::Submitted, Status::Offered, Status::Unroutable];
    referrals::table
        .filter(referrals::erased_at.is_null())
        .filter(
            referrals::status
                .eq_any(closed)
                .and(
                    referrals::closed_at
                        .le(now - policy.closed)
                        .or(referrals::closed_at
                            .is_null()
                            .and(referrals::created_at.le(now - policy.closed))),
                )
                .or(referrals::status
                    .eq_any(waiting)
                    .and(referrals::created_at.le(now - policy.unaccepted))),
        )
        .order(referrals::id.asc())
        .into_boxed()
}

fn judge(policy: &RetentionPolicy, row: &ReferralRow, now: NaiveDateTime) -> Option<Due> {
    let (due_at, rule) = model::due(policy, row.status, row.created_at, row.closed_at, now)?;
    Some(Due {
        referral_id: row.id.to_string(),
        status: row.status.code().to_owned(),
        rule,
        due_at,
    })
}

/// What a purge at `now` would destroy, changing nothing (`purge --dry-run`).
pub fn due(
    conn: &mut AnyConnection,
    policy: &RetentionPolicy,
    now: NaiveDateTime,
) -> QueryResult<Vec<Due>> {
    let rows: Vec<ReferralRow> = candidates(policy, now)
        .select(ReferralRow::as_select())
        .load(conn)?;
    Ok(rows.iter().filter_map(|r| judge(policy, r, now)).collect())
}

/// The still-unshredded rows among `ids`, locked; on PostgreSQL a row a request holds right now
/// is skipped (`SKIP LOCKED`) and purged on a later run.
fn lock_rows(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<ReferralRow>> {
    let query = referrals::table
        .filter(referrals::id.eq_any(ids))
        .filter(referrals::erased_at.is_null())
        .order(referrals::id.asc());
    // `as_select` fixes the backend, so each arm selects for its own.
    match conn {
        AnyConnection::Postgresql(c) => query
            .select(ReferralRow::as_select())
            .for_update()
            .skip_locked()
            .load(c),
        AnyConnection::Sqlite(c) => query.select(ReferralRow::as_select()).load(c),
    }
}

/// What a purge run did.
#[derive(Debug, Default)]
pub struct PurgeRun {
    /// The referrals whose personal data it destroyed.
    pub purged: Vec<Due>,
    /// It stopped because another instance holds the purge lock (PostgreSQL): that one purges.
    pub busy: bool,
}

/// Destroys the personal data of every referral due, in batches, each referral with its
/// access-log event (actor: the system) in a savepoint of its batch's transaction. `clock` is
/// read afresh for each batch (tests bring their own): it decides what is due and stamps the
/// destruction and any withdrawal, so a stamp is never older than its batch, however long the
/// run (reports rely on a month getting nothing new once it has settled). Idempotent: a
/// destroyed referral is never picked again. Batches walk the candidates in id order, so a row
/// that is skipped — locked by a request in progress (PostgreSQL, `SKIP LOCKED`), or failing —
/// does not end the run early; it is purged on a later run. With several instances on one
/// PostgreSQL only one purges at a time (advisory lock); an instance that does not get it
/// stops at once and says so (`busy`).
pub fn purge(
    conn: &mut AnyConnection,
    policy: &RetentionPolicy,
    clock: impl Fn() -> NaiveDateTime,
) -> Result<PurgeRun, ApiError> {
    let request_id = format!("purge-{}", uuid::Uuid::now_v7());
    let op = crate::audit::model::PERSONAL_DATA_PURGE;
    let mut run = PurgeRun::default();
    let mut after: Option<String> = None;
    loop {
        let now = clock();
        let batch = write_tx(conn, |conn| {
            if !crate::db::try_xact_lock(conn, PURGE_LOCK)? {
                return Ok(None);
            }
            let mut query = candidates(policy, now).select(referrals::id).limit(BATCH);
            if let Some(after) = &after {
                query = query.filter(referrals::id.gt(after.clone()));
            }
            let ids: Vec<String> = query.load(conn)?;
            let rows = lock_rows(conn, &ids)?;
            let mut purged = Vec::new();
            for row in &rows {
                let Some(due) = judge(policy, row, now) else {
                    continue;
                };
                let result = conn.transaction(|conn| {
                    if shred(conn, row, now)? {
                        let event =
                            AuditEvent::system(&request_id, op).resource(Some(row.id.as_str()));
                        audit::record(conn, &[event])?;
                    }
                    Ok::<_, ApiError>(())
                });
                match result {
                    Ok(()) => purged.push(due),
                    // A failed access-log write stops the purge (fail closed); it retries later.
                    Err(e @ ApiError::AuditUnavailable(_)) => return Err(e),
                    // One referral that cannot be shredded must not keep the others' data alive.
                    Err(e) => {
                        tracing::warn!(referral = %row.id, error = %e, "{PURGE_SKIPPED}")
                    }
                }
            }
            Ok::<_, ApiError>(Some((ids, purged)))
        })?;
        let Some((ids, purged)) = batch else {
            run.busy = true;
            break;
        };
        run.purged.extend(purged);
        if (ids.len() as i64) < BATCH {
            break;
        }
        after = ids.last().cloned();
    }
    if !run.purged.is_empty() {
        forget_old_pages(conn);
    }
    Ok(run)
}
