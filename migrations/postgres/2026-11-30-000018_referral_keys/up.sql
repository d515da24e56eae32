-- Referral data keys move out of `referrals` into a table of their own, so that destroying one
-- can be made physical: PostgreSQL leaves a deleted or updated row's old version in the heap
-- (and an UPDATE copies the whole row), and only a table rewrite removes it. Rewriting
-- `referrals` would block submissions for as long as it takes; a key is ~100 bytes, so the key
-- table is hash-partitioned into 64 small partitions and the purge rewrites (VACUUM FULL) only
-- the partitions where a key was deleted, each in tens of milliseconds (bench/key-compaction.sh).
--
-- The employee-reference HMAC moves with it: it is written once, never read, and must be gone
-- as physically as the key.
CREATE TABLE referral_keys (
    referral_id TEXT NOT NULL PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    employee_ref_hmac TEXT
) PARTITION BY HASH (referral_id);

DO $$
BEGIN
    FOR i IN 0..63 LOOP
        EXECUTE format(
            'CREATE TABLE referral_keys_p%s PARTITION OF referral_keys '
            'FOR VALUES WITH (MODULUS 64, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END $$;

-- Partitions that held a key since deleted, waiting for the purge's rewrite. `deletions`
-- counts, so a compaction removes only the mark it has seen (a deletion after it starts
-- leaves a fresh count behind). `last_xid` is the newest deleting transaction: a rewrite keeps
-- a deleted row that a snapshot older than its deletion may still see, so the purge rewrites
-- only once no session of this database holds such a snapshot.
CREATE TABLE referral_key_compactions (
    partition_name TEXT NOT NULL PRIMARY KEY,
    deletions BIGINT NOT NULL,
    last_xid xid8 NOT NULL
);

CREATE FUNCTION referral_keys_mark_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO referral_key_compactions (partition_name, deletions, last_xid)
    VALUES (TG_TABLE_NAME, 1, pg_current_xact_id())
    ON CONFLICT (partition_name)
    DO UPDATE SET deletions = referral_key_compactions.deletions + 1,
                  last_xid = pg_current_xact_id();
    RETURN NULL;
END $$ LANGUAGE plpgsql;

-- Declared on the partitioned table, cloned to every partition: TG_TABLE_NAME is the partition.
CREATE TRIGGER referral_keys_deleted AFTER DELETE ON referral_keys
    FOR EACH ROW EXECUTE FUNCTION referral_keys_mark_deleted();

-- Keys of referrals that still hold personal data. The old columns stay (expand): an instance
-- of the previous version still reads them until it is replaced.
INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac)
    SELECT id, key_id, wrapped_key, employee_ref_hmac FROM referrals
    WHERE wrapped_key IS NOT NULL AND key_id IS NOT NULL AND erased_at IS NULL;

-- During a rolling deploy an instance of the previous version still writes the key into
-- `referrals` and erases by clearing it there. These keep the key table right for it: a key it
-- writes is copied in, and its erasure deletes the copy (and so marks the partition).
CREATE FUNCTION referrals_keys_follow() RETURNS trigger AS $$
BEGIN
    IF NEW.wrapped_key IS NOT NULL AND NEW.key_id IS NOT NULL AND NEW.erased_at IS NULL THEN
        INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac)
        VALUES (NEW.id, NEW.key_id, NEW.wrapped_key, NEW.employee_ref_hmac)
        ON CONFLICT (referral_id) DO UPDATE
            SET key_id = EXCLUDED.key_id, wrapped_key = EXCLUDED.wrapped_key;
    ELSIF NEW.erased_at IS NOT NULL THEN
        DELETE FROM referral_keys WHERE referral_id = NEW.id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER referrals_keys_follow_insert AFTER INSERT ON referrals
    FOR EACH ROW WHEN (NEW.wrapped_key IS NOT NULL)
    EXECUTE FUNCTION referrals_keys_follow();
CREATE TRIGGER referrals_keys_follow_update AFTER UPDATE OF wrapped_key, erased_at ON referrals
    FOR EACH ROW WHEN (NEW.wrapped_key IS NOT NULL OR (NEW.erased_at IS NOT NULL AND OLD.erased_at IS NULL))
    EXECUTE FUNCTION referrals_keys_follow();
