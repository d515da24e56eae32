//! Caches on the request path: a token's signature is checked once, not on every request, and
//! a client's status (role, revoked, secret version) is read from the database at most every
//! few seconds. Rotating or revoking a client forgets it here at once; other instances follow
//! within `CLIENT_TTL` (docs/DESIGN.md §1).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{Claims, Role, LEEWAY_SECS};

pub const CLIENT_TTL: Duration = Duration::from_secs(5);
/// Past this many entries a cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStatus {
    pub role: Role,
    pub revoked: bool,
    pub secret_version: i64,
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
            .map(|(s, _)| *s)
    }

    pub fn remember_client(&self, id: &str, status: Option<ClientStatus>) {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_owned(), (status, Instant::now()));
    }

    /// Called when a client is rotated or revoked on this instance.
    pub fn forget_client(&self, id: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

impl ClientStatus {
    /// Whether a token with these claims may act for this client now.
    pub fn admits(&self, claims: &Claims) -> bool {
        !self.revoked && self.role == claims.role && self.secret_version == claims.sv
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
        };
        cache.remember_client("c", Some(status));
        assert!(cache.client("c").unwrap().unwrap().admits(&claims(1, 1)));
        assert!(!status.admits(&claims(1, 2)), "rotated");
        assert!(!ClientStatus {
            revoked: true,
            ..status
        }
        .admits(&claims(1, 1)));
        cache.forget_client("c");
        assert!(cache.client("c").is_none());
    }
}
