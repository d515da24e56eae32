//! The auditor's side of the access log: search and export, sealing into the Merkle log, signed
//! checkpoints and proofs, and both verifiers against a database tampered with directly.

mod common;

use common::{problem, Binary, Client, TestApp};
use eap_referrals::audit::merkle::{self, from_hex};
use eap_referrals::audit::model::{
    parse_checkpoints, verify_export, Checkpoint, FindingKind, PublicKeys, Report,
};
use eap_referrals::audit::{AuditEvent, Operation};
use eap_referrals::db::Backend;
use eap_referrals::extract::RequestCtx;
use serde_json::{json, Value};

struct Audit {
    app: TestApp,
    token: String,
    admin_token: String,
}

async fn setup() -> Audit {
    setup_with(|_| {}).await
}

async fn setup_with(
    customize: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> Audit {
    let app = common::spawn_app_with(customize).await;
    let admin_token = app.admin_token().await;
    let auditor: Client = app
        .create_client(&admin_token, json!({"name": "auditor", "role": "auditor"}))
        .await;
    let token = app.token(&auditor).await;
    Audit {
        app,
        token,
        admin_token,
    }
}

impl Audit {
    /// Ordinary traffic: each employer creation is one access event.
    async fn traffic(&self, n: usize) {
        for i in 0..n {
            self.app
                .create_employer(&self.admin_token, &format!("Employer {i}"))
                .await;
        }
    }

    /// Ticks of the sealer, as the background job would run them, until every event written
    /// so far is sealed. On PostgreSQL the sealer waits for transactions older than an event's
    /// to end, and other tests share the cluster, so one tick may not take everything yet.
    fn seal(&self) -> Checkpoint {
        let target = self.app.count("audit_events") as u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let mut conn = self.app.conn();
            let checkpoint = eap_referrals::audit::seal::run_and_keep(
                &mut conn,
                &self.app.state.keys.checkpoint,
                eap_referrals::db::now(),
                &self.app.state.outside,
            )
            .unwrap()
            .expect("the only instance leads");
            if checkpoint.tree_size >= target {
                return checkpoint;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sealing did not catch up"
            );
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.app.get(path, &self.token).await
    }

    async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// An NDJSON export, the default format (`query` is empty or starts with `?`).
    async fn export(&self, query: &str) -> String {
        let resp = self.get(&format!("/v1/audit/export{query}")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/x-ndjson"
        );
        resp.text().await.unwrap()
    }

    async fn checkpoints_text(&self) -> String {
        self.get("/v1/audit/checkpoints")
            .await
            .text()
            .await
            .unwrap()
    }

    async fn public_key_text(&self) -> String {
        let resp = self.app.get_anonymous("/v1/audit/public-key").await;
        assert_eq!(resp.status(), 200, "the public key needs no token");
        resp.text().await.unwrap()
    }

    async fn keys(&self) -> PublicKeys {
        PublicKeys::from_jwks(&self.public_key_text().await).unwrap()
    }

    /// The offline verifier over an export, with only the published key.
    async fn offline(&self, export: &str) -> Report {
        let checkpoints = parse_checkpoints(&self.checkpoints_text().await).unwrap();
        verify_export(export.as_bytes(), &checkpoints, &self.keys().await).unwrap()
    }

    async fn server_verify(&self) -> Value {
        self.json("/v1/audit/verify").await
    }

    /// Sealed event ids in log order.
    async fn sealed_ids(&self) -> Vec<String> {
        let page = self.json("/v1/audit/events?limit=1000").await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Lets raw SQL change and delete access events, as an attacker with database access can.
    fn drop_append_only_guard(&self) {
        match self.app.backend {
            Backend::Sqlite => self
                .app
                .exec("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"),
            Backend::Postgres => self
                .app
                .exec("ALTER TABLE audit_events DISABLE TRIGGER USER"),
        }
    }
}

fn assert_finding(report: &Report, kind: FindingKind, id: &str) {
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == kind && f.event_id.as_deref() == Some(id)),
        "expected {kind:?} naming {id}, got {:#?}",
        report.findings
    );
    assert!(!report.ok());
}

