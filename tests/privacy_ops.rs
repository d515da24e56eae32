//! Retention purge and erasure over a real socket: exactly the due data goes (checked in the
//! raw database, not only through the API), a provider learns of an erasure and reads 410,
//! capacity is given back, and everything is in the access log.

mod common;

use chrono::{NaiveDateTime, TimeDelta};
use common::provider::{act, provider_token};
use common::{problem, referral_body, spawn_app, Portal, TestApp};
use diesel::prelude::*;
use eap_referrals::db::schema::{idempotency_keys, referrals};
use eap_referrals::db::{AnyConnection, DatabaseUrl};
use eap_referrals::privacy::model::RetentionPolicy;
use eap_referrals::privacy::store as privacy;
use reqwest::Method;
use serde_json::{json, Value};

async fn submit(app: &TestApp, portal: &Portal) -> (String, String) {
    // Each its own employee reference, so each has its own HMAC to look for.
    let mut body = referral_body();
    body["employee_ref"] = json!(format!("EMP-{}", uuid::Uuid::new_v4().simple()));
    let v: Value = app
        .submit_json(&portal.token, &body)
        .await
        .json()
        .await
        .unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["status_token"].as_str().unwrap().to_owned(),
    )
}

async fn provider_post(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    version: i32,
    body: Option<Value>,
) -> reqwest::Response {
    act(app, token, id, what, Some(&format!("\"{version}\"")), body).await
}

async fn accept(app: &TestApp, token: &str, id: &str) {
    let version = app.referral(id).version;
    let resp = provider_post(app, token, id, "accept", version, None).await;
    assert_eq!(resp.status(), 200);
}

fn set_times(app: &TestApp, id: &str, created: NaiveDateTime, closed: Option<NaiveDateTime>) {
    let mut conn = app.conn();
    diesel::update(referrals::table.find(id))
        .set((
            referrals::created_at.eq(created),
            referrals::closed_at.eq(closed),
        ))
        .execute(&mut **conn)
        .unwrap();
}

fn feed_kinds(app: &TestApp, provider: &str, id: &str) -> Vec<String> {
    let mut conn = app.conn();
    eap_referrals::referrals::store::events_for(&mut conn, provider)
        .unwrap()
        .into_iter()
        .filter(|(r, _)| r == id)
        .map(|(_, k)| k)
        .collect()
}

/// The secrets a referral holds in its row: the wrapped key and the ciphertexts (binary), and
/// the employee reference HMAC (text).
fn secrets(app: &TestApp, id: &str) -> Vec<Secret> {
    let row = app.referral(id);
    [row.wrapped_key, row.sealed_contact, row.sealed_note]
        .into_iter()
        .flatten()
        .map(Secret::Binary)
        .chain(row.employee_ref_hmac.map(Secret::Text))
        .collect()
}

enum Secret {
    Binary(Vec<u8>),
    Text(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the database holds `secret` anywhere: in the raw SQLite file and its WAL, or in any
/// PostgreSQL table rendered as text (bytea as hex).
fn database_holds(app: &TestApp, secret: &Secret) -> bool {
    let (needle, rendered) = match secret {
        Secret::Binary(b) => (b.clone(), hex(b)),
        Secret::Text(t) => (t.as_bytes().to_vec(), t.clone()),
    };
    match &app.database_url {
        DatabaseUrl::Sqlite(path) => {
            let mut bytes = std::fs::read(path).unwrap();
            for suffix in ["-wal", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{}{suffix}", path.display())) {
                    bytes.extend(more);
                }
            }
            bytes.windows(needle.len()).any(|w| w == needle.as_slice())
        }
        DatabaseUrl::Postgres(_) => {
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                t: String,
            }
            let mut conn = app.conn();
            let tables: Vec<Row> = diesel::sql_query(
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .load(&mut **conn)
            .unwrap();
            tables.iter().any(|table| {
                diesel::sql_query(format!("SELECT t::text AS t FROM \"{}\" t", table.t))
                    .load::<Row>(&mut **conn)
                    .unwrap()
                    .iter()
                    .any(|r| r.t.contains(&rendered))
            })
        }
    }
}

fn assert_shredded(app: &TestApp, id: &str) {
    let row = app.referral(id);
    assert!(row.erased_at.is_some(), "{id} erased_at");
    assert_eq!(
        (
            row.key_id,
            row.wrapped_key,
            row.sealed_contact,
            row.sealed_note,
            row.employee_ref_hmac
        ),
        (None, None, None, None, None),
        "{id} still holds personal data"
    );
    let mut conn = app.conn();
    let keys: Vec<(String, Option<Vec<u8>>)> = idempotency_keys::table
        .filter(idempotency_keys::referral_id.eq(id))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_sealed,
        ))
        .load(&mut **conn)
        .unwrap();
    assert!(
        keys.iter().all(|(h, r)| h.is_empty() && r.is_none()),
        "{id}: the idempotency record keeps a fingerprint or a replay"
    );
}

