//! Key material: the token signing keys, the master (data-key wrapping) keys, the HMAC pepper
//! and the access-log checkpoint key.
//!
//! Each comes from configuration (inline or a file). In development, a missing key is generated
//! once under `$EAP_DATA_DIR/keys/` (mode 0600) with a loud warning; in production a missing key
//! stops start-up.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::config::{Config, Environment, SecretSource};

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct KeyError {
    pub var: &'static str,
    pub message: String,
}

/// One Ed25519 token signing key and its id (the RFC 7638 JWK thumbprint of its public key).
pub struct TokenKey {
    pub kid: String,
    pub signing: SigningKey,
}

impl TokenKey {
    pub fn new(signing: SigningKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        // RFC 7638: the SHA-256 of the required members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        TokenKey { kid, signing }
    }

    pub fn public_x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no master key with id {0}")]
    UnknownKeyId(String),
    #[error("ciphertext is damaged, or belongs to another record")]
    Damaged,
}

const NONCE_LEN: usize = 24;

/// XChaCha20-Poly1305 with a random 192-bit nonce (collisions are negligible, so no counter
/// state is needed), stored as nonce ‖ ciphertext.
pub fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes = random_bytes::<NONCE_LEN>();
    let nonce = XNonce::try_from(&nonce_bytes[..]).expect("24-byte nonce");
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ct);
    out
}

pub fn open_with(
    cipher: &XChaCha20Poly1305,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN {
        return Err(SealError::Damaged);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Damaged)?;
    cipher
        .decrypt(&nonce, Payload { msg: ct, aad })
        .map_err(|_| SealError::Damaged)
}

/// Seals a small secret (a data key, a webhook signing secret) directly under a master key,
/// bound to `aad`, which names the key id and what the secret belongs to.
pub fn seal_under(master: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with(&master.cipher(), aad, plaintext)
}

/// Opens with whichever configured master key has `key_id`.
pub fn open_under(
    masters: &[MasterKey],
    key_id: &str,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    let master = masters
        .iter()
        .find(|m| m.id == key_id)
        .ok_or_else(|| SealError::UnknownKeyId(key_id.to_owned()))?;
    open_with(&master.cipher(), aad, sealed)
}

/// A 256-bit key-encryption key with its id, so wrapped data keys name the key that wrapped them.
pub struct MasterKey {
    pub id: String,
    pub key: [u8; 32],
}

impl MasterKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.key).expect("32-byte key")
    }
}

pub struct Keys {
    /// The first key signs; the others still verify tokens they signed before a rotation.
    pub token: Vec<TokenKey>,
    /// The first key wraps new data keys; the others unwrap until re-wrapped.
    pub master: Vec<MasterKey>,
    pub pepper: Vec<u8>,
    /// Signs access-log checkpoints. Separate from the token keys: a leaked token key must not
    /// let anyone forge the log's tree heads, and the two rotate on different schedules.
    pub checkpoint: TokenKey,
    /// True when any key was generated or read from the development key folder.
    pub development: bool,
}

