//! The real binary as a child process (its logs captured), and calls to a server by its
//! address rather than through a `TestApp`.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use eap_referrals::db::DatabaseUrl;
use serde_json::Value;

use super::Client;

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

    /// Runs one command of the CLI with `vars`, as an operator would; it must succeed. Returns
    /// what it printed.
    pub fn run(vars: &HashMap<String, String>, args: &[&str]) -> String {
        let out = std::process::Command::new(Self::bin())
            .envs(vars)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a client with the CLI against the same database, as an operator would.
    pub fn create_client(vars: &HashMap<String, String>, role: &str, name: &str) -> Client {
        let out = Self::run(
            vars,
            &["admin", "create-client", "--role", role, "--name", name],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
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

    /// `eap-referrals audit verify` with nothing but files in `dir`: the export `events`,
    /// `checkpoints.json` and `public-key.json`; no environment.
    pub fn verify_offline(dir: &std::path::Path, events: &str) -> std::process::Output {
        Self::verify_offline_with(dir, events, &[])
    }

    /// [`verify_offline`](Self::verify_offline) with more arguments (`--outside FILE`).
    pub fn verify_offline_with(
        dir: &std::path::Path,
        events: &str,
        more: &[&std::ffi::OsStr],
    ) -> std::process::Output {
        std::process::Command::new(Self::bin())
            .args(["audit", "verify", "--events"])
            .arg(dir.join(events))
            .arg("--checkpoints")
            .arg(dir.join("checkpoints.json"))
            .arg("--public-key")
            .arg(dir.join("public-key.json"))
            .args(more)
            .env_clear()
            .output()
            .unwrap()
    }

    /// SIGKILL at once, as a crash or an out-of-memory kill does: no shutdown code runs.
    pub fn crash(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
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

/// A test that fails before it stops its server must not leave the server running (it would
/// hold its port and data directory after the test binary exits).
impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free at this moment, for a server whose URLs (advertised or printed) must
/// name its port before it starts; port 0 would name none.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
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
        .get_result::<N>(&mut **conn)
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

/// A client-credentials token request to the server at `base`, the credentials in the form
/// body (not Basic).
pub async fn request_token_at(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    http.post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
}

/// Posts `body` as JSON with a bearer token to `path` on the server at `base`.
pub async fn post_json_at(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    http.post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A client-credentials token from the server at `base` (credentials as HTTP Basic).
pub async fn token_at(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
    let v: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// Posts `body` to `path` on the server at `base`, which must succeed; the answer's body.
pub async fn created_at(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Value {
    let resp = post_json_at(http, base, path, token, &body).await;
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}
