-- Referral data keys in a table of their own (as on PostgreSQL, where the split lets the purge
-- rewrite the keys without rewriting referrals). SQLite runs with secure_delete, so a deleted
-- key is zeroed in the file; one table is enough here. The employee-reference HMAC moves
-- with the key: it is written once, never read, and goes with it.
CREATE TABLE referral_keys (
    referral_id TEXT NOT NULL PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    employee_ref_hmac TEXT
);

INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac)
    SELECT id, key_id, wrapped_key, employee_ref_hmac FROM referrals
    WHERE wrapped_key IS NOT NULL AND key_id IS NOT NULL AND erased_at IS NULL;

-- Unused on SQLite (no partitions to rewrite); present so both schemas declare the same tables.
CREATE TABLE referral_key_compactions (
    partition_name TEXT NOT NULL PRIMARY KEY,
    deletions BIGINT NOT NULL
);