impl Keys {
    /// Configured keys are read and parsed first, so a bad one stops start-up before any
    /// development key is written; then each missing key is generated (development only).
    pub fn load(config: &Config) -> Result<Keys, KeyError> {
        let token = configured(&config.keys.token_signing, "EAP_TOKEN_SIGNING_KEY")?
            .map(|t| parse_token_keys(&t))
            .transpose()?;
        let master = configured(&config.keys.master, "EAP_MASTER_KEY")?
            .map(|t| parse_master_keys(&t))
            .transpose()?;
        let pepper = configured(&config.keys.hmac_pepper, "EAP_HMAC_PEPPER")?
            .map(|t| parse_pepper(&t))
            .transpose()?;
        let checkpoint = configured(&config.keys.checkpoint, "EAP_AUDIT_CHECKPOINT_KEY")?
            .map(|t| parse_checkpoint_key(&t))
            .transpose()?;
        let missing: Vec<&'static str> = [
            ("EAP_TOKEN_SIGNING_KEY", token.is_none()),
            ("EAP_MASTER_KEY", master.is_none()),
            ("EAP_HMAC_PEPPER", pepper.is_none()),
            ("EAP_AUDIT_CHECKPOINT_KEY", checkpoint.is_none()),
        ]
        .into_iter()
        .filter_map(|(var, gone)| gone.then_some(var))
        .collect();
        if config.env == Environment::Production {
            if let Some(var) = missing.first() {
                return Err(KeyError {
                    var,
                    message: format!("must be set (or {var}_FILE) {DEV_KEYS_REFUSED}"),
                });
            }
        }
        let dir = config.data_dir.join("keys");
        let token = match token {
            Some(k) => k,
            None => parse_token_keys(&development_key(
                "EAP_TOKEN_SIGNING_KEY",
                &dir.join("token-signing.pem"),
                || {
                    SigningKey::from_bytes(&random_bytes::<32>())
                        .to_pkcs8_pem(Default::default())
                        .map(|pem| pem.to_string())
                        .unwrap_or_default()
                },
            )?)?,
        };
        let master = match master {
            Some(k) => k,
            None => parse_master_keys(&development_key(
                "EAP_MASTER_KEY",
                &dir.join("master.keys"),
                || format!("dev1:{}\n", STANDARD.encode(random_bytes::<32>())),
            )?)?,
        };
        let pepper = match pepper {
            Some(p) => p,
            None => parse_pepper(&development_key(
                "EAP_HMAC_PEPPER",
                &dir.join("hmac-pepper.key"),
                || format!("{}\n", STANDARD.encode(random_bytes::<32>())),
            )?)?,
        };
        let checkpoint = match checkpoint {
            Some(k) => k,
            None => parse_checkpoint_key(&development_key(
                "EAP_AUDIT_CHECKPOINT_KEY",
                &dir.join("audit-checkpoint.pem"),
                || {
                    SigningKey::from_bytes(&random_bytes::<32>())
                        .to_pkcs8_pem(Default::default())
                        .map(|pem| pem.to_string())
                        .unwrap_or_default()
                },
            )?)?,
        };
        Ok(Keys {
            token,
            master,
            pepper,
            checkpoint,
            development: !missing.is_empty(),
        })
    }

    pub fn active_token_key(&self) -> &TokenKey {
        &self.token[0]
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

fn configured(
    source: &Option<SecretSource>,
    var: &'static str,
) -> Result<Option<String>, KeyError> {
    match source {
        Some(SecretSource::Inline(v)) => Ok(Some(v.clone())),
        Some(SecretSource::File(path)) => read_key_file(path)
            .map(Some)
            .map_err(|message| KeyError { var, message }),
        None => Ok(None),
    }
}

/// Reads a development key from the data directory, generating it on first use.
fn development_key(
    var: &'static str,
    path: &Path,
    generate: impl FnOnce() -> String,
) -> Result<String, KeyError> {
    let err = |message: String| KeyError { var, message };
    if path.exists() {
        return read_key_file(path).map_err(err);
    }
    let text = generate();
    write_private(path, &text).map_err(|e| {
        err(format!(
            "cannot write development key {}: {e}",
            path.display()
        ))
    })?;
    tracing::warn!(
        path = %path.display(),
        "GENERATED A DEVELOPMENT KEY ({var}). Do not use it in production: \
         set EAP_ENV=production and provide real keys."
    );
    Ok(text)
}

const DEV_KEYS_REFUSED: &str = "when EAP_ENV=production; development keys are refused";
#[cfg(unix)]
const OPEN_KEY_FILE: &str = "key file is readable by group or others; chmod 600 it";

fn read_key_file(path: &Path) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "{OPEN_KEY_FILE}");
            }
        }
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("key paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn parse_token_keys(text: &str) -> Result<Vec<TokenKey>, KeyError> {
    let err = |message: String| KeyError {
        var: "EAP_TOKEN_SIGNING_KEY",
        message,
    };
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN PRIVATE KEY-----") {
        let end_marker = "-----END PRIVATE KEY-----";
        let end = rest[start..]
            .find(end_marker)
            .ok_or_else(|| err("a PEM block has no END line".into()))?
            + start
            + end_marker.len();
        let key = SigningKey::from_pkcs8_pem(&rest[start..end]).map_err(|e| {
            err(format!(
                "key {} is not an Ed25519 PKCS#8 private key: {e}",
                keys.len() + 1
            ))
        })?;
        keys.push(TokenKey::new(key));
        rest = &rest[end..];
    }
    if keys.is_empty() {
        return Err(err("no `-----BEGIN PRIVATE KEY-----` block found".into()));
    }
    Ok(keys)
}

