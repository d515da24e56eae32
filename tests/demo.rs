//! `eap-referrals demo`: a sandbox in one command, whose printed commands work verbatim against
//! the server on the same settings; refused in production.

mod common;

use std::collections::HashMap;
use std::process::{Command, Output};

use common::{count_in, free_port, Binary};
use serde_json::Value;

fn run_demo(vars: &HashMap<String, String>) -> Output {
    Command::new(Binary::bin())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars)
        .env("RUST_LOG", "warn")
        .arg("demo")
        .output()
        .unwrap()
}

/// The printed block of shell commands whose comment line starts with `heading`.
fn block<'a>(out: &'a str, heading: &str) -> &'a str {
    let found: Vec<&str> = out
        .split("\n\n")
        .filter(|b| b.starts_with(heading))
        .collect();
    assert_eq!(found.len(), 1, "one block {heading:?} in:\n{out}");
    found[0]
}

/// Runs a printed block verbatim in a POSIX shell; one JSON answer per line of its output.
fn run_block(block: &str) -> Vec<Value> {
    let out = Command::new("sh").arg("-c").arg(block).output().unwrap();
    assert!(out.status.success(), "{block}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect()
}

/// The text after `marker` up to the end of its line.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let start = text.find(marker).unwrap_or_else(|| panic!("{marker:?}")) + marker.len();
    text[start..].lines().next().unwrap()
}

#[actix_web::test]
async fn the_demo_builds_a_sandbox_whose_printed_commands_work_for_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    // The printed commands name the configured address, so it must be a real port.
    vars.insert("EAP_LISTEN".into(), format!("127.0.0.1:{}", free_port()));
    // Sealing on, and often, so the auditor's search finds the demo's events.
    vars.insert("EAP_HOUSEKEEPING".into(), "on".into());
    vars.insert("EAP_AUDIT_CHECKPOINT_SECS".into(), "1".into());

    let first = run_demo(&vars);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run_demo(&vars);
    assert!(second.status.success(), "a second run works too");
    let (first, second) = (
        String::from_utf8(first.stdout).unwrap(),
        String::from_utf8(second.stdout).unwrap(),
    );
    let employer = |out: &str| after(out, "employer  ").to_owned();
    assert_ne!(
        employer(&first),
        employer(&second),
        "a second, distinct set"
    );
    assert!(
        first.contains("development sandbox"),
        "it says what the secrets are for"
    );
    let url = vars["EAP_DATABASE_URL"].clone();
    assert_eq!(count_in(&url, "SELECT COUNT(*) AS n FROM employers"), 2);
    assert_eq!(count_in(&url, "SELECT COUNT(*) AS n FROM providers"), 4);
    assert_eq!(count_in(&url, "SELECT COUNT(*) AS n FROM contracts"), 4);
    assert_eq!(count_in(&url, "SELECT COUNT(*) AS n FROM api_clients"), 10);

    // The sample went through the submission path: sealed, routed, offered, and logged with
    // the command line as the actor, for the demo employer.
    let referral = after(&first, "REFERRAL=").to_owned();
    let employer_id = employer(&first);
    let employer_id = employer_id
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')');
    let logged = format!(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'referral.create' \
         AND resource_id = '{referral}' AND actor_role = 'operator' AND actor_client_id IS NULL \
         AND source_addr = 'local-cli' AND tenant_id = '{employer_id}' AND http_status = 201"
    );
    assert_eq!(count_in(&url, &logged), 1);
    let sealed = format!(
        "SELECT COUNT(*) AS n FROM referrals r JOIN referral_keys k ON k.referral_id = r.id \
         WHERE r.id = '{referral}' AND r.status = 'offered' AND r.sealed_contact IS NOT NULL"
    );
    assert_eq!(count_in(&url, &sealed), 1);

    let server = Binary::start(&vars);
    assert_eq!(server.base, format!("http://{}", vars["EAP_LISTEN"]));

    // The provider it was offered to: the feed shows it, and it accepts it.
    let answers = run_block(block(&first, "# provider Demo Provider A"));
    let events = answers[0]["events"].as_array().unwrap();
    assert_eq!(events[0]["referral_id"], referral.as_str());
    assert_eq!(events[0]["kind"], "offered");
    assert_eq!(answers[1]["id"], referral.as_str());
    assert_eq!(answers[1]["status"], "accepted");
    // The other provider's feed is empty.
    let answers = run_block(block(&first, "# provider Demo Provider B"));
    assert_eq!(answers[0]["events"], Value::Array(Vec::new()));
    // The portal submits and reads the sample's status (now accepted, so in progress).
    let answers = run_block(block(&first, "# hr_portal"));
    assert_eq!(answers[0]["status"], "received");
    assert!(answers[0]["status_token"].is_string());
    assert_eq!(answers[1]["id"], referral.as_str());
    assert_eq!(answers[1]["status"], "in_progress");
    // The admin's queue of unroutable referrals.
    let answers = run_block(block(&first, "# admin"));
    assert_eq!(answers[0]["items"], Value::Array(Vec::new()));
    // The auditor finds the demo's own events (sealed at start-up) and the log verifies.
    let answers = run_block(block(&first, "# auditor"));
    let items = answers[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|e| e["actor_role"] == "operator"));
    assert_eq!(answers[1]["ok"], true, "{}", answers[1]);
    // The second run's set is a sandbox of its own.
    let answers = run_block(block(&second, "# provider Demo Provider A"));
    assert_eq!(answers[0]["events"].as_array().unwrap().len(), 1);
    assert_eq!(answers[1]["status"], "accepted");

    server.stop();
    common::drop_pg_database(pg);
}

#[test]
fn the_demo_is_refused_in_production_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    vars.insert("EAP_ENV".into(), "production".into());
    // A development-only switch production refuses on its own; the refusal here is the demo's.
    vars.remove("EAP_WEBHOOK_ALLOW_LOOPBACK");
    let out = run_demo(&vars);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no credentials printed");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("development only"), "{stderr}");
    assert!(stderr.contains("EAP_ENV=production"), "{stderr}");
    assert!(!dir.path().join("keys").exists(), "no key generated");
    match &pg {
        // Not even migrated.
        Some(_) => {
            let tables = "SELECT COUNT(*) AS n FROM information_schema.tables \
                          WHERE table_schema = 'public'";
            assert_eq!(count_in(&vars["EAP_DATABASE_URL"], tables), 0);
        }
        None => assert!(!dir.path().join("eap.sqlite3").exists(), "no database"),
    }
    common::drop_pg_database(pg);
}