fn assert_first_problem(verdict: &Value, kind: &str, id: &str) {
    assert_eq!(verdict["ok"], false, "{verdict:#}");
    assert_eq!(verdict["first_problem"]["kind"], kind, "{verdict:#}");
    assert_eq!(verdict["first_problem"]["event_id"], id, "{verdict:#}");
}

#[actix_web::test]
async fn checkpoints_are_signed_with_the_published_key_and_proofs_verify() {
    let a = setup().await;
    // Before the first checkpoint there is nothing to search, prove or verify against.
    let empty = a.json("/v1/audit/events").await;
    assert_eq!(
        (
            empty["tree_size"].as_u64(),
            empty["items"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    problem(a.get("/v1/audit/verify").await, 409).await;

    a.traffic(3).await;
    let first = a.seal();
    a.traffic(4).await;
    let second = a.seal();
    assert!(second.tree_size > first.tree_size);
    // Checkpoints are numbered in order (the helper may issue more than one while it waits
    // for PostgreSQL's horizon to pass the newest events).
    assert!(second.n > first.n);

    let keys = a.keys().await;
    let page = a.json("/v1/audit/checkpoints").await;
    assert_eq!(page["latest"]["n"], second.n);
    let listed = parse_checkpoints(&page.to_string()).unwrap();
    assert!(listed.len() >= 2);
    for c in &listed {
        assert!(c.verify(&keys), "checkpoint {} verifies", c.n);
    }
    let mut forged = second.clone();
    forged.tree_size += 1;
    assert!(!forged.verify(&keys), "a changed size breaks the signature");
    assert_ne!(
        a.app.state.keys.checkpoint.kid,
        a.app.state.keys.active_token_key().kid,
        "the checkpoint key is not the token key"
    );

    // An inclusion proof for every sealed event leads to the signed root.
    let root = from_hex(&second.root_hash).unwrap();
    for id in a.sealed_ids().await {
        let p = a.json(&format!("/v1/audit/events/{id}/proof")).await;
        let path: Vec<_> = p["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| from_hex(h.as_str().unwrap()).unwrap())
            .collect();
        let leaf = from_hex(p["leaf_hash"].as_str().unwrap()).unwrap();
        let seq = p["seq"].as_u64().unwrap();
        assert!(merkle::verify_inclusion(
            &leaf,
            seq,
            second.tree_size,
            &path,
            &root
        ));
    }
    // And the second checkpoint extends the first.
    let c = a
        .json(&format!(
            "/v1/audit/consistency?from_size={}&to_size={}",
            first.tree_size, second.tree_size
        ))
        .await;
    let proof: Vec<_> = c["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    assert!(merkle::verify_consistency(
        first.tree_size,
        second.tree_size,
        &from_hex(&first.root_hash).unwrap(),
        &root,
        &proof
    ));
    // No checkpoint of that size, or a proof from a larger log to a smaller one: no such proof.
    problem(a.get("/v1/audit/consistency?from_size=999999").await, 404).await;
    problem(
        a.get(&format!(
            "/v1/audit/consistency?from_size={}&to_size={}",
            second.tree_size, first.tree_size
        ))
        .await,
        404,
    )
    .await;

    // The server re-derives any stretch of the log.
    let part = a.json("/v1/audit/verify?from_size=2&to_size=5").await;
    assert_eq!(part["ok"], true, "{part:#}");
    assert_eq!(
        (part["start"].as_u64(), part["end"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(part["events"], 3);
    let some_id = a.sealed_ids().await.remove(0);
    problem(
        a.get(&format!(
            "/v1/audit/events/{some_id}/proof?tree_size=999999"
        ))
        .await,
        404,
    )
    .await;
    // A range that ends before it starts is empty: nothing in it can be wrong.
    let empty = a.json("/v1/audit/verify?from_size=5&to_size=2").await;
    assert_eq!(
        (empty["events"].as_u64(), empty["findings_total"].as_u64()),
        (Some(0), Some(0))
    );
    problem(
        a.get("/v1/audit/verify?to_size=9223372036854775808").await,
        422,
    )
    .await;
}

#[actix_web::test]
async fn auditors_search_by_filter_page_by_cursor_and_are_logged_themselves() {
    let a = setup().await;
    a.traffic(5).await;
    a.seal();

    let all = a.json("/v1/audit/events").await;
    let items = all["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for (i, e) in items.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "log order");
        assert!(e["leaf_hash"].as_str().unwrap().len() == 64);
    }
    let created = a.json("/v1/audit/events?action=employer.create").await;
    assert_eq!(created["items"].as_array().unwrap().len(), 5);
    let denied = a.json("/v1/audit/events?outcome=denied").await;
    assert!(denied["items"].as_array().unwrap().is_empty());

    // Two at a time, following the cursor, gives the same five.
    let mut seen = Vec::new();
    let mut path = "/v1/audit/events?action=employer.create&limit=2".to_owned();
    loop {
        let page = a.json(&path).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit/events?action=employer.create&limit=2&after={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);

    // A time window that ends before anything happened is empty; one around now is not.
    let empty = a.json("/v1/audit/events?to=2000-01-01T00:00:00Z").await;
    assert!(empty["items"].as_array().unwrap().is_empty());
    let window = a
        .json("/v1/audit/events?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(window["items"], all["items"]);
    // A window whose end is before its start is empty, not an error.
    let reversed = a
        .json("/v1/audit/events?from=2999-01-01T00:00:00Z&to=2000-01-01T00:00:00Z")
        .await;
    assert!(reversed["items"].as_array().unwrap().is_empty());
    assert!(reversed["next_cursor"].is_null());
    // No logged event holds a control character, so a filter with one (a NUL byte, which
    // PostgreSQL refuses in text) selects nothing, in every format, without reaching SQL.
    for filter in ["actor=a%00b", "resource_id=a%01b"] {
        let page = a.json(&format!("/v1/audit/events?{filter}")).await;
        assert!(page["items"].as_array().unwrap().is_empty(), "{filter}");
        assert_eq!(
            a.export(&format!("?{filter}")).await.lines().count(),
            0,
            "{filter}"
        );
    }

    for bad in [
        "from=yesterday",
        "limit=0",
        "limit=1001",
        "outcome=maybe",
        "colour=blue",
        "after=%21%21",
        // Actions are a closed list (`LoggedAction`): a typo is an error, not an empty page.
        "action=contact.reed",
        "action=a%00b",
    ] {
        problem(a.get(&format!("/v1/audit/events?{bad}")).await, 422).await;
    }
    // An export takes the same filters and a format, but no paging.
    for bad in ["format=xml", "limit=10", "after=1", "action=contact.reed"] {
        problem(a.get(&format!("/v1/audit/export?{bad}")).await, 422).await;
    }

    // Another role is refused (and that refusal is logged).
    let resp = a.app.get("/v1/audit/events", &a.admin_token).await;
    problem(resp, 403).await;

    // Every auditor call above wrote exactly one event, not one per row.
    let rows = a.app.audit_rows();
    let searches = rows.iter().filter(|r| r.action == "audit.search").count();
    assert!(searches >= 9, "{searches}");
    let exports = rows.iter().filter(|r| r.action == "audit.export").count();
    assert!(exports >= 2, "{exports}");
    assert!(rows
        .iter()
        .any(|r| r.action == "audit.search" && r.outcome == "denied"));
}

#[actix_web::test]
async fn an_intact_export_verifies_offline_and_through_the_cli() {
    let a = setup().await;
    a.traffic(4).await;
    a.seal();
    let export = a.export("").await;
    let lines: Vec<&str> = export.lines().collect();
    assert!(lines[0].starts_with("{\"range\""));
    assert!(lines.last().unwrap().starts_with("{\"proof\""));
    let report = a.offline(&export).await;
    assert!(report.ok(), "{report:#?}");
    assert!(report.events >= 4);

    // A day's window also verifies: it is a contiguous stretch of the log with its proof.
    let day = a
        .export("?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z")
        .await;
    assert!(a.offline(&day).await.ok());

    let csv = a
        .get("/v1/audit/export?action=employer.create&format=csv")
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("seq,leaf_hash,id,occurred_at,"));
    assert_eq!(csv.lines().count(), 1 + 4);

    // The offline command, with nothing but files.
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("events.ndjson", export.clone()),
        ("checkpoints.json", a.checkpoints_text().await),
        ("public-key.json", a.public_key_text().await),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let run = |events: &str| Binary::verify_offline(dir.path(), events);
    let out = run("events.ndjson");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK"));

    let victim = lines[2];
    let id = serde_json::from_str::<Value>(victim).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tampered = export.replacen(victim, &victim.replace("\"success\"", "\"denied\""), 1);
    std::fs::write(dir.path().join("tampered.ndjson"), tampered).unwrap();
    let out = run("tampered.ndjson");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("MODIFIED") && stdout.contains(&id),
        "{stdout}"
    );
}

#[actix_web::test]
async fn tampering_with_an_export_file_is_found_and_named() {
    let a = setup().await;
    a.traffic(6).await;
    a.seal();
    let export = a.export("").await;
    let lines: Vec<String> = export.lines().map(str::to_owned).collect();
    let id_of = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let join = |ls: &[String]| ls.join("\n") + "\n";

    // A changed field.
    let mut modified = lines.clone();
    modified[3] = modified[3].replace("\"success\"", "\"failure\"");
    assert_finding(
        &a.offline(&join(&modified)).await,
        FindingKind::Modified,
        &id_of(&lines[3]),
    );

    // A deleted line: its position is reported missing, and the tree no longer closes.
    let mut deleted = lines.clone();
    deleted.remove(4);
    let report = a.offline(&join(&deleted)).await;
    let seq = serde_json::from_str::<Value>(&lines[4]).unwrap()["seq"].as_u64();
    let gap = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Missing && f.seq == seq)
        .expect("the deleted position is missing");
    assert!(
        gap.detail.contains(&id_of(&lines[3])) && gap.detail.contains(&id_of(&lines[5])),
        "the gap is located by its neighbours: {}",
        gap.detail
    );
    assert!(!report.root_verified);

    // An inserted line: a forged event claiming an existing position.
    let mut inserted = lines.clone();
    let forged_id = "01900000-0000-7000-8000-000000000001";
    let mut forged: Value = serde_json::from_str(&lines[2]).unwrap();
    forged["id"] = json!(forged_id);
    inserted.insert(3, forged.to_string());
    assert_finding(
        &a.offline(&join(&inserted)).await,
        FindingKind::Inserted,
        forged_id,
    );
    // ... or with no position at all.
    let mut unsealed = lines.clone();
    forged["seq"] = Value::Null;
    unsealed.insert(3, forged.to_string());
    assert_finding(
        &a.offline(&join(&unsealed)).await,
        FindingKind::Inserted,
        forged_id,
    );

    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(2, 5);
    assert_finding(
        &a.offline(&join(&swapped)).await,
        FindingKind::Reordered,
        &id_of(&lines[2]),
    );

    // Contents exchanged between two lines that keep their positions.
    let mut exchanged = lines.clone();
    let (x, y): (Value, Value) = (
        serde_json::from_str(&lines[2]).unwrap(),
        serde_json::from_str(&lines[5]).unwrap(),
    );
    let (mut x2, mut y2) = (y.clone(), x.clone());
    for (target, source) in [(&mut x2, &x), (&mut y2, &y)] {
        target["seq"] = source["seq"].clone();
        target["leaf_hash"] = source["leaf_hash"].clone();
    }
    exchanged[2] = x2.to_string();
    exchanged[5] = y2.to_string();
    let report = a.offline(&join(&exchanged)).await;
    assert!(report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Reordered
            || f.kind == FindingKind::Modified
                && f.event_id.as_deref() == Some(&id_of(&lines[5]))));

    // A truncated export.
    let truncated = join(&lines[..lines.len() - 1]);
    assert!(!a.offline(&truncated).await.ok());
}

#[actix_web::test]
async fn a_changed_field_in_the_database_is_named_by_both_verifiers() {
    let a = setup().await;
    a.traffic(3).await;
    a.seal();
    let ids = a.sealed_ids().await;
    let victim = &ids[2];
    a.drop_append_only_guard();
    a.app.exec(&format!(
        "UPDATE audit_events SET action = 'employer.list' WHERE id = '{victim}'"
    ));
    assert_first_problem(&a.server_verify().await, "modified", victim);
    assert_finding(
        &a.offline(&a.export("").await).await,
        FindingKind::Modified,
        victim,
    );
}

#[actix_web::test]
async fn a_deleted_row_is_named_by_both_verifiers() {
    let a = setup().await;
    a.traffic(3).await;
    a.seal();
    let ids = a.sealed_ids().await;
    let victim = &ids[1];
    a.drop_append_only_guard();
    a.app
        .exec(&format!("DELETE FROM audit_events WHERE id = '{victim}'"));
    assert_first_problem(&a.server_verify().await, "missing", victim);
    assert_finding(
        &a.offline(&a.export("").await).await,
        FindingKind::Missing,
        victim,
    );
}

#[actix_web::test]
async fn an_inserted_row_with_an_old_time_is_named_by_both_verifiers() {
    let a = setup().await;
    a.traffic(3).await;
    a.seal();
    let forged = "01900000-0000-7000-8000-00000000beef";
    a.app.exec(&format!(
        "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, action, \
         resource_type, resource_id, outcome, http_status, request_id) VALUES \
         ('{forged}', '2026-01-01 09:00:00', 'someone', 'provider', 'contact.read', 'referral', \
          'r-1', 'success', 200, 'forged')"
    ));
    // Not sealed yet: the server sees a row behind the sealer.
    assert_first_problem(&a.server_verify().await, "inserted", forged);
    // Sealed later: it sits after checkpoints that should have held it.
    a.seal();
    assert_first_problem(&a.server_verify().await, "inserted", forged);
    assert_finding(
        &a.offline(&a.export("").await).await,
        FindingKind::Inserted,
        forged,
    );
}

#[actix_web::test]
async fn two_swapped_rows_are_named_by_both_verifiers() {
    let a = setup().await;
    a.traffic(3).await;
    a.seal();
    let ids = a.sealed_ids().await;
    let (x, y) = (&ids[1], &ids[3]);
    a.drop_append_only_guard();
    let cols = [
        "occurred_at",
        "actor_client_id",
        "actor_role",
        "tenant_id",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
        "http_status",
        "request_id",
        "source_addr",
    ];
    let sets: Vec<String> = cols
        .iter()
        .map(|c| format!("{c} = (SELECT {c} FROM swap_copy s WHERE s.id <> audit_events.id)"))
        .collect();
    a.app.exec(&format!(
        "CREATE TEMP TABLE swap_copy AS SELECT * FROM audit_events WHERE id IN ('{x}', '{y}'); \
         UPDATE audit_events SET {} WHERE id IN ('{x}', '{y}'); DROP TABLE swap_copy;",
        sets.join(", ")
    ));
    let verdict = a.server_verify().await;
    assert_first_problem(&verdict, "reordered", x);
    assert!(verdict["first_problem"]["detail"]
        .as_str()
        .unwrap()
        .contains(y.as_str()));
    assert_finding(
        &a.offline(&a.export("").await).await,
        FindingKind::Reordered,
        x,
    );
}

#[actix_web::test]
async fn an_export_of_a_busy_log_stays_consistent_with_a_checkpoint_taken_meanwhile() {
    let a = setup().await;
    // Enough rows that the export cannot be buffered whole before the client reads it.
    let ctx = RequestCtx {
        request_id: "bulk".into(),
        source: None,
    };
    let op = Operation {
        action: "test.bulk",
        resource_type: "test",
        ok: 200,
    };
    let write = |n: usize| {
        let mut conn = a.app.conn();
        for _ in 0..n / 1000 {
            let batch: Vec<AuditEvent> = (0..1000)
                .map(|_| AuditEvent::anonymous(&ctx, op, 200))
                .collect();
            eap_referrals::audit::store::record(&mut conn, &batch).unwrap();
        }
    };
    write(40_000);
    let before = a.seal();

    // A fresh connection: sealing 40,000 events can outlast the server's keep-alive.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let resp = client
        .get(a.app.url("/v1/audit/export"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The log keeps growing and a new checkpoint is issued while the export is under way.
    write(2_000);
    let during = a.seal();
    assert!(during.tree_size > before.tree_size);
    let export = resp.text().await.unwrap();

    let report = a.offline(&export).await;
    assert!(report.ok(), "{:#?}", report.findings);
    assert_eq!(
        report.end, before.tree_size,
        "the range was fixed when the export began"
    );
    assert_eq!(
        report.checkpoint.as_ref().map(|c| c.tree_size),
        Some(during.tree_size),
        "and proved against the checkpoint taken during it"
    );
}

#[actix_web::test]
async fn the_sealer_never_passes_over_a_slow_transactions_event() {
    let a = setup().await;
    let eap_referrals::db::DatabaseUrl::Postgres(url) = a.app.database_url.clone() else {
        return; // SQLite has one writer at a time: commit order is insert order.
    };
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut slow = diesel::PgConnection::establish(&url).unwrap();
    let late = "01900000-0000-7000-8000-00000000510e";
    slow.batch_execute(&format!(
        "BEGIN; INSERT INTO audit_events (id, occurred_at, action, resource_type, outcome, \
         http_status, request_id) VALUES ('{late}', now() AT TIME ZONE 'UTC', 'employer.read', \
         'employer', 'success', 200, 'slow')"
    ))
    .unwrap();
    // Younger transactions commit first; the sealer must not seal past the open one.
    a.traffic(2).await;
    {
        let mut conn = a.app.conn();
        eap_referrals::audit::seal::run(
            &mut conn,
            &a.app.state.keys.checkpoint,
            eap_referrals::db::now(),
        )
        .unwrap();
    }
    slow.batch_execute("COMMIT").unwrap();
    let checkpoint = a.seal();
    assert_eq!(checkpoint.tree_size, a.app.count("audit_log_leaves") as u64);
    assert_eq!(
        a.app.count("audit_log_leaves"),
        a.app.count("audit_events"),
        "every event is sealed, the slow one included"
    );
    let proof = a.json(&format!("/v1/audit/events/{late}/proof")).await;
    assert!(proof["seq"].is_u64());
    let verdict = a.server_verify().await;
    assert_eq!(verdict["ok"], true, "{verdict:#}");
}

/// Every logged event reads back within the document's enums: its action in `LoggedAction`,
/// its actor role in `ActorRole` (the operator's command-line events included), its outcome in
/// `AccessOutcome`, so a generated client can parse any page of the log.
#[actix_web::test]
async fn logged_events_are_within_the_documented_enums() {
    let a = setup().await;
    a.traffic(2).await;
    problem(a.app.get("/v1/audit/events", &a.admin_token).await, 403).await;
    a.seal();
    let doc: Value = a
        .app
        .get_anonymous("/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let allowed = |name: &str| -> Vec<Value> {
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap()
            .clone()
    };
    let page = a.json("/v1/audit/events?limit=1000").await;
    let items = page["items"].as_array().unwrap();
    let roles: Vec<&Value> = items.iter().map(|e| &e["actor_role"]).collect();
    assert!(roles.contains(&&json!("operator")), "{roles:?}");
    for e in items {
        assert!(allowed("LoggedAction").contains(&e["action"]), "{e}");
        assert!(allowed("AccessOutcome").contains(&e["outcome"]), "{e}");
        assert!(
            e["actor_role"].is_null() || allowed("ActorRole").contains(&e["actor_role"]),
            "{e}"
        );
    }
}

#[actix_web::test]
async fn a_consistency_proof_answers_from_every_earlier_size_checkpointed_or_not() {
    let a = setup().await;
    a.traffic(2).await;
    let first = a.seal();
    a.traffic(3).await;
    let latest = a.seal();
    // An auditor may hold a checkpoint the database no longer has.
    drop_sealed_log_guards(&a);
    a.app.exec(&format!(
        "DELETE FROM audit_checkpoints WHERE n = {}",
        first.n
    ));
    let root_of = |size: u64| {
        let mut conn = a.app.conn();
        merkle::root(
            &mut |level, index| eap_referrals::audit::store::node(&mut conn, level, index),
            size,
        )
        .unwrap()
    };
    let newer = from_hex(&latest.root_hash).unwrap();
    for size in 0..=latest.tree_size {
        let c = a
            .json(&format!(
                "/v1/audit/consistency?from_size={size}&to_size={}",
                latest.tree_size
            ))
            .await;
        let proof: Vec<_> = c["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| from_hex(h.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(c["from_size"], size);
        assert!(
            size == 0
                || merkle::verify_consistency(
                    size,
                    latest.tree_size,
                    &root_of(size),
                    &newer,
                    &proof
                ),
            "from {size}: {c:#}"
        );
    }
    // From a size the log never reached there is no proof.
    problem(
        a.get(&format!(
            "/v1/audit/consistency?from_size={}",
            latest.tree_size + 1
        ))
        .await,
        404,
    )
    .await;
}

/// Lets raw SQL delete from the sealed log's own tables too, as a database superuser can.
fn drop_sealed_log_guards(a: &Audit) {
    a.drop_append_only_guard();
    for table in ["audit_log_leaves", "audit_log_nodes", "audit_checkpoints"] {
        a.app.exec(&match a.app.backend {
            Backend::Sqlite => {
                format!("DROP TRIGGER {table}_no_update; DROP TRIGGER {table}_no_delete;")
            }
            Backend::Postgres => format!("ALTER TABLE {table} DISABLE TRIGGER USER"),
        });
    }
}

/// What a database superuser does to hide the log's tail: drop every sealed position from
/// `size` on — leaves, the tree's nodes over them, later checkpoints and the events themselves.
fn truncate_log(a: &Audit, size: u64) {
    drop_sealed_log_guards(a);
    let covers = match a.app.backend {
        Backend::Sqlite => "(idx + 1) * (1 << level)",
        Backend::Postgres => "(idx + 1) * (1::bigint << level)",
    };
    a.app.exec(&format!(
        "DELETE FROM audit_events WHERE id IN \
           (SELECT event_id FROM audit_log_leaves WHERE seq >= {size}); \
         DELETE FROM audit_events WHERE id NOT IN (SELECT event_id FROM audit_log_leaves); \
         DELETE FROM audit_log_leaves WHERE seq >= {size}; \
         DELETE FROM audit_log_nodes WHERE {covers} > {size}; \
         DELETE FROM audit_checkpoints WHERE tree_size > {size};"
    ));
}

#[actix_web::test]
async fn a_truncated_then_rewritten_tail_is_caught_against_checkpoints_kept_outside() {
    let outside = tempfile::tempdir().unwrap();
    let kept = outside.path().join("outside.jsonl");
    let path = kept.display().to_string();
    let a = setup_with(|v| {
        v.insert("EAP_OUTSIDE_LOG".into(), path);
    })
    .await;
    a.traffic(3).await;
    let first = a.seal();
    a.traffic(3).await;
    let second = a.seal();
    let kept_sizes: Vec<u64> = eap_referrals::audit::outside::kept(&kept)
        .unwrap()
        .iter()
        .map(|c| c.tree_size)
        .collect();
    // Every checkpoint issued is kept (on PostgreSQL a seal may take several ticks).
    assert!(kept_sizes.contains(&first.tree_size), "{kept_sizes:?}");
    assert_eq!(kept_sizes.last(), Some(&second.tree_size));
    assert_eq!(a.server_verify().await["ok"], true);

    // The tail after the first checkpoint goes. The database alone still looks whole.
    truncate_log(&a, first.tree_size);
    let verdict = a.server_verify().await;
    assert_eq!(verdict["ok"], false, "{verdict:#}");
    assert_eq!(verdict["first_problem"]["kind"], "truncated", "{verdict:#}");
    assert_eq!(verdict["first_problem"]["seq"], first.tree_size);

    // Other events are sealed after it, past the kept size: the service signs the forged log
    // (and keeps those checkpoints outside too), but the one kept before disagrees.
    a.traffic(8).await;
    let forged = a.seal();
    assert!(forged.tree_size > second.tree_size);
    let verdict = a.server_verify().await;
    assert_eq!(verdict["ok"], false, "{verdict:#}");
    let kinds: Vec<&str> = verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rewritten"], "{verdict:#}");
}
