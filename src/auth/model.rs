//! Roles, access-token claims, token signing and verification, client secrets. No I/O.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::codes::Code;
use crate::keys::{random_bytes, Keys};

// Stored in `api_clients.role` (a doc comment would change the OpenAPI description).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An employer's HR portal: submits referrals, reads their coarse status and reports.
    HrPortal,
    /// An EAP provider's system: polls offers, accepts, reports progress.
    Provider,
    /// Reads and verifies the access log.
    Auditor,
    /// Manages the directory and API clients; never reads contact data.
    Admin,
}

impl Code for Role {
    const ALL: &'static [Self] = &[Role::HrPortal, Role::Provider, Role::Auditor, Role::Admin];
    fn code(self) -> &'static str {
        match self {
            Role::HrPortal => "hr_portal",
            Role::Provider => "provider",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

crate::text_code!(Role);

/// RFC 9068 access-token claims plus the role and the bound tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    pub role: Role,
    /// The client's secret version (its last rotation, in µs) when the token was issued: a
    /// rotation changes it, so every earlier token stops working, however recent.
    pub sv: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// The media type RFC 9068 §2.1 requires in the JWT header.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token was refused; the caller only ever sees "invalid token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    WrongAlgorithm,
    WrongType,
    UnknownKey,
    Invalid,
}

/// Signs with the first token key; verifies with any configured key, by `kid`.
pub struct TokenService {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

/// What a client is, as far as a token is concerned.
#[derive(Debug, Clone)]
pub struct Subject {
    pub client_id: String,
    pub role: Role,
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
    pub secret_version: i64,
}

impl TokenService {
    pub fn new(keys: &Keys, issuer: &str, audience: &str, ttl: Duration) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let active = keys.active_token_key();
        let der = active
            .signing
            .to_pkcs8_der()
            .expect("an Ed25519 key encodes as PKCS#8");
        let verifying = keys
            .token
            .iter()
            .map(|k| {
                (
                    k.kid.clone(),
                    DecodingKey::from_ed_der(k.signing.verifying_key().as_bytes()),
                )
            })
            .collect();
        // The algorithm list is pinned to EdDSA: `none` and HMAC-with-the-public-key fail here.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        TokenService {
            signing_kid: active.kid.clone(),
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            verifying,
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, subject: &Subject, now: u64) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.signing_kid.clone());
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.client_id.clone(),
            aud: self.audience.clone(),
            client_id: subject.client_id.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
            role: subject.role,
            sv: subject.secret_version,
            employer_id: subject.employer_id.clone(),
            provider_id: subject.provider_id.clone(),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing).expect("signing with a valid key")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::WrongAlgorithm);
        }
        // RFC 7515 §4.1.6: a token whose `crit` names extensions the recipient does not
        // understand must be rejected. This service understands none (an empty list is itself
        // forbidden there), so any `crit` is refused.
        if header.crit.is_some() {
            return Err(TokenRejection::Malformed);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenRejection::WrongType);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenRejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| TokenRejection::Invalid)?;
        let c = data.claims;
        // The tenant binding must match the role, and sub and client_id name the same client.
        let bound_ok = match c.role {
            Role::HrPortal => c.employer_id.is_some() && c.provider_id.is_none(),
            Role::Provider => c.provider_id.is_some() && c.employer_id.is_none(),
            Role::Auditor | Role::Admin => c.provider_id.is_none(),
        };
        if c.sub != c.client_id || !bound_ok {
            return Err(TokenRejection::Invalid);
        }
        Ok(c)
    }

    /// The JWK Set of every verifying key (RFC 7517, OKP keys per RFC 8037).
    pub fn jwks(keys: &Keys) -> Jwks {
        Jwks {
            keys: keys
                .token
                .iter()
                .map(|k| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: k.public_x(),
                    kid: k.kid.clone(),
                    alg: "EdDSA",
                    r#use: "sig",
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: &'static str,
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id: the RFC 7638 thumbprint of this key.
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    #[schema(example = "sig")]
    pub r#use: &'static str,
}

/// Client secrets: 256 random bits, prefixed so secret scanners can find a leaked one.
pub const SECRET_PREFIX: &str = "eapcs_";

pub fn generate_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// argon2id with the crate's defaults (OWASP's m=19 MiB, t=2, p=1).
pub fn hash_secret(secret: &str) -> String {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 hashing with default parameters")
        .to_string()
}

/// Verifies a presented secret. With no stored hash (unknown client) it verifies against a
/// dummy hash instead, so unknown clients and wrong secrets take the same time.
pub fn verify_secret(secret: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_secret(&generate_secret()));
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn keys() -> (tempfile::TempDir, Keys) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_map(
            &[("EAP_DATA_DIR".to_string(), dir.path().display().to_string())]
                .into_iter()
                .collect(),
        )
        .unwrap();
        let keys = Keys::load(&config).unwrap();
        (dir, keys)
    }

    fn subject() -> Subject {
        Subject {
            client_id: "c1".into(),
            role: Role::HrPortal,
            employer_id: Some("e1".into()),
            provider_id: None,
            secret_version: 1,
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn issued_tokens_verify_and_carry_rfc9068_claims() {
        let (_d, keys) = keys();
        let svc = TokenService::new(&keys, "http://iss", "aud", Duration::from_secs(600));
        let token = svc.issue(&subject(), now());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(keys.token[0].kid.as_str()));
        let c = svc.verify(&token).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.client_id.as_str(), c.role),
            ("c1", "c1", Role::HrPortal)
        );
        assert_eq!(c.exp - c.iat, 600);
    }

    #[test]
    fn tokens_for_another_issuer_or_audience_fail() {
        let (_d, keys) = keys();
        let a = TokenService::new(&keys, "http://iss", "aud", Duration::from_secs(600));
        let other_iss = TokenService::new(&keys, "http://evil", "aud", Duration::from_secs(600));
        let other_aud = TokenService::new(&keys, "http://iss", "other", Duration::from_secs(600));
        assert_eq!(
            a.verify(&other_iss.issue(&subject(), now())),
            Err(TokenRejection::Invalid)
        );
        assert_eq!(
            a.verify(&other_aud.issue(&subject(), now())),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn expiry_honours_the_leeway() {
        let (_d, keys) = keys();
        let svc = TokenService::new(&keys, "i", "a", Duration::from_secs(60));
        let just_expired = svc.issue(&subject(), now() - 60 - LEEWAY_SECS / 2);
        assert!(svc.verify(&just_expired).is_ok(), "within leeway");
        let expired = svc.issue(&subject(), now() - 60 - LEEWAY_SECS - 5);
        assert_eq!(svc.verify(&expired), Err(TokenRejection::Invalid));
        let future = svc.issue(&subject(), now() + LEEWAY_SECS + 30);
        assert_eq!(svc.verify(&future), Err(TokenRejection::Invalid));
    }

    #[test]
    fn secrets_verify_only_against_their_hash() {
        let secret = generate_secret();
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 43);
        let hash = hash_secret(&secret);
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret(&secret, Some(&hash)));
        assert!(!verify_secret(&generate_secret(), Some(&hash)));
        assert!(!verify_secret(&secret, None));
    }
}