fn assert_intact(app: &TestApp, id: &str) {
    let row = app.referral(id);
    assert!(row.erased_at.is_none(), "{id} erased too early");
    assert!(
        row.wrapped_key.is_some()
            && row.sealed_contact.is_some()
            && row.employee_ref_hmac.is_some()
    );
}

#[actix_web::test]
async fn the_purge_destroys_exactly_the_data_that_is_due() {
    let app = spawn_app().await;
    let portal = app.setup_portal(10).await;
    let provider = provider_token(&app, &portal, &portal.provider).await;
    let now = eap_referrals::db::now();
    let days = TimeDelta::days;

    // Closed 31 and 29 days ago (due after 30).
    let mut closed = Vec::new();
    for _ in 0..2 {
        let (id, _) = submit(&app, &portal).await;
        accept(&app, &provider, &id).await;
        let resp = provider_post(
            &app,
            &provider,
            &id,
            "status",
            app.referral(&id).version,
            Some(json!({"status": "closed", "outcome": "unable_to_contact"})),
        )
        .await;
        assert_eq!(resp.status(), 200);
        closed.push(id);
    }
    set_times(&app, &closed[0], now - days(60), Some(now - days(31)));
    set_times(&app, &closed[1], now - days(60), Some(now - days(29)));
    // Cancelled 40 days ago (due).
    let (cancelled, token) = submit(&app, &portal).await;
    let resp = app
        .portal_call(
            Method::POST,
            &format!("/v1/referrals/{cancelled}/cancel"),
            &portal.token,
            &token,
        )
        .await;
    assert_eq!(resp.status(), 200);
    set_times(&app, &cancelled, now - days(41), Some(now - days(40)));
    // Cancelled, but its row lacks a closing time: the rules fall back to submission, 41 days
    // ago (due), and the database query must agree with them.
    let (unstamped, token) = submit(&app, &portal).await;
    let resp = app
        .portal_call(
            Method::POST,
            &format!("/v1/referrals/{unstamped}/cancel"),
            &portal.token,
            &token,
        )
        .await;
    assert_eq!(resp.status(), 200);
    set_times(&app, &unstamped, now - days(41), None);
    // Offered and never accepted: 91 days (due) and 89 days (not yet).
    let (stale, stale_token) = submit(&app, &portal).await;
    set_times(&app, &stale, now - days(91), None);
    let (fresh, _) = submit(&app, &portal).await;
    set_times(&app, &fresh, now - days(89), None);
    // In active care for 200 days: never due.
    let (active, _) = submit(&app, &portal).await;
    accept(&app, &provider, &active).await;
    set_times(&app, &active, now - days(200), None);

    let due_ids = [&closed[0], &cancelled, &unstamped, &stale];
    let kept_ids = [&closed[1], &fresh, &active];
    let held: Vec<(String, Vec<Secret>)> = due_ids
        .iter()
        .chain(&kept_ids)
        .map(|id| (id.to_string(), secrets(&app, id)))
        .collect();
    let load_before = app.provider_load(&portal.provider);

    let policy = RetentionPolicy::from_config(&app.state.config);
    let mut conn = app.conn();
    let mut listed: Vec<String> = privacy::due(&mut conn, &policy, now)
        .unwrap()
        .into_iter()
        .map(|d| d.referral_id)
        .collect();
    listed.sort();
    let mut want: Vec<String> = due_ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want, "the dry run lists exactly the due referrals");
    assert_intact(&app, &stale);

    let run = privacy::purge(&mut conn, &policy, || now, &Default::default()).unwrap();
    assert!(!run.busy);
    let mut purged: Vec<String> = run.purged.into_iter().map(|d| d.referral_id).collect();
    purged.sort();
    assert_eq!(purged, want);
    assert!(
        privacy::purge(&mut conn, &policy, || now, &Default::default())
            .unwrap()
            .purged
            .is_empty(),
        "a second run finds nothing"
    );
    drop(conn);

    for id in due_ids {
        assert_shredded(&app, id);
    }
    for id in kept_ids {
        assert_intact(&app, id);
    }
    // The stale offer is withdrawn: cancelled, its slot back, its provider told.
    assert_eq!(app.referral(&stale).status, "cancelled");
    assert_eq!(app.provider_load(&portal.provider), load_before - 1);
    assert_eq!(
        feed_kinds(&app, &portal.provider, &stale),
        ["offered", "erased"]
    );
    // The rows stay, de-identified, and the portal still reads the coarse status.
    let resp = app
        .portal_call(
            Method::GET,
            &format!("/v1/referrals/{stale}"),
            &portal.token,
            &stale_token,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "cancelled");

    // The raw database: no ciphertext or wrapped key of a purged referral anywhere.
    for (id, blobs) in &held {
        let should_hold = kept_ids.contains(&id);
        for blob in blobs {
            assert_eq!(
                database_holds(&app, blob),
                should_hold,
                "{id}: secret bytes present = {}",
                !should_hold
            );
        }
    }

    // One access-log event per purged referral, by the system.
    let events: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "personal_data.purge")
        .collect();
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e.actor_role.as_deref(), Some("system"));
        assert_eq!(e.actor_client_id, None);
        assert_eq!(e.outcome, "success");
        assert!(want.contains(e.resource_id.as_ref().unwrap()));
    }
}

