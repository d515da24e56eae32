//! Per-client request budgets (token buckets), kept in memory by each instance.
//!
//! Authenticated calls spend the budget of their client, sized by role. The token endpoint
//! spends, before any password hashing (so guessing secrets is slow and cannot tie up the
//! hashing slots):
//! - the source address's budget (`token_address`), whatever client it claims;
//! - the budget of the claimed client id *from that address* (`token`): client ids are not
//!   secret, so a budget of the id alone would let anyone lock the real client out by
//!   spending it from elsewhere;
//! - when the address has never obtained a token for that client, the client's ceiling for
//!   such addresses together (`token_client`): guessing spread over many addresses stays
//!   bounded per client, and the addresses the client really uses never meet it.
//!
//! Budgets are per instance: behind a balancer of N instances a client gets up to N times its
//! quota, which is the usual trade for not putting a shared store on every request's path.
//!
//! Responses carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers);
//! a refusal is 429 with `Retry-After`.

pub mod model;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

pub use model::{Bucket, Decision, Policy};

use crate::auth::model::Role;
use crate::config::RateLimitConfig;

const SHARDS: usize = 16;
/// The most keys one limiter remembers. Buckets that have refilled are dropped first; past that
/// a new key is refused for a second, so a flood of distinct keys (random client ids, many
/// addresses) cannot grow memory without bound.
const MAX_KEYS: usize = 65_536;

/// One policy's buckets, by key.
pub struct Limiter {
    policy: Policy,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
    /// Random per process, so no one can pick keys that all land in one shard and fill it.
    shard_of: RandomState,
}

/// A request's standing against one policy, for the response headers.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub policy: Policy,
    pub decision: Decision,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        matches!(self.decision, Decision::Allowed { .. })
    }

    /// `RateLimit-Policy` and `RateLimit` header values.
    pub fn headers(&self) -> (String, String) {
        let p = &self.policy;
        let (r, t) = match self.decision {
            Decision::Allowed { remaining, reset } => (remaining, reset),
            Decision::Limited { retry_after } => (0, retry_after),
        };
        (
            format!("\"{}\";q={};w={}", p.name, p.quota, p.window.as_secs()),
            format!("\"{}\";r={r};t={t}", p.name),
        )
    }
}

/// The verdict applied to this request, left in its extensions for the response headers.
#[derive(Debug, Clone, Copy)]
pub struct Applied(pub Verdict);

impl Limiter {
    pub fn new(policy: Policy) -> Self {
        Limiter {
            policy,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_of: RandomState::new(),
        }
    }

    /// Spends one request of `key`'s budget; `None` when this policy has no limit.
    pub fn check(&self, key: &str) -> Option<Verdict> {
        self.check_at(key, Instant::now())
    }

