//! The provider's change feed: one page of events after a cursor, in commit-safe order, waiting
//! (long poll) for the first one if asked. Each delivered referral is an access-log event,
//! committed before any of it leaves; an empty poll is not logged.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::store::{self, EventRow, Position};
use crate::audit::store::record_alone;
use crate::auth::Caller;
use crate::db::Db;
use crate::error::ApiError;

const TOO_MANY_POLLS: &str = "too many long polls are waiting on this instance; \
                              retry shortly, or poll without wait";

/// What a poll asks for.
pub struct Poll {
    pub after: Position,
    pub limit: i64,
    /// How long to wait for a first event; zero answers at once.
    pub wait: Duration,
    /// How many long polls may wait at once on this instance.
    pub max_waiting: usize,
}

/// The events after `poll.after` (none when the wait ran out).
pub async fn poll(
    db: &Db,
    caller: Caller,
    provider_id: String,
    poll: Poll,
) -> Result<Vec<EventRow>, ApiError> {
    let deadline = Instant::now() + poll.wait;
    let notifier = &db.notifier;
    let wake = notifier.handle(&provider_id);
    // Held back, the event is usually behind one short write transaction (a sealing batch is
    // ~30 ms): look again soon, then back off.
    let mut backoff = Duration::from_millis(5);
    let mut slot = None;
    loop {
        // Register for the wake-up before looking, so an event committed in between is not
        // missed.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // An empty answer from memory when the provider is known to have nothing newer; the
        // ticket, taken before the query, keeps a write that lands meanwhile from being missed.
        let ticket = notifier.ticket(&provider_id);
        let (rows, held_back) = if notifier.known_empty(&provider_id, poll.after) {
            (Vec::new(), false)
        } else {
            let read = read(
                db,
                caller.clone(),
                provider_id.clone(),
                poll.after,
                poll.limit,
            );
            let (rows, held_back) = read.await?;
            if rows.is_empty() && !held_back {
                notifier.learn_empty(&provider_id, ticket, poll.after);
            }
            (rows, held_back)
        };
        if !rows.is_empty() || Instant::now() >= deadline || notifier.is_closing() {
            return Ok(rows);
        }
        if slot.is_none() {
            let waiting = notifier.try_wait(poll.max_waiting);
            slot = Some(waiting.ok_or(ApiError::TooManyRequests {
                retry_after: 1,
                detail: TOO_MANY_POLLS,
            })?);
        }
        // Waiting holds no database connection and no worker thread. Held back (written, but
        // behind the commit horizon, so no second notification will come): look again, backing
        // off to 1 s (the horizon is cluster-wide and a long transaction elsewhere can hold it).
        // Otherwise wait for a wake-up, re-reading every 5 s in case one was lost (a listener
        // reconnecting).
        let recheck = if held_back {
            let b = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            b
        } else {
            Duration::from_secs(5)
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline.min(Instant::now() + recheck)) => {}
        }
    }
}

/// One read of the feed, and whether events after the cursor are still held back by the commit
/// horizon.
async fn read(
    db: &Db,
    caller: Caller,
    provider_id: String,
    after: Position,
    limit: i64,
) -> Result<(Vec<EventRow>, bool), ApiError> {
    db.run(move |conn| {
        // Read first, outside a transaction: an empty poll takes no lock and writes nothing.
        // Delivered referrals are logged (committed) before any of them leaves.
        let rows = store::feed(conn, &provider_id, after, limit)?;
        if rows.is_empty() {
            let held_back = store::withheld(conn, &provider_id, after)?;
            return Ok((rows, held_back));
        }
        let mut seen = HashSet::new();
        let delivered: Vec<_> = rows
            .iter()
            .filter(|e| seen.insert(e.referral_id.clone()))
            .map(|e| caller.event(Some(&e.referral_id)))
            .collect();
        record_alone(conn, &delivered)?;
        Ok((rows, false))
    })
    .await
}