#[actix_web::test]
async fn an_erasure_shreds_at_once_and_the_provider_reads_410() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let provider = provider_token(&app, &portal, &portal.provider).await;
    let key = "erase-me-1";
    let body = serde_json::to_vec(&referral_body()).unwrap();
    let v: Value = app
        .submit(&portal.token, Some(key), &body)
        .await
        .json()
        .await
        .unwrap();
    let (id, token) = (
        v["id"].as_str().unwrap().to_owned(),
        v["status_token"].as_str().unwrap().to_owned(),
    );
    accept(&app, &provider, &id).await;
    let contact = app
        .get(&format!("/v1/provider/referrals/{id}/contact"), &provider)
        .await;
    assert_eq!(contact.status(), 200);
    assert_eq!(app.provider_load(&portal.provider), 1);
    let blobs = secrets(&app, &id);
    let path = format!("/v1/referrals/{id}/personal-data");

    // A wrong token, or another employer's portal, is the same logged 404.
    problem(
        app.portal_call(Method::DELETE, &path, &portal.token, "rst_wrong")
            .await,
        404,
    )
    .await;
    let other_employer = app.create_employer(&portal.admin_token, "Other Co").await;
    let other = app
        .create_client(
            &portal.admin_token,
            json!({"name": "other portal", "role": "hr_portal", "employer_id": other_employer}),
        )
        .await;
    let other_token = app.token(&other).await;
    problem(
        app.portal_call(Method::DELETE, &path, &other_token, &token)
            .await,
        404,
    )
    .await;
    assert_intact(&app, &id);

    let resp = app
        .portal_call(Method::DELETE, &path, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 204);
    assert_shredded(&app, &id);
    for blob in &blobs {
        assert!(
            !database_holds(&app, blob),
            "secret bytes left in the database"
        );
    }
    // The assignment is withdrawn: slot back, provider told, contact gone for good.
    assert_eq!(app.referral(&id).status, "cancelled");
    assert_eq!(app.provider_load(&portal.provider), 0);
    assert_eq!(
        feed_kinds(&app, &portal.provider, &id),
        ["offered", "accepted", "erased"]
    );
    let resp = app
        .get(&format!("/v1/provider/referrals/{id}/contact"), &provider)
        .await;
    let p = problem(resp, 410).await;
    assert!(!p.to_string().contains("Sam"));
    // The portal still sees the coarse status; erasing again is 204 and changes nothing more.
    let resp = app
        .portal_call(
            Method::GET,
            &format!("/v1/referrals/{id}"),
            &portal.token,
            &token,
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "cancelled");
    let resp = app
        .portal_call(Method::DELETE, &path, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        feed_kinds(&app, &portal.provider, &id),
        ["offered", "accepted", "erased"]
    );
    // A retried submission with the original key does not bring the person back.
    problem(app.submit(&portal.token, Some(key), &body).await, 409).await;

    let rows = app.audit_rows();
    let erase: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "personal_data.erase")
        .map(|r| (r.outcome.as_str(), r.http_status, r.resource_id.as_deref()))
        .collect();
    assert_eq!(
        erase,
        [
            ("denied", 404, Some(id.as_str())),
            ("denied", 404, Some(id.as_str())),
            ("success", 204, Some(id.as_str())),
            ("success", 204, Some(id.as_str())),
        ]
    );
    let gone: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "contact.read")
        .map(|r| r.http_status)
        .collect();
    assert_eq!(gone, [200, 410], "the refused read is logged too");
}

