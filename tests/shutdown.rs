//! SIGTERM under load: the real binary stops accepting, answers its waiting long polls, lets
//! every request in flight finish and commit with its access-log event, and exits 0. A client
//! may see a connection refused (the request never reached the service), but never a request
//! that was carried out without its answer, or answered without being carried out and logged.

mod common;

use std::time::{Duration, Instant};

use common::{count_in, created_at as post, referral_body, token_at as token, Binary};
use serde_json::{json, Value};

#[actix_web::test]
async fn sigterm_under_load_loses_no_request_and_no_access_event() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    // Background jobs on, as in production: the access log is sealed on the way out.
    vars.insert("EAP_HOUSEKEEPING".into(), "on".into());
    let admin = Binary::create_client(&vars, "admin", "ops");
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let admin_token = token(&http, &base, &admin.id, &admin.secret).await;
    let employer = post(
        &http,
        &base,
        "/v1/admin/employers",
        &admin_token,
        json!({"name": "Acme"}),
    )
    .await;
    let provider = post(&http, &base, "/v1/admin/providers",
        &admin_token,
        json!({"name": "Harbour", "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
               "modalities": ["video"], "capacity": 10000}),
    )
    .await;
    // A provider with no contract: its feed stays empty while the other's fills up.
    let idle = post(
        &http,
        &base,
        "/v1/admin/providers",
        &admin_token,
        json!({"name": "Quiet", "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
               "modalities": ["video"], "capacity": 1}),
    )
    .await;
    let idle = idle["id"].as_str().unwrap();
    let (employer, provider) = (
        employer["id"].as_str().unwrap(),
        provider["id"].as_str().unwrap(),
    );
    post(
        &http,
        &base,
        "/v1/admin/contracts",
        &admin_token,
        json!({"employer_id": employer, "provider_id": provider, "priority": 1}),
    )
    .await;
    let portal = post(
        &http,
        &base,
        "/v1/admin/clients",
        &admin_token,
        json!({"name": "portal", "role": "hr_portal", "employer_id": employer}),
    )
    .await;
    let poller = post(
        &http,
        &base,
        "/v1/admin/clients",
        &admin_token,
        json!({"name": "poller", "role": "provider", "provider_id": idle}),
    )
    .await;
    let portal_token = token(
        &http,
        &base,
        portal["client_id"].as_str().unwrap(),
        portal["client_secret"].as_str().unwrap(),
    )
    .await;
    let poller_token = token(
        &http,
        &base,
        poller["client_id"].as_str().unwrap(),
        poller["client_secret"].as_str().unwrap(),
    )
    .await;

    // A long poll at the head of the feed, which would otherwise wait 60 s.
    let head: Value = http
        .get(format!("{base}/v1/provider/events"))
        .bearer_auth(&poller_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = head["next_cursor"].as_str().unwrap().to_owned();
    let long_poll = {
        let (http, base, t) = (http.clone(), base.clone(), poller_token.clone());
        actix_web::rt::spawn(async move {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}/v1/provider/events?after={cursor}&wait=60"))
                .bearer_auth(&t)
                .send()
                .await;
            (resp.map(|r| r.status().as_u16()), started.elapsed())
        })
    };

    // Eight clients submitting as fast as they can, each on a fresh connection per request so a
    // refusal after the stop shows as "connection refused", not as a reused socket's error.
    let mut workers = Vec::new();
    for w in 0..8 {
        let (base, t) = (base.clone(), portal_token.clone());
        workers.push(actix_web::rt::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let body = serde_json::to_vec(&referral_body()).unwrap();
            let (mut created, mut refused, mut reset, mut other) = (0u32, 0u32, 0u32, Vec::new());
            for i in 0.. {
                let sent = http
                    .post(format!("{base}/v1/referrals"))
                    .bearer_auth(&t)
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("w{w}-{i}"))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => created += 1,
                    Ok(r) => other.push(format!("status {}", r.status())),
                    Err(e) if e.is_connect() => {
                        refused += 1;
                        if refused >= 3 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    // A connection the kernel queued while the listener was closing is reset
                    // unread: the request never reached the service. The database check below
                    // proves none of these was carried out.
                    Err(_) => reset += 1,
                }
            }
            (created, reset, other)
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.terminate();
    let (status, lines) =
        tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(40)))
            .await
            .unwrap();

    let mut created = 0;
    for w in workers {
        let (c, reset, other) = w.await.unwrap();
        assert!(other.is_empty(), "answered with an error: {other:?}");
        assert!(
            reset <= 2,
            "{reset} requests reset: more than the closing race explains"
        );
        created += c;
    }
    let (poll, waited) = long_poll.await.unwrap();
    assert_eq!(poll.expect("the long poll got an answer"), 200);
    assert!(
        waited < Duration::from_secs(10),
        "the long poll was answered at the stop, not at its deadline: {waited:?}"
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(
        created >= 8,
        "the load was real: {created} submissions before the stop"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("stopping: answering long polls")));

    // Every answered submission is committed with its access-log event, and nothing else is.
    let url = &vars["EAP_DATABASE_URL"];
    assert_eq!(
        count_in(url, "SELECT COUNT(*) AS n FROM referrals"),
        i64::from(created)
    );
    assert_eq!(
        count_in(url, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'referral.create' AND http_status = 201"),
        i64::from(created)
    );
    assert_eq!(
        count_in(url, "SELECT COUNT(*) AS n FROM audit_log_leaves"),
        count_in(url, "SELECT COUNT(*) AS n FROM audit_events"),
        "every access event sealed before the exit"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("access log sealed before exit")));
    common::drop_pg_database(pg);
}

