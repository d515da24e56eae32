//! Faults of the database underneath the service: PostgreSQL stopped and its backends
//! terminated under load, and SQLite's disk filling up. Requests answer 503 problem+json within
//! the database timeout (never 500, never a hang), nothing is half-written, and the service
//! recovers by itself when the database comes back.
//!
//! These stop a database server or mount a file system, so they never run in the parallel
//! suites: `.ci/faults` runs them one at a time, against a PostgreSQL cluster of its own (never
//! the shared one) and a small tmpfs, and fails unless each of them ran and passed.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::provider::provider_token;
use common::{referral_body, Portal, TestApp};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use eap_referrals::db::Backend;
use serde_json::Value;

/// `EAP_DB_TIMEOUT_MS` in the test apps: the longest a request waits for a connection.
const DB_TIMEOUT: Duration = Duration::from_millis(2000);

/// What one request was answered, and how long the answer took.
#[derive(Debug)]
struct Answer {
    key: String,
    status: u16,
    took: Duration,
    problem_json: bool,
    retry_after: bool,
    replayed: bool,
}

async fn submit(http: &reqwest::Client, base: &str, token: &str, key: &str) -> Answer {
    let started = Instant::now();
    let resp = http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&referral_body())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: no answer (a hang or a dropped connection): {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        key: key.to_owned(),
        status: resp.status().as_u16(),
        took: started.elapsed(),
        problem_json: header("content-type").as_deref() == Some("application/problem+json"),
        retry_after: header("retry-after").is_some(),
        replayed: header("idempotent-replayed").is_some(),
    }
}

/// Checks what every request under a fault was told: 201 or a well-formed 503, in time.
fn assert_answers_under_fault(answers: &[Answer], limit: Duration) {
    let unavailable: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    println!(
        "{} answers, {} of them 503, slowest {slowest:?}",
        answers.len(),
        unavailable.len()
    );
    assert!(
        !unavailable.is_empty(),
        "the fault was never seen: {} answers",
        answers.len()
    );
    for a in answers {
        assert!(a.status == 201 || a.status == 503, "{a:?}");
        assert!(
            a.took <= limit,
            "answered after {:?}, over {limit:?}: {a:?}",
            a.took
        );
        if a.status == 503 {
            assert!(
                a.problem_json && a.retry_after,
                "a 503 is problem+json with Retry-After: {a:?}"
            );
        }
    }
}

/// A referral per key: a key answered 201 replays its referral, and a key answered 503 was not
/// half-carried out (its retry makes the one referral, or replays it if the commit had landed
/// before the connection died). `before`: the referrals made before the load.
async fn assert_one_referral_per_key(
    app: &TestApp,
    portal: &Portal,
    answers: &[Answer],
    before: i64,
) {
    let http = reqwest::Client::new();
    for a in answers {
        let again = submit(&http, &app.address, &portal.token, &a.key).await;
        assert_eq!(again.status, 201, "retry of {a:?}");
    }
    let keys: std::collections::HashSet<_> = answers.iter().map(|a| &a.key).collect();
    let made = keys.len() as i64 + before;
    assert_eq!(app.count("referrals"), made, "one referral per key");
    assert_eq!(app.count("idempotency_keys"), made);
}

/// Each referral that holds a slot holds exactly one, and no slot is held by anything else.
fn assert_slots_match_referrals(app: &TestApp) {
    let held = common::count_in(
        &app.database_url_var(),
        "SELECT count(*) AS n FROM provider_slots WHERE referral_id IS NOT NULL",
    );
    let holding = common::count_in(
        &app.database_url_var(),
        "SELECT count(*) AS n FROM provider_slots s JOIN referrals r ON r.id = s.referral_id \
         AND r.provider_id = s.provider_id \
         WHERE r.status IN ('offered', 'accepted', 'contacted', 'scheduled', 'in_progress')",
    );
    assert_eq!(held, holding);
    assert_eq!(
        held,
        app.count("referrals"),
        "the provider has room for all of them"
    );
}