#[actix_web::test]
async fn an_admin_can_erase_and_no_one_else_on_that_route() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let (id, _) = submit(&app, &portal).await;
    let path = format!("/v1/admin/referrals/{id}/personal-data");
    problem(app.delete(&path, &portal.token).await, 403).await;
    let unknown = format!("/v1/admin/referrals/{}/personal-data", uuid::Uuid::now_v7());
    problem(app.delete(&unknown, &portal.admin_token).await, 404).await;
    assert_intact(&app, &id);
    let resp = app.delete(&path, &portal.admin_token).await;
    assert_eq!(resp.status(), 204);
    assert_shredded(&app, &id);
    assert_eq!(app.referral(&id).status, "cancelled");
    assert_eq!(app.provider_load(&portal.provider), 0);
    assert_eq!(
        feed_kinds(&app, &portal.provider, &id),
        ["offered", "erased"]
    );
    assert_eq!(app.delete(&path, &portal.admin_token).await.status(), 204);
    let events: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "personal_data.erase" && r.outcome == "success")
        .map(|r| (r.actor_role, r.resource_id))
        .collect();
    assert_eq!(
        events,
        [
            (Some("admin".to_owned()), Some(id.clone())),
            (Some("admin".to_owned()), Some(id.clone()))
        ]
    );
}

#[actix_web::test]
async fn an_erasure_that_cannot_be_logged_does_not_happen() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let (id, token) = submit(&app, &portal).await;
    app.break_audit_log();
    let resp = app
        .portal_call(
            Method::DELETE,
            &format!("/v1/referrals/{id}/personal-data"),
            &portal.token,
            &token,
        )
        .await;
    problem(resp, 503).await;
    app.repair_audit_log();
    assert_intact(&app, &id);
    assert_eq!(app.referral(&id).status, "offered");
}

#[actix_web::test]
async fn racing_purges_destroy_each_referral_once() {
    let app = spawn_app().await;
    let portal = app.setup_portal(10).await;
    let now = eap_referrals::db::now();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (id, _) = submit(&app, &portal).await;
        set_times(&app, &id, now - TimeDelta::days(120), None);
        ids.push(id);
    }
    let policy = RetentionPolicy::from_config(&app.state.config);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = app.conn();
            std::thread::spawn(move || {
                privacy::purge(&mut conn, &policy, || now, &Default::default())
                    .unwrap()
                    .purged
                    .len()
            })
        })
        .collect();
    let total: usize = runs.into_iter().map(|r| r.join().unwrap()).sum();
    // On PostgreSQL the loser of the advisory lock returns at once; either way, once each.
    assert_eq!(total, ids.len());
    for id in &ids {
        assert_shredded(&app, id);
    }
    assert_eq!(app.provider_load(&portal.provider), 0);
    let events = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "personal_data.purge")
        .count();
    assert_eq!(events, ids.len());
}

