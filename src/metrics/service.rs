//! The gauges read at scrape time: the offer backlog and the sealing lag from the database,
//! the pool and the long polls from this instance.

use diesel::prelude::*;

use super::Gauges;
use crate::codes::Code;
use crate::config::Config;
use crate::db::schema::{audit_checkpoints, referrals};
use crate::db::Db;
use crate::directory::model::Urgency;
use crate::error::ApiError;
use crate::referrals::model::Status;

pub async fn gauges(db: &Db, config: &Config) -> Result<Gauges, ApiError> {
    let (pending, overdue, checkpoint, retries, unroutable) = db
        .run(|conn| {
            let offered = referrals::table.filter(referrals::status.eq(Status::Offered));
            let pending: i64 = offered.count().get_result(conn)?;
            let overdue: i64 = offered
                .filter(referrals::offer_expires_at.lt(crate::db::now()))
                .count()
                .get_result(conn)?;
            let checkpoint: Option<(i64, chrono::NaiveDateTime)> = audit_checkpoints::table
                .order(audit_checkpoints::n.desc())
                .select((audit_checkpoints::tree_size, audit_checkpoints::issued_at))
                .first(conn)
                .optional()?;
            let retries = crate::webhooks::store::retries_pending(conn)?;
            let now = crate::db::now();
            let mut unroutable = Vec::new();
            for &urgency in Urgency::ALL {
                let queued = referrals::table
                    .filter(referrals::status.eq(Status::Unroutable))
                    .filter(referrals::urgency.eq(urgency));
                let n: i64 = queued.count().get_result(conn)?;
                // `updated_at` of an unroutable referral is when it became unroutable (at
                // submission, or when a re-offer found no provider): every change to a
                // referral moves its status out of `unroutable` but the one into it, and
                // erasure withdraws it first. So this is the wait since the latest transition.
                let since: Option<chrono::NaiveDateTime> = queued
                    .select(diesel::dsl::min(referrals::updated_at))
                    .first(conn)?;
                let age = since.map_or(0.0, |t| (now - t).num_milliseconds() as f64 / 1000.0);
                unroutable.push((urgency.code(), n, age));
            }
            Ok((pending, overdue, checkpoint, retries, unroutable))
        })
        .await?;
    let pool = db.pool_state();
    Ok(Gauges {
        pool_connections: pool.0,
        pool_idle: pool.1,
        pool_max: config.db_pool_size,
        long_polls_waiting: db.notifier.waiting(),
        long_polls_max: config.max_long_polls,
        offers_pending: pending,
        offers_overdue: overdue,
        audit_sealed: checkpoint.map_or(0, |c| c.0),
        audit_checkpoint_age_secs: checkpoint
            .map(|c| (crate::db::now() - c.1).num_milliseconds() as f64 / 1000.0),
        webhook_retries_pending: retries,
        unroutable,
    })
}
