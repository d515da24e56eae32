//! Privacy by construction: after a run of submissions through the real binary, neither the
//! database (the raw SQLite file and WAL, or every PostgreSQL table as text) nor the captured
//! logs hold any submitted name, phone, email, note, employee reference or status token.

mod common;

use common::{post_json_at, referral_body, request_token_at, Binary};
use diesel::connection::SimpleConnection;
use eap_referrals::db::DatabaseUrl;
use serde_json::{json, Value};

fn person(i: usize) -> [String; 5] {
    [
        format!("Zephyrine Quillfeather{i}"),
        format!("+4477009{:05}", 31337 + i),
        format!("zq{i}.private@example.org"),
        format!("NOTE-MARKER-{i} overwhelmed since the night shifts"),
        format!("EMPREF-MARKER-{i}"),
    ]
}

/// Everything the database holds, as text or raw bytes.
fn database_dump(url: &DatabaseUrl) -> Vec<u8> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut bytes = std::fs::read(path).unwrap();
            for suffix in ["-wal", "-journal"] {
                let p = format!("{}{suffix}", path.display());
                if let Ok(more) = std::fs::read(p) {
                    bytes.extend(more);
                }
            }
            bytes
        }
        DatabaseUrl::Postgres(u) => {
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                t: String,
            }
            let mut conn = diesel::PgConnection::establish(u).unwrap();
            conn.batch_execute("SELECT 1").unwrap();
            let tables: Vec<Row> = diesel::sql_query(
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .load(&mut conn)
            .unwrap();
            let mut out = Vec::new();
            for table in tables {
                let rows: Vec<Row> =
                    diesel::sql_query(format!("SELECT t::text AS t FROM \"{}\" t", table.t))
                        .load(&mut conn)
                        .unwrap();
                for r in rows {
                    out.extend(r.t.into_bytes());
                    out.push(b'\n');
                }
            }
            out
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[actix_web::test]
async fn no_submitted_personal_data_reaches_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg) = common::test_vars(dir.path());
    let admin = Binary::create_client(&vars, "admin", "ops");
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let token_for = |id: String, secret: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let resp = request_token_at(&http, &base, &id, &secret).await;
            let v: Value = resp.json().await.unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let admin_token = token_for(admin.id.clone(), admin.secret.clone()).await;
    let post = |path: &'static str, body: Value| {
        let (http, base, token) = (http.clone(), base.clone(), admin_token.clone());
        async move { post_json_at(&http, &base, path, &token, &body).await }
    };
    let employer: Value = post("/v1/admin/employers", json!({"name": "Acme"}))
        .await
        .json()
        .await
        .unwrap();
    let provider: Value = post(
        "/v1/admin/providers",
        json!({"name": "Harbour", "services": ["counselling"], "languages": ["en"], "regions": ["GB"], "modalities": ["video"], "crisis_capable": true, "capacity": 3}),
    )
    .await
    .json()
    .await
    .unwrap();
    post(
        "/v1/admin/contracts",
        json!({"employer_id": employer["id"], "provider_id": provider["id"], "priority": 1}),
    )
    .await;
    let portal: Value = post(
        "/v1/admin/clients",
        json!({"name": "portal", "role": "hr_portal", "employer_id": employer["id"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let portal_token = token_for(
        portal["client_id"].as_str().unwrap().into(),
        portal["client_secret"].as_str().unwrap().into(),
    )
    .await;

    let mut secrets: Vec<String> = Vec::new();
    for i in 0..6 {
        let [name, phone, email, note, employee_ref] = person(i);
        let mut body = referral_body();
        body["contact"]["preferred_name"] = json!(name);
        body["contact"]["phone"] = json!(phone);
        body["contact"]["email"] = json!(email);
        body["contact"]["best_time_to_contact"] = json!(format!("BESTTIME-MARKER-{i}"));
        body["note"] = json!(note);
        body["employee_ref"] = json!(employee_ref);
        // A crisis one, an unroutable one (more than capacity), and the rest routine.
        if i == 0 {
            body["urgency"] = json!("crisis");
        }
        let key = format!("privacy-{i}");
        let send = || {
            http.post(format!("{base}/v1/referrals"))
                .bearer_auth(&portal_token)
                .header("idempotency-key", &key)
                .json(&body)
                .send()
        };
        let resp = send().await.unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        secrets.push(v["status_token"].as_str().unwrap().to_owned());
        // A replay, and a status read with the token.
        assert_eq!(send().await.unwrap().status(), 201);
        let status = http
            .get(format!("{base}/v1/referrals/{}", v["id"].as_str().unwrap()))
            .bearer_auth(&portal_token)
            .header("referral-token", v["status_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(status.status(), 200);
        secrets.extend([
            name,
            phone,
            email,
            note,
            employee_ref,
            format!("BESTTIME-MARKER-{i}"),
        ]);
    }
    // A rejected submission carrying personal data in every field it could.
    let [name, phone, email, note, employee_ref] = person(99);
    let mut bad = referral_body();
    bad["contact"]["preferred_name"] = json!(name);
    bad["contact"]["phone"] = json!(format!("tel:{phone}"));
    bad["contact"]["email"] = json!(email);
    bad["note"] = json!(note);
    bad["employee_ref"] = json!(employee_ref);
    bad["diagnosis"] = json!("DIAGNOSIS-MARKER");
    let resp = http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(&portal_token)
        .header("idempotency-key", "bad")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let problem = resp.text().await.unwrap();
    secrets.extend([
        name,
        phone,
        email,
        note,
        employee_ref,
        "DIAGNOSIS-MARKER".into(),
    ]);

    let logs = server.stop().join("\n");
    let db = database_dump(&DatabaseUrl::parse(&vars["EAP_DATABASE_URL"]).unwrap());
    assert!(
        contains(&db, "referral.create"),
        "the dump is real: it holds the access log"
    );
    assert!(logs.contains("request finished"), "the logs are real");
    for s in &secrets {
        assert!(!contains(&db, s), "the database holds {s:?}");
        assert!(!logs.contains(s.as_str()), "the logs hold {s:?}");
        assert!(!problem.contains(s.as_str()), "the error body holds {s:?}");
    }
    common::drop_pg_database(pg);
}
