//! What every handler can reach: settings, the database, keys, caches and counters.

use std::sync::Arc;

use crate::auth::cache::AuthCache;
use crate::auth::model::TokenService;
use crate::config::Config;
use crate::db::Db;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::outside::OutsideLog;
use crate::ratelimit::Limits;
use crate::referrals::crisis::CrisisTable;

/// What every handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<Keys>,
    pub tokens: TokenService,
    pub crisis: CrisisTable,
    /// Bounds concurrent argon2 verifications (19 MiB and tens of ms each), so a flood of token
    /// requests cannot exhaust memory or starve the database work on the blocking pool.
    pub hashing: tokio::sync::Semaphore,
    pub auth_cache: AuthCache,
    /// Request budgets per client and on the token endpoint.
    pub limits: Limits,
    pub metrics: Metrics,
    /// Where erasures and checkpoints are also written, outside the database.
    pub outside: OutsideLog,
    /// Employers' routing snapshots kept while the directory does not change.
    pub routing: Arc<crate::routing::cache::SnapshotCache>,
}