/// A long poll on `poller`'s instance at the head of the provider's feed is answered with the
/// event of a submission made on `app`, another instance.
async fn assert_wakes_across(app: &TestApp, poller: &TestApp, portal: &Portal, token: &str) {
    let head: Value = poller
        .get("/v1/provider/events", token)
        .await
        .json()
        .await
        .unwrap();
    let cursor = head["next_cursor"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let path = format!("/v1/provider/events?after={cursor}&wait=20");
    let poll = poller.get(&path, token);
    let submission = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.submit_json(&portal.token, &referral_body()).await
    };
    let (poll, submitted) = tokio::join!(poll, submission);
    assert_eq!(submitted.status(), 201);
    let page: Value = poll.json().await.unwrap();
    assert!(!page["events"].as_array().unwrap().is_empty(), "{page}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the other instance's write, not at the poll's deadline: {:?}",
        started.elapsed()
    );
}

/// The private cluster `.ci/faults` made for this test: its admin URL (the test apps make their
/// databases there) and the commands that stop and start it.
struct Cluster {
    admin_url: String,
    stop: String,
    start: String,
}

impl Cluster {
    fn from_env() -> Cluster {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by .ci/faults"))
        };
        Cluster {
            admin_url: var("EAP_TEST_DATABASE_URL"),
            stop: var("EAP_FAULTS_PG_STOP"),
            start: var("EAP_FAULTS_PG_START"),
        }
    }

    async fn run(command: &str) {
        let command = command.to_owned();
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .args(["-c", &command])
                .status()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(status.success());
    }

    /// Ends every session of the service's databases, as a failover or an operator does.
    fn terminate_backends(&self) -> usize {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = diesel::PgConnection::establish(&self.admin_url).unwrap();
        let killed: N = diesel::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname LIKE 'eap_test_%' AND pid <> pg_backend_pid()) t",
            ),
            &mut conn,
        )
        .unwrap();
        killed.n as usize
    }
}

/// Submits on `app` from `workers` clients until `stop`; every answer.
fn load(
    app: &TestApp,
    portal: &Portal,
    tag: &str,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    (0..workers)
        .map(|w| {
            let (base, token, stop) = (app.address.clone(), portal.token.clone(), stop.clone());
            let tag = format!("{tag}{w}");
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let mut answers = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let a = submit(&http, &base, &token, &format!("{tag}-{i}")).await;
                    if a.status == 503 {
                        // A client backs off on 503 (Retry-After); a short pause keeps the
                        // outage's answers countable.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    answers.push(a);
                }
                answers
            })
        })
        .collect()
}

