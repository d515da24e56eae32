//! Caches on the request path: a token's signature is checked once, not on every request, and
//! a client's status (role, revoked, secret version, tenant) is read from the database at most
//! every few seconds. Rotating or revoking a client forgets it here at once; on PostgreSQL
//! every other instance is told when the change commits (`db::notify::CLIENT_CHANNEL`) and
//! forgets it within milliseconds; `CLIENT_TTL` bounds the wait should a notice be lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{Claims, Role, LEEWAY_SECS};

pub const CLIENT_TTL: Duration = Duration::from_secs(5);
/// Past this many entries a cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    pub role: Role,
    pub revoked: bool,
    pub secret_version: i64,
    /// The tenant the client is bound to, as stored.
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
}

#[derive(Default)]
pub struct AuthCache {
    tokens: Mutex<HashMap<String, Claims>>,
    clients: Mutex<HashMap<String, (Option<ClientStatus>, Instant)>>,
}

impl AuthCache {
    /// Claims of a token whose signature and claims were verified before, if still in date.
    pub fn token(&self, token: &str, now: u64) -> Option<Claims> {
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some(c) if c.exp + LEEWAY_SECS >= now => Some(c.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn remember_token(&self, token: &str, claims: &Claims) {
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(token.to_owned(), claims.clone());
    }

    /// A client's status if read within `CLIENT_TTL` (`Some(None)`: no such client).
    pub fn client(&self, id: &str) -> Option<Option<ClientStatus>> {
        let map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|(_, at)| at.elapsed() < CLIENT_TTL)
            .map(|(s, _)| s.clone())
    }

    pub fn remember_client(&self, id: &str, status: Option<ClientStatus>) {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_owned(), (status, Instant::now()));
    }

    /// Forgets every client's status (notices of changes may have been missed).
    pub fn forget_clients(&self) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Called when a client is rotated or revoked, here or (on PostgreSQL) on any instance.
    pub fn forget_client(&self, id: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

impl ClientStatus {
    /// Whether a token with these claims may act for this client now. The tenant in the claims
    /// must be the client's stored binding too: a token is only ever issued with it, so a
    /// mismatch means a token minted elsewhere (a leaked signing key), which must not reach
    /// another tenant's data.
    pub fn admits(&self, claims: &Claims) -> bool {
        !self.revoked
            && self.role == claims.role
            && self.secret_version == claims.sv
            && self.employer_id == claims.employer_id
            && self.provider_id == claims.provider_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64, sv: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "c".into(),
            aud: "a".into(),
            client_id: "c".into(),
            iat: 0,
            nbf: 0,
            exp,
            jti: "j".into(),
            role: Role::Provider,
            sv,
            employer_id: None,
            provider_id: Some("p".into()),
        }
    }

    #[test]
    fn tokens_are_served_until_they_expire() {
        let cache = AuthCache::default();
        cache.remember_token("t", &claims(1000, 1));
        assert!(cache.token("t", 1000 + LEEWAY_SECS).is_some());
        assert!(cache.token("t", 1001 + LEEWAY_SECS).is_none(), "expired");
        assert!(cache.token("t", 0).is_none(), "and forgotten");
    }

    #[test]
    fn client_status_admits_only_its_current_secret_and_role() {
        let cache = AuthCache::default();
        let status = ClientStatus {
            role: Role::Provider,
            revoked: false,
            secret_version: 1,
            employer_id: None,
            provider_id: Some("p".into()),
        };
        cache.remember_client("c", Some(status.clone()));
        assert!(cache.client("c").unwrap().unwrap().admits(&claims(1, 1)));
        assert!(!status.admits(&claims(1, 2)), "rotated");
        assert!(!ClientStatus {
            revoked: true,
            ..status.clone()
        }
        .admits(&claims(1, 1)));
        let elsewhere = Claims {
            provider_id: Some("q".into()),
            ..claims(1, 1)
        };
        assert!(
            !status.admits(&elsewhere),
            "another tenant than the stored one"
        );
        cache.forget_client("c");
        assert!(cache.client("c").is_none());
    }
}