/// Many due referrals, inserted directly (the purge needs no sealed data to destroy): never
/// accepted, so each is also withdrawn, stamped with the time of its batch.
#[actix_web::test]
async fn purge_batches_read_the_clock_afresh_and_survive_skipped_rows() {
    use eap_referrals::codes::Code;
    use eap_referrals::ids::{EmployerId, ReferralId};
    use eap_referrals::referrals::store::{insert_referral, ReferralRow};
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let start = eap_referrals::db::now();
    let created = start - TimeDelta::days(120);
    {
        let mut conn = app.conn();
        for _ in 0..130 {
            let row = ReferralRow {
                id: ReferralId::generate(),
                employer_id: EmployerId::from_trusted(portal.employer.clone()),
                service_type: Code::from_code("counselling").unwrap(),
                urgency: Code::from_code("routine").unwrap(),
                modality: Code::from_code("video").unwrap(),
                language: "en".into(),
                region: "GB".into(),
                employee_ref_hmac: None,
                status: Code::from_code("unroutable").unwrap(),
                outcome: None,
                provider_id: None,
                offer_expires_at: None,
                version: 1,
                status_token_hash: "x".into(),
                key_id: None,
                wrapped_key: None,
                sealed_contact: None,
                sealed_note: None,
                routing_reasons: None,
                created_at: created,
                updated_at: created,
                closed_at: None,
                erased_at: None,
                sealed_preferences: None,
            };
            insert_referral(&mut conn, &row).unwrap();
        }
    }
    // A clock that moves a minute each time it is read.
    let reads = std::cell::Cell::new(0i64);
    let clock = || {
        reads.set(reads.get() + 1);
        start + TimeDelta::minutes(reads.get())
    };
    let policy = RetentionPolicy::from_config(&app.state.config);
    // On PostgreSQL a request holds the first referral locked meanwhile: the purge skips it, and
    // the shorter first batch must not end the run.
    let mut holder = app.conn();
    let locked = match &mut **holder {
        eap_referrals::db::AnyConnection::Postgresql(c) => {
            use diesel::connection::SimpleConnection;
            c.batch_execute("BEGIN").unwrap();
            let id: String = referrals::table
                .select(referrals::id)
                .order(referrals::id.asc())
                .limit(1)
                .for_update()
                .get_result(c)
                .unwrap();
            Some(id)
        }
        eap_referrals::db::AnyConnection::Sqlite(_) => None,
    };
    let run = privacy::purge(&mut app.conn(), &policy, clock, &Default::default()).unwrap();
    if let eap_referrals::db::AnyConnection::Postgresql(c) = &mut **holder {
        use diesel::connection::SimpleConnection;
        c.batch_execute("ROLLBACK").unwrap();
    }
    drop(holder);
    let skipped = usize::from(locked.is_some());
    assert_eq!(run.purged.len(), 130 - skipped);
    assert!(!run.busy);
    // Two batches (100 and 30 candidates), one reading each; the second is short, so the last.
    assert_eq!(reads.get(), 2);
    if let Some(id) = &locked {
        assert!(
            app.referral(id).erased_at.is_none(),
            "a locked row is skipped"
        );
        assert!(run.purged.iter().all(|d| &d.referral_id != id));
    }
    let stamps: Vec<(String, Option<NaiveDateTime>, Option<NaiveDateTime>, String)> =
        referrals::table
            .select((
                referrals::id,
                referrals::erased_at,
                referrals::closed_at,
                referrals::status,
            ))
            .load(&mut **app.conn())
            .unwrap();
    let mut per_stamp = std::collections::BTreeMap::new();
    for (id, erased, closed, status) in stamps {
        if Some(&id) == locked.as_ref() {
            continue;
        }
        assert_eq!(status, "cancelled");
        // Withdrawn at the moment its batch read the clock, not when the run began.
        assert_eq!(closed, erased);
        *per_stamp.entry(erased.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(
        per_stamp.into_iter().collect::<Vec<_>>(),
        [
            (start + TimeDelta::minutes(1), 100 - skipped),
            (start + TimeDelta::minutes(2), 30)
        ]
    );
}

/// A connection of its own, in the middle of a read transaction that has read the referral's
/// key: what a report or a backup tool holds while an erasure happens.
fn start_long_read(app: &TestApp) -> AnyConnection {
    use diesel::connection::SimpleConnection;
    let read = "SELECT count(*) FROM referral_keys; SELECT count(*) FROM referrals;";
    match &app.database_url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
            c.batch_execute(&format!("BEGIN; {read}")).unwrap();
            AnyConnection::Sqlite(c)
        }
        DatabaseUrl::Postgres(url) => {
            let mut c = diesel::PgConnection::establish(url).unwrap();
            c.batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ; {read}"))
                .unwrap();
            AnyConnection::Postgresql(c)
        }
    }
}

