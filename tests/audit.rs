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

/// A service that keeps its checkpoints outside the database, in the file it returns (in a
/// directory that lives as long as the returned guard).
async fn setup_keeping_outside() -> (Audit, std::path::PathBuf, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    let kept = outside.path().join("outside.jsonl");
    let path = kept.display().to_string();
    let a = setup_with(|v| {
        v.insert("EAP_OUTSIDE_LOG".into(), path);
    })
    .await;
    (a, kept, outside)
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

    /// Ticks of the sealer, as the background job runs them, until every event written so far
    /// is sealed. On PostgreSQL the sealer waits for transactions older than an event's to end,
    /// and other tests share the cluster, so one tick may not take everything yet.
    async fn seal(&self) -> Checkpoint {
        let target = self.app.count("audit_events") as u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let state = &self.app.state;
            let checkpoint =
                eap_referrals::audit::seal::tick(&state.db, state.keys.clone(), &state.outside)
                    .await
                    .unwrap()
                    .expect("the only instance leads");
            if checkpoint.tree_size >= target {
                return checkpoint;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sealing did not catch up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
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
    let first = a.seal().await;
    a.traffic(4).await;
    let second = a.seal().await;
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
    a.seal().await;

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
    a.seal().await;
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
    a.seal().await;
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
    a.seal().await;
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
    a.seal().await;
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
    a.seal().await;
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
    a.seal().await;
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
    a.seal().await;
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

/// `n` anonymous access events, written straight to the log to give it size.
fn bulk_events(n: usize) -> Vec<AuditEvent> {
    let ctx = RequestCtx {
        request_id: "bulk".into(),
        source: None,
    };
    let op = Operation {
        action: "test.bulk",
        resource_type: "test",
        ok: 200,
    };
    (0..n)
        .map(|_| AuditEvent::anonymous(&ctx, op, 200))
        .collect()
}

/// The export reads the log in chunks of 4,000 positions. A stretch that ends exactly at a
/// chunk's end once read an empty chunk last, and the empty chunk ended the body before the
/// proof.
#[actix_web::test]
async fn an_export_ending_exactly_at_a_chunks_end_still_carries_its_proof() {
    let a = setup().await;
    let sealed = a.seal().await.tree_size;
    const CHUNKS_OF_4000: u64 = 8_000;
    let batch = bulk_events((CHUNKS_OF_4000 - sealed) as usize);
    eap_referrals::audit::store::record(&mut a.app.conn(), &batch).unwrap();
    assert_eq!(a.seal().await.tree_size, CHUNKS_OF_4000);

    let export = a.export("").await;
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(
        lines.len() as u64,
        CHUNKS_OF_4000 + 2,
        "every event, the range and the proof"
    );
    assert!(lines.last().unwrap().starts_with("{\"proof\""));
    let report = a.offline(&export).await;
    assert!(report.ok(), "{:#?}", report.findings);
    assert_eq!(report.end, CHUNKS_OF_4000);
}

#[actix_web::test]
async fn an_export_of_a_busy_log_stays_consistent_with_a_checkpoint_taken_meanwhile() {
    let a = setup().await;
    // Enough rows that the export cannot be buffered whole before the client reads it.
    let write = |n: usize| {
        let mut conn = a.app.conn();
        for _ in 0..n / 1000 {
            eap_referrals::audit::store::record(&mut conn, &bulk_events(1000)).unwrap();
        }
    };
    write(40_000);
    let before = a.seal().await;

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
    let during = a.seal().await;
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
    let checkpoint = a.seal().await;
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
    a.seal().await;
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
    let first = a.seal().await;
    a.traffic(3).await;
    let latest = a.seal().await;
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
    let (a, kept, _outside) = setup_keeping_outside().await;
    a.traffic(3).await;
    let first = a.seal().await;
    a.traffic(3).await;
    let second = a.seal().await;
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
    let forged = a.seal().await;
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

/// Sums a stats answer's counts per key, over every bucket.
fn totals(stats: &Value) -> std::collections::BTreeMap<String, u64> {
    let mut sums = std::collections::BTreeMap::new();
    for c in stats["counts"].as_array().unwrap() {
        let key = c["key"].as_str().unwrap_or("(none)").to_owned();
        *sums.entry(key).or_default() += c["count"].as_u64().unwrap();
    }
    sums
}

#[actix_web::test]
async fn stats_count_the_sealed_log_per_bucket_by_outcome_and_by_actor() {
    let a = setup().await;
    a.traffic(3).await;
    let other = a
        .app
        .create_client(
            &a.admin_token,
            json!({"name": "other admin", "role": "admin"}),
        )
        .await;
    let other_token = a.app.token(&other).await;
    let now = chrono::Utc::now();
    let window = format!(
        "from={}&to={}",
        (now - chrono::Duration::hours(3)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%SZ"),
    );
    // Refusals: two by the other admin, one by the first; each is logged as denied.
    for _ in 0..2 {
        let resp = a
            .app
            .get(&format!("/v1/audit/stats?{window}"), &other_token)
            .await;
        problem(resp, 403).await;
    }
    problem(a.app.get("/v1/audit/events", &a.admin_token).await, 403).await;
    problem(
        a.app
            .get_anonymous(&format!("/v1/audit/stats?{window}"))
            .await,
        401,
    )
    .await;
    let checkpoint = a.seal().await;
    let sealed = a.app.audit_rows();
    assert_eq!(sealed.len() as u64, checkpoint.tree_size);
    let mut expected = std::collections::BTreeMap::new();
    for r in &sealed {
        *expected.entry(r.outcome.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(
        expected["denied"], 4,
        "three refusals and the anonymous call"
    );

    let hourly = a
        .json(&format!("/v1/audit/stats?{window}&bucket=hour&by=outcome"))
        .await;
    assert_eq!(hourly["tree_size"], checkpoint.tree_size);
    assert_eq!(hourly["truncated"], false);
    assert_eq!(totals(&hourly), expected);
    for c in hourly["counts"].as_array().unwrap() {
        let start = c["start"].as_str().unwrap();
        assert!(start.ends_with(":00:00Z") && start.len() == 20, "{start}");
    }
    // The default is hourly by outcome; daily buckets count the same events.
    assert_eq!(
        totals(&a.json(&format!("/v1/audit/stats?{window}")).await),
        expected
    );
    let daily = a
        .json(&format!("/v1/audit/stats?{window}&bucket=day"))
        .await;
    assert_eq!(totals(&daily), expected);
    for c in daily["counts"].as_array().unwrap() {
        assert!(c["start"].as_str().unwrap().ends_with("T00:00:00Z"));
    }

    // Refusals by actor: the other admin twice, the first admin once, the anonymous call once.
    let first_admin = sealed
        .iter()
        .find(|r| r.action == "audit.search" && r.outcome == "denied")
        .and_then(|r| r.actor_client_id.clone())
        .unwrap();
    let by_actor = a
        .json(&format!("/v1/audit/stats?{window}&by=actor&outcome=denied"))
        .await;
    let want: std::collections::BTreeMap<String, u64> = [
        (other.id.clone(), 2),
        (first_admin, 1),
        ("(none)".to_owned(), 1),
    ]
    .into();
    assert_eq!(totals(&by_actor), want);

    // A window before anything happened counts nothing.
    let empty = a
        .json("/v1/audit/stats?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z")
        .await;
    assert_eq!(empty["counts"], json!([]));

    for bad in [
        "to=2026-01-02T00:00:00Z",
        "from=2026-01-01T00:00:00Z",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z&bucket=hour",
        "from=2026-01-01T00:00:00Z&to=2027-01-03T00:00:00Z&bucket=day",
        "from=yesterday&to=2026-01-01T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=week",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&by=colour",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&outcome=maybe",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&limit=5",
    ] {
        problem(a.get(&format!("/v1/audit/stats?{bad}")).await, 422).await;
    }
    let wide = problem(
        a.get("/v1/audit/stats?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z")
            .await,
        422,
    )
    .await;
    assert!(
        wide.to_string().contains("at most 31 days"),
        "the detail says what the limit is: {wide}"
    );

    // Each call is one event: the auditor's successes and the refusals above.
    let rows = a.app.audit_rows();
    let stats_calls = |outcome: &str| {
        rows.iter()
            .filter(|r| r.action == "audit.stats" && r.outcome == outcome)
            .count()
    };
    assert_eq!(stats_calls("success"), 5);
    assert_eq!(stats_calls("denied"), 3);
}

/// Sealed events as `(occurred_at, outcome, actor)`, below `size`: what a count must agree with.
fn sealed_events(app: &TestApp, size: u64) -> Vec<(chrono::NaiveDateTime, String, Option<String>)> {
    sealed_positions(app, size)
        .into_iter()
        .map(|(_, at, actor, _, outcome, _)| (at, outcome, actor))
        .collect()
}

/// Access events written straight to the log (not through requests), at the times `at` gives:
/// by two actors and nobody, with every outcome.
fn synthetic_events(
    range: std::ops::Range<i64>,
    at: impl Fn(i64) -> chrono::NaiveDateTime,
) -> Vec<AuditEvent> {
    use eap_referrals::audit::Outcome;
    range
        .map(|i| AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: at(i),
            actor_client_id: [Some("client-a"), Some("client-b"), None][(i % 3) as usize]
                .map(str::to_owned),
            actor_role: Some("admin".into()),
            tenant_id: None,
            action: "employer.create".into(),
            resource_type: "employer".into(),
            resource_id: None,
            outcome: [Outcome::Success, Outcome::Denied, Outcome::Failure][(i % 4).min(2) as usize],
            http_status: 201,
            request_id: uuid::Uuid::now_v7().to_string(),
            source_addr: None,
        })
        .collect()
}

/// Verification reads the whole log, for seconds on a large one. It must not hold the
/// writers' turn meanwhile: on SQLite every request that writes (each one logs an access event)
/// would wait behind it, and time out (a 30-minute soak saw 503s). A write sent while a
/// verification runs is answered first.
#[actix_web::test]
async fn a_long_verification_does_not_hold_back_writes() {
    let a = setup().await;
    let now = chrono::Utc::now().naive_utc();
    for start in (0..30_000).step_by(1_000) {
        let batch = synthetic_events(start..start + 1_000, |_| now);
        eap_referrals::audit::store::record_alone(&mut a.app.conn(), &batch).unwrap();
    }
    a.seal().await;
    // Fresh connections: the pooled ones went idle past the server's keep-alive while the log
    // was written.
    let http = reqwest::Client::new();
    let (verified_at, written_at) = tokio::join!(
        async {
            let resp = http
                .get(a.app.url("/v1/audit/verify"))
                .bearer_auth(&a.token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let verdict: Value = resp.json().await.unwrap();
            assert_eq!(verdict["ok"], true, "{verdict:#}");
            std::time::Instant::now()
        },
        async {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(150)).await;
            let resp = http
                .post(a.app.url("/v1/admin/employers"))
                .bearer_auth(&a.admin_token)
                .json(&json!({"name": "Written meanwhile"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            std::time::Instant::now()
        },
    );
    assert!(
        written_at < verified_at,
        "the write was answered only after the verification: it waited for its turn"
    );
}

/// The counts read the sealer's hourly counts for the whole hours of a window and the events
/// themselves only for its ragged ends. Whatever the window, bucket, grouping and outcome, they
/// equal counting the sealed events one by one, as of the size the answer names; unsealed
/// events are not counted; and counts that trail the log (just after the upgrade that adds
/// them) answer as of the size they cover, then catch up at the next checkpoint.
#[actix_web::test]
async fn stats_agree_with_counting_each_sealed_event_whatever_the_window() {
    use chrono::{Duration, Timelike};
    let a = setup().await;
    a.traffic(2).await;
    let now = chrono::Utc::now().naive_utc();
    let base = now
        .with_minute(0)
        .unwrap()
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap()
        - Duration::hours(72);
    // Events every 7 min 11 s over three days, so hours and days hold uneven numbers of them,
    // by two actors and nobody, with every outcome.
    let events = |range| synthetic_events(range, |i| base + Duration::seconds(i * 431));
    let record = |batch: Vec<AuditEvent>| {
        let mut conn = a.app.conn();
        eap_referrals::audit::store::record_alone(&mut conn, &batch).unwrap();
    };
    record(events(0..300));
    a.seal().await;
    record(events(300..600));
    let checkpoint = a.seal().await;
    // Written after the last checkpoint: never counted until sealed.
    record(events(600..700));

    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let windows = [
        (base, base + Duration::hours(5)),
        (
            base + Duration::minutes(17),
            base + Duration::minutes(29 * 60 + 3),
        ),
        (base + Duration::minutes(125), base + Duration::minutes(170)),
        (
            base - Duration::minutes(30),
            base + Duration::minutes(71 * 60 + 59),
        ),
        (base + Duration::minutes(61), base + Duration::hours(80)),
    ];
    let check = |answer: &Value, from, to, day: bool, by_actor: bool, only: Option<&str>| {
        let size = answer["tree_size"].as_u64().unwrap();
        let mut want = std::collections::BTreeMap::new();
        for (at, outcome, actor) in sealed_events(&a.app, size) {
            if at < from || at >= to || only.is_some_and(|o| o != outcome) {
                continue;
            }
            let start = if day {
                at.format("%Y-%m-%dT00:00:00Z")
            } else {
                at.format("%Y-%m-%dT%H:00:00Z")
            };
            let key = if by_actor {
                actor.unwrap_or("(none)".into())
            } else {
                outcome
            };
            *want.entry((start.to_string(), key)).or_insert(0u64) += 1;
        }
        let got: std::collections::BTreeMap<(String, String), u64> = answer["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let key = c["key"].as_str().unwrap_or("(none)").to_owned();
                (
                    (c["start"].as_str().unwrap().to_owned(), key),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            want,
            "{}..{} day={day} actor={by_actor} {only:?}",
            fmt(from),
            fmt(to)
        );
        want.values().sum::<u64>()
    };
    let mut total = 0;
    for &(from, to) in &windows {
        for day in [false, true] {
            for by_actor in [false, true] {
                for only in [None, Some("denied")] {
                    let query = format!(
                        "/v1/audit/stats?from={}&to={}&bucket={}&by={}{}",
                        fmt(from),
                        fmt(to),
                        if day { "day" } else { "hour" },
                        if by_actor { "actor" } else { "outcome" },
                        only.map(|o| format!("&outcome={o}")).unwrap_or_default()
                    );
                    let answer = a.json(&query).await;
                    assert_eq!(answer["tree_size"], checkpoint.tree_size, "{query}");
                    total += check(&answer, from, to, day, by_actor, only);
                }
            }
        }
    }
    assert!(total > 1_000, "the windows hold events: {total}");

    // Counts that trail the log, as just after the upgrade that adds them: the answer is as of
    // the size they cover (nothing yet) until the sealer's catch-up steps bring them up to the
    // newest checkpoint; the next checkpoint counts the events it seals.
    a.app.exec(
        "DELETE FROM audit_hourly_outcomes; DELETE FROM audit_hourly_actors; \
         UPDATE audit_counts_state SET tree_size = 0",
    );
    // This window holds the 100 events sealed only now, too.
    let (from, to) = windows[4];
    let query = format!("/v1/audit/stats?from={}&to={}", fmt(from), fmt(to));
    let trailing = a.json(&query).await;
    assert_eq!(trailing["tree_size"], 0);
    assert_eq!(trailing["counts"], json!([]));
    let mut steps = 0;
    while eap_referrals::audit::seal::catch_up_counts(&mut a.app.conn()).unwrap() {
        steps += 1;
    }
    assert_eq!(steps, 1, "the log is smaller than one step");
    let answer = a.json(&query).await;
    assert_eq!(answer["tree_size"], checkpoint.tree_size);
    check(&answer, from, to, false, false, None);
    let sealed_now = a.seal().await;
    let answer = a.json(&query).await;
    assert_eq!(answer["tree_size"], sealed_now.tree_size);
    assert!(check(&answer, from, to, false, false, None) >= 660);
}

/// The offline command given the outside log catches what the database alone hides: an
/// auditor copies the outside file, then takes the export, checkpoints and key.
#[actix_web::test]
async fn the_offline_verifier_given_the_outside_log_catches_a_truncated_or_rewritten_tail() {
    let (a, kept, _outside) = setup_keeping_outside().await;
    let dir = tempfile::tempdir().unwrap();
    // The auditor's files, in the order the documentation gives: the outside file first.
    let take = |name: &'static str| {
        let dir = dir.path().to_owned();
        let kept = kept.clone();
        let a = &a;
        async move {
            std::fs::copy(&kept, dir.join("outside.jsonl")).unwrap();
            std::fs::write(dir.join(name), a.export("").await).unwrap();
            std::fs::write(dir.join("checkpoints.json"), a.checkpoints_text().await).unwrap();
            std::fs::write(dir.join("public-key.json"), a.public_key_text().await).unwrap();
        }
    };
    let outside_arg = dir.path().join("outside.jsonl");
    let run = |events: &str, with_outside: bool| {
        let more = [std::ffi::OsStr::new("--outside"), outside_arg.as_os_str()];
        let more: &[&std::ffi::OsStr] = if with_outside { &more } else { &[] };
        let out = Binary::verify_offline_with(dir.path(), events, more);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    a.traffic(3).await;
    let first = a.seal().await;
    a.traffic(3).await;
    let second = a.seal().await;
    take("honest.ndjson").await;
    let (code, stdout) = run("honest.ndjson", true);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("OK"), "{stdout}");
    let kept_count = eap_referrals::audit::outside::kept(&outside_arg)
        .unwrap()
        .len();
    assert!(kept_count >= 2, "{kept_count}");
    assert!(
        stdout.contains(&format!(
            "outside log: {kept_count} checkpoint(s) compared, 0 not comparable"
        )),
        "{stdout}"
    );

    // The tail after the first checkpoint goes: the export and the database's checkpoints
    // agree with each other, and only the outside file tells.
    truncate_log(&a, first.tree_size);
    take("truncated.ndjson").await;
    let (code, stdout) = run("truncated.ndjson", false);
    assert_eq!(code, Some(0), "the database alone looks whole: {stdout}");
    let (code, stdout) = run("truncated.ndjson", true);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!("TRUNCATED\tseq={}\t", first.tree_size)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("covers {} events", second.tree_size)),
        "{stdout}"
    );

    // Other events sealed past the kept size: the export is consistent with every checkpoint
    // the database holds, but not with the one kept before the rewrite.
    a.traffic(8).await;
    let forged = a.seal().await;
    assert!(forged.tree_size > second.tree_size);
    take("rewritten.ndjson").await;
    let (code, stdout) = run("rewritten.ndjson", false);
    assert_eq!(code, Some(0), "the database alone looks whole: {stdout}");
    let (code, stdout) = run("rewritten.ndjson", true);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("REWRITTEN\t"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("REWRITTEN"))
            .count(),
        1
    );
}

/// One sealed position as the test reads it from the tables: (seq, occurred at, actor, action,
/// outcome, resource id).
type Position = (
    u64,
    chrono::NaiveDateTime,
    Option<String>,
    String,
    String,
    Option<String>,
);

fn sealed_positions(app: &TestApp, size: u64) -> Vec<Position> {
    use diesel::prelude::*;
    use eap_referrals::db::schema::{audit_events as e, audit_log_leaves as l};
    let mut conn = app.conn();
    l::table
        .inner_join(e::table.on(e::id.eq(l::event_id)))
        .filter(l::seq.lt(size as i64))
        .order(l::seq.asc())
        .select((
            l::seq,
            e::occurred_at,
            e::actor_client_id,
            e::action,
            e::outcome,
            e::resource_id,
        ))
        .load::<(
            i64,
            chrono::NaiveDateTime,
            Option<String>,
            String,
            String,
            Option<String>,
        )>(&mut **conn)
        .unwrap()
        .into_iter()
        .map(|(seq, at, actor, action, outcome, resource)| {
            (seq as u64, at, actor, action, outcome, resource)
        })
        .collect()
}

/// Every filter, alone, in the common pairs and with a time range, answers exactly the sealed
/// positions a reading of every event selects, page by page: from the first position whose
/// event occurred at or after `from` up to (not including) the first that occurred at or after
/// `to`. Events here are logged out of time order (every fifth one two minutes late, as a slow
/// transaction's is), and part of the log was sealed without its search index (as an instance
/// of the previous release seals during a rolling deploy): the next seal fills it in.
#[actix_web::test]
async fn every_filter_selects_exactly_the_positions_a_reading_of_every_event_does() {
    use chrono::Duration;
    use eap_referrals::audit::Outcome;
    let a = setup().await;
    // After the set-up's own events (logged now), as a log's later events are.
    let base = chrono::Utc::now().naive_utc() + Duration::minutes(1);
    let resources = [
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    ];
    let events = |range: std::ops::Range<i64>| -> Vec<AuditEvent> {
        range
            .map(|i| AuditEvent {
                id: uuid::Uuid::now_v7().to_string(),
                occurred_at: base + Duration::seconds(i * 60)
                    - if i % 5 == 0 {
                        Duration::minutes(2)
                    } else {
                        Duration::zero()
                    },
                actor_client_id: [Some("client-a"), Some("client-b"), None][(i % 3) as usize]
                    .map(str::to_owned),
                actor_role: Some("admin".into()),
                tenant_id: None,
                action: ["employer.create", "client.create"][(i % 2) as usize].into(),
                resource_type: "employer".into(),
                resource_id: (i % 4 != 3).then(|| resources[(i % 4 % 2) as usize].clone()),
                outcome: [Outcome::Success, Outcome::Denied, Outcome::Failure]
                    [(i % 7).min(2) as usize],
                http_status: 201,
                request_id: uuid::Uuid::now_v7().to_string(),
                source_addr: None,
            })
            .collect()
    };
    let record = |batch: Vec<AuditEvent>| {
        let mut conn = a.app.conn();
        eap_referrals::audit::store::record_alone(&mut conn, &batch).unwrap();
    };
    record(events(0..150));
    let first = a.seal().await;
    {
        use diesel::prelude::*;
        let mut conn = a.app.conn();
        diesel::sql_query(format!(
            "DELETE FROM audit_search WHERE seq >= {}",
            first.tree_size - 40
        ))
        .execute(&mut **conn)
        .unwrap();
    }
    record(events(150..300));
    let checkpoint = a.seal().await;
    let positions = sealed_positions(&a.app, checkpoint.tree_size);
    assert!(positions.len() >= 300);

    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    // Where a time bound falls: the first position whose event occurred at or after it.
    let bound = |t: chrono::NaiveDateTime| {
        positions
            .iter()
            .find(|p| p.1 >= t)
            .map_or(checkpoint.tree_size, |p| p.0)
    };
    let t = |minutes: i64| base + Duration::minutes(minutes) + Duration::seconds(30);
    type Keep = Box<dyn Fn(&Position) -> bool>;
    // A query string, which positions it keeps, and a time range in minutes from `base`.
    type Case = (String, Keep, Option<(i64, i64)>);
    let r0 = resources[0].clone();
    let cases: Vec<Case> = vec![
        (
            "actor=client-a".into(),
            Box::new(|p| p.2.as_deref() == Some("client-a")),
            None,
        ),
        (
            "action=client.create".into(),
            Box::new(|p| p.3 == "client.create"),
            None,
        ),
        (
            "action=client.create&outcome=denied".into(),
            Box::new(|p| p.3 == "client.create" && p.4 == "denied"),
            None,
        ),
        (
            "action=token.issue&outcome=denied".into(),
            Box::new(|p| p.3 == "token.issue" && p.4 == "denied"),
            None,
        ),
        (
            "outcome=failure".into(),
            Box::new(|p| p.4 == "failure"),
            None,
        ),
        (
            format!("resource_id={r0}"),
            Box::new(move |p| p.5.as_deref() == Some(r0.as_str())),
            None,
        ),
        (
            "actor=client-b".into(),
            Box::new(|p| p.2.as_deref() == Some("client-b")),
            Some((37, 201)),
        ),
        (
            "action=employer.create&outcome=success".into(),
            Box::new(|p| p.3 == "employer.create" && p.4 == "success"),
            Some((3, 122)),
        ),
        (String::new(), Box::new(|_| true), Some((90, 180))),
    ];
    for (filter, keep, window) in cases {
        let (range, start, end) = match window {
            Some((from, to)) => (
                format!("&from={}&to={}", fmt(t(from)), fmt(t(to))),
                bound(t(from)),
                bound(t(to)),
            ),
            None => (String::new(), 0, checkpoint.tree_size),
        };
        let want: Vec<u64> = positions
            .iter()
            .filter(|p| p.0 >= start && p.0 < end && keep(p))
            .map(|p| p.0)
            .collect();
        let mut got = Vec::new();
        let mut after = String::new();
        loop {
            let page = a
                .json(&format!("/v1/audit/events?limit=7&{filter}{range}{after}"))
                .await;
            got.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["seq"].as_u64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => after = format!("&after={c}"),
                None => break,
            }
        }
        assert_eq!(got, want, "{filter}{range}");
        if !filter.starts_with("action=token.issue") {
            assert!(!want.is_empty(), "{filter}{range} selects something");
        }
    }

    // Adjacent ranges tile the log: nothing in two of them, nothing left out.
    let mut exports = Vec::new();
    for (from, to) in [(20, 95), (95, 140), (20, 140)] {
        let path = format!("?from={}&to={}", fmt(t(from)), fmt(t(to)));
        let seqs: Vec<u64> = a
            .export(&path)
            .await
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        exports.push(seqs);
    }
    let mut joined = exports[0].clone();
    joined.extend(exports[1].iter().copied());
    assert!(!exports[0].is_empty() && !exports[1].is_empty());
    assert_eq!(joined, exports[2]);
    assert!(joined.windows(2).all(|w| w[1] == w[0] + 1), "contiguous");
}

/// A backlog of many batches (on SQLite a batch is 100 events, each in a writers' turn of its
/// own; on PostgreSQL 1,000) is sealed by one tick of the job, in order, with nothing skipped or
/// sealed twice: the checkpoint covers every event, both verifiers find the log whole, and the
/// hourly counts kept with the checkpoint add up to the events.
#[actix_web::test]
async fn one_tick_seals_a_backlog_of_many_batches_whole() {
    let a = setup().await;
    a.traffic(2).await;
    let now = chrono::Utc::now().naive_utc();
    // Ids in creation order, like the service's UUIDv7s, a microsecond apart.
    let rows: Vec<String> = (0..2_345)
        .map(|i| {
            let at = now + chrono::Duration::microseconds(i);
            format!(
                "('01900000-0000-7000-8000-{i:012x}', '{}', 'backlog', 'provider', 'contact.read', \
                 'referral', 'r-{i}', '{}', 200, 'req-{i}')",
                at.format("%Y-%m-%d %H:%M:%S%.6f"),
                if i % 7 == 0 { "denied" } else { "success" }
            )
        })
        .collect();
    a.app.exec(&format!(
        "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, action, \
         resource_type, resource_id, outcome, http_status, request_id) VALUES {}",
        rows.join(", ")
    ));
    let total = a.app.count("audit_events") as u64;
    assert!(total > 2_345);

    let state = &a.app.state;
    let first = eap_referrals::audit::seal::tick(&state.db, state.keys.clone(), &state.outside)
        .await
        .unwrap()
        .expect("the only instance leads");
    // On PostgreSQL other tests' open transactions may hold the newest events back from one
    // tick (the commit horizon); SQLite has no such wait.
    if state.db.backend() == eap_referrals::db::Backend::Sqlite {
        assert_eq!(first.tree_size, total, "one tick seals the whole backlog");
    }
    let checkpoint = a.seal().await;
    assert_eq!(checkpoint.tree_size, total);
    assert_eq!(a.app.count("audit_log_leaves") as u64, total);
    let sealed = a.sealed_ids().await;
    assert_eq!(sealed.len(), 1000, "the first page is full");
    assert_eq!(a.server_verify().await["ok"], true);
    let report = a.offline(&a.export("").await).await;
    assert!(report.ok(), "{report:#?}");

    let window = format!(
        "from={}&to={}",
        (now - chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%SZ"),
    );
    let stats = a.json(&format!("/v1/audit/stats?{window}&by=actor")).await;
    assert_eq!(stats["tree_size"], checkpoint.tree_size);
    assert_eq!(totals(&stats)["backlog"], 2_345);
}
