-- A counter bumped in the same transaction as every change to what routing reads (providers,
-- contracts, an employer's affiliations), so an instance may keep an employer's routing
-- snapshot in memory for as long as the counter has not moved (src/routing/cache.rs).
-- Triggers rather than code: every writer moves it, an instance of the previous release and an
-- operator's SQL included. Additive: the previous release never reads it.
CREATE TABLE directory_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO directory_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER providers_bump_directory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON providers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER contracts_bump_directory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER employer_affiliations_bump_directory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON employer_affiliations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