    pub fn check_at(&self, key: &str, now: Instant) -> Option<Verdict> {
        if self.policy.unlimited() {
            return None;
        }
        let shard = &self.shards[(self.shard_of.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let policy = self.policy;
        if !map.contains_key(key) && map.len() >= MAX_KEYS / SHARDS {
            map.retain(|_, b| !b.is_full(&policy, now));
            if map.len() >= MAX_KEYS / SHARDS {
                return Some(Verdict {
                    policy,
                    decision: Decision::Limited { retry_after: 1 },
                });
            }
        }
        // A known key (every request but a client's first) allocates nothing.
        let decision = match map.get_mut(key) {
            Some(bucket) => bucket.take(&policy, now),
            None => {
                let mut bucket = Bucket::full(&policy, now);
                let decision = bucket.take(&policy, now);
                map.insert(key.to_owned(), bucket);
                decision
            }
        };
        Some(Verdict { policy, decision })
    }
}

/// Every budget the service enforces.
pub struct Limits {
    admin: Limiter,
    hr_portal: Limiter,
    provider: Limiter,
    auditor: Limiter,
    pub token_client: Limiter,
    pub token_client_unproven: Limiter,
    pub token_address: Limiter,
    /// (client id, address key) pairs that obtained a token on this instance.
    pub proven: Proven,
}

impl Limits {
    pub fn new(c: &RateLimitConfig) -> Self {
        Limits {
            admin: Limiter::new(Policy::per_minute("admin", c.admin)),
            hr_portal: Limiter::new(Policy::per_minute("hr_portal", c.hr_portal)),
            provider: Limiter::new(Policy::per_minute("provider", c.provider)),
            auditor: Limiter::new(Policy::per_minute("auditor", c.auditor)),
            token_client: Limiter::new(Policy::per_minute("token", c.token_client)),
            token_client_unproven: Limiter::new(Policy::per_minute(
                "token_client",
                c.token_client_unproven,
            )),
            proven: Proven::default(),
            token_address: Limiter::new(Policy::per_minute("token_address", c.token_address)),
        }
    }

    pub fn for_role(&self, role: Role) -> &Limiter {
        match role {
            Role::Admin => &self.admin,
            Role::HrPortal => &self.hr_portal,
            Role::Provider => &self.provider,
            Role::Auditor => &self.auditor,
        }
    }
}

/// The addresses each client has obtained a token from. Only a correct secret adds an entry,
/// so a guesser cannot grow it; past `MAX_KEYS` entries a shard starts over (its clients then
/// count against their ceiling again until their next token).
pub struct Proven {
    shards: Vec<Mutex<std::collections::HashSet<String>>>,
    shard_of: RandomState,
}

impl Default for Proven {
    fn default() -> Self {
        Proven {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_of: RandomState::new(),
        }
    }
}

impl Proven {
    fn key(client: &str, address: &str) -> String {
        format!("{client} {address}")
    }

    fn shard(&self, key: &str) -> &Mutex<std::collections::HashSet<String>> {
        &self.shards[(self.shard_of.hash_one(key) as usize) % SHARDS]
    }

    pub fn contains(&self, client: &str, address: &str) -> bool {
        let key = Self::key(client, address);
        let set = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        set.contains(&key)
    }

    pub fn insert(&self, client: &str, address: &str) {
        let key = Self::key(client, address);
        let mut set = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_KEYS / SHARDS {
            set.clear();
        }
        set.insert(key);
    }
}

/// The key for a source address: IPv4 as is, IPv6 by its /64, since one host commonly holds a
/// whole /64 and could otherwise rotate through it.
pub fn address_key(source: Option<&str>) -> String {
    match source.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_have_separate_budgets() {
        let l = Limiter::new(Policy::per_minute("t", 1));
        let now = Instant::now();
        assert!(l.check_at("a", now).unwrap().allowed());
        assert!(!l.check_at("a", now).unwrap().allowed());
        assert!(l.check_at("b", now).unwrap().allowed());
    }

    #[test]
    fn quota_zero_is_unlimited() {
        let l = Limiter::new(Policy::per_minute("t", 0));
        assert!(l.check("a").is_none());
    }

    #[test]
    fn memory_is_bounded_and_refilled_keys_are_forgotten_first() {
        let l = Limiter::new(Policy::per_minute("t", 1));
        let t0 = Instant::now();
        let mut refused = 0;
        for i in 0..(MAX_KEYS + 1000) {
            if !l.check_at(&format!("k{i}"), t0).unwrap().allowed() {
                refused += 1;
            }
        }
        assert!(
            refused > 0,
            "a flood of new keys is refused once the table is full"
        );
        let held: usize = l.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= MAX_KEYS);
        // A minute later every bucket has refilled: new keys are admitted again.
        let t1 = t0 + Duration::from_secs(61);
        assert!(l.check_at("fresh", t1).unwrap().allowed());
    }

    #[test]
    fn headers_follow_the_draft() {
        let v = Verdict {
            policy: Policy::per_minute("hr_portal", 100),
            decision: Decision::Allowed {
                remaining: 99,
                reset: 1,
            },
        };
        assert_eq!(
            v.headers(),
            (
                "\"hr_portal\";q=100;w=60".to_owned(),
                "\"hr_portal\";r=99;t=1".to_owned()
            )
        );
    }

    #[test]
    fn ipv6_addresses_share_a_budget_per_64() {
        assert_eq!(
            address_key(Some("2001:db8:1:2:aaaa::1")),
            address_key(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            address_key(Some("2001:db8:1:2::1")),
            address_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(Some("::ffff:10.0.0.1")), "10.0.0.1");
        assert_eq!(address_key(Some("10.0.0.1")), "10.0.0.1");
    }
}
