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
    // When the feed was first found held back (see `recheck_after`).
    let mut held_since = None;
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
            let now = Instant::now();
            recheck_after(now - *held_since.get_or_insert(now))
        } else {
            held_since = None;
            Duration::from_secs(5)
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline.min(Instant::now() + recheck)) => {}
        }
    }
}

/// How long a poll whose feed is held back by the commit horizon waits before it looks again,
/// given how long it has been held back. The usual holder is one short write transaction
/// elsewhere (a sealing batch takes 10–50 ms), so the first 50 ms are covered in 5 ms steps: the
/// poll answers within a step of the horizon passing. Doubling from the start (5, 10, 20, 40 ms)
/// answered a poll held back by a 36 ms batch at 75 ms. Past 50 ms something longer holds the
/// horizon, anywhere in the cluster, and the wait doubles up to 1 s, so a long transaction costs
/// a held-back poll at most a few queries a second.
fn recheck_after(held: Duration) -> Duration {
    const STEP: Duration = Duration::from_millis(5);
    const QUICK: Duration = Duration::from_millis(50);
    if held < QUICK {
        STEP
    } else {
        held.min(Duration::from_secs(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// When a poll held back from the start looks again, up to `until`.
    fn schedule(until: Duration) -> Vec<u64> {
        let mut held = Duration::ZERO;
        let mut at = Vec::new();
        loop {
            held += recheck_after(held);
            if held > until {
                return at;
            }
            at.push(held.as_millis() as u64);
        }
    }

    #[test]
    fn a_held_back_poll_looks_every_5_ms_for_50_ms_then_backs_off_to_a_second() {
        let at = schedule(Duration::from_secs(5));
        assert_eq!(
            at[..10],
            [5, 10, 15, 20, 25, 30, 35, 40, 45, 50],
            "a horizon passing in the first 50 ms is seen within 5 ms"
        );
        assert_eq!(at[10..15], [100, 200, 400, 800, 1600], "then doubling");
        assert!(
            at.windows(2).skip(14).all(|w| w[1] - w[0] == 1000),
            "never more than 1 s apart, never more often than once a second past 1.6 s: {at:?}"
        );
        assert_eq!(at.len(), 18, "18 looks in the first 5 s: {at:?}");
    }
}
