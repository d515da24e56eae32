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

CREATE TRIGGER providers_insert_bumps_directory_version AFTER INSERT ON providers
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER providers_update_bumps_directory_version AFTER UPDATE ON providers
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER providers_delete_bumps_directory_version AFTER DELETE ON providers
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER contracts_insert_bumps_directory_version AFTER INSERT ON contracts
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER contracts_update_bumps_directory_version AFTER UPDATE ON contracts
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER contracts_delete_bumps_directory_version AFTER DELETE ON contracts
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER employer_affiliations_insert_bumps_directory_version AFTER INSERT ON employer_affiliations
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER employer_affiliations_update_bumps_directory_version AFTER UPDATE ON employer_affiliations
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER employer_affiliations_delete_bumps_directory_version AFTER DELETE ON employer_affiliations
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
END;