/// One Ed25519 PKCS#8 PEM key; its id is the RFC 7638 thumbprint, as for token keys.
fn parse_checkpoint_key(text: &str) -> Result<TokenKey, KeyError> {
    let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError {
        var: "EAP_AUDIT_CHECKPOINT_KEY",
        message: format!("not an Ed25519 PKCS#8 private key: {e}"),
    })?;
    Ok(TokenKey::new(key))
}

fn parse_master_keys(text: &str) -> Result<Vec<MasterKey>, KeyError> {
    let err = |message: String| KeyError {
        var: "EAP_MASTER_KEY",
        message,
    };
    let mut keys: Vec<MasterKey> = Vec::new();
    for (n, line) in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
    {
        let (id, b64) = line
            .split_once(':')
            .ok_or_else(|| err(format!("entry {} is not KEY_ID:BASE64", n + 1)))?;
        let valid_id = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(err(format!(
                "entry {}: key id must be 1–32 of [A-Za-z0-9_-]",
                n + 1
            )));
        }
        let key: [u8; 32] = STANDARD
            .decode(b64)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                err(format!(
                    "entry {} ({id}): key must be base64 of exactly 32 bytes",
                    n + 1
                ))
            })?;
        if keys.iter().any(|k| k.id == id) {
            return Err(err(format!("key id {id} appears twice")));
        }
        keys.push(MasterKey {
            id: id.to_owned(),
            key,
        });
    }
    if keys.is_empty() {
        return Err(err("no key found".into()));
    }
    Ok(keys)
}

fn parse_pepper(text: &str) -> Result<Vec<u8>, KeyError> {
    match STANDARD.decode(text.trim()) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        _ => Err(KeyError {
            var: "EAP_HMAC_PEPPER",
            message: "must be base64 of at least 32 bytes".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keys_parse_in_order_with_thumbprint_ids() {
        let a = SigningKey::from_bytes(&[1; 32])
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let b = SigningKey::from_bytes(&[2; 32])
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let keys = parse_token_keys(&format!("{}\n{}", a.as_str(), b.as_str())).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].signing.to_bytes(), [1; 32]);
        assert_ne!(keys[0].kid, keys[1].kid);
        assert_eq!(keys[0].kid.len(), 43, "base64url of a SHA-256 digest");
    }

    #[test]
    fn master_keys_need_ids_and_32_bytes() {
        let k = STANDARD.encode([7u8; 32]);
        let keys = parse_master_keys(&format!("m2:{k}\n# old\nm1:{k}\n")).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            ["m2", "m1"]
        );
        assert!(parse_master_keys(&format!("m1:{}", STANDARD.encode([1u8; 16]))).is_err());
        assert!(parse_master_keys(&format!("bad id:{k}")).is_err());
        assert!(parse_master_keys(&format!("m1:{k},m1:{k}")).is_err());
    }

    #[test]
    fn pepper_must_be_long_enough() {
        assert!(parse_pepper(&STANDARD.encode([0u8; 16])).is_err());
        assert_eq!(parse_pepper(&STANDARD.encode([9u8; 32])).unwrap().len(), 32);
    }

    #[test]
    fn generated_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/x.key");
        write_private(&path, "secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(
            write_private(&path, "again").is_err(),
            "never overwrite a key"
        );
    }
}
