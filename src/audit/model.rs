use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::merkle::{self, Frontier, Hash};
use crate::extract::RequestCtx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused: authentication, authorisation or tenancy.
    Denied,
    /// Attempted and failed for another reason.
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }

    pub fn of_status(status: u16) -> Self {
        match status {
            s if s < 400 => Outcome::Success,
            401 | 403 | 404 => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }
}

/// What an operation is logged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub action: &'static str,
    pub resource_type: &'static str,
    /// The status its handler answers on success: the status logged for a success event, so
    /// no call site types it (a test holds it equal to the document's 2xx response).
    pub ok: u16,
}

/// Every protected operation, by method and route template, with its success status. The
/// caller extractor looks the request up here, so a refusal is logged under the operation it
/// refused and a handler's own events cannot be mislabelled. A test checks this table against
/// the OpenAPI document.
#[rustfmt::skip]
const OPERATIONS: &[(&str, &str, &str, &str, u16)] = &[
    ("POST",   "/oauth/token",                             "token.issue", "client", 200),
    ("POST",   "/v1/admin/clients",                        "client.create", "client", 201),
    ("GET",    "/v1/admin/clients",                        "client.list", "client", 200),
    ("GET",    "/v1/admin/clients/{id}",                   "client.read", "client", 200),
    ("POST",   "/v1/admin/clients/{id}/rotate-secret",     "client.rotate_secret", "client", 200),
    ("POST",   "/v1/admin/clients/{id}/revoke",            "client.revoke", "client", 200),
    ("POST",   "/v1/admin/employers",                      "employer.create", "employer", 201),
    ("GET",    "/v1/admin/employers",                      "employer.list", "employer", 200),
    ("GET",    "/v1/admin/employers/{id}",                 "employer.read", "employer", 200),
    ("PATCH",  "/v1/admin/employers/{id}",                 "employer.update", "employer", 200),
    ("POST",   "/v1/admin/employers/{id}/deactivate",      "employer.deactivate", "employer", 200),
    ("POST",   "/v1/admin/providers",                      "provider.create", "provider", 201),
    ("GET",    "/v1/admin/providers",                      "provider.list", "provider", 200),
    ("GET",    "/v1/admin/providers/{id}",                 "provider.read", "provider", 200),
    ("PATCH",  "/v1/admin/providers/{id}",                 "provider.update", "provider", 200),
    ("POST",   "/v1/admin/providers/{id}/deactivate",      "provider.deactivate", "provider", 200),
    ("POST",   "/v1/admin/contracts",                      "contract.create", "contract", 201),
    ("GET",    "/v1/admin/contracts",                      "contract.list", "contract", 200),
    ("GET",    "/v1/admin/contracts/{id}",                 "contract.read", "contract", 200),
    ("PATCH",  "/v1/admin/contracts/{id}",                 "contract.update", "contract", 200),
    ("POST",   "/v1/admin/contracts/{id}/deactivate",      "contract.deactivate", "contract", 200),
    ("GET",    "/v1/admin/unroutable",                     "unroutable.list", "referral", 200),
    ("POST",   "/v1/admin/unroutable/{id}/assign",         "referral.assign", "referral", 200),
    ("GET",    "/v1/provider/events",                      "feed.read", "referral", 200),
    ("GET",    "/v1/provider/referrals",                   "referral.list", "referral", 200),
    ("GET",    "/v1/provider/referrals/{id}",              "referral.read", "referral", 200),
    ("POST",   "/v1/provider/referrals/{id}/accept",       "referral.accept", "referral", 200),
    ("POST",   "/v1/provider/referrals/{id}/decline",      "referral.decline", "referral", 204),
    ("POST",   "/v1/provider/referrals/{id}/status",       "referral.status", "referral", 200),
    ("GET",    "/v1/provider/referrals/{id}/contact",      "contact.read", "referral", 200),
    ("POST",   "/v1/referrals",                            "referral.create", "referral", 201),
    ("GET",    "/v1/referrals/{id}",                       "referral.read", "referral", 200),
    ("POST",   "/v1/referrals/{id}/cancel",                "referral.cancel", "referral", 200),
    ("DELETE", "/v1/referrals/{id}/personal-data",         "personal_data.erase", "referral", 204),
    ("DELETE", "/v1/admin/referrals/{id}/personal-data",   "personal_data.erase", "referral", 204),
    ("GET",    "/v1/reports/utilization",                  "report.read", "report", 200),
    ("GET",    "/v1/audit/events",                         "audit.search", "access_log", 200),
    ("GET",    "/v1/audit/events/{id}/proof",              "audit.proof", "access_event", 200),
    ("GET",    "/v1/audit/checkpoints",                    "audit.checkpoints", "access_log", 200),
    ("GET",    "/v1/audit/consistency",                    "audit.consistency", "access_log", 200),
    ("GET",    "/v1/audit/verify",                         "audit.verify", "access_log", 200),
];