/// Whether the database's files hold `needle`: on SQLite the raw file and its WAL; on
/// PostgreSQL every relation file of the database (tables, indexes, TOAST), read by the server
/// after a CHECKPOINT has written its buffers out.
fn files_hold(app: &TestApp, needle: &[u8]) -> bool {
    match &app.database_url {
        DatabaseUrl::Sqlite(_) => database_holds(app, &Secret::Binary(needle.to_vec())),
        DatabaseUrl::Postgres(url) => {
            #[derive(QueryableByName)]
            struct Found {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            // A session of its own: one that has not taken a lock since a rewrite may still
            // name the relation's previous file.
            let mut conn = diesel::PgConnection::establish(url).unwrap();
            app.exec("CHECKPOINT");
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_class c \
                 WHERE c.relkind IN ('r', 'i', 't') AND c.relfilenode <> 0 \
                   AND c.relnamespace IN (SELECT oid FROM pg_namespace \
                                          WHERE nspname IN ('public', 'pg_toast')) \
                   AND position($1 IN pg_read_binary_file(pg_relation_filepath(c.oid))) > 0",
            )
            .bind::<diesel::sql_types::Binary, _>(needle)
            .get_result::<Found>(&mut conn)
            .unwrap()
            .n > 0
        }
    }
}

#[actix_web::test]
async fn an_erasure_during_a_long_read_leaves_no_key_in_the_files_once_the_reader_is_done() {
    let app = common::spawn_app_with(|v| {
        // Housekeeping as in production, with a short sweep: it is what retries the WAL
        // checkpoint on SQLite.
        v.insert("EAP_HOUSEKEEPING".into(), "on".into());
        v.insert("EAP_SWEEP_INTERVAL_SECS".into(), "1".into());
    })
    .await;
    let portal = app.setup_portal(3).await;
    let (id, token) = submit(&app, &portal).await;
    let key = app.referral(&id).wrapped_key.expect("a wrapped key");
    assert!(files_hold(&app, &key), "the check sees a live key");

    let reader = start_long_read(&app);
    let path = format!("/v1/referrals/{id}/personal-data");
    let resp = app
        .portal_call(Method::DELETE, &path, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 204);
    assert_shredded(&app, &id);
    // While the reader may still need them, the old bytes stay: the WAL cannot be emptied, and
    // PostgreSQL's rewrite would copy the row a snapshot still sees, so it waits.
    assert!(files_hold(&app, &key), "gone while a reader could see it");
    if let AnyConnection::Postgresql(_) = &**app.conn() {
        assert_eq!(privacy::compact_keys(&mut app.conn()).unwrap(), 0);
    }
    drop(reader);

    // Then, without another erasure: housekeeping empties the WAL (SQLite), the purge rewrites
    // the key's partition (PostgreSQL) once no transaction anywhere in the cluster is older
    // than the erasure (other test suites share the cluster, hence the generous bound).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let AnyConnection::Postgresql(_) = &**app.conn() {
            privacy::compact_keys(&mut app.conn()).unwrap();
        }
        if !files_hold(&app, &key) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the erased key is still in the database's files"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.count("referral_key_compactions"), 0);
}

