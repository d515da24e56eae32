//! Where a referral's wrapped data key lives: `referral_keys`, apart from the referral row.
//!
//! PostgreSQL keeps the old version of every updated or deleted row in the table's files until a
//! rewrite, and an UPDATE of `referrals` copies every column. Were the key a column of
//! `referrals`, each status change would leave another copy of it behind, and only rewriting the
//! whole table (blocking submissions) would remove them. Here the key is written once, never
//! updated except by a master-key rotation, and deleted on erasure; the purge then rewrites the
//! one small partition that held it (`privacy::store::compact_keys`). Without the key, the
//! ciphertexts left in `referrals`, `referral_attempts` and `idempotency_keys` cannot be opened.

use diesel::prelude::*;

use super::seal::{self, DataKey};
use crate::db::schema::referral_keys;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::keys::MasterKey;

/// Stores a new referral's wrapped key (and its employee-reference HMAC, which goes with it).
pub fn insert(
    conn: &mut AnyConnection,
    referral_id: &ReferralId,
    (key_id, wrapped): (&str, &[u8]),
    employee_ref_hmac: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(referral_keys::table)
        .values((
            referral_keys::referral_id.eq(referral_id),
            referral_keys::key_id.eq(key_id),
            referral_keys::wrapped_key.eq(wrapped),
            referral_keys::employee_ref_hmac.eq(employee_ref_hmac),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The referral's data key, unwrapped; `None` once it has been destroyed.
pub fn data_key(
    conn: &mut AnyConnection,
    masters: &[MasterKey],
    referral_id: &ReferralId,
) -> Result<Option<DataKey>, ApiError> {
    let stored: Option<(String, Vec<u8>)> = referral_keys::table
        .find(referral_id)
        .select((referral_keys::key_id, referral_keys::wrapped_key))
        .first(conn)
        .optional()?;
    let Some((key_id, wrapped)) = stored else {
        return Ok(None);
    };
    unwrap(masters, referral_id, &key_id, &wrapped).map(Some)
}

/// Unwraps a key row read along with something else (a contact reveal reads it with the
/// referral, in one statement).
pub fn unwrap(
    masters: &[MasterKey],
    referral_id: &ReferralId,
    key_id: &str,
    wrapped: &[u8],
) -> Result<DataKey, ApiError> {
    seal::unwrap(masters, key_id, referral_id.as_str(), wrapped)
        .map_err(|e| ApiError::Internal(format!("unwrap: {e}")))
}

/// Deletes the referral's key row. On PostgreSQL a trigger marks its partition for the purge's
/// rewrite, which removes the deleted row's bytes from the table's files.
pub fn destroy(conn: &mut AnyConnection, referral_id: &ReferralId) -> QueryResult<usize> {
    diesel::delete(referral_keys::table.find(referral_id)).execute(conn)
}

/// Re-wraps every data key not yet under the active (first) master key, in batches; the
/// ciphertexts are not touched. Returns how many keys were re-wrapped.
pub fn rewrap_all(conn: &mut AnyConnection, masters: &[MasterKey]) -> Result<usize, ApiError> {
    let active = &masters[0];
    let mut total = 0;
    loop {
        let batch: Vec<(String, String, Vec<u8>)> = referral_keys::table
            .filter(referral_keys::key_id.ne(&active.id))
            .select((
                referral_keys::referral_id,
                referral_keys::key_id,
                referral_keys::wrapped_key,
            ))
            .order(referral_keys::referral_id.asc())
            .limit(500)
            .load(conn)?;
        if batch.is_empty() {
            return Ok(total);
        }
        crate::db::write_tx(conn, |conn| {
            for (id, key_id, wrapped) in &batch {
                let key = seal::unwrap(masters, key_id, id, wrapped)
                    .map_err(|e| ApiError::Internal(format!("referral {id}: {e}")))?;
                let (new_id, new_wrapped) = seal::wrap(active, id, &key);
                diesel::update(
                    referral_keys::table
                        .find(id)
                        .filter(referral_keys::key_id.eq(key_id)),
                )
                .set((
                    referral_keys::key_id.eq(new_id),
                    referral_keys::wrapped_key.eq(new_wrapped),
                ))
                .execute(conn)?;
            }
            Ok::<_, ApiError>(())
        })?;
        total += batch.len();
    }
}
