//! Test harness: a real server on a free port, with a database of its own.
//!
//! SQLite by default (a temp file); with `EAP_TEST_DATABASE_URL=postgres://…` a fresh
//! PostgreSQL database is created per app and dropped when the app is. `TEST_LOG=1` turns the
//! service's logging on.
//!
//! The crate's internal paths that tests need are named here and in the submodules, so a
//! rename inside the service touches this folder, not every suite:
//! - `http`: requests to a spawned app (bearer tokens, headers, bodies) and RFC 9457 checks;
//! - `fixtures`: clients, tokens, the directory and a portal ready to submit;
//! - `provider`: the provider's side of a referral (feed, views, If-Match actions);
//! - `audit_log`: the access-log rows a request left, and breaking the log on purpose;
//! - `binary`: the real binary as a child process, and calls to a server by its address.
#![allow(dead_code)]

mod audit_log;
mod binary;
mod fixtures;
mod http;
pub mod provider;

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use eap_referrals::db::{AnyConnection, Backend, DatabaseUrl};
use eap_referrals::{Application, Config};

// Each suite uses some of these; the rest would be reported unused in its crate.
#[allow(unused_imports)]
pub use {
    audit_log::AuditRow,
    binary::{
        count_in, created_at, drop_pg_database, free_port, post_json_at, request_token_at,
        token_at, Binary,
    },
    fixtures::{referral_body, Portal},
    http::{problem, request_id},
};

/// The service's shared state, as the app under test holds it.
pub type AppState = eap_referrals::state::AppState;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database_url: DatabaseUrl,
    pub state: actix_web::web::Data<AppState>,
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
    // Webhooks go to loopback only, and no name but localhost is looked up: no test can send
    // traffic, a DNS query included, off the machine. The test of the strict policy sets false.
    vars.insert("EAP_WEBHOOK_ALLOW_LOOPBACK".into(), "true".into());
    // Tests drive the sweeper and purge by hand, with their own clock.
    vars.insert("EAP_HOUSEKEEPING".into(), "off".into());
    // Suites make many calls quickly; the rate-limit tests set their own budgets.
    for var in [
        "EAP_RATE_LIMIT_ADMIN",
        "EAP_RATE_LIMIT_HR_PORTAL",
        "EAP_RATE_LIMIT_PROVIDER",
        "EAP_RATE_LIMIT_AUDITOR",
        "EAP_RATE_LIMIT_TOKEN",
        "EAP_RATE_LIMIT_TOKEN_CLIENT",
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
        drop_pg_database(self.pg_admin.take());
    }
}

/// Credentials of a client created for a test.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    /// The app's database as an `EAP_DATABASE_URL` value, for another app on the same data.
    pub fn database_url_var(&self) -> String {
        match &self.database_url {
            DatabaseUrl::Postgres(u) => u.clone(),
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        }
    }

    /// A second instance of the same deployment: the same database and the same keys (only a
    /// PostgreSQL database can be shared by instances).
    pub async fn spawn_another_instance(&self) -> TestApp {
        let (url, data_dir) = (
            self.database_url_var(),
            self.data_dir.path().display().to_string(),
        );
        spawn_app_with(|v| {
            v.insert("EAP_DATABASE_URL".into(), url);
            v.insert("EAP_DATA_DIR".into(), data_dir);
        })
        .await
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

    pub fn count(&self, table: &str) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(&mut **conn)
            .expect("count")
            .n
    }
}

/// Whether a documented operation is an API client's (bearer) or the token endpoint (client
/// authentication): those are budgeted and logged. `/metrics` has its own scraper token.
#[allow(dead_code)]
pub fn client_operation(op: &serde_json::Value) -> bool {
    op["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|r| r.get("bearer").is_some() || r.get("client_basic").is_some())
    })
}
