//! One connection type for SQLite and PostgreSQL, its pool, migrations and transactions.

pub mod notify;
pub mod prepared;
pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::ApiError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may carry a password; show only what identifies the target.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(raw.to_owned()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(DatabaseUrl::Sqlite(PathBuf::from(p))),
            // Not echoed: an unparseable value may be a libpq keyword string with a password.
            _ => Err("not a database URL (expected postgres://… or sqlite://PATH)".into()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(u) => redact(u),
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        }
    }

    fn connect(&self, busy_timeout: Duration) -> Result<AnyConnection, diesel::ConnectionError> {
        match self {
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(url).map(AnyConnection::Postgresql)
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // busy_timeout first: it makes writers queue instead of failing at once, and the
                // switch to WAL (readers beside the writer) is itself a write that can meet a
                // sibling connection doing the same. Foreign keys are off by default in SQLite.
                // secure_delete zeroes what a statement removes, so shredded keys and
                // ciphertexts do not linger in the file's free space.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA secure_delete = ON;",
                    busy_timeout.as_millis()
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`, and drops the query
/// string, where libpq also accepts `password=` and `sslpassword=`.
fn redact(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_owned(),
    }
}

/// Connects with the concrete connection type and wraps it, so the pool reports the real
/// connection error rather than the derive's generic "invalid connection url".
pub struct Manager {
    url: DatabaseUrl,
    busy_timeout: Duration,
}

/// A connection used without an error this recently is handed out again without a test
/// query (HikariCP's "alive bypass window"): a busy pool then spends no round trip per request
/// on `SELECT 1`, while one that sat idle, or last failed, is tested first.
const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A pooled connection, and when it last finished work without an error.
pub struct PoolConn {
    conn: AnyConnection,
    healthy_at: Option<std::time::Instant>,
}

impl PoolConn {
    /// Records how the work on it ended. After a failure it is tested before it is handed out
    /// again, so a connection the database dropped is replaced rather than failing the next
    /// request too.
    fn finished(&mut self, ok: bool) {
        self.healthy_at = ok.then(std::time::Instant::now);
    }
}

impl std::ops::Deref for PoolConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConn, Self::Error> {
        let conn = self
            .url
            .connect(self.busy_timeout)
            .map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(PoolConn {
            conn,
            healthy_at: None,
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), Self::Error> {
        if conn.healthy_at.is_some_and(|t| t.elapsed() < TRUSTED_FOR) {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(
            &mut conn.conn,
        )
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// The shared database handle: a pool plus the knowledge of which backend it talks to.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    url: DatabaseUrl,
    /// Wakes long polls after the work that wrote their provider's events.
    pub notifier: std::sync::Arc<notify::Notifier>,
    /// As many blocking tasks as there are connections: more would only park threads (each with
    /// its stack) waiting for a connection, so callers wait here, asynchronously, instead.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// SQLite: an erasure or purge could not empty the write-ahead log (a reader was in the
    /// way), so it may still hold destroyed pages; housekeeping checkpoints until it succeeds.
    pub wal_dirty: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// SQLite only: the process's writers take turns here, in arrival order, before they take
    /// a connection. SQLite lets one writer in at a time and parks the others in its busy
    /// handler, which polls in growing sleeps (up to 100 ms a try): throughput held but the
    /// tail reached ~900 ms at 2 to 32 concurrent submissions. A FIFO turn hands the write lock
    /// on the moment it is free, and waiting writers hold no connection, so reads go on.
    /// `None` on PostgreSQL, whose writers lock rows, not the database.
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// How long work waits for its turn (then 503, as for a connection).
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DbInitError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("migrations failed on {0}: {1}")]
    Migrate(String, String),
}

impl Db {
    /// Opens the pool; fails at once when the database cannot be reached.
    pub fn connect(url: &DatabaseUrl, size: u32, timeout: Duration) -> Result<Self, DbInitError> {
        if let DatabaseUrl::Sqlite(path) = url {
            create_private_sqlite_file(path)?;
        }
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(Manager {
                url: url.clone(),
                busy_timeout: timeout,
            })
            .map_err(|e| DbInitError::Connect(url.redacted(), e.to_string()))?;
        Ok(Db {
            pool,
            backend: url.backend(),
            url: url.clone(),
            notifier: Default::default(),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(size as usize)),
            wal_dirty: Default::default(),
            writer: (url.backend() == Backend::Sqlite).then(Default::default),
            timeout,
        })
    }

    /// Open and idle connections, for metrics.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn get(&self) -> Result<PooledConn, ApiError> {
        self.pool
            .get()
            .map_err(|e| ApiError::Unavailable(e.to_string()))
    }

    /// Runs blocking database work that may write on the blocking thread pool, off the async
    /// workers. On SQLite it first waits its turn among the process's writers (almost every
    /// request writes: each one logs an access event).
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(writer) = &self.writer else {
            return self.run_read(f).await;
        };
        let turn = tokio::time::timeout(self.timeout, writer.clone().lock_owned())
            .await
            .map_err(|_| ApiError::Unavailable("timed out waiting to write".into()))?;
        // The turn moves into the work, so it ends when the work does even if the request
        // that asked for it has gone.
        self.run_read(move |conn| {
            let _turn = turn;
            f(conn)
        })
        .await
    }

    /// Runs blocking database work that only reads (it never waits for a writer's turn).
    pub async fn run_read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("database slots closed: {e}")))?;
        actix_web::web::block(move || {
            let _permit = permit;
            let mut conn = db.get()?;
            let result = f(&mut conn);
            conn.finished(result.is_ok());
            notify::flush(&db.notifier);
            result
        })
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
    }

    pub fn migrate(&self) -> Result<Vec<String>, DbInitError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| DbInitError::Connect(self.backend_name().into(), e.to_string()))?;
        run_migrations(&mut conn).map_err(|e| DbInitError::Migrate(self.backend_name().into(), e))
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// Creates the SQLite file owner-only (0600) before SQLite opens it; SQLite gives its WAL and
/// shared-memory files the same mode. A new data directory is made owner-only too.
fn create_private_sqlite_file(path: &std::path::Path) -> Result<(), DbInitError> {
    let dir_err = |d: &std::path::Path, e| DbInitError::DataDir(d.into(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| dir_err(dir, e))?;
        }
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| dir_err(path, e))?;
    }
    Ok(())
}

/// The advisory lock migrations run under on PostgreSQL (any fixed number unique to the
/// service; the purge and the sealer use their own).
const MIGRATION_LOCK: i64 = 0x6561_705f_6d69_6772; // "eap_migr"

/// Applies pending migrations, one migrator at a time. Instances of a rolling deploy start
/// together and each migrates: unserialised, two would both find a migration pending and the
/// second would fail on the first's tables. On PostgreSQL the others wait on a session advisory
/// lock and then find nothing pending; on SQLite the whole run is one `BEGIN IMMEDIATE`
/// transaction, which holds the database's write lock (the others wait in `busy_timeout`).
pub fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, String> {
    match conn {
        AnyConnection::Postgresql(c) => {
            let lock = |c: &mut PgConnection, sql: &str| {
                diesel::sql_query(sql)
                    .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                    .execute(c)
                    .map_err(|e| e.to_string())
            };
            lock(c, "SELECT pg_advisory_lock($1)")?;
            let applied = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|done| done.iter().map(ToString::to_string).collect());
            // Released even when a migration failed; the session ends with the pooled
            // connection at the latest, which releases it too.
            lock(c, "SELECT pg_advisory_unlock($1)")?;
            applied.map_err(|e| e.to_string())
        }
        AnyConnection::Sqlite(c) => c
            .immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|done| done.iter().map(ToString::to_string).collect())
                    .map_err(|e| MigrationFailed(e.to_string()))
            })
            .map_err(|e| e.0),
    }
}

/// A migration error carried out of a diesel transaction (which needs `From<diesel::Error>`).
struct MigrationFailed(String);

impl From<diesel::result::Error> for MigrationFailed {
    fn from(e: diesel::result::Error) -> Self {
        MigrationFailed(e.to_string())
    }
}

/// True when every embedded migration has been applied.
pub fn is_migrated(conn: &mut AnyConnection) -> Result<bool, String> {
    match conn {
        AnyConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        AnyConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    }
    .map(|pending| !pending)
    .map_err(|e| e.to_string())
}

/// A transaction that will write. On SQLite it starts with `BEGIN IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads and then writes can fail with SQLITE_BUSY at
/// once (no busy-wait) when another writer got there first.
pub fn write_tx<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if let AnyConnection::Sqlite(inner) = conn {
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        return match f(conn) {
            Ok(value) => {
                <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
                Ok(value)
            }
            Err(e) => {
                <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
                Err(e)
            }
        };
    }
    conn.transaction(f)
}

/// Tries a transaction-scoped advisory lock on PostgreSQL: `false` at once when another
/// session holds `key` (no waiting), and released with the transaction. SQLite runs one writer
/// at a time (`write_tx` takes the write lock first), so there it is always taken.
pub fn try_xact_lock(conn: &mut AnyConnection, key: i64) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    match conn {
        AnyConnection::Postgresql(c) => {
            prepared::prepared("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(key)
                .get_result::<Locked>(c)
                .map(|r| r.locked)
        }
        AnyConnection::Sqlite(_) => Ok(true),
    }
}

/// The current UTC time at the precision both backends store (PostgreSQL keeps microseconds),
/// so a value returned at creation equals the value read back later.
pub fn now() -> chrono::NaiveDateTime {
    stored(chrono::Utc::now())
}

/// A time at the precision both backends store (microseconds).
pub fn stored(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    let t = t.naive_utc();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Readiness: a round trip to the database and no pending migrations.
pub fn check_ready(conn: &mut AnyConnection) -> Result<(), String> {
    diesel::sql_query("SELECT 1")
        .execute(conn)
        .map_err(|e| e.to_string())?;
    if is_migrated(conn)? {
        Ok(())
    } else {
        Err("migrations pending".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/x.db").unwrap(),
            DatabaseUrl::Sqlite("./data/x.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/eap").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/eap");
        assert!(!format!("{url:?}").contains("hunter2"));
        let query =
            DatabaseUrl::parse("postgres://db/eap?password=hunter2&sslmode=require").unwrap();
        assert!(!query.redacted().contains("hunter2"));
        let err = DatabaseUrl::parse("host=db password=hunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
    /// Eight writers at once, each holding its write transaction for 20 ms, with SQLite's busy
    /// handler switched off (a writer that finds the lock taken fails at once): with turns,
    /// none fails; without them (`run_read`), some do — the waiting the turns replace.
    #[actix_web::test]
    async fn sqlite_writers_take_turns_instead_of_meeting_a_locked_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("turns.db"));
        let db = Db::connect(&url, 8, Duration::from_secs(5)).unwrap();
        db.run(|c| Ok(c.batch_execute("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
        let write = |i: i32| {
            move |c: &mut AnyConnection| -> Result<(), ApiError> {
                c.batch_execute("PRAGMA busy_timeout = 0")?;
                write_tx(c, |c| {
                    c.batch_execute(&format!("INSERT INTO t VALUES ({i})"))?;
                    std::thread::sleep(Duration::from_millis(20));
                    Ok(())
                })
            }
        };
        let with_turns = futures_util::future::join_all((0..8).map(|i| db.run(write(i)))).await;
        assert!(with_turns.iter().all(Result::is_ok), "{with_turns:?}");
        let without = futures_util::future::join_all((0..8).map(|i| db.run_read(write(i)))).await;
        assert!(
            without.iter().any(Result::is_err),
            "eight untaken turns all found the database free: the test shows nothing"
        );
    }
}
