//! Retention purge and erasure over a real socket: exactly the due data goes (checked in the
//! raw database, not only through the API), a provider learns of an erasure and reads 410,
//! capacity is given back, and everything is in the access log.

mod common;

use chrono::{NaiveDateTime, TimeDelta};
use common::provider::{act, provider_token};
use common::{problem, referral_body, spawn_app, Portal, TestApp};
use diesel::prelude::*;
use eap_referrals::db::schema::{idempotency_keys, referrals};
use eap_referrals::db::DatabaseUrl;
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
        .execute(&mut *conn)
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
            .load(&mut *conn)
            .unwrap();
            tables.iter().any(|table| {
                diesel::sql_query(format!("SELECT t::text AS t FROM \"{}\" t", table.t))
                    .load::<Row>(&mut *conn)
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
        .load(&mut *conn)
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

    let run = privacy::purge(&mut conn, &policy, || now).unwrap();
    assert!(!run.busy);
    let mut purged: Vec<String> = run.purged.into_iter().map(|d| d.referral_id).collect();
    purged.sort();
    assert_eq!(purged, want);
    assert!(
        privacy::purge(&mut conn, &policy, || now)
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
                privacy::purge(&mut conn, &policy, || now)
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
    let locked = match &mut *holder {
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
    let run = privacy::purge(&mut app.conn(), &policy, clock).unwrap();
    if let eap_referrals::db::AnyConnection::Postgresql(c) = &mut *holder {
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
            .load(&mut *app.conn())
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
