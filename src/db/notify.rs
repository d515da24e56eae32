//! Wake-ups for long polls. A poll waits on its provider's `Notify` (holding no database
//! connection and no worker thread). Writers record the providers whose feed they touched; after
//! their transaction, `Db::run` wakes them. On PostgreSQL each event also sends `pg_notify`,
//! which the server delivers at commit, and a listener thread in every instance turns those into
//! local wake-ups, so a poll on one instance wakes for a write on another.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

/// A place in a provider's feed: the writing transaction, then the event id. Ids alone are not
/// enough on PostgreSQL: they are handed out in insert order, and an older transaction can
/// insert a higher id and commit before a younger one commits a lower id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub txid: i64,
    pub id: i64,
}

pub const CHANNEL: &str = "eap_provider_events";
/// Carries the id of a client whose secret was rotated or that was revoked, so every instance
/// forgets its cached status at once rather than after `auth::cache::CLIENT_TTL`.
pub const CLIENT_CHANNEL: &str = "eap_client_changes";

/// What the listener does with a client change: forget that client (`Some`), or every client
/// (`None`: the listener reconnected and may have missed notices).
pub type OnClientChange = Box<dyn Fn(Option<&str>) + Send>;

/// Tells every instance, when the surrounding transaction commits, that a client changed. On
/// SQLite there is one instance per database file, which forgets the client itself.
pub fn client_changed(
    conn: &mut crate::db::AnyConnection,
    client_id: &str,
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let crate::db::AnyConnection::Postgresql(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(CLIENT_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(client_id)
            .execute(c)?;
    }
    Ok(())
}

#[derive(Default)]
pub struct Notifier {
    waiters: Mutex<HashMap<String, Weak<Notify>>>,
    /// Per provider: "the database showed no event after this position", valid until the next
    /// write notice. Lets an empty poll answer without a query.
    heads: Mutex<HashMap<String, Head>>,
    /// Bumped when notices may have been lost (the listener reconnected): forget every head.
    epoch: std::sync::atomic::AtomicU64,
    /// Long polls waiting now, bounded by `EAP_MAX_LONG_POLLS`.
    waiting: std::sync::atomic::AtomicUsize,
    /// The server is stopping: no poll waits any more.
    closing: std::sync::atomic::AtomicBool,
}

/// A waiting poll's place; gives it back when dropped.
pub struct WaitSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Head {
    generation: u64,
    empty_after: Option<Position>,
}

/// Taken before a feed query; a head is learned from the query only if no write notice came
/// for that provider in between.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    generation: u64,
}

impl Notifier {
    /// The provider's wake-up handle; kept alive by the polls holding it.
    pub fn handle(&self, provider_id: &str) -> Arc<Notify> {
        let mut map = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(provider_id).and_then(Weak::upgrade) {
            return n;
        }
        // Forget providers nobody waits for any more, so the map tracks live polls only.
        map.retain(|_, w| w.strong_count() > 0);
        let n = Arc::new(Notify::new());
        map.insert(provider_id.to_owned(), Arc::downgrade(&n));
        n
    }

    /// A place among the waiting polls, if fewer than `max` wait. Waiting is cheap (no
    /// connection, no thread) but not free: each open poll holds a socket and about 16 KB.
    pub fn try_wait(&self, max: usize) -> Option<WaitSlot<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut n = self.waiting.load(SeqCst);
        loop {
            if n >= max {
                return None;
            }
            match self.waiting.compare_exchange(n, n + 1, SeqCst, SeqCst) {
                Ok(_) => return Some(WaitSlot(&self.waiting)),
                Err(now) => n = now,
            }
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The server is stopping: every waiting poll is woken and answers with what it has, and no
    /// poll waits again, so none is cut off when the connections close.
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify_all();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Wakes every waiting poll (after the listener reconnects, notifications may have been lost).
    pub fn notify_all(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let map = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for n in map.values().filter_map(Weak::upgrade) {
            n.notify_waiters();
        }
    }

    pub fn ticket(&self, provider_id: &str) -> Ticket {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        Ticket {
            epoch: self.epoch.load(std::sync::atomic::Ordering::SeqCst),
            generation: heads.get(provider_id).map_or(0, |h| h.generation),
        }
    }

    /// True when the provider is known to have nothing after `after`.
    pub fn known_empty(&self, provider_id: &str, after: Position) -> bool {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        heads
            .get(provider_id)
            .and_then(|h| h.empty_after)
            .is_some_and(|e| after >= e)
    }

    /// Records that a query begun under `ticket` found nothing after `after` (and nothing held
    /// back) — unless a write notice for the provider arrived since the ticket was taken.
    pub fn learn_empty(&self, provider_id: &str, ticket: Ticket, after: Position) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(std::sync::atomic::Ordering::SeqCst) != ticket.epoch {
            return;
        }
        let head = heads.entry(provider_id.to_owned()).or_default();
        if head.generation == ticket.generation {
            head.empty_after = Some(after);
        }
    }