#[actix_web::test]
#[ignore = "stops PostgreSQL: .ci/faults runs it against a private cluster"]
async fn a_postgresql_outage_answers_503_in_time_and_recovers_by_itself() {
    let cluster = Cluster::from_env();
    let app = common::spawn_app().await;
    assert_eq!(app.backend, Backend::Postgres);
    let other = app.spawn_another_instance().await;
    let portal = app.setup_portal(100_000).await;
    let feed = provider_token(&app, &portal, &portal.provider).await;
    assert_wakes_across(&app, &other, &portal, &feed).await;

    let before = app.count("referrals");
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = load(&app, &portal, "a", 2, &stop);
    workers.extend(load(&other, &portal, "b", 2, &stop));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Every session of the service ends at once (pool and listener alike), then the server
    // goes down for a few seconds.
    assert!(
        cluster.terminate_backends() > 0,
        "the service had sessions to end"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    Cluster::run(&cluster.stop).await;
    let down = Instant::now();
    for instance in [&app, &other] {
        let started = Instant::now();
        let ready = instance.get_anonymous("/readyz").await;
        assert_eq!(ready.status(), 503, "not ready while the database is down");
        assert_eq!(ready.headers()["content-type"], "application/problem+json");
        assert!(started.elapsed() <= DB_TIMEOUT + Duration::from_secs(1));
    }
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(down.elapsed())).await;
    Cluster::run(&cluster.start).await;
    let up = Instant::now();

    // Recovery needs no restart and no operator: both instances are ready within seconds.
    let mut recovered = [None, None];
    while recovered.iter().any(Option::is_none) {
        assert!(
            up.elapsed() < Duration::from_secs(15),
            "no recovery: {recovered:?}"
        );
        for (i, instance) in [&app, &other].into_iter().enumerate() {
            if recovered[i].is_none() && instance.get_anonymous("/readyz").await.status() == 200 {
                recovered[i] = Some(up.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("ready again after {recovered:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.unwrap());
    }
    // Two waits at most: the caller's client check, then the work itself.
    assert_answers_under_fault(&answers, 2 * DB_TIMEOUT + Duration::from_secs(1));
    let last: Vec<_> = answers.iter().rev().take(4).collect();
    assert!(
        last.iter().all(|a| a.status == 201),
        "submissions succeed again: {last:?}"
    );

    assert_one_referral_per_key(&app, &portal, &answers, before).await;
    assert_slots_match_referrals(&app);
    // The listeners reconnected: a poll on one instance wakes for a write on the other.
    assert_wakes_across(&app, &other, &portal, &feed).await;
    assert_wakes_across(&other, &app, &portal, &feed).await;
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (.ci/faults runs as root)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0xa5u8; 16 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|_| f.flush()) {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
                break;
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[actix_web::test]
#[ignore = "mounts a small tmpfs (root): .ci/faults runs it"]
async fn a_full_disk_answers_503_writes_nothing_half_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let data = disk.path().to_owned();
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DATA_DIR".into(), data.display().to_string());
        v.insert(
            "EAP_DATABASE_URL".into(),
            format!("sqlite://{}", data.join("eap.sqlite3").display()),
        );
    })
    .await;
    assert_eq!(app.backend, Backend::Sqlite);
    let portal = app.setup_portal(2_000).await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(submit(&http, &app.address, &portal.token, &format!("before-{i}")).await);
    }

    disk.fill();
    for i in 0..400 {
        let a = submit(&http, &app.address, &portal.token, &format!("full-{i}")).await;
        let refused = a.status == 503;
        answers.push(a);
        if refused && answers.iter().rev().take(3).all(|a| a.status == 503) {
            break;
        }
    }
    assert_answers_under_fault(&answers, DB_TIMEOUT + Duration::from_secs(1));
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.key.clone())
        .collect();

    // While full: nothing a 503 answered left a row, and every 201 is whole.
    let created = answers.iter().filter(|a| a.status == 201).count() as i64;
    disk.free();
    assert_eq!(app.count("referrals"), created);
    assert_eq!(app.count("idempotency_keys"), created);

    // Space is back: the refused keys are new submissions (no stored answer to replay) and
    // succeed, with no restart.
    for key in &refused {
        let again = submit(&http, &app.address, &portal.token, key).await;
        assert_eq!(again.status, 201, "{key} after space returned");
        assert!(!again.replayed, "{key} was half-written");
    }
    assert_one_referral_per_key(&app, &portal, &answers, 0).await;
    assert_slots_match_referrals(&app);

    let mut conn =
        diesel::SqliteConnection::establish(&data.join("eap.sqlite3").display().to_string())
            .unwrap();
    conn.batch_execute("PRAGMA integrity_check").unwrap();
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let check: Check =
        diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA integrity_check"), &mut conn)
            .unwrap();
    assert_eq!(check.integrity_check, "ok");
}

/// An ext4 file system on a loop device (its image in a temporary directory), mounted with
/// `errors=remount-ro`, unmounted when dropped. A tmpfs cannot be made read-only under a
/// running service (`mount -o remount,ro` answers EBUSY while a file is open for writing, and
/// SQLite keeps its files open); what turns a disk read-only under a running service is the
/// kernel, after an error: ext4's `trigger_fs_error` makes that happen on purpose.
struct ErrorProneDisk {
    dir: tempfile::TempDir,
}