/// A backup of the app's database as it is now: `pg_dump` on PostgreSQL, a copy of the file
/// (through SQLite, so the WAL is included) on SQLite.
fn back_up(app: &TestApp, dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("backup");
    match &app.database_url {
        DatabaseUrl::Sqlite(_) => app.exec(&format!("VACUUM INTO '{}'", file.display())),
        DatabaseUrl::Postgres(url) => {
            let out = std::process::Command::new("pg_dump")
                .args(["-Fc", "-f"])
                .arg(&file)
                .arg(url)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    file
}

/// Restores `backup` into a fresh database; returns its URL and, on PostgreSQL, what to drop.
fn restore(app: &TestApp, backup: &std::path::Path) -> (String, Option<(String, String)>) {
    match &app.database_url {
        DatabaseUrl::Sqlite(_) => {
            let copy = backup.with_file_name("restored.sqlite3");
            std::fs::copy(backup, &copy).unwrap();
            (format!("sqlite://{}", copy.display()), None)
        }
        DatabaseUrl::Postgres(url) => {
            let base = url.split('?').next().unwrap();
            let name = base.rsplit('/').next().unwrap();
            let restored = format!("{name}_restored");
            let restored_url = url.replacen(&format!("/{name}"), &format!("/{restored}"), 1);
            let admin = common::pg_admin_url().unwrap();
            app.exec(&format!("CREATE DATABASE {restored}"));
            let out = std::process::Command::new("pg_restore")
                .args(["--no-owner", "-d"])
                .arg(&restored_url)
                .arg(backup)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (restored_url, Some((admin, restored)))
        }
    }
}

#[actix_web::test]
async fn a_restored_backup_does_not_bring_an_erased_person_back() {
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("outside.jsonl");
    let log_var = log.display().to_string();
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_OUTSIDE_LOG".into(), log_var);
    })
    .await;
    let portal = app.setup_portal(3).await;
    let (erased, token) = submit(&app, &portal).await;
    let (kept, _) = submit(&app, &portal).await;
    let backup = back_up(&app, outside.path());

    let path = format!("/v1/referrals/{erased}/personal-data");
    let resp = app
        .portal_call(Method::DELETE, &path, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 204);
    // The outside log holds the erasure: ids, the action and a time, nothing else.
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let mut members: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["action", "erased_at", "kind", "referral_id"]);
    assert_eq!(lines[0]["referral_id"], erased.as_str());

    // The backup predates the erasure: restored, the person is back.
    let (restored, pg) = restore(&app, &backup);
    let holds_key = |id: &str| {
        common::count_in(
            &restored,
            &format!("SELECT COUNT(*) AS n FROM referral_keys WHERE referral_id = '{id}'"),
        )
    };
    assert_eq!(holds_key(&erased), 1, "the backup holds the person");

    let replay = || {
        std::process::Command::new(common::Binary::bin())
            .env_clear()
            .env("EAP_DATABASE_URL", &restored)
            .env("EAP_DATA_DIR", app.data_dir.path())
            .args(["erasures", "replay", "--from"])
            .arg(&log)
            .output()
            .unwrap()
    };
    let out = replay();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("erased again {erased}")),
        "{stdout}"
    );
    assert_eq!(holds_key(&erased), 0, "the replay erased the person again");
    assert_eq!(holds_key(&kept), 1, "and nobody else");
    let shredded = format!(
        "SELECT COUNT(*) AS n FROM referrals WHERE id = '{erased}' AND erased_at IS NOT NULL \
         AND sealed_contact IS NULL AND status = 'cancelled'"
    );
    assert_eq!(common::count_in(&restored, &shredded), 1);
    // The access log of the restored database records it, as the operator's erasure.
    let logged = format!(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'personal_data.erase' \
         AND resource_id = '{erased}' AND actor_role = 'operator' AND source_addr = 'local-cli' \
         AND http_status = 204"
    );
    assert_eq!(common::count_in(&restored, &logged), 1);

    // Again: nothing left to do, nothing logged twice.
    let out = replay();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 erased again, 1 already erased"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(common::count_in(&restored, &logged), 1);
    common::drop_pg_database(pg);
}