pub fn operation(method: &str, route: &str) -> Option<Operation> {
    OPERATIONS
        .iter()
        .find(|(m, r, ..)| *m == method && *r == route)
        .map(|&(_, _, action, resource_type, ok)| Operation {
            action,
            resource_type,
            ok,
        })
}

pub fn protected_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPERATIONS.iter().map(|(m, r, ..)| (*m, *r))
}

/// One access-log row. Identifiers only: never contact data, notes, tokens or secrets.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_client_id: Option<String>,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub outcome: Outcome,
    pub http_status: u16,
    pub request_id: String,
    pub source_addr: Option<String>,
}

impl AuditEvent {
    /// An event with no authenticated actor (a refused or unauthenticated request).
    pub fn anonymous(ctx: &RequestCtx, op: Operation, status: u16) -> Self {
        AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: crate::db::now(),
            actor_client_id: None,
            actor_role: None,
            tenant_id: None,
            action: op.action.to_owned(),
            resource_type: op.resource_type.to_owned(),
            resource_id: None,
            outcome: Outcome::of_status(status),
            http_status: status,
            request_id: ctx.request_id.clone(),
            source_addr: ctx.source.clone(),
        }
    }

    /// An event of the service's own background work (the retention purge, the offer sweeper):
    /// the actor is the system, and `request_id` names the run.
    pub fn system(request_id: &str, op: Operation) -> Self {
        let ctx = RequestCtx {
            request_id: request_id.to_owned(),
            source: None,
        };
        let mut e = Self::anonymous(&ctx, op, op.ok);
        e.actor_role = Some("system".into());
        e
    }

    pub fn resource(mut self, id: Option<&str>) -> Self {
        self.resource_id = id.map(str::to_owned);
        self
    }

    /// Records an identifier the caller supplied but that was not verified (a failed token
    /// request's client id), only when it has the form of an issued id: other text names no
    /// client, and may be something pasted into the wrong field (a secret, an address) that
    /// the log must not keep.
    pub fn claimed_actor(mut self, client_id: &str) -> Self {
        self.actor_client_id =
            crate::extract::is_issued_id(client_id).then(|| client_id.to_owned());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Tamper evidence: the leaf encoding, checkpoints, and the verifier both `GET /v1/audit/verify`
// and `eap-referrals audit verify` run. docs/AUDIT.md specifies the formats for outsiders.

/// How much older than an event sealed before it an event may claim to be before it counts as
/// inserted. Events are sealed in commit order and stamped inside their transaction, so their
/// times are out of order only by the length of a transaction; a row slipped in later with a
/// back-dated time stands out against its sealed neighbours. (Compared with neighbours, not
/// with checkpoint times: a long transaction elsewhere on PostgreSQL can hold sealing back for
/// minutes without making anything late.)
pub const LATE_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The one text form of an event time, in leaves and exports: UTC, microseconds, `Z`.
pub fn format_time(t: NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    // By hand rather than through `format`'s pattern interpreter: this runs once per exported
    // event. (Stored times never hold a leap second; the modulo only keeps six digits.)
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        (t.nanosecond() % 1_000_000_000) / 1_000
    )
}

/// One sealed access-log event as auditors read and export it: every stored field, its log
/// position and its sealed leaf hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LoggedEvent {
    /// Position in the log (the Merkle leaf index), from 0.
    pub seq: Option<u64>,
    /// SHA-256(0x00 || leaf) as sealed, lowercase hex.
    pub leaf_hash: Option<String>,
    pub id: String,
    /// UTC, microseconds: `2026-11-26T07:20:00.123456Z`.
    pub occurred_at: String,
    pub actor_client_id: Option<String>,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    pub http_status: i32,
    pub request_id: String,
    pub source_addr: Option<String>,
}

