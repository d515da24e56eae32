//! The routing snapshot kept in memory between submissions, so that first routing reads one
//! counter instead of every contracted provider: its cost no longer grows with the network.
//!
//! A kept snapshot is used only while the directory has not changed. `directory_version` is a
//! counter that triggers on `providers`, `contracts` and `employer_affiliations` bump inside
//! the changing transaction (migration `2026-12-02-000022_directory_version`), whoever writes:
//! this instance, another one, an instance of the previous release, an operator's SQL. Each use
//! reads the counter first, in the caller's transaction, and the snapshot after it when the
//! counter moved, so a snapshot is never older than the counter it is kept under: a hit gives
//! what a fresh read would. The loads and the slot claim are never cached (`store::place`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::store::{Loads, Snapshot};
use crate::db::schema::directory_version;
use crate::db::AnyConnection;
use crate::directory::capacity::directory_version_and_loads;
use crate::ids::EmployerId;

/// Employers whose snapshots are kept at most; past it the whole map is dropped and refilled
/// by use (a bound on memory, not a policy: a deployment has far fewer employers routing).
const MAX_EMPLOYERS: usize = 10_000;

/// How long a large network's loads are used before they are read again.
pub const LOADS_MAX_AGE: Duration = Duration::from_millis(250);

/// One employer's kept snapshot.
struct Kept {
    /// The directory's counter when the snapshot was read.
    version: i64,
    snapshot: Arc<Snapshot>,
    /// A large network's loads, when read, plus this instance's offers since. Shared with the
    /// submissions routing over them (a copy per submission was 1,000 keys at N = 1,000); an
    /// offer counts itself in place when no submission holds them any more, in a copy otherwise.
    loads: Option<(Instant, Arc<Loads>)>,
}

/// Per employer, the routing snapshot kept while the directory does not change.
pub struct SnapshotCache {
    /// From this many contracted providers, loads are kept for [`LOADS_MAX_AGE`]
    /// (`EAP_ROUTING_KEEP_LOADS_FROM`); smaller networks read them on every submission.
    keep_loads_from: usize,
    kept: Mutex<HashMap<EmployerId, Kept>>,
}

impl SnapshotCache {
    pub fn new(keep_loads_from: usize) -> Self {
        SnapshotCache {
            keep_loads_from,
            kept: Mutex::default(),
        }
    }

    /// The employer's snapshot as it stands in this transaction, and the loads to rank by.
    ///
    /// Loads only rank eligible providers (least loaded first within a contract priority);
    /// capacity is decided by the slot claim, which never reads them. Reading them costs one
    /// row per provider, so for a network of `keep_loads_from` providers or more they are kept
    /// for [`LOADS_MAX_AGE`], counting this instance's own offers since: ranking there may lag
    /// other instances' offers and every release by that long, never the capacity.
    pub fn for_routing(
        &self,
        conn: &mut AnyConnection,
        employer_id: &EmployerId,
    ) -> QueryResult<(Arc<Snapshot>, Arc<Loads>)> {
        // A large network's loads kept and still fresh: only the counter is read, to check
        // that the snapshot still stands.
        let fresh = self.lock().get(employer_id).and_then(|k| {
            let (at, loads) = k.loads.as_ref()?;
            (at.elapsed() < LOADS_MAX_AGE).then(|| (k.version, k.snapshot.clone(), loads.clone()))
        });
        if let Some((kept_version, snapshot, loads)) = fresh {
            let version: i64 = directory_version::table
                .select(directory_version::version)
                .first(conn)?;
            if version == kept_version {
                return Ok((snapshot, loads));
            }
        }
        // Otherwise the loads are read now, and the counter with them in one statement.
        let (version, loads) = directory_version_and_loads(conn, employer_id)?;
        let loads = Arc::new(loads);
        let kept = self
            .lock()
            .get(employer_id)
            .filter(|k| k.version == version)
            .map(|k| k.snapshot.clone());
        let snapshot = match kept {
            // A small network's loads are not kept: nothing to store.
            Some(snapshot) if snapshot.len() < self.keep_loads_from => {
                return Ok((snapshot, loads));
            }
            Some(snapshot) => snapshot,
            // Read after the counter, so never older than the counter it is kept under.
            None => Arc::new(Snapshot::read(conn, employer_id)?),
        };
        let kept_loads =
            (snapshot.len() >= self.keep_loads_from).then(|| (Instant::now(), loads.clone()));
        let mut kept = self.lock();
        if kept.len() >= MAX_EMPLOYERS {
            kept.clear();
        }
        // A concurrent reader may have kept one under a later counter: keep the later.
        if kept.get(employer_id).is_none_or(|k| k.version <= version) {
            kept.insert(
                employer_id.clone(),
                Kept {
                    version,
                    snapshot: snapshot.clone(),
                    loads: kept_loads,
                },
            );
        }
        Ok((snapshot, loads))
    }

    /// This instance offered a referral of the employer's to `provider`: its kept load counts
    /// it until the loads are read again.
    pub fn offered(&self, employer_id: &EmployerId, provider: &str) {
        if let Some(Kept {
            loads: Some((_, loads)),
            ..
        }) = self.lock().get_mut(employer_id)
        {
            let loads = Arc::make_mut(loads);
            match loads.get_mut(provider) {
                Some(n) => *n += 1,
                None => {
                    loads.insert(provider.to_owned(), 1);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EmployerId, Kept>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
