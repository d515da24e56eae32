//! Envelope encryption for what a referral must keep but nobody may read in bulk: each referral
//! has its own random data key (XChaCha20-Poly1305, associated data = the referral id), and the
//! data key is stored wrapped by a master key, named by its key id. Rotating the master key
//! re-wraps data keys without touching ciphertexts; deleting the wrapped key and ciphertexts
//! shreds the referral.

use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use crate::keys::SealError;
use crate::keys::{open_under, open_with, random_bytes, seal_under, seal_with, MasterKey};

/// A referral's data key. Zeroed when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn generate() -> Self {
        DataKey(random_bytes::<32>())
    }

    /// A MAC of `message` under this key, for `purpose`: a value that only someone holding the
    /// data key can check, so it means nothing once the key is destroyed.
    pub fn bind(&self, purpose: &str, message: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.0).expect("32-byte key")
    }
}

/// Encrypts `plaintext` bound to `aad` (the referral id and what the field is).
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with(&key.cipher(), aad, plaintext)
}

pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    open_with(&key.cipher(), aad, sealed)
}

fn wrap_aad(key_id: &str, referral_id: &str) -> Vec<u8> {
    format!("eap-referrals/data-key/{key_id}/{referral_id}").into_bytes()
}

/// Wraps a data key under a master key; returns (key id, wrapped bytes).
pub fn wrap(master: &MasterKey, referral_id: &str, key: &DataKey) -> (String, Vec<u8>) {
    (
        master.id.clone(),
        seal_under(master, &wrap_aad(&master.id, referral_id), &key.0),
    )
}

/// Unwraps with whichever configured master key has `key_id`.
pub fn unwrap(
    masters: &[MasterKey],
    key_id: &str,
    referral_id: &str,
    wrapped: &[u8],
) -> Result<DataKey, SealError> {
    let mut bytes = open_under(masters, key_id, &wrap_aad(key_id, referral_id), wrapped)?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Damaged)?;
    bytes.zeroize();
    Ok(DataKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(id: &str, byte: u8) -> MasterKey {
        MasterKey {
            id: id.into(),
            key: [byte; 32],
        }
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_aad() {
        let key = DataKey::generate();
        let sealed = seal(&key, b"r1/contact", b"Alex, +441234567890");
        assert!(!sealed.windows(4).any(|w| w == b"Alex"));
        assert_eq!(
            open(&key, b"r1/contact", &sealed).unwrap(),
            b"Alex, +441234567890"
        );
        assert_eq!(
            open(&key, b"r2/contact", &sealed),
            Err(SealError::Damaged),
            "moved to another referral"
        );
        assert_eq!(
            open(&DataKey::generate(), b"r1/contact", &sealed),
            Err(SealError::Damaged)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&key, b"r1/contact", &tampered),
            Err(SealError::Damaged)
        );
        assert_ne!(
            seal(&key, b"a", b"same"),
            seal(&key, b"a", b"same"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn wrapped_keys_unwrap_by_key_id_and_rewrap_under_a_new_master() {
        let (old, new) = (master("m1", 1), master("m2", 2));
        let key = DataKey::generate();
        let sealed = seal(&key, b"r1", b"note");
        let (id, wrapped) = wrap(&old, "r1", &key);
        assert_eq!(id, "m1");
        let both = [new, old];
        let unwrapped = unwrap(&both, &id, "r1", &wrapped).unwrap();
        assert_eq!(open(&unwrapped, b"r1", &sealed).unwrap(), b"note");
        assert!(
            unwrap(&both, &id, "r2", &wrapped).is_err(),
            "bound to its referral"
        );
        let (id2, rewrapped) = wrap(&both[0], "r1", &unwrapped);
        assert_eq!(id2, "m2");
        let again = unwrap(&both[..1], &id2, "r1", &rewrapped).unwrap();
        assert_eq!(
            open(&again, b"r1", &sealed).unwrap(),
            b"note",
            "ciphertext untouched by rotation"
        );
        assert_eq!(
            unwrap(&both[..1], "m1", "r1", &wrapped).err(),
            Some(SealError::UnknownKeyId("m1".into()))
        );
    }
}
