//! Crypto-shredding: the one function that destroys a referral's personal data, the retention
//! purge that applies it to every referral that fell due, and the dry-run listing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{self, RetentionPolicy, Rule};
use crate::audit::{self, AuditEvent};
use crate::db::schema::{idempotency_keys, referral_attempts, referral_key_compactions, referrals};
use crate::db::{write_tx, AnyConnection};
use crate::directory::model::Code;
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::outside::OutsideLog;
use crate::referrals::keystore;
use crate::referrals::model::Status;
use crate::referrals::store::{self as referral_store, ReferralRow};
use crate::workflow::model::{AttemptOutcome, FeedKind};

/// Names the purge's advisory lock; any constant every instance agrees on.
pub const PURGE_LOCK: i64 = 0x6561_705f_7075_7267;
const BATCH: i64 = 100;
const CHECKPOINT_FAILED: &str = "WAL checkpoint after shredding failed; a later one will do";
const PURGE_SKIPPED: &str = "could not purge a referral; skipped";
const COMPACT_SKIPPED: &str = "could not rewrite a key partition now; the next purge retries";

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
    keystore::destroy(conn, &row.id)?;
    // The columns below held the key and the reference before they moved to `referral_keys`;
    // a row written then (or by an instance of the previous version) still has them.
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
/// True when the log is now empty (and on PostgreSQL, which has nothing to do here). A reader
/// in the middle of a transaction keeps the pages it may still read, and the checkpoint then
/// stops short without an error: the caller remembers it and housekeeping tries again
/// (`Db::wal_dirty`) until it succeeds.
pub fn forget_old_pages(conn: &mut AnyConnection) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Checkpointed {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
    }
    let AnyConnection::Sqlite(c) = conn else {
        return true;
    };
    match diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result::<Checkpointed>(c) {
        Ok(r) => r.busy == 0 && r.log <= 0,
        Err(e) => {
            tracing::warn!(error = %e, "{CHECKPOINT_FAILED}");
            false
        }
    }
}

/// What the outside log keeps of one erasure or purge: ids and times only, enough for
/// `erasures replay` to destroy the referral again in a database restored from an older backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename = "erasure")]
pub struct ErasureRecord {
    pub referral_id: String,
    /// `personal_data.erase` (on request) or `personal_data.purge` (retention).
    pub action: String,
    /// As the access log writes times.
    pub erased_at: String,
}

impl ErasureRecord {
    pub fn new(referral_id: &ReferralId, action: &str, at: NaiveDateTime) -> Self {
        ErasureRecord {
            referral_id: referral_id.as_str().to_owned(),
            action: action.to_owned(),
            erased_at: crate::audit::model::format_time(at),
        }
    }
}

/// Writes the erasure to the outside log, inside the transaction that erases: a record that
/// cannot be written rolls the erasure back (503, retry), so no erasure escapes the log that
/// protects it from a restore. (A record whose transaction then fails names a referral the
/// person asked to erase; replaying it later does what was asked.)
pub fn record_outside(
    outside: &OutsideLog,
    id: &ReferralId,
    action: &str,
    at: NaiveDateTime,
) -> Result<(), ApiError> {
    outside
        .append(&ErasureRecord::new(id, action, at))
        .map_err(|e| ApiError::Unavailable(e.to_string()))
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
    /// SQLite: the write-ahead log could not be emptied after destroying (a reader was in the
    /// way); housekeeping tries again.
    pub wal_pending: bool,
    /// PostgreSQL: for each key partition rewritten to remove destroyed keys' bytes, how long
    /// its swap held the key table's lock.
    pub compacted: Vec<std::time::Duration>,
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
    outside: &OutsideLog,
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
                        record_outside(outside, &row.id, op.action, now)?;
                    }
                    Ok::<_, ApiError>(())
                });
                match result {
                    Ok(()) => purged.push(due),
                    // A failed access-log write stops the purge (fail closed); it retries later.
                    // So does one to the outside log.
                    Err(e @ (ApiError::AuditUnavailable(_) | ApiError::Unavailable(_))) => {
                        return Err(e)
                    }
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
        run.wal_pending = !forget_old_pages(conn);
    }
    run.compacted = compact_keys_timed(conn)?;
    Ok(run)
}

/// Names the compaction's session lock: one instance rewrites the key partitions at a time.
const COMPACT_LOCK: i64 = 0x6561_705f_6b65_7973;
/// How long the compaction's own statements (the copy, dropping the old partition) may wait
/// for a lock; they block no submission.
const COMPACT_LOCK_TIMEOUT: &str = "SET lock_timeout = '200ms'";
/// The swap's transaction: it holds the key table's ACCESS EXCLUSIVE lock, so every key read
/// and write waits for it, and a lock request queued behind a running transaction makes them
/// wait too. It gives up after 20 ms of waiting (the partition stays marked; the next purge
/// retries). It drops no file, so its commit need not wait for the WAL flush: a crash that
/// loses it leaves the old partition attached and still marked.
const SWAP_SETTINGS: &str = "SET LOCAL synchronous_commit = off; SET LOCAL lock_timeout = '20ms'";