impl LoggedEvent {
    /// The canonical leaf bytes (docs/AUDIT.md): version byte 1, then each field in order as
    /// 0x00 (absent) or 0x01, a 4-byte big-endian length and the UTF-8 bytes.
    pub fn leaf(&self) -> Vec<u8> {
        let status = self.http_status.to_string();
        let fields: [Option<&str>; 12] = [
            Some(&self.id),
            Some(&self.occurred_at),
            self.actor_client_id.as_deref(),
            self.actor_role.as_deref(),
            self.tenant_id.as_deref(),
            Some(&self.action),
            Some(&self.resource_type),
            self.resource_id.as_deref(),
            Some(&self.outcome),
            Some(&status),
            Some(&self.request_id),
            self.source_addr.as_deref(),
        ];
        let mut out = Vec::with_capacity(256);
        out.push(1u8);
        for f in fields {
            match f {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
        out
    }

    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.leaf())
    }
}

/// A signed tree head: the first `tree_size` events have Merkle root `root_hash`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Checkpoint {
    /// Issue number, from 0.
    pub n: u64,
    pub tree_size: u64,
    /// RFC 6962 tree head, lowercase hex.
    pub root_hash: String,
    /// UTC, microseconds.
    pub issued_at: String,
    /// The RFC 7638 thumbprint of the checkpoint public key (`/v1/audit/public-key`).
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_text`], standard base64.
    pub signature: String,
}

impl Checkpoint {
    /// Exactly what is signed: five lines, each ending in `\n`.
    pub fn signed_text(tree_size: u64, root_hash: &str, issued_at: &str, key_id: &str) -> String {
        format!(
            "eap-referrals audit checkpoint v1\n{tree_size}\n{root_hash}\n{issued_at}\n{key_id}\n"
        )
    }

    pub fn sign(
        n: u64,
        tree_size: u64,
        root: &Hash,
        issued_at: NaiveDateTime,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        use ed25519_dalek::Signer;
        let root_hash = merkle::to_hex(root);
        let issued_at = format_time(issued_at);
        let text = Self::signed_text(tree_size, &root_hash, &issued_at, key_id);
        Checkpoint {
            n,
            tree_size,
            signature: STANDARD.encode(key.sign(text.as_bytes()).to_bytes()),
            root_hash,
            issued_at,
            key_id: key_id.to_owned(),
        }
    }

    /// Whether one of `keys` (by key id) signed exactly this checkpoint.
    pub fn verify(&self, keys: &PublicKeys) -> bool {
        let Some(key) = keys.0.get(&self.key_id) else {
            return false;
        };
        let Some(sig) = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let text = Self::signed_text(
            self.tree_size,
            &self.root_hash,
            &self.issued_at,
            &self.key_id,
        );
        key.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }

    pub fn root(&self) -> Option<Hash> {
        merkle::from_hex(&self.root_hash)
    }
}

/// Checkpoint verification keys by key id, read from the JWK Set `/v1/audit/public-key` serves.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(pub HashMap<String, ed25519_dalek::VerifyingKey>);

impl PublicKeys {
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let keys = match v.get("keys") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => vec![v],
        };
        let mut out = HashMap::new();
        for k in keys {
            let (Some(kid), Some(x)) = (k["kid"].as_str(), k["x"].as_str()) else {
                return Err("each key needs `kid` and `x`".into());
            };
            if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
                return Err(format!("key {kid} is not an Ed25519 (OKP) key"));
            }
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(x)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("key {kid}: `x` is not base64url of 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|e| format!("key {kid}: {e}"))?;
            out.insert(kid.to_owned(), key);
        }
        if out.is_empty() {
            return Err("no key found".into());
        }
        Ok(PublicKeys(out))
    }
}

/// The first line of a verifiable export: where the range starts and the frontier of the log
/// before it (the roots of `merkle::decompose(0, start)`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RangeStart {
    pub start: u64,
    pub end: u64,
    pub left: Vec<String>,
}

/// The last line: the subtrees `merkle::decompose(end, tree_size)` that complete the tree of
/// checkpoint size `tree_size`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RangeEnd {
    pub tree_size: u64,
    pub right: Vec<String>,
}

/// A sealed event whose row is gone from the database: its position and sealed hash remain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingRow {
    pub seq: u64,
    pub id: String,
    pub leaf_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The event's fields no longer hash to the leaf sealed for it.
    Modified,
    /// A sealed position has no event.
    Missing,
    /// An event that is not in the sealed log where it claims to be, or was sealed long after
    /// it claims to have happened.
    Inserted,
    /// Events appear out of their sealed order, or carry each other's contents.
    Reordered,
    /// The events do not reproduce the signed tree head.
    RootMismatch,
    /// A checkpoint's signature does not verify with the published key.
    BadSignature,
    /// The export is incomplete or not in the expected format.
    Malformed,
}

/// One problem, naming the event where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub kind: FindingKind,
    pub seq: Option<u64>,
    pub event_id: Option<String>,
    pub detail: String,
}

impl Finding {
    fn new(kind: FindingKind, seq: Option<u64>, event_id: Option<&str>, detail: String) -> Self {
        Finding {
            kind,
            seq,
            event_id: event_id.map(str::to_owned),
            detail,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The log positions covered, [start, end).
    pub start: u64,
    pub end: u64,
    /// Events read.
    pub events: u64,
    /// The checkpoint the range was checked against, when its signature verified.
    pub checkpoint: Option<Checkpoint>,
    /// Whether the range reproduced that checkpoint's root.
    pub root_verified: bool,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.root_verified && self.findings.is_empty()
    }
}

/// How far ahead of a gap events are held in order before the gap counts as missing.
const REORDER_WINDOW: usize = 1 << 16;
/// How many mismatching events are kept to tell swapped contents from modified ones.
const MISMATCH_KEEP: usize = 256;

/// Checks a range of the sealed log against signed checkpoints, event by event, in constant
/// memory (apart from events arriving out of order). Fed by the NDJSON reader below or, on the
/// server, straight from the database.
pub struct Verifier {
    /// Checkpoints by size (largest issued_at per size) whose signatures verified.
    checkpoints: Vec<Checkpoint>,
    /// The latest event time seen so far and its event, for the back-dating check.
    latest: Option<(String, String)>,
    start: u64,
    end: u64,
    frontier: Option<Frontier>,
    expected: u64,
    max_seen: Option<(u64, String)>,
    /// The id of the last event placed in order, to locate a gap for the reader.
    last_placed: Option<String>,
    pending: BTreeMap<u64, (Hash, String)>,
    mismatched: Vec<(u64, LoggedEvent)>,
    events: u64,
    root_verified: bool,
    checkpoint: Option<Checkpoint>,
    findings: Vec<Finding>,
    started: bool,
    finished: bool,
}

impl Verifier {
    pub fn new(keys: &PublicKeys, checkpoints: &[Checkpoint]) -> Self {
        let mut findings = Vec::new();
        let mut good: Vec<Checkpoint> = Vec::new();
        for c in checkpoints {
            if c.verify(keys) && c.root().is_some() {
                good.push(c.clone());
            } else {
                findings.push(Finding::new(
                    FindingKind::BadSignature,
                    None,
                    None,
                    format!(
                        "checkpoint {} (size {}) does not verify with the public key",
                        c.n, c.tree_size
                    ),
                ));
            }
        }
        Verifier {
            checkpoints: good,
            latest: None,
            start: 0,
            end: 0,
            frontier: None,
            expected: 0,
            max_seen: None,
            last_placed: None,
            pending: BTreeMap::new(),
            mismatched: Vec::new(),
            events: 0,
            root_verified: false,
            checkpoint: None,
            findings,
            started: false,
            finished: false,
        }
    }

    /// A problem found outside the range's events (the server's unsealed-row check).
    pub fn note(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn find(&mut self, kind: FindingKind, seq: Option<u64>, id: Option<&str>, detail: String) {
        self.findings.push(Finding::new(kind, seq, id, detail));
    }

    pub fn range_start(&mut self, start: u64, end: u64, left: &[Hash]) {
        self.started = true;
        self.start = start;
        self.end = end;
        self.expected = start;
        self.frontier = Frontier::from_parts(start, left);
        if self.frontier.is_none() {
            self.find(
                FindingKind::Malformed,
                None,
                None,
                format!("the range header's left frontier does not fit position {start}"),
            );
        }
    }

    /// A sealed position whose event row is gone.
    pub fn missing(&mut self, seq: u64, id: &str, sealed: Hash) {
        self.find(
            FindingKind::Missing,
            Some(seq),
            Some(id),
            format!("event {id} was sealed at position {seq} and is gone"),
        );
        self.place(seq, sealed, id);
    }

    pub fn event(&mut self, e: &LoggedEvent) {
        self.events += 1;
        let recomputed = e.leaf_hash();
        let Some(seq) = e.seq else {
            self.find(
                FindingKind::Inserted,
                None,
                Some(&e.id),
                format!(
                    "event {} has no log position: it is not in the sealed log",
                    e.id
                ),
            );
            return;
        };
        let Some(sealed) = e.leaf_hash.as_deref().and_then(merkle::from_hex) else {
            self.find(
                FindingKind::Inserted,
                Some(seq),
                Some(&e.id),
                format!("event {} at position {seq} has no sealed leaf hash", e.id),
            );
            return;
        };
        if seq < self.start
            || seq >= self.end
            || seq < self.expected
            || self.pending.contains_key(&seq)
        {
            self.find(
                FindingKind::Inserted,
                Some(seq),
                Some(&e.id),
                format!(
                    "event {} claims position {seq}, which is outside the range or already taken",
                    e.id
                ),
            );
            return;
        }
        if recomputed != sealed {
            if self.mismatched.len() < MISMATCH_KEEP {
                self.mismatched.push((seq, e.clone()));
            } else {
                self.modified(seq, &e.id);
            }
        }
        self.check_time(seq, e);
        match &self.max_seen {
            Some((max, other)) if *max > seq => {
                let detail = format!(
                    "event {} (position {seq}) comes after event {other} (position {max})",
                    e.id
                );
                self.find(FindingKind::Reordered, Some(seq), Some(&e.id), detail);
            }
            _ => self.max_seen = Some((seq, e.id.clone())),
        }
        self.place(seq, sealed, &e.id);
    }

    fn modified(&mut self, seq: u64, id: &str) {
        self.find(
            FindingKind::Modified,
            Some(seq),
            Some(id),
            format!("event {id} at position {seq} differs from what was sealed"),
        );
    }

    /// Times share one fixed-width format, so the common case (not older than the latest seen)
    /// is a string comparison; only an older time is parsed.
    fn check_time(&mut self, seq: u64, e: &LoggedEvent) {
        let Some((latest, latest_id)) = &self.latest else {
            self.latest = Some((e.occurred_at.clone(), e.id.clone()));
            return;
        };
        if e.occurred_at >= *latest {
            self.latest = Some((e.occurred_at.clone(), e.id.clone()));
            return;
        }
        let parse = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.fZ").ok();
        let back_dated = match (parse(&e.occurred_at), parse(latest)) {
            (Some(t), Some(l)) => t < l - LATE_GRACE,
            _ => true,
        };
        if back_dated {
            let detail = format!(
                "event {} claims to have occurred at {}, more than {} minutes before event \
                 {latest_id} ({latest}) that was sealed ahead of it: it was added late",
                e.id,
                e.occurred_at,
                LATE_GRACE.num_minutes()
            );
            self.find(FindingKind::Inserted, Some(seq), Some(&e.id), detail);
        }
    }

    fn place(&mut self, seq: u64, sealed: Hash, id: &str) {
        if seq != self.expected {
            self.pending.insert(seq, (sealed, id.to_owned()));
            if self.pending.len() > REORDER_WINDOW {
                self.give_up_gap();
            }
            return;
        }
        self.append(sealed, id.to_owned());
        while let Some((h, id)) = self.pending.remove(&self.expected) {
            self.append(h, id);
        }
    }

    fn append(&mut self, h: Hash, id: String) {
        if let Some(f) = self.frontier.as_mut() {
            f.push_leaf(h);
        }
        self.last_placed = Some(id);
        self.expected += 1;
    }

    /// A gap that is not filled: its positions are missing and the root cannot be checked.
    fn give_up_gap(&mut self) {
        let Some((&next, _)) = self.pending.iter().next() else {
            return;
        };
        self.gap_missing(self.expected, next);
        self.frontier = None;
        self.expected = next;
        while let Some((h, id)) = self.pending.remove(&self.expected) {
            self.append(h, id);
        }
    }

    /// The ids of a deleted line are gone with it; its neighbours say where to look.
    fn gap_missing(&mut self, from: u64, to: u64) {
        let before = self
            .last_placed
            .clone()
            .unwrap_or_else(|| "the range start".into());
        let after = self
            .pending
            .get(&to)
            .map_or_else(|| "the range end".to_owned(), |(_, id)| id.clone());
        let shown = (to - from).min(100);
        for seq in from..from + shown {
            self.find(
                FindingKind::Missing,
                Some(seq),
                None,
                format!("no event at position {seq} (between {before} and {after})"),
            );
        }
        if to - from > shown {
            self.find(
                FindingKind::Missing,
                Some(from + shown),
                None,
                format!(
                    "… and {} more positions up to {}",
                    to - from - shown,
                    to - 1
                ),
            );
        }
    }

    /// The proof line: complete the tree to `tree_size` and compare with that checkpoint.
    pub fn range_end(&mut self, tree_size: u64, right: &[Hash]) {
        self.finished = true;
        while !self.pending.is_empty() {
            self.give_up_gap();
        }
        if self.expected < self.end {
            self.gap_missing(self.expected, self.end);
            self.frontier = None;
        }
        let Some(cp) = self
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.tree_size == tree_size)
            .cloned()
        else {
            self.find(
                FindingKind::Malformed,
                None,
                None,
                format!("no verified checkpoint of size {tree_size} was given"),
            );
            return;
        };
        self.checkpoint = Some(cp.clone());
        let Some(mut f) = self.frontier.take() else {
            return;
        };
        let shape = merkle::decompose(self.end, tree_size);
        let fits = shape.len() == right.len()
            && shape
                .iter()
                .zip(right)
                .all(|((level, _), h)| f.push_subtree(*level, *h));
        if fits && Some(f.root()) == cp.root() {
            self.root_verified = true;
        } else {
            self.find(
                FindingKind::RootMismatch,
                None,
                None,
                format!(
                    "positions {}..{} do not reproduce the root of checkpoint {} (size {tree_size})",
                    self.start, self.end, cp.n
                ),
            );
        }
    }

    pub fn finish(mut self) -> Report {
        if !self.started {
            self.find(
                FindingKind::Malformed,
                None,
                None,
                "the export has no range header".into(),
            );
        } else if !self.finished {
            self.find(
                FindingKind::Malformed,
                None,
                None,
                "the export has no proof line: it is truncated".into(),
            );
        }
        // Two mismatching events that each hash correctly under the other's id swapped contents.
        let mut swapped = vec![false; self.mismatched.len()];
        for i in 0..self.mismatched.len() {
            for j in i + 1..self.mismatched.len() {
                let (a, b) = (&self.mismatched[i].1, &self.mismatched[j].1);
                let mut a_as_b = a.clone();
                a_as_b.id = b.id.clone();
                let mut b_as_a = b.clone();
                b_as_a.id = a.id.clone();
                let sealed = |e: &LoggedEvent| e.leaf_hash.as_deref().and_then(merkle::from_hex);
                if Some(a_as_b.leaf_hash()) == sealed(b) && Some(b_as_a.leaf_hash()) == sealed(a) {
                    swapped[i] = true;
                    swapped[j] = true;
                    let detail = format!(
                        "events {} (position {}) and {} (position {}) carry each other's contents",
                        a.id, self.mismatched[i].0, b.id, self.mismatched[j].0
                    );
                    self.findings.push(Finding::new(
                        FindingKind::Reordered,
                        Some(self.mismatched[i].0),
                        Some(&a.id),
                        detail,
                    ));
                }
            }
        }
        let mismatched = std::mem::take(&mut self.mismatched);
        for ((seq, e), s) in mismatched.iter().zip(swapped) {
            if !s {
                self.modified(*seq, &e.id);
            }
        }
        self.findings
            .sort_by_key(|f| (f.seq.unwrap_or(u64::MAX), f.kind as u8));
        Report {
            start: self.start,
            end: self.end,
            events: self.events,
            checkpoint: self.checkpoint,
            root_verified: self.root_verified,
            findings: self.findings,
        }
    }
}

fn hashes(list: &[String]) -> Option<Vec<Hash>> {
    list.iter().map(|s| merkle::from_hex(s)).collect()
}

/// Verifies an NDJSON export (a range header, events, a proof line) against checkpoints, with
/// only the public keys: the offline auditor's check. Reads line by line.
pub fn verify_export(
    events: impl std::io::BufRead,
    checkpoints: &[Checkpoint],
    keys: &PublicKeys,
) -> std::io::Result<Report> {
    #[derive(Deserialize)]
    struct Header {
        range: RangeStart,
    }
    #[derive(Deserialize)]
    struct Trailer {
        proof: RangeEnd,
    }
    #[derive(Deserialize)]
    struct Gone {
        missing: MissingRow,
    }
    let mut v = Verifier::new(keys, checkpoints);
    let mut line = Vec::with_capacity(1024);
    let mut reader = events;
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let bad = |v: &mut Verifier| {
            v.find(
                FindingKind::Malformed,
                None,
                None,
                format!("line {number} is not an export record"),
            )
        };
        if text.starts_with(b"{\"range\"") {
            match serde_json::from_slice::<Header>(text)
                .ok()
                .and_then(|h| Some((hashes(&h.range.left)?, h.range)))
            {
                Some((left, r)) => v.range_start(r.start, r.end, &left),
                None => bad(&mut v),
            }
        } else if text.starts_with(b"{\"proof\"") {
            match serde_json::from_slice::<Trailer>(text)
                .ok()
                .and_then(|t| Some((hashes(&t.proof.right)?, t.proof)))
            {
                Some((right, p)) => v.range_end(p.tree_size, &right),
                None => bad(&mut v),
            }
        } else if text.starts_with(b"{\"missing\"") {
            match serde_json::from_slice::<Gone>(text)
                .ok()
                .and_then(|g| Some((merkle::from_hex(&g.missing.leaf_hash)?, g.missing)))
            {
                Some((h, m)) => v.missing(m.seq, &m.id, h),
                None => bad(&mut v),
            }
        } else {
            match serde_json::from_slice::<LoggedEvent>(text) {
                Ok(e) => v.event(&e),
                Err(_) => bad(&mut v),
            }
        }
    }
    Ok(v.finish())
}

/// Reads checkpoints from the body of `GET /v1/audit/checkpoints` (its `items`, plus `latest`),
/// a JSON array of checkpoints, or one checkpoint per line.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let mut list: Vec<serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.clone(),
            serde_json::Value::Object(o) if o.contains_key("items") => {
                let mut items = o["items"].as_array().cloned().unwrap_or_default();
                if let Some(latest) = o.get("latest").filter(|l| !l.is_null()) {
                    items.push(latest.clone());
                }
                items
            }
            other => vec![other.clone()],
        };
        list.dedup();
        return list
            .into_iter()
            .map(|c| serde_json::from_value(c).map_err(|e| format!("not a checkpoint: {e}")))
            .collect();
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not a checkpoint: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::of_status(200), Outcome::Success);
        assert_eq!(Outcome::of_status(201), Outcome::Success);
        for s in [401, 403, 404] {
            assert_eq!(Outcome::of_status(s), Outcome::Denied);
        }
        assert_eq!(Outcome::of_status(400), Outcome::Failure);
    }

    #[test]
    fn operations_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (m, r) in protected_routes() {
            assert!(seen.insert((m, r)), "{m} {r} listed twice");
        }
    }

    fn sample(id: &str) -> LoggedEvent {
        LoggedEvent {
            seq: None,
            leaf_hash: None,
            id: id.into(),
            occurred_at: "2026-11-26T07:00:00.000000Z".into(),
            actor_client_id: None,
            actor_role: None,
            tenant_id: None,
            action: "x".into(),
            resource_type: "t".into(),
            resource_id: None,
            outcome: "success".into(),
            http_status: 200,
            request_id: "r".into(),
            source_addr: None,
        }
    }

    #[test]
    fn times_have_one_fixed_width_form() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 60)
            .unwrap();
        assert_eq!(format_time(t), "2026-01-02T03:04:05.000060Z");
        assert_eq!(
            format_time(t),
            t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
        );
    }

    #[test]
    fn the_leaf_encoding_matches_the_documented_example() {
        let e = sample("a");
        assert_eq!(
            merkle::to_hex(&e.leaf()),
            "01010000000161010000001b323032362d31312d32365430373a30303a30302e3030303030305a00\
             000001000000017801000000017400010000000773756363657373010000000332303001000000017200"
        );
        assert_eq!(
            merkle::to_hex(&e.leaf_hash()),
            "dc8064e72dea86e6bbe45bdf028bcd9a30adedbead74008b33fa9bad0d5a0785"
        );
        // Absent and empty differ, and a value cannot spill into the next field.
        let mut empty = sample("a");
        empty.source_addr = Some(String::new());
        assert_ne!(empty.leaf_hash(), e.leaf_hash());
        let (mut x, mut y) = (sample("a"), sample("a"));
        x.action = "ab".into();
        x.resource_type = "c".into();
        y.action = "a".into();
        y.resource_type = "bc".into();
        assert_ne!(x.leaf_hash(), y.leaf_hash());
    }

    /// A checkpoint signs exactly its text; any change breaks it, and only its key verifies it.
    #[test]
    fn checkpoints_verify_only_unchanged_and_with_their_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let keys = PublicKeys(
            [("k".to_owned(), key.verifying_key())]
                .into_iter()
                .collect(),
        );
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(7, 0, 0)
            .unwrap();
        let c = Checkpoint::sign(3, 10, &[1; 32], t, "k", &key);
        assert!(c.verify(&keys));
        for changed in [
            Checkpoint {
                tree_size: 11,
                ..c.clone()
            },
            Checkpoint {
                root_hash: merkle::to_hex(&[2; 32]),
                ..c.clone()
            },
            Checkpoint {
                issued_at: "2026-11-26T07:00:01.000000Z".into(),
                ..c.clone()
            },
            Checkpoint::sign(3, 10, &[1; 32], t, "k", &other),
        ] {
            assert!(!changed.verify(&keys));
        }
    }

    /// The verifier over an in-memory export of a 20-event log, range [5, 15).
    #[test]
    fn the_offline_verifier_accepts_an_intact_range_and_names_each_tampering() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let keys = PublicKeys(
            [("k".to_owned(), key.verifying_key())]
                .into_iter()
                .collect(),
        );
        let events: Vec<LoggedEvent> = (0..20)
            .map(|i| {
                let mut e = sample(&format!("e{i}"));
                e.seq = Some(i);
                e.leaf_hash = Some(merkle::to_hex(&e.leaf_hash()));
                e
            })
            .collect();
        let leaves: Vec<Hash> = events.iter().map(|e| e.leaf_hash()).collect();
        let mut get = |level: u32, index: u64| -> Result<Hash, ()> {
            let start = (index << level) as usize;
            let mut f = Frontier::default();
            for h in &leaves[start..start + (1 << level)] {
                f.push_leaf(*h);
            }
            Ok(f.root())
        };
        let t = chrono::NaiveDateTime::parse_from_str("2026-11-26T07:00:00Z", "%Y-%m-%dT%H:%M:%SZ")
            .unwrap();
        let root = merkle::root(&mut get, 20).unwrap();
        let cp = Checkpoint::sign(0, 20, &root, t, "k", &key);
        let hex = |parts: Vec<(u32, u64)>, get: &mut dyn FnMut(u32, u64) -> Result<Hash, ()>| {
            parts
                .into_iter()
                .map(|(l, i)| merkle::to_hex(&get(l, i).unwrap()))
                .collect::<Vec<_>>()
        };
        let header = serde_json::json!({"range": RangeStart { start: 5, end: 15, left: hex(merkle::decompose(0, 5), &mut get) }});
        let trailer = serde_json::json!({"proof": RangeEnd { tree_size: 20, right: hex(merkle::decompose(15, 20), &mut get) }});
        let lines = |body: Vec<String>| {
            let mut out = vec![header.to_string()];
            out.extend(body);
            out.push(trailer.to_string());
            out.join("\n")
        };
        let body: Vec<String> = events[5..15]
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let check = |text: String| {
            verify_export(text.as_bytes(), std::slice::from_ref(&cp), &keys).unwrap()
        };

        let intact = check(lines(body.clone()));
        assert!(intact.ok(), "{:#?}", intact.findings);
        assert_eq!(intact.events, 10);

        let named = |r: &Report, kind: FindingKind, id: &str| {
            r.findings
                .iter()
                .any(|f| f.kind == kind && f.event_id.as_deref() == Some(id))
        };
        let mut modified = body.clone();
        modified[2] = modified[2].replace("\"x\"", "\"y\"");
        assert!(named(&check(lines(modified)), FindingKind::Modified, "e7"));

        let mut swapped = body.clone();
        swapped.swap(1, 6);
        let r = check(lines(swapped));
        assert!(named(&r, FindingKind::Reordered, "e6"), "{:#?}", r.findings);
        assert!(
            r.root_verified,
            "a reordering is found while the tree still verifies"
        );

        let mut deleted = body.clone();
        deleted.remove(4);
        let r = check(lines(deleted));
        assert!(r
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Missing && f.seq == Some(9)));

        let mut inserted = body.clone();
        inserted.insert(4, body[3].replace("\"e8\"", "\"forged\""));
        assert!(named(
            &check(lines(inserted)),
            FindingKind::Inserted,
            "forged"
        ));

        let wrong_key = PublicKeys(
            [(
                "k".to_owned(),
                ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
            )]
            .into_iter()
            .collect(),
        );
        let r = verify_export(lines(body).as_bytes(), &[cp], &wrong_key).unwrap();
        assert!(r
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::BadSignature));
        assert!(!r.ok());
    }

    #[test]
    fn only_issued_ids_are_kept_as_claimed_actors() {
        let ctx = RequestCtx {
            request_id: "r".into(),
            source: None,
        };
        let op = operation("POST", "/oauth/token").unwrap();
        let claimed = |text: &str| {
            AuditEvent::anonymous(&ctx, op, 401)
                .claimed_actor(text)
                .actor_client_id
        };
        let id = "01a21769-3cc6-73a1-8a2b-3e117756a90a";
        assert_eq!(claimed(id).as_deref(), Some(id));
        // Anything else names no client and may be a secret or an address pasted into the
        // wrong field: the log keeps none of it, not even trimmed.
        for text in [
            format!("a\nb{}", "x".repeat(500)),
            "eapcs_pasted-secret".to_owned(),
            "sam@example.org".to_owned(),
            id.to_uppercase(),
            format!("{id}\0"),
            String::new(),
        ] {
            assert_eq!(claimed(&text), None, "{text:?}");
        }
    }
}
