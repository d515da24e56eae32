//! Signed checkpoints (tree heads) and the public keys that verify them.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::events::format_time;
use crate::audit::merkle::{self, Hash};
use crate::keys::TokenKey;

/// A signed tree head: the first `tree_size` events have Merkle root `root_hash`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Checkpoint {
    /// Issue number, from 0.
    pub n: u64,
    pub tree_size: u64,
    /// RFC 6962 tree head, lowercase hex.
    pub root_hash: String,
    /// UTC, microseconds.
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// The RFC 7638 thumbprint of the checkpoint public key (`/v1/audit/public-key`).
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_text`], standard base64.
    pub signature: String,
}

impl Checkpoint {
    /// Exactly what is signed: five lines, each ending in `\n`.
    pub fn signed_text(tree_size: u64, root_hash: &str, issued_at: &str, key_id: &str) -> String {
        format!(
            "eap-referrals audit checkpoint v1\n{tree_size}\n{root_hash}\n{issued_at}\n{key_id}\n"
        )
    }

    pub fn sign(
        n: u64,
        tree_size: u64,
        root: &Hash,
        issued_at: NaiveDateTime,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        use ed25519_dalek::Signer;
        let root_hash = merkle::to_hex(root);
        let issued_at = format_time(issued_at);
        let text = Self::signed_text(tree_size, &root_hash, &issued_at, key_id);
        Checkpoint {
            n,
            tree_size,
            signature: STANDARD.encode(key.sign(text.as_bytes()).to_bytes()),
            root_hash,
            issued_at,
            key_id: key_id.to_owned(),
        }
    }

    /// Whether one of `keys` (by key id) signed exactly this checkpoint.
    pub fn verify(&self, keys: &PublicKeys) -> bool {
        let Some(key) = keys.0.get(&self.key_id) else {
            return false;
        };
        let Some(sig) = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let text = Self::signed_text(
            self.tree_size,
            &self.root_hash,
            &self.issued_at,
            &self.key_id,
        );
        key.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }

    pub fn root(&self) -> Option<Hash> {
        merkle::from_hex(&self.root_hash)
    }
}

/// Checkpoint verification keys by key id, read from the JWK Set `/v1/audit/public-key` serves.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(pub HashMap<String, ed25519_dalek::VerifyingKey>);

impl PublicKeys {
    /// The verification key of this service's own checkpoint key.
    pub fn of(key: &TokenKey) -> Self {
        PublicKeys([(key.kid.clone(), key.signing.verifying_key())].into())
    }

    pub fn from_jwks(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let keys = match v.get("keys") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => vec![v],
        };
        let mut out = HashMap::new();
        for k in keys {
            let (Some(kid), Some(x)) = (k["kid"].as_str(), k["x"].as_str()) else {
                return Err("each key needs `kid` and `x`".into());
            };
            if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
                return Err(format!("key {kid} is not an Ed25519 (OKP) key"));
            }
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(x)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("key {kid}: `x` is not base64url of 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|e| format!("key {kid}: {e}"))?;
            out.insert(kid.to_owned(), key);
        }
        if out.is_empty() {
            return Err("no key found".into());
        }
        Ok(PublicKeys(out))
    }
}

/// Reads checkpoints from the body of `GET /v1/audit/checkpoints` (its `items`, plus `latest`),
/// a JSON array of checkpoints, or one checkpoint per line.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let mut list: Vec<serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.clone(),
            serde_json::Value::Object(o) if o.contains_key("items") => {
                let mut items = o["items"].as_array().cloned().unwrap_or_default();
                if let Some(latest) = o.get("latest").filter(|l| !l.is_null()) {
                    items.push(latest.clone());
                }
                items
            }
            other => vec![other.clone()],
        };
        list.dedup();
        return list
            .into_iter()
            .map(|c| serde_json::from_value(c).map_err(|e| format!("not a checkpoint: {e}")))
            .collect();
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not a checkpoint: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint signs exactly its text; any change breaks it, and only its key verifies it.
    #[test]
    fn checkpoints_verify_only_unchanged_and_with_their_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let keys = PublicKeys(
            [("k".to_owned(), key.verifying_key())]
                .into_iter()
                .collect(),
        );
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(7, 0, 0)
            .unwrap();
        let c = Checkpoint::sign(3, 10, &[1; 32], t, "k", &key);
        assert!(c.verify(&keys));
        for changed in [
            Checkpoint {
                tree_size: 11,
                ..c.clone()
            },
            Checkpoint {
                root_hash: merkle::to_hex(&[2; 32]),
                ..c.clone()
            },
            Checkpoint {
                issued_at: "2026-11-26T07:00:01.000000Z".into(),
                ..c.clone()
            },
            Checkpoint::sign(3, 10, &[1; 32], t, "k", &other),
        ] {
            assert!(!changed.verify(&keys));
        }
    }
}