    /// A write for the provider committed: forget what was known, then wake its polls.
    pub fn notify(&self, provider_id: &str) {
        {
            let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
            let head = heads.entry(provider_id.to_owned()).or_default();
            head.generation += 1;
            head.empty_after = None;
        }
        let map = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(provider_id).and_then(Weak::upgrade) {
            n.notify_waiters();
        }
    }
}

thread_local! {
    static PENDING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Called by the writer of a feed event (inside its transaction).
pub fn touched(provider_id: &str) {
    PENDING.with(|p| p.borrow_mut().push(provider_id.to_owned()));
}

/// Called after the work on this thread is done (committed or rolled back): wakes every touched
/// provider. A wake after a rollback only costs the poll one empty query.
pub fn flush(notifier: &Notifier) {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for p in pending {
        notifier.notify(&p);
    }
}

/// The listener thread, stopped (and waited for, briefly) when the server shuts down: a thread
/// still inside libpq while the process exits can crash it as TLS state is torn down.
pub struct Listener {
    stop: Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Listener {
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.done.recv_timeout(Duration::from_secs(2));
    }
}

/// Listens for other instances' events and client changes on PostgreSQL until stopped or the
/// notifier is dropped.
pub fn spawn_pg_listener(
    url: String,
    notifier: Weak<Notifier>,
    on_client: OnClientChange,
) -> Listener {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done_tx, done) = std::sync::mpsc::channel();
    let stopping = stop.clone();
    let running = move || !stopping.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::Builder::new()
        .name("pg-listener".into())
        .spawn(move || {
            let _signal_when_done = Finished(done_tx);
            while notifier.strong_count() > 0 && running() {
                if let Some(conn) = listening_connection(&url) {
                    if !relay(conn, &notifier, &on_client, &running) {
                        return;
                    }
                }
            }
        })
        .expect("spawn the feed listener thread");
    Listener { stop, done }
}

/// A connection that has run `LISTEN`, or `None` after a pause (logged) so the caller retries.
fn listening_connection(url: &str) -> Option<diesel::PgConnection> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut conn = match diesel::PgConnection::establish(url) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "feed listener cannot connect; retrying");
            std::thread::sleep(Duration::from_secs(1));
            return None;
        }
    };
    if let Err(e) = conn.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {CLIENT_CHANNEL}")) {
        tracing::warn!(error = %e, "feed listener cannot LISTEN; retrying");
        std::thread::sleep(Duration::from_secs(1));
        return None;
    }
    Some(conn)
}

/// Turns notices on `conn` into local wake-ups until the connection fails (`true`: reconnect)
/// or the listener is stopped or its notifier dropped (`false`: end the thread).
fn relay(
    mut conn: diesel::PgConnection,
    notifier: &Weak<Notifier>,
    on_client: &OnClientChange,
    running: &impl Fn() -> bool,
) -> bool {
    use diesel::connection::SimpleConnection;
    // Anything sent while we were not listening is lost: let every poll look again, and read
    // every client's status afresh.
    if let Some(n) = notifier.upgrade() {
        n.notify_all();
    }
    on_client(None);
    let mut last_ping = std::time::Instant::now();
    loop {
        if !running() {
            return false;
        }
        let Some(n) = notifier.upgrade() else {
            return false;
        };
        // A half-open socket never reports an error to a reader: probe it.
        if last_ping.elapsed() > Duration::from_secs(5) {
            if let Err(e) = conn.batch_execute("SELECT 1") {
                tracing::warn!(error = %e, "feed listener connection is dead; reconnecting");
                return true;
            }
            last_ping = std::time::Instant::now();
        }
        for event in conn.notifications_iter() {
            match event {
                Ok(e) if e.channel == CLIENT_CHANNEL => on_client(Some(&e.payload)),
                Ok(e) => n.notify(&e.payload),
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener lost its connection; reconnecting");
                    return true;
                }
            }
        }
        drop(n);
        // The socket is polled, not awaited: 20 ms keeps wake-ups well inside 100 ms.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tells `Listener::stop` the thread has left libpq, however it ends.
struct Finished(std::sync::mpsc::Sender<()>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: i64) -> Position {
        Position { txid: 0, id }
    }

    #[test]
    fn a_head_is_learned_only_without_a_write_in_between() {
        let n = Notifier::default();
        let t = n.ticket("p");
        n.learn_empty("p", t, at(5));
        assert!(n.known_empty("p", at(5)) && n.known_empty("p", at(6)));
        assert!(
            !n.known_empty("p", at(4)),
            "a cursor behind the head must ask the database"
        );
        n.notify("p");
        assert!(!n.known_empty("p", at(5)), "a write clears it");

        let t = n.ticket("p");
        n.notify("p"); // a write lands while the query runs
        n.learn_empty("p", t, at(5));
        assert!(!n.known_empty("p", at(5)), "a stale answer is not learned");

        let t = n.ticket("p");
        n.notify_all(); // the listener reconnected: notices may be lost
        n.learn_empty("p", t, at(5));
        assert!(!n.known_empty("p", at(5)));
        assert!(
            !n.known_empty("q", at(0)),
            "unknown providers ask the database"
        );
    }
}