/// On PostgreSQL, rewrites every key partition that lost a key since its last rewrite, so the
/// deleted keys' bytes leave the table's files: until then PostgreSQL keeps a deleted row's old
/// version on its page. Returns the partitions rewritten. SQLite zeroes deleted rows in place
/// (`secure_delete`): nothing to do.
pub fn compact_keys(conn: &mut AnyConnection) -> Result<usize, ApiError> {
    Ok(compact_keys_timed(conn)?.len())
}

/// [`compact_keys`], returning for each partition rewritten how long its swap held the key
/// table's lock (the time a submission could wait for it).
///
/// A partition is not rewritten in place (`VACUUM FULL` holds its lock ~50 ms, most of it
/// syncing the new files to disk): its live rows are copied into a new table with no lock that
/// blocks anyone, then one short transaction under the key table's lock adds the rows written
/// since, detaches the old partition and attaches the copy in its place. The old table is then
/// dropped, and its file with the deleted keys' bytes with it (truncated at once, unlinked at
/// the next checkpoint). A key deleted or re-wrapped during the copy abandons the swap: the
/// copy would hold it.
pub fn compact_keys_timed(conn: &mut AnyConnection) -> Result<Vec<std::time::Duration>, ApiError> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    use diesel::connection::SimpleConnection;
    use referral_key_compactions as due;
    let AnyConnection::Postgresql(c) = conn else {
        return Ok(Vec::new());
    };
    let locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(COMPACT_LOCK)
        .get_result::<Locked>(c)?
        .locked;
    if !locked {
        return Ok(Vec::new());
    }
    let result = (|| {
        let marks: Vec<Mark> = diesel::sql_query(READY_MARKS).load(c)?;
        c.batch_execute(COMPACT_LOCK_TIMEOUT)?;
        let mut held = Vec::new();
        for Mark {
            partition,
            deletions,
        } in marks
        {
            // Only names the migration created reach the statements.
            if !is_key_partition(&partition) {
                continue;
            }
            match swap_partition(c, &partition) {
                Ok(Swap::Done(took)) => held.push(took),
                Ok(Swap::NotNow(why)) => {
                    tracing::info!(partition, why, "{COMPACT_SKIPPED}");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(partition, error = %e, "{COMPACT_SKIPPED}");
                    continue;
                }
            }
            // A key deleted during the rewrite raised the count: that mark stays for next time.
            diesel::delete(
                due::table
                    .find(&partition)
                    .filter(due::deletions.eq(deletions)),
            )
            .execute(c)?;
        }
        Ok::<_, ApiError>(held)
    })();
    let reset = c.batch_execute("RESET lock_timeout; SELECT pg_advisory_unlock_all()");
    let held = result?;
    reset?;
    Ok(held)
}