/// On PostgreSQL the sealer takes only events below the commit horizon, which a transaction in
/// any database of the cluster holds back while it runs. Stopping while such a transaction is
/// open must still seal this instance's last events before the exit, once the horizon passes
/// them (here within a second), rather than leave them to the next start.
#[actix_web::test]
async fn the_exit_seals_events_a_transaction_elsewhere_held_behind_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vars, pg) = common::test_vars(dir.path());
    if pg.is_none() {
        return; // SQLite has one writer at a time and no commit horizon: every event is sealable
    }
    vars.insert("EAP_HOUSEKEEPING".into(), "on".into());
    let admin = Binary::create_client(&vars, "admin", "ops");
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let url = vars["EAP_DATABASE_URL"].clone();

    // Another session's transaction, with a transaction id, holds the horizon from here on.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocker = std::thread::spawn({
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let url = url.clone();
        move || {
            let mut c = diesel::PgConnection::establish(&url).unwrap();
            c.batch_execute("BEGIN; SELECT pg_current_xact_id();")
                .unwrap();
            released.recv().unwrap();
            c.batch_execute("ROLLBACK").unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    // Requests whose access events commit behind it.
    let admin_token = token(&http, &base, &admin.id, &admin.secret).await;
    for i in 0..5 {
        post(
            &http,
            &base,
            "/v1/admin/employers",
            &admin_token,
            json!({"name": format!("Employer {i}")}),
        )
        .await;
    }
    let logged = count_in(&url, "SELECT COUNT(*) AS n FROM audit_events");
    assert!(logged >= 6, "{logged} events: the token and five creations");
    server.terminate();
    std::thread::sleep(Duration::from_secs(1));
    release.send(()).unwrap();
    let (status, lines) =
        tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(40)))
            .await
            .unwrap();
    blocker.join().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        count_in(&url, "SELECT COUNT(*) AS n FROM audit_log_leaves"),
        count_in(&url, "SELECT COUNT(*) AS n FROM audit_events"),
        "every access event sealed before the exit: {lines:?}"
    );
    common::drop_pg_database(pg);
}
