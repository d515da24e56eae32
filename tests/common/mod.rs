//! Test harness: a real server on a free port, with a database of its own.
//!
//! SQLite by default (a temp file); with `EAP_TEST_DATABASE_URL=postgres://…` a fresh
//! PostgreSQL database is created per app and dropped when the app is. `TEST_LOG=1` turns the
//! service's logging on.
#![allow(dead_code)]

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use eap_referrals::db::{AnyConnection, Backend, DatabaseUrl};
use eap_referrals::{Application, Config};
use serde_json::{json, Value};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database_url: DatabaseUrl,
    pub state: actix_web::web::Data<eap_referrals::state::AppState>,
    pg_admin: Option<(String, String)>,
}

/// The admin database URL for creating throwaway databases, when PostgreSQL is asked for.
pub fn pg_admin_url() -> Option<String> {
    std::env::var("EAP_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    match query {
        Some(q) => {
            out.push('?');
            out.push_str(q);
        }
        // Test apps are never shut down: their LISTEN threads still poll the socket while the
        // process exits, and libpq's TLS state torn down under them at exit can crash the test
        // binary after every test passed. The test database is local; plain TCP avoids that.
        None => out.push_str("?sslmode=disable"),
    }
    out
}

pub fn test_vars(
    data_dir: &std::path::Path,
) -> (HashMap<String, String>, Option<(String, String)>) {
    let mut vars = HashMap::new();
    vars.insert("EAP_LISTEN".into(), "127.0.0.1:0".into());
    vars.insert("EAP_DATA_DIR".into(), data_dir.display().to_string());
    vars.insert("EAP_WORKERS".into(), "2".into());
    vars.insert("EAP_DB_POOL_SIZE".into(), "4".into());
    vars.insert("EAP_DB_TIMEOUT_MS".into(), "2000".into());
    // Tests drive the sweeper and purge by hand, with their own clock.
    vars.insert("EAP_HOUSEKEEPING".into(), "off".into());
    // Suites make many calls quickly; the rate-limit tests set their own budgets.
    for var in [
        "EAP_RATE_LIMIT_ADMIN",
        "EAP_RATE_LIMIT_HR_PORTAL",
        "EAP_RATE_LIMIT_PROVIDER",
        "EAP_RATE_LIMIT_AUDITOR",
        "EAP_RATE_LIMIT_TOKEN",
        "EAP_RATE_LIMIT_TOKEN_ADDRESS",
    ] {
        vars.insert(var.into(), "0".into());
    }
    let mut pg_admin = None;
    match pg_admin_url() {
        Some(admin) => {
            let name = format!("eap_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::establish(&admin)
                .unwrap_or_else(|e| panic!("EAP_TEST_DATABASE_URL is set but unreachable: {e}"));
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create test database");
            vars.insert("EAP_DATABASE_URL".into(), with_database(&admin, &name));
            pg_admin = Some((admin, name));
        }
        None => {
            vars.insert(
                "EAP_DATABASE_URL".into(),
                format!("sqlite://{}", data_dir.join("eap.sqlite3").display()),
            );
        }
    }
    (vars, pg_admin)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        eap_referrals::telemetry::init(eap_referrals::config::LogFormat::Text);
    }
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (mut vars, pg_admin) = test_vars(data_dir.path());
    customize(&mut vars);
    let config = Config::from_map(&vars).expect("test config is valid");
    let database_url = config.database_url.clone();
    let backend = database_url.backend();
    let app = Application::build(config).expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        backend,
        data_dir,
        database_url,
        state,
        pg_admin,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin.take() {
            if let Ok(mut conn) = PgConnection::establish(&admin) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Credentials of a client created for a test.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn conn(&self) -> eap_referrals::db::PooledConn {
        self.state.db.get().expect("a pooled connection")
    }

    /// Runs raw SQL against the app's database (for arranging failures and inspecting rows).
    pub fn exec(&self, sql: &str) {
        let mut conn = self.conn();
        let c: &mut AnyConnection = &mut conn;
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Bootstraps an admin the way an operator does (the CLI path).
    pub fn bootstrap_admin(&self) -> Client {
        let mut conn = self.conn();
        let (row, secret) = eap_referrals::auth::clients::create_from_cli(
            &mut conn,
            &eap_referrals::auth::store::NewClient {
                name: "test admin".into(),
                role: eap_referrals::auth::Role::Admin,
                employer_id: None,
                provider_id: None,
            },
        )
        .expect("create admin");
        Client {
            id: row.id.into_string(),
            secret,
        }
    }

    pub async fn token_response(&self, client: &Client) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, client: &Client) -> String {
        let resp = self.token_response(client).await;
        assert_eq!(resp.status(), 200, "token for {}", client.id);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        let admin = self.bootstrap_admin();
        self.token(&admin).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_employer(&self, admin_token: &str, name: &str) -> String {
        let resp = self
            .post_json("/v1/admin/employers", admin_token, &json!({ "name": name }))
            .await;
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_provider(&self, admin_token: &str, name: &str) -> String {
        let body = json!({
            "name": name, "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
            "modalities": ["video"], "capacity": 10,
        });
        let resp = self
            .post_json("/v1/admin/providers", admin_token, &body)
            .await;
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_client(&self, admin_token: &str, body: Value) -> Client {
        let resp = self
            .post_json("/v1/admin/clients", admin_token, &body)
            .await;
        assert_eq!(resp.status(), 201, "create client {body}");
        let v: Value = resp.json().await.unwrap();
        Client {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Access-log rows as (action, outcome, http_status, actor_client_id, resource_id).
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        use diesel::prelude::*;
        use eap_referrals::db::schema::audit_events::dsl as a;
        let mut conn = self.conn();
        a::audit_events
            .order(a::id.asc())
            .select((
                a::action,
                a::outcome,
                a::http_status,
                a::actor_client_id,
                a::resource_id,
                a::request_id,
                a::actor_role,
                a::tenant_id,
                a::source_addr,
            ))
            .load::<AuditRow>(&mut *conn)
            .expect("read audit events")
    }

    pub fn audit_for_request(&self, request_id: &str) -> Vec<AuditRow> {
        self.audit_rows()
            .into_iter()
            .filter(|r| r.request_id == request_id)
            .collect()
    }

    pub fn count(&self, table: &str) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(&mut *conn)
            .expect("count")
            .n
    }

    /// Makes every access-log insert fail, the way a full disk or a lost table would.
    pub fn break_audit_log(&self) {
        match self.backend {
            Backend::Sqlite => self.exec(
                "CREATE TRIGGER test_break_audit BEFORE INSERT ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'access log broken by test'); END;",
            ),
            Backend::Postgres => self.exec(
                "CREATE FUNCTION test_break_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'access log broken by test'; END; $$; \
                 CREATE TRIGGER test_break_audit BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION test_break_audit();",
            ),
        }
    }

    pub fn repair_audit_log(&self) {
        self.exec(match self.backend {
            Backend::Sqlite => "DROP TRIGGER test_break_audit",
            Backend::Postgres => "DROP TRIGGER test_break_audit ON audit_events",
        });
    }
}

/// An employer with a contracted provider and an HR portal client, ready to submit.
pub struct Portal {
    pub admin_token: String,
    pub employer: String,
    pub provider: String,
    pub client: Client,
    pub token: String,
}

/// A valid submission; tests change one field at a time.
pub fn referral_body() -> Value {
    json!({
        "service_type": "counselling",
        "urgency": "routine",
        "modality": "video",
        "language": "en",
        "region": "GB-ENG",
        "employee_ref": "EMP-0001",
        "contact": {
            "preferred_name": "Sam",
            "phone": "+447700900123",
            "email": "sam@example.org",
            "best_time_to_contact": "weekday evenings",
            "voicemail_consent": true
        },
        "note": "Prefers a counsellor with NHS experience."
    })
}

impl TestApp {
    pub async fn setup_portal(&self, capacity: u32) -> Portal {
        let admin_token = self.admin_token().await;
        let employer = self.create_employer(&admin_token, "Acme Health").await;
        let body = json!({
            "name": "Harbour Counselling", "services": ["counselling", "crisis"], "languages": ["en"],
            "regions": ["GB"], "modalities": ["video", "phone"], "crisis_capable": true, "capacity": capacity,
        });
        let resp = self
            .post_json("/v1/admin/providers", &admin_token, &body)
            .await;
        assert_eq!(resp.status(), 201);
        let provider = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = self
            .post_json(
                "/v1/admin/contracts",
                &admin_token,
                &json!({"employer_id": employer, "provider_id": provider, "priority": 1}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let client = self
            .create_client(
                &admin_token,
                json!({"name": "Acme portal", "role": "hr_portal", "employer_id": employer}),
            )
            .await;
        let token = self.token(&client).await;
        Portal {
            admin_token,
            employer,
            provider,
            client,
            token,
        }
    }

    /// Posts exactly `body`'s bytes (so a test can fingerprint them) with an Idempotency-Key.
    pub async fn submit(&self, token: &str, key: Option<&str>, body: &[u8]) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/referrals"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.unwrap()
    }

    pub async fn submit_json(&self, token: &str, body: &Value) -> reqwest::Response {
        let key = uuid::Uuid::new_v4().to_string();
        self.submit(token, Some(&key), &serde_json::to_vec(body).unwrap())
            .await
    }

    pub fn referral(&self, id: &str) -> StoredReferral {
        let mut conn = self.conn();
        let id = eap_referrals::ids::ReferralId::from_trusted(id.to_owned());
        eap_referrals::referrals::store::find_referral(&mut conn, &id)
            .unwrap()
            .expect("referral exists")
            .into()
    }

    pub fn provider_load(&self, id: &str) -> i64 {
        let mut conn = self.conn();
        eap_referrals::directory::store::load(&mut conn, id).unwrap()
    }
}

/// A stored referral with its codes and ids as text, as the assertions compare them.
pub struct StoredReferral {
    pub status: String,
    pub provider_id: Option<String>,
    pub version: i32,
    pub offer_expires_at: Option<chrono::NaiveDateTime>,
    pub status_token_hash: String,
    pub routing_reasons: Option<String>,
    pub key_id: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    pub sealed_contact: Option<Vec<u8>>,
    pub sealed_note: Option<Vec<u8>>,
    pub employee_ref_hmac: Option<String>,
    pub erased_at: Option<chrono::NaiveDateTime>,
}

impl From<eap_referrals::referrals::store::ReferralRow> for StoredReferral {
    fn from(r: eap_referrals::referrals::store::ReferralRow) -> Self {
        use eap_referrals::codes::Code;
        StoredReferral {
            status: r.status.code().to_owned(),
            provider_id: r.provider_id.map(|p| p.into_string()),
            version: r.version,
            offer_expires_at: r.offer_expires_at,
            status_token_hash: r.status_token_hash,
            routing_reasons: r.routing_reasons,
            key_id: r.key_id,
            wrapped_key: r.wrapped_key,
            sealed_contact: r.sealed_contact,
            sealed_note: r.sealed_note,
            employee_ref_hmac: r.employee_ref_hmac,
            erased_at: r.erased_at,
        }
    }
}

/// The real binary, serving with JSON logs captured from its stderr.
pub struct Binary {
    pub base: String,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Binary {
    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_eap-referrals")
    }

    /// Creates a client with the CLI against the same database, as an operator would.
    pub fn create_client(vars: &HashMap<String, String>, role: &str, name: &str) -> Client {
        let out = std::process::Command::new(Self::bin())
            .envs(vars)
            .args(["admin", "create-client", "--role", role, "--name", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Client {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    pub fn start(vars: &HashMap<String, String>) -> Binary {
        use std::io::BufRead;
        let mut child = std::process::Command::new(Self::bin())
            .envs(vars)
            .env("EAP_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let port = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("the server logs that it listens");
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            seen.push(line);
            if v["fields"]["message"] == "listening" {
                break v["fields"]["addr"]
                    .as_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
            }
        };
        Binary {
            base: format!("http://127.0.0.1:{port}"),
            child,
            lines: rx,
            seen,
        }
    }

    /// Sends SIGTERM (as an orchestrator does), without waiting.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself; its exit status and every log line.
    pub fn wait_exit(
        mut self,
        limit: std::time::Duration,
    ) -> (std::process::ExitStatus, Vec<String>) {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the server did not exit within {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(500))
        {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    /// Stops the server and returns every log line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(500))
        {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

/// Counts rows with a query against a database the test does not serve from.
pub fn count_in(database_url: &str, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let url = DatabaseUrl::parse(database_url).unwrap();
    let db = eap_referrals::db::Db::connect(&url, 1, std::time::Duration::from_secs(5)).unwrap();
    let mut conn = db.get().unwrap();
    diesel::sql_query(sql)
        .get_result::<N>(&mut *conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

pub fn drop_pg_database(pg: Option<(String, String)>) {
    if let Some((admin, name)) = pg {
        if let Ok(mut c) = PgConnection::establish(&admin) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

#[derive(Debug, Clone, diesel::Queryable)]
pub struct AuditRow {
    pub action: String,
    pub outcome: String,
    pub http_status: i32,
    pub actor_client_id: Option<String>,
    pub resource_id: Option<String>,
    pub request_id: String,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    pub source_addr: Option<String>,
}

/// Reads the request id the server echoed.
pub fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts an RFC 9457 body with the given status, and returns it.
pub async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json")
    );
    let rid = request_id(&resp);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:eap-referrals:problem:"));
    assert!(body["title"].is_string());
    assert_eq!(
        body["request_id"],
        rid.as_str(),
        "the body names the request id"
    );
    body
}