enum Swap {
    /// Swapped; how long the key table's lock was held (from asking for it to the commit).
    Done(std::time::Duration),
    /// Left for the next purge, and why.
    NotNow(&'static str),
}

/// Replaces `partition` (a validated `referral_keys_pNN`) with a fresh copy of its live rows
/// and drops it (see [`compact_keys_timed`]).
fn swap_partition(
    c: &mut diesel::PgConnection,
    partition: &str,
) -> Result<Swap, diesel::result::Error> {
    #[derive(diesel::QueryableByName)]
    struct Xid {
        #[diesel(sql_type = diesel::sql_types::Text)]
        xid: String,
    }
    use diesel::connection::SimpleConnection;
    let remainder: u32 = partition["referral_keys_p".len()..]
        .parse()
        .expect("a validated partition name");
    let next = format!("{partition}_next");
    let old = format!("{partition}_old");
    // What a crash in an earlier swap may have left.
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {next}; DROP TABLE IF EXISTS {old}"
    ))?;
    let copied_by = c.transaction::<_, diesel::result::Error, _>(|c| {
        c.batch_execute(&format!(
            "CREATE TABLE {next} (LIKE {partition} INCLUDING ALL); \
             INSERT INTO {next} SELECT * FROM {partition}"
        ))?;
        diesel::sql_query("SELECT pg_current_xact_id()::text AS xid").get_result::<Xid>(c)
    })?;
    // The copy's transaction id, as digits: it goes into the statement below.
    let copied_by: u64 = copied_by.xid.parse().map_err(|_| {
        diesel::result::Error::DeserializationError("a transaction id is digits".into())
    })?;
    // All of the swap in one round trip, for every round trip under the lock is time every key
    // read and write waits. `older`: the copy's rows are new row versions, so a snapshot taken
    // before the copy committed would find the partition empty after the swap (VACUUM FULL
    // keeps the versions). No transaction of the service holds a snapshot across statements
    // (READ COMMITTED), and one that read the key table holds a lock the swap waited for;
    // anything else in this database that holds an older snapshot puts the swap off.
    // `changed`: a key deleted or re-wrapped since the copy (the copy would keep it); `added`:
    // keys written since, copied now. The index keeps its name too: the next swap's copy names
    // its own after the table.
    let swap = format!(
        "BEGIN; {SWAP_SETTINGS}; LOCK TABLE referral_keys IN ACCESS EXCLUSIVE MODE; \
         DO $swap$ DECLARE older bigint; added bigint; changed bigint; BEGIN \
           SELECT (SELECT count(*) FROM pg_stat_activity \
                   WHERE pid <> pg_backend_pid() AND datname = current_database() \
                     AND age(backend_xmin) >= age('{copied_by}'::xid)), \
                  count(*) FILTER (WHERE n.referral_id IS NULL), \
                  count(*) FILTER (WHERE o.referral_id IS NULL OR (n.referral_id IS NOT NULL \
                      AND (o.key_id, o.wrapped_key, o.employee_ref_hmac) \
                          IS DISTINCT FROM (n.key_id, n.wrapped_key, n.employee_ref_hmac))) \
             INTO older, added, changed \
             FROM {partition} o FULL JOIN {next} n ON n.referral_id = o.referral_id; \
           IF older > 0 THEN RAISE EXCEPTION '{NOT_NOW}{OLDER_SNAPSHOT}'; END IF; \
           IF changed > 0 THEN RAISE EXCEPTION '{NOT_NOW}{CHANGED_DURING_COPY}'; END IF; \
           IF added > 0 THEN \
             INSERT INTO {next} SELECT o.* FROM {partition} o \
             WHERE NOT EXISTS (SELECT 1 FROM {next} n WHERE n.referral_id = o.referral_id); \
           END IF; \
           ALTER TABLE referral_keys DETACH PARTITION {partition}; \
           ALTER TABLE {partition} RENAME TO {old}; \
           ALTER INDEX IF EXISTS {partition}_pkey RENAME TO {old}_pkey; \
           ALTER TABLE {next} RENAME TO {partition}; \
           ALTER INDEX IF EXISTS {next}_pkey RENAME TO {partition}_pkey; \
           ALTER TABLE referral_keys ATTACH PARTITION {partition} \
               FOR VALUES WITH (MODULUS 64, REMAINDER {remainder}); \
         END $swap$; COMMIT"
    );
    let started = std::time::Instant::now();
    let outcome = match c.batch_execute(&swap) {
        Ok(()) => Ok(Swap::Done(started.elapsed())),
        Err(e) => {
            // The failed statement left the transaction open and aborted.
            let _ = c.batch_execute("ROLLBACK");
            let text = e.to_string();
            match text.find(NOT_NOW) {
                Some(_) if text.contains(OLDER_SNAPSHOT) => Ok(Swap::NotNow(OLDER_SNAPSHOT)),
                Some(_) => Ok(Swap::NotNow(CHANGED_DURING_COPY)),
                None => Err(e),
            }
        }
    };
    // Whichever is left over: the old partition after a swap, the copy after one put off.
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {old}; DROP TABLE IF EXISTS {next}"
    ))?;
    outcome
}

/// How the swap statement says it was put off, and why.
const NOT_NOW: &str = "eap-referrals: swap put off: ";
const OLDER_SNAPSHOT: &str = "a transaction holds a snapshot older than the copy";
const CHANGED_DURING_COPY: &str = "a key was deleted or re-wrapped during the copy";

#[derive(diesel::QueryableByName)]
struct Mark {
    #[diesel(sql_type = diesel::sql_types::Text)]
    partition: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    deletions: i64,
}

/// The partitions whose deleted keys a rewrite can drop now. `VACUUM FULL` copies a deleted row
/// that some transaction may still see, and PostgreSQL decides that over the whole cluster (a
/// transaction in another database holds it back too), so a partition waits while any session,
/// prepared transaction or replication slot holds a snapshot or a transaction id at least as
/// old as its last deletion. (`age` counts back from the same point for both ids, so comparing
/// ages compares the ids.) Sessions of other roles show their ids only to a role with
/// `pg_read_all_stats`: docs/PRIVACY.md asks for it.
const READY_MARKS: &str = "\
    SELECT c.partition_name AS partition, c.deletions FROM referral_key_compactions c \
    WHERE NOT EXISTS ( \
        SELECT 1 FROM pg_stat_activity a \
        WHERE a.pid <> pg_backend_pid() \
          AND (age(a.backend_xmin) >= age(c.last_xid::text::xid) \
               OR age(a.backend_xid) >= age(c.last_xid::text::xid))) \
    AND NOT EXISTS ( \
        SELECT 1 FROM pg_prepared_xacts p WHERE age(p.transaction) >= age(c.last_xid::text::xid)) \
    AND NOT EXISTS ( \
        SELECT 1 FROM pg_replication_slots s \
        WHERE age(s.xmin) >= age(c.last_xid::text::xid) \
           OR age(s.catalog_xmin) >= age(c.last_xid::text::xid))";

fn is_key_partition(name: &str) -> bool {
    name.strip_prefix("referral_keys_p")
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
}
