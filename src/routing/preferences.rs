//! The person's routing preferences at rest: sealed with the referral's data key at intake, and
//! opened only here, to build the routing request. Shredding the data key destroys them with the
//! contact data.

use super::model::Preferences;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::keys::MasterKey;
use crate::referrals::keystore;
use crate::referrals::model::aad;
use crate::referrals::seal::{self, DataKey};
use crate::referrals::store::ReferralRow;

/// Every sealed preference set is padded to this many bytes (the most the API admits, 20
/// excluded ids and both flags, is under 900), so the ciphertext's length does not tell a
/// referral with exclusions from one without.
const SEALED_LEN: usize = 1024;

fn field_aad(referral_id: &str) -> Vec<u8> {
    aad(referral_id, "preferences")
}

/// Seals `prefs` (even when empty: a referral with preferences must look like one without).
pub fn seal(key: &DataKey, referral_id: &str, prefs: &Preferences) -> Result<Vec<u8>, ApiError> {
    let mut plain = serde_json::to_vec(prefs).map_err(|e| ApiError::Internal(e.to_string()))?;
    if plain.len() < SEALED_LEN {
        // JSON admits trailing white space, so the padding needs no framing.
        plain.resize(SEALED_LEN, b' ');
    }
    Ok(seal::seal(key, &field_aad(referral_id), &plain))
}

/// The preferences of a stored referral: none for one submitted before they existed, and none
/// once its personal data is shredded (it is closed by then, never routed again). The data key
/// is read from `referral_keys`, where it lives apart from the referral row.
pub fn open(
    conn: &mut AnyConnection,
    masters: &[MasterKey],
    row: &ReferralRow,
) -> Result<Preferences, ApiError> {
    let Some(sealed) = row.sealed_preferences.as_deref() else {
        return Ok(Preferences::default());
    };
    let Some(key) = keystore::data_key(conn, masters, &row.id)? else {
        return Ok(Preferences::default());
    };
    let damaged = |e: seal::SealError| ApiError::Internal(format!("referral {}: {e}", row.id));
    let plain = seal::open(&key, &field_aad(row.id.as_str()), sealed).map_err(damaged)?;
    serde_json::from_slice(&plain)
        .map_err(|e| ApiError::Internal(format!("referral {}: preferences: {e}", row.id)))
}