impl ErrorProneDisk {
    fn image(&self) -> std::path::PathBuf {
        self.dir.path().join("disk.img")
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }

    fn run(command: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let out = std::process::Command::new(command)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn make() -> ErrorProneDisk {
        let disk = ErrorProneDisk {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(disk.path()).unwrap();
        let image = disk.image();
        Self::run(
            "truncate",
            &["-s".as_ref(), "64M".as_ref(), image.as_os_str()],
        );
        Self::run(
            "mkfs.ext4",
            &["-q".as_ref(), "-F".as_ref(), image.as_os_str()],
        );
        disk.mount();
        disk
    }

    fn mount(&self) {
        Self::run(
            "mount",
            &[
                "-o".as_ref(),
                "loop,errors=remount-ro".as_ref(),
                self.image().as_os_str(),
                self.path().as_os_str(),
            ],
        );
    }

    fn mount_options(&self) -> String {
        let out = Self::run(
            "findmnt",
            &["-no".as_ref(), "OPTIONS".as_ref(), self.path().as_os_str()],
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What the kernel does on a metadata error: the file system turns read-only at once,
    /// under the open files.
    fn fail(&self) {
        let out = Self::run(
            "findmnt",
            &["-no".as_ref(), "SOURCE".as_ref(), self.path().as_os_str()],
        );
        let device = String::from_utf8(out.stdout).unwrap();
        let device = device.trim().rsplit('/').next().unwrap().to_owned();
        std::fs::write(
            format!("/sys/fs/ext4/{device}/trigger_fs_error"),
            "eap-referrals fault test",
        )
        .unwrap();
        assert!(self.mount_options().contains("emergency_ro") || self.read_only());
    }

    fn read_only(&self) -> bool {
        std::fs::write(self.path().join("probe"), "x")
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(30)
    }

    /// The operator's repair once nothing holds the disk: unmount, check, mount again.
    fn repair(&self) {
        Self::run("umount", &[self.path().as_os_str()]);
        // 1: errors were found and corrected (the error recorded by the fault).
        let status = std::process::Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(self.image())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(matches!(status.code(), Some(0 | 1)), "e2fsck: {status}");
        self.mount();
    }
}

impl Drop for ErrorProneDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.path())
            .status();
    }
}

/// The disk under SQLite turns read-only while the service runs: every write answers 503
/// problem+json in time, and so does every read, because a read is not answered before its
/// access event is written (fail closed); liveness stays up. Nothing
/// is half-written, and once the disk is repaired (unmounted, checked and mounted again, which
/// needs the service stopped: its open files hold the old mount) the restarted service has
/// every acknowledged referral, the refused keys are new submissions, and the file is whole.
#[actix_web::test]
#[ignore = "mounts a loop device (root): .ci/faults runs it"]
async fn a_read_only_disk_answers_503_for_writes_and_reads_and_nothing_is_lost_after_repair() {
    use common::{created_at as post, token_at as token, Binary};
    let disk = ErrorProneDisk::make();
    let data = disk.path();
    let (mut vars, pg) = common::test_vars(&data);
    assert!(
        pg.is_none(),
        "SQLite only (.ci/faults unsets EAP_TEST_DATABASE_URL)"
    );
    let url = format!("sqlite://{}", data.join("eap.sqlite3").display());
    vars.insert("EAP_DATABASE_URL".into(), url.clone());
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let admin = Binary::create_client(&vars, "admin", "ops");
    let admin_token = token(&http, &base, &admin.id, &admin.secret).await;
    let post = |path: &'static str, body: Value| {
        let (http, base, admin_token) = (http.clone(), base.clone(), admin_token.clone());
        async move { post(&http, &base, path, &admin_token, body).await }
    };
    let employer = post("/v1/admin/employers", serde_json::json!({"name": "Acme"})).await;
    let provider = post(
        "/v1/admin/providers",
        serde_json::json!({"name": "Harbour",
        "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
        "modalities": ["video"], "capacity": 500}),
    )
    .await;
    post(
        "/v1/admin/contracts",
        serde_json::json!({"employer_id": employer["id"], "provider_id": provider["id"],
            "priority": 1}),
    )
    .await;
    let portal = post(
        "/v1/admin/clients",
        serde_json::json!({"name": "portal", "role": "hr_portal",
            "employer_id": employer["id"]}),
    )
    .await;
    let portal = token(
        &http,
        &base,
        portal["client_id"].as_str().unwrap(),
        portal["client_secret"].as_str().unwrap(),
    )
    .await;

    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(submit(&http, &base, &portal, &format!("before-{i}")).await);
    }
    assert!(answers.iter().all(|a| a.status == 201), "{answers:?}");
    let first: Value = http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(&portal)
        .header("idempotency-key", "before-status")
        .json(&referral_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_path = format!("/v1/referrals/{}", first["id"].as_str().unwrap());
    let status_token = first["status_token"].as_str().unwrap().to_owned();
    let read_status = || {
        http.get(format!("{base}{status_path}"))
            .bearer_auth(&portal)
            .header("referral-token", &status_token)
            .send()
    };
    assert_eq!(read_status().await.unwrap().status(), 200);
    let readyz = || http.get(format!("{base}/readyz")).send();
    assert_eq!(readyz().await.unwrap().status(), 200, "/readyz before");

    disk.fail();
    assert!(disk.read_only(), "the file system refuses writes");
    // Not ready at once: the probe commits a write, which the read-only disk refuses (a
    // rolled-back one would never reach SQLite's file, and the disk would go unnoticed). Asked
    // within a second of the probe above, so its timestamp alone would not change the row.
    assert_eq!(
        readyz().await.unwrap().status(),
        503,
        "/readyz on the read-only disk"
    );
    for i in 0..10 {
        answers.push(submit(&http, &base, &portal, &format!("read-only-{i}")).await);
    }
    assert_answers_under_fault(&answers, DB_TIMEOUT + Duration::from_secs(1));
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.key.clone())
        .collect();
    assert_eq!(
        refused.len(),
        10,
        "every write after the fault: {answers:?}"
    );
    // A read is answered only once its access event is written: fail closed.
    let read = read_status().await.unwrap();
    assert_eq!(read.status(), 503);
    assert_eq!(
        read.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert_eq!(
        readyz().await.unwrap().status(),
        503,
        "/readyz still not ready"
    );
    let live = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200, "alive: a restart is not what it needs");

    server.stop();
    disk.repair();
    assert!(!disk.read_only());
    let created = answers.iter().filter(|a| a.status == 201).count() as i64 + 1;
    assert_eq!(
        common::count_in(&url, "SELECT count(*) AS n FROM referrals"),
        created
    );
    assert_eq!(
        common::count_in(&url, "SELECT count(*) AS n FROM idempotency_keys"),
        created
    );
    assert_eq!(
        common::count_in(
            &url,
            "SELECT count(*) AS n FROM pragma_integrity_check WHERE integrity_check = 'ok'"
        ),
        1
    );
    let server = Binary::start(&vars);
    let base = server.base.clone();
    for key in &refused {
        let again = submit(&http, &base, &portal, key).await;
        assert_eq!(again.status, 201, "{key} after the repair");
        assert!(!again.replayed, "{key} was half-written");
    }
    for a in answers.iter().filter(|a| a.status == 201) {
        let again = submit(&http, &base, &portal, &a.key).await;
        assert!(again.status == 201 && again.replayed, "{a:?} replays");
    }
    assert_eq!(
        common::count_in(&url, "SELECT count(*) AS n FROM referrals"),
        created + refused.len() as i64
    );
    server.stop();
}
