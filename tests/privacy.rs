//! Privacy by construction: after a run of submissions through the real binary, neither the
//! database (the raw SQLite file and WAL, or every PostgreSQL table as text) nor the captured
//! logs hold any submitted name, phone, email, note, employee reference or status token.

mod common;

use common::{post_json_at, referral_body, request_token_at, Binary};
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
        // What a backup would hold: the logical dump, by PostgreSQL's own pg_dump.
        DatabaseUrl::Postgres(u) => pg_dump(u),
    }
}

/// `pg_dump --data-only` of the database at `url`. PostgreSQL's tools come with the server, so
/// a machine that runs the PostgreSQL suite has it; its absence fails the test, never skips it.
fn pg_dump(url: &str) -> Vec<u8> {
    let out = std::process::Command::new("pg_dump")
        .args(["--data-only", "--no-owner", url])
        .output()
        .expect("pg_dump (PostgreSQL's client tools) is needed for the PostgreSQL hunt");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

type Finished = (
    Vec<String>,
    DatabaseUrl,
    Option<(String, String)>,
    tempfile::TempDir,
);

/// The real binary on a fresh database, with an admin's token.
struct Story {
    _dir: tempfile::TempDir,
    vars: std::collections::HashMap<String, String>,
    pg: Option<(String, String)>,
    server: Binary,
    http: reqwest::Client,
    base: String,
    admin_token: String,
}

impl Story {
    async fn start() -> Story {
        let dir = tempfile::tempdir().unwrap();
        let (vars, pg) = common::test_vars(dir.path());
        let admin = Binary::create_client(&vars, "admin", "ops");
        let server = Binary::start(&vars);
        let base = server.base.clone();
        let http = reqwest::Client::new();
        let admin_token = Self::token(&http, &base, &admin.id, &admin.secret).await;
        Story {
            _dir: dir,
            vars,
            pg,
            server,
            http,
            base,
            admin_token,
        }
    }

    async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
        let resp = request_token_at(http, base, id, secret).await;
        let v: Value = resp.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// The token of a client created through the API (its `client_id` and `client_secret`).
    async fn token_of(&self, client: &Value) -> String {
        let id = client["client_id"].as_str().unwrap();
        let secret = client["client_secret"].as_str().unwrap();
        Self::token(&self.http, &self.base, id, secret).await
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        post_json_at(&self.http, &self.base, path, &self.admin_token, &body).await
    }

    /// Stops the server: its captured logs, its database (the SQLite file lives as long as the
    /// returned directory), and the PostgreSQL database to drop.
    fn finish(self) -> Finished {
        let url = DatabaseUrl::parse(&self.vars["EAP_DATABASE_URL"]).unwrap();
        (self.server.stop(), url, self.pg, self._dir)
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[actix_web::test]
async fn no_submitted_personal_data_reaches_the_database_or_the_logs() {
    let story = Story::start().await;
    let (http, base) = (&story.http, &story.base);
    let post = |path: &'static str, body: Value| story.post(path, body);
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
    let portal_token = story.token_of(&portal).await;

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

    let (logs, url, pg, _dir) = story.finish();
    let logs = logs.join("\n");
    let db = database_dump(&url);
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

/// Every row of every table as one line of text (blobs as hex), for finding what a row links.
fn rows_as_text(url: &DatabaseUrl) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
    }
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
            let tables: Vec<Row> = diesel::sql_query(
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .load(&mut conn)
            .unwrap();
            let mut out = Vec::new();
            for table in tables {
                let columns: Vec<Row> = diesel::sql_query(format!(
                    "SELECT name AS t FROM pragma_table_info('{}')",
                    table.t
                ))
                .load(&mut conn)
                .unwrap();
                let line = columns
                    .iter()
                    .map(|c| format!("quote(\"{}\")", c.t))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let rows: Vec<Row> =
                    diesel::sql_query(format!("SELECT {line} AS t FROM \"{}\"", table.t))
                        .load(&mut conn)
                        .unwrap();
                out.extend(rows.into_iter().map(|r| format!("{}: {}", table.t, r.t)));
            }
            out
        }
        // The rows of pg_dump's COPY blocks, each prefixed by its table: what a backup holds.
        DatabaseUrl::Postgres(u) => {
            let dump = String::from_utf8(pg_dump(u)).unwrap();
            let mut out = Vec::new();
            let mut table: Option<String> = None;
            for line in dump.lines() {
                match &table {
                    None => {
                        table = line
                            .strip_prefix("COPY public.")
                            .and_then(|rest| rest.split([' ', '(']).next())
                            .map(|t| t.trim_matches('"').to_owned());
                    }
                    Some(_) if line == "\\." => table = None,
                    Some(t) => out.push(format!("{t}: {line}")),
                }
            }
            out
        }
    }
}

/// The person's routing preferences (whom they excluded, out-of-area care, being a helping
/// professional) are sealed: nothing stored in clear, nor any log line, ties them to the
/// referral. (The employer's affiliations are not personal and may be read.)
#[actix_web::test]
async fn the_persons_routing_preferences_are_never_stored_or_logged_in_clear() {
    let story = Story::start().await;
    let (http, base) = (&story.http, &story.base);
    let post = |path: &'static str, body: Value| {
        let resp = story.post(path, body);
        async move { resp.await.json::<Value>().await.unwrap() }
    };
    let employer = post("/v1/admin/employers", json!({"name": "Infirmary"})).await;
    let mut providers = Vec::new();
    for (name, priority) in [("Colleagues Ward", 1), ("Far Away Care", 2)] {
        let provider = post(
            "/v1/admin/providers",
            json!({"name": name, "services": ["counselling"], "languages": ["en"], "regions": ["GB-ENG"], "modalities": ["video"], "capacity": 3}),
        )
        .await;
        post(
            "/v1/admin/contracts",
            json!({"employer_id": employer["id"], "provider_id": provider["id"], "priority": priority}),
        )
        .await;
        providers.push(provider["id"].as_str().unwrap().to_owned());
    }
    let excluded = providers[0].clone();
    let portal = post(
        "/v1/admin/clients",
        json!({"name": "portal", "role": "hr_portal", "employer_id": employer["id"]}),
    )
    .await;
    let portal_token = story.token_of(&portal).await;

    let mut body = referral_body();
    body["region"] = json!("GB-SCT");
    body["exclude_providers"] = json!([excluded]);
    body["out_of_area"] = json!(true);
    body["helping_professional"] = json!(true);
    let resp = http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(&portal_token)
        .header("idempotency-key", "preferences")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let submission = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let referral = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (logs, url, pg, _dir) = story.finish();
    let rows = rows_as_text(&url);
    let dump = database_dump(&url);
    // The JSON members as they would be written in clear.
    let members = [
        "\"exclude_providers\"",
        "\"out_of_area\"",
        "\"helping_professional\"",
    ];
    let about_referral: Vec<&String> = rows.iter().filter(|r| r.contains(&referral)).collect();
    assert!(
        about_referral.iter().any(|r| r.starts_with("referrals:")),
        "the rows are real: {rows:?}"
    );
    for row in &about_referral {
        assert!(
            !row.contains(&excluded),
            "a row ties the exclusion to the referral: {row}"
        );
        for m in members {
            assert!(!row.contains(m), "{m} in {row}");
        }
    }
    for m in members {
        assert!(!contains(&dump, m), "the database holds {m}");
    }
    let submission_lines: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains(&submission) || l.contains(&referral))
        .collect();
    assert!(!submission_lines.is_empty(), "the logs are real");
    for line in submission_lines {
        assert!(
            !line.contains(&excluded),
            "the log ties the exclusion: {line}"
        );
    }
    for m in members {
        assert!(!logs.iter().any(|l| l.contains(m)), "the logs hold {m}");
    }
    common::drop_pg_database(pg);
}
