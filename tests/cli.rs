//! The binary: configuration errors, production key policy, `openapi`, `admin create-client`.

mod common;

use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eap-referrals"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("EAP_LISTEN", "not-an-address"),
        ("EAP_ENV", "staging"),
        ("EAP_LOG_FORMAT", "xml"),
        ("EAP_DATABASE_URL", "mysql://db/x"),
        ("EAP_TOKEN_TTL_SECS", "86400"),
        ("EAP_TOKEN_ISSUER", "eap-referrals"),
    ] {
        let out = bin().env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {var}: {stderr}");
        assert!(lines[0].starts_with(&format!("error: {var}: ")), "{stderr}");
    }
}

#[test]
fn production_refuses_to_generate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .env("EAP_ENV", "production")
        .env("EAP_LISTEN", "127.0.0.1:0")
        .env("EAP_DATA_DIR", dir.path())
        .env(
            "EAP_DATABASE_URL",
            format!("sqlite://{}/db.sqlite3", dir.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: EAP_TOKEN_SIGNING_KEY: "),
        "{stderr}"
    );
    assert!(!dir.path().join("keys").exists(), "no key was generated");
}

#[test]
fn a_bad_configured_key_stops_start_up_before_any_key_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .env("EAP_LISTEN", "127.0.0.1:0")
        .env("EAP_DATA_DIR", dir.path())
        .env("EAP_HMAC_PEPPER", "dG9vLXNob3J0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: EAP_HMAC_PEPPER: "), "{stderr}");
    assert!(
        !stderr.contains("dG9vLXNob3J0"),
        "the key itself is never printed"
    );
    assert!(
        !dir.path().join("keys").exists(),
        "no development key was written"
    );
}

#[test]
fn production_without_a_database_url_refuses_to_start() {
    let out = bin().env("EAP_ENV", "production").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("EAP_DATABASE_URL"));
}

