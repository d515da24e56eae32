//! SIGKILL under submission load, then a restart on the same database: what a client was told
//! is what the database holds. Every referral answered 201 exists; a retry with the same
//! Idempotency-Key returns that same referral (and a request that got no answer becomes exactly
//! one referral on retry); no capacity slot is leaked or held twice; the access log verifies on
//! the server and offline, and the restarted instance goes on sealing it.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{count_in, created_at as post, referral_body, token_at as token, Binary};
use serde_json::{json, Value};

/// What one submission was told before the crash.
enum Told {
    Created(String),
    NoAnswer,
}

/// Referral statuses in which a referral holds one of its provider's slots.
const HOLDING: &str = "('offered', 'accepted', 'contacted', 'scheduled', 'in_progress')";

struct Deployment {
    http: reqwest::Client,
    portal: String,
    auditor: String,
}

/// An employer whose one contracted provider is smaller than the load, so submissions both
/// take slots and, once it is full, queue as unroutable.
async fn deploy(vars: &HashMap<String, String>, base: &str) -> (Deployment, (String, String)) {
    let http = reqwest::Client::new();
    let admin = Binary::create_client(vars, "admin", "ops");
    let admin_token = token(&http, base, &admin.id, &admin.secret).await;
    let employer = post(
        &http,
        base,
        "/v1/admin/employers",
        &admin_token,
        json!({"name": "Acme"}),
    )
    .await;
    let provider = post(&http, base, "/v1/admin/providers", &admin_token,
        json!({"name": "Harbour", "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
               "modalities": ["video"], "capacity": 40}),
    )
    .await;
    let (employer, provider) = (
        employer["id"].as_str().unwrap(),
        provider["id"].as_str().unwrap(),
    );
    let contract = json!({"employer_id": employer, "provider_id": provider, "priority": 1});
    post(&http, base, "/v1/admin/contracts", &admin_token, contract).await;
    let portal = json!({"name": "portal", "role": "hr_portal", "employer_id": employer});
    let portal = post(&http, base, "/v1/admin/clients", &admin_token, portal).await;
    let auditor = json!({"name": "auditor", "role": "auditor"});
    let auditor = post(&http, base, "/v1/admin/clients", &admin_token, auditor).await;
    let pair = |c: &Value| {
        (
            c["client_id"].as_str().unwrap().to_owned(),
            c["client_secret"].as_str().unwrap().to_owned(),
        )
    };
    let (portal, auditor) = (pair(&portal), pair(&auditor));
    let d = Deployment {
        portal: token(&http, base, &portal.0, &portal.1).await,
        auditor: token(&http, base, &auditor.0, &auditor.1).await,
        http,
    };
    (d, auditor)
}

