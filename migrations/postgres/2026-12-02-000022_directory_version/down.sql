DROP TRIGGER employer_affiliations_bump_directory_version ON employer_affiliations;
DROP TRIGGER contracts_bump_directory_version ON contracts;
DROP TRIGGER providers_bump_directory_version ON providers;
DROP FUNCTION bump_directory_version();
DROP TABLE directory_version;