#[test]
fn development_keys_are_generated_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = eap_referrals::Config::from_map(
        &[("EAP_DATA_DIR".to_string(), dir.path().display().to_string())]
            .into_iter()
            .collect(),
    )
    .unwrap();
    let first = eap_referrals::keys::Keys::load(&config).unwrap();
    assert!(first.development);
    let second = eap_referrals::keys::Keys::load(&config).unwrap();
    assert_eq!(
        first.token[0].kid, second.token[0].kid,
        "keys persist across restarts"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let out = bin()
            .arg("migrate")
            .env("EAP_DATA_DIR", dir.path().join("fresh"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(dir.path().join("fresh")),
            0o700,
            "a new data directory is owner-only"
        );
        assert_eq!(
            mode(dir.path().join("fresh/eap.sqlite3")),
            0o600,
            "so is the database"
        );
    }
    #[cfg(unix)]
    for f in [
        "token-signing.pem",
        "master.keys",
        "hmac-pepper.key",
        "audit-checkpoint.pem",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn openapi_command_prints_the_committed_spec() {
    let out = bin().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        printed == committed,
        "openapi/openapi.json is stale. Regenerate it with:\n    cargo run -q -- openapi > openapi/openapi.json"
    );
}

#[actix_web::test]
async fn admin_create_client_bootstraps_a_working_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, _pg) = common::test_vars(dir.path());
    let mut cmd = bin();
    cmd.envs(&vars)
        .args(["admin", "create-client", "--role", "admin", "--name", "ops"]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = printed["client_id"].as_str().unwrap().to_owned();
    let secret = printed["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "≥ 256 bits");

    let bad = bin()
        .envs(&vars)
        .args([
            "admin",
            "create-client",
            "--role",
            "hr_portal",
            "--name",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("employer_id"));

    let config = eap_referrals::Config::from_map(&vars).unwrap();
    let app = eap_referrals::Application::build(config).unwrap();
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}");
    let resp = common::request_token_at(&reqwest::Client::new(), &base, &id, &secret).await;
    assert_eq!(resp.status(), 200);
    if let Some((admin, name)) = _pg {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
    }
}

#[actix_web::test]
async fn keys_rotate_master_rewraps_through_the_command_line() {
    use base64::Engine;
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (old, new) = (format!("m1:{}", b64(1)), format!("m2:{}", b64(2)));
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    vars.insert("EAP_MASTER_KEY".into(), old.clone());
    let app = common::spawn_app_with(|v| {
        *v = vars.clone();
    })
    .await;
    let portal = app.setup_portal(5).await;
    let v: Value = app
        .submit_json(&portal.token, &common::referral_body())
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(app.referral(&id).key_id.as_deref(), Some("m1"));

    let missing_old = bin()
        .envs(&vars)
        .env("EAP_MASTER_KEY", &new)
        .args(["keys", "rotate-master"])
        .output()
        .unwrap();
    assert!(
        !missing_old.status.success(),
        "cannot re-wrap without the key that wrapped it"
    );
    assert!(String::from_utf8_lossy(&missing_old.stderr).contains("m1"));

    let out = bin()
        .envs(&vars)
        .env("EAP_MASTER_KEY", format!("{new}\n{old}"))
        .args(["keys", "rotate-master"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "re-wrapped 1 data key(s) under master key m2\n\
         re-sealed 0 webhook secret(s) under master key m2"
    );
    assert_eq!(app.referral(&id).key_id.as_deref(), Some("m2"));
    drop(app);
    common::drop_pg_database(pg);
}

#[actix_web::test]
async fn purge_dry_run_lists_and_purge_destroys() {
    use diesel::prelude::*;
    use eap_referrals::db::schema::referrals;
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg) = common::test_vars(dir.path());
    let app = common::spawn_app_with(|v| {
        *v = vars.clone();
    })
    .await;
    let portal = app.setup_portal(5).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let v: Value = app
            .submit_json(&portal.token, &common::referral_body())
            .await
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // The first was cancelled 31 days ago; the second is a fresh offer.
    let long_ago = eap_referrals::db::now() - chrono::TimeDelta::days(31);
    diesel::update(referrals::table.find(&ids[0]))
        .set((
            referrals::status.eq("cancelled"),
            referrals::closed_at.eq(long_ago),
        ))
        .execute(&mut **app.conn())
        .unwrap();

    let run = |args: &[&str]| {
        let out = bin().envs(&vars).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run(&["purge", "--dry-run"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with(&format!(
        "would purge {} status=cancelled rule=closed due=",
        ids[0]
    )));
    assert!(
        lines[1].starts_with("would purge 1 referral(s)"),
        "{listed}"
    );
    assert!(
        app.referral(&ids[0]).sealed_contact.is_some(),
        "a dry run changes nothing"
    );

    let done = run(&["purge"]);
    assert!(done.starts_with(&format!("purged {} ", ids[0])), "{done}");
    assert!(app.referral(&ids[0]).sealed_contact.is_none());
    assert!(app.referral(&ids[1]).sealed_contact.is_some());
    assert!(run(&["purge"]).starts_with("purged 0 referral(s)"));
    // On PostgreSQL, while another instance holds the purge lock, the command says so rather
    // than "purged 0".
    if let eap_referrals::db::AnyConnection::Postgresql(c) = &mut **app.conn() {
        c.transaction(|c| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(eap_referrals::privacy::store::PURGE_LOCK)
                .execute(c)?;
            let out = run(&["purge"]);
            assert!(
                out.starts_with("not purged: another instance holds the purge lock"),
                "{out}"
            );
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    }
    drop(app);
    common::drop_pg_database(pg);
}

/// Instances of a rolling deploy start together and each runs its migrations: four `migrate`
/// processes at once against a fresh database all succeed; one applies every migration and
/// the others, having waited their turn, find nothing pending.
#[test]
fn four_migrate_commands_at_once_on_a_fresh_database_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg_admin) = common::test_vars(dir.path());
    let backend = match &pg_admin {
        Some(_) => "postgres",
        None => "sqlite",
    };
    let expected = std::fs::read_dir(format!("migrations/{backend}"))
        .unwrap()
        .count();
    let children: Vec<_> = (0..4)
        .map(|_| {
            bin()
                .envs(&vars)
                .arg("migrate")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8(out.stdout).unwrap();
            stdout.split(':').next().unwrap().trim().to_owned()
        })
        .collect();
    applied.sort();
    let all = format!("applied {expected} migration(s)");
    assert_eq!(
        applied,
        [
            "applied 0 migration(s)",
            "applied 0 migration(s)",
            "applied 0 migration(s)",
            all.as_str()
        ]
    );
    common::drop_pg_database(pg_admin);
}