/// Six clients submitting as fast as they can until the server is gone; each key with what its
/// client was told.
async fn submit_until_gone(base: &str, token: &str) -> Vec<(String, Told)> {
    let mut workers = Vec::new();
    for w in 0..6 {
        let (base, token) = (base.to_owned(), token.to_owned());
        workers.push(actix_web::rt::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let body = serde_json::to_vec(&referral_body()).unwrap();
            let mut told = Vec::new();
            for i in 0.. {
                let key = format!("w{w}-{i}");
                let sent = http
                    .post(format!("{base}/v1/referrals"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("idempotency-key", &key)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) => {
                        assert_eq!(
                            r.status(),
                            201,
                            "before the crash every submission succeeds"
                        );
                        let v: Value = r.json().await.unwrap();
                        told.push((key, Told::Created(v["id"].as_str().unwrap().to_owned())));
                    }
                    // Refused (never reached the server) or cut off mid-request: either way the
                    // client does not know, and will retry.
                    Err(_) => {
                        told.push((key, Told::NoAnswer));
                        break;
                    }
                }
            }
            told
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all
}

async fn retry(d: &Deployment, base: &str, key: &str) -> reqwest::Response {
    d.http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(&d.portal)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(serde_json::to_vec(&referral_body()).unwrap())
        .send()
        .await
        .unwrap()
}

async fn auditor_get(d: &Deployment, base: &str, path: &str) -> reqwest::Response {
    let resp = d
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(&d.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp
}

/// Waits until the sealer has covered every access event so far: the restarted instance's
/// background job, not the test, does the sealing.
async fn sealed_everything(d: &Deployment, base: &str, url: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = count_in(url, "SELECT count(*) AS n FROM audit_events") as u64;
        let page: Value = auditor_get(d, base, "/v1/audit/checkpoints")
            .await
            .json()
            .await
            .unwrap();
        let size = page["latest"]["tree_size"].as_u64().unwrap_or(0);
        // The checkpoint read above is itself an event, logged after the page was made.
        if size + 1 >= events {
            return size;
        }
        assert!(
            Instant::now() < deadline,
            "sealing stalled at {size} of {events} events"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The export, the checkpoints and the public key written to files, checked by the offline
/// command with nothing but those files.
async fn verify_offline(d: &Deployment, base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let export = auditor_get(d, base, "/v1/audit/export")
        .await
        .text()
        .await
        .unwrap();
    let checkpoints = auditor_get(d, base, "/v1/audit/checkpoints")
        .await
        .text()
        .await
        .unwrap();
    let key = d
        .http
        .get(format!("{base}/v1/audit/public-key"))
        .send()
        .await
        .unwrap();
    for (name, text) in [
        ("events.ndjson", export),
        ("checkpoints.json", checkpoints),
        ("public-key.json", key.text().await.unwrap()),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Binary::verify_offline(dir.path(), "events.ndjson");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.starts_with("OK"), "{stdout}");
}

#[actix_web::test]
async fn sigkill_under_submission_load_loses_nothing_acknowledged_and_leaks_no_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    // Background jobs on, as in production, with a checkpoint every second.
    vars.insert("EAP_HOUSEKEEPING".into(), "on".into());
    vars.insert("EAP_AUDIT_CHECKPOINT_SECS".into(), "1".into());
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let (d, _) = deploy(&vars, &base).await;
    let url = vars["EAP_DATABASE_URL"].clone();

    let load = {
        let (base, token) = (base.clone(), d.portal.clone());
        actix_web::rt::spawn(async move { submit_until_gone(&base, &token).await })
    };
    // Long enough for the provider to fill and submissions to queue as unroutable.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sealed_before = count_in(&url, "SELECT count(*) AS n FROM audit_log_leaves");
    server.crash();
    let told = load.await.unwrap();
    let created: Vec<(&str, &str)> = told
        .iter()
        .filter_map(|(k, t)| match t {
            Told::Created(id) => Some((k.as_str(), id.as_str())),
            Told::NoAnswer => None,
        })
        .collect();
    assert!(
        created.len() > 40,
        "the load filled the provider: {} created",
        created.len()
    );

    println!(
        "killed with {} submissions acknowledged and {} without an answer",
        created.len(),
        told.len() - created.len()
    );
    let server = Binary::start(&vars);
    let base = server.base.clone();

    // Every acknowledged referral is there, and its key answers with it again.
    for (key, id) in &created {
        let sql = format!("SELECT count(*) AS n FROM referrals WHERE id = '{id}'");
        assert_eq!(
            count_in(&url, &sql),
            1,
            "acknowledged referral {id} is missing"
        );
        let again = retry(&d, &base, key).await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let v: Value = again.json().await.unwrap();
        assert_eq!(v["id"], *id, "key {key} answered with another referral");
    }
    // A request cut off by the crash either committed or did not; its retry settles which,
    // and either way the key stands for exactly one referral.
    for (key, _) in told.iter().filter(|(_, t)| matches!(t, Told::NoAnswer)) {
        assert_eq!(retry(&d, &base, key).await.status(), 201, "retry of {key}");
    }
    let referrals = count_in(&url, "SELECT count(*) AS n FROM referrals");
    assert_eq!(
        referrals,
        told.len() as i64,
        "one referral per key, none half-made"
    );
    assert_eq!(
        count_in(&url, "SELECT count(*) AS n FROM idempotency_keys"),
        referrals
    );

    // Slots: each referral that holds one holds exactly one, of its own provider; no slot is
    // held by anything else; the load shards agree with the slots.
    let held = count_in(
        &url,
        "SELECT count(*) AS n FROM provider_slots WHERE referral_id IS NOT NULL",
    );
    let holding = count_in(
        &url,
        &format!("SELECT count(*) AS n FROM referrals WHERE status IN {HOLDING}"),
    );
    assert_eq!(held, holding, "slots held against referrals that hold one");
    assert_eq!(held, 40, "the provider is full, no more and no less");
    let matched = count_in(
        &url,
        &format!(
            "SELECT count(DISTINCT s.referral_id) AS n FROM provider_slots s JOIN referrals r \
         ON r.id = s.referral_id AND r.provider_id = s.provider_id WHERE r.status IN {HOLDING}"
        ),
    );
    assert_eq!(
        matched, held,
        "a slot is held twice or by a referral that should not hold one"
    );
    let shards = count_in(
        &url,
        "SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) AS n FROM provider_load_shards",
    );
    assert_eq!(shards, held, "the load shards count the held slots");
    let unroutable = count_in(
        &url,
        "SELECT count(*) AS n FROM referrals WHERE status = 'unroutable'",
    );
    assert_eq!(
        unroutable,
        referrals - held,
        "the rest wait in the unroutable queue"
    );

    // The restarted instance seals what the crashed one left and what came since, and the log
    // verifies on the server and offline.
    let sealed = sealed_everything(&d, &base, &url).await;
    assert!(
        sealed > sealed_before as u64,
        "sealing continued after the restart"
    );
    let verdict: Value = auditor_get(&d, &base, "/v1/audit/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["ok"], true, "{verdict:#}");
    verify_offline(&d, &base).await;

    // And sealing still moves on: new events get into a later checkpoint.
    retry(&d, &base, "after-the-restart").await;
    assert!(sealed_everything(&d, &base, &url).await > sealed);
    server.stop();
    common::drop_pg_database(pg);
}
