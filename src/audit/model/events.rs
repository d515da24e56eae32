//! Access events: what a request writes to the log, and the sealed form auditors read, export
//! and hash.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::operations::Operation;
use crate::audit::merkle::{self, Hash};
use crate::codes::Code;
use crate::extract::RequestCtx;

/// Whether the logged operation was allowed and done, stored as `success`, `denied` or
/// `failure` (the leaf hashes exactly these words).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccessOutcome)]
pub enum Outcome {
    Success,
    /// Refused: authentication, authorisation or tenancy.
    Denied,
    /// Attempted and failed for another reason.
    Failure,
}

impl Code for Outcome {
    const ALL: &'static [Self] = &[Outcome::Success, Outcome::Denied, Outcome::Failure];

    fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

crate::text_code!(Outcome);

impl Outcome {
    pub fn of_status(status: u16) -> Self {
        match status {
            s if s < 400 => Outcome::Success,
            401 | 403 | 404 => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }
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
        e.actor_role = Some(SYSTEM_ROLE.into());
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

/// The one text form of an event time, in leaves and exports: UTC, microseconds, `Z`.
pub fn format_time(t: NaiveDateTime) -> String {
    let mut buf = Vec::with_capacity(TIME_LEN);
    write_time(&mut buf, t);
    // Only ASCII digits and separators were written.
    String::from_utf8(buf).expect("ASCII")
}

/// The length of `format_time`'s text.
const TIME_LEN: usize = 27;

/// Appends `format_time`'s text to `buf`. By hand rather than through `format!` or `format`'s
/// pattern interpreter: the export writes one for every event, and the formatter's machinery
/// was a visible share of its CPU. (Stored times never hold a leap second; the modulo only
/// keeps six digits.)
pub fn write_time(buf: &mut Vec<u8>, t: NaiveDateTime) {
    use chrono::{Datelike, Timelike};
    let micros = (t.nanosecond() % 1_000_000_000) / 1_000;
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Never written by the service (event times are its own clock's), but a timestamp
        // column can hold them: the same text as the formatter gives, wider than four digits.
        let (h, m, s) = (t.hour(), t.minute(), t.second());
        let (mo, d) = (t.month(), t.day());
        let text = format!("{year:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{micros:06}Z");
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    let mut out = [0u8; TIME_LEN];
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 6, micros);
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        out[at] = sep;
    }
    buf.extend_from_slice(&out);
}

/// What a logged event records was done: the documented list (`LoggedAction`) is the operation table's actions
/// and the service's own ([`super::operations::actions`]). The sealed field stays text, so an
/// export verifies byte for byte whatever the list becomes.
pub struct LoggedAction;

impl utoipa::PartialSchema for LoggedAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        serde_json::from_value(serde_json::json!({
            "type": "string",
            "description": "What was done, e.g. `contact.read`. New operations add actions.",
            "enum": super::operations::actions(),
        }))
        .expect("a valid schema")
    }
}

impl utoipa::ToSchema for LoggedAction {}

/// Who acted: a client's role, `operator` for a person at the command line (an API client
/// created with `admin create-client`), or `system` for the service's own work (offer expiry,
/// the purge).
pub struct ActorRole;

impl utoipa::PartialSchema for ActorRole {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::codes::Code;
        let mut roles: Vec<&str> = crate::auth::model::Role::ALL
            .iter()
            .map(|r| r.code())
            .collect();
        roles.extend([OPERATOR_ROLE, SYSTEM_ROLE]);
        serde_json::from_value(serde_json::json!({"type": "string", "enum": roles}))
            .expect("a valid schema")
    }
}

impl utoipa::ToSchema for ActorRole {}

/// The actor role of the service's own events.
const SYSTEM_ROLE: &str = "system";

/// The actor role of what an operator does at the command line.
pub const OPERATOR_ROLE: &str = "operator";

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
    #[schema(format = DateTime)]
    pub occurred_at: String,
    pub actor_client_id: Option<String>,
    #[schema(value_type = Option<ActorRole>)]
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    #[schema(value_type = LoggedAction)]
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    #[schema(value_type = Outcome)]
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::operation;
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

    pub(in crate::audit::model) fn sample(id: &str) -> LoggedEvent {
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
        // Every field at both ends of its range, against chrono's own formatter.
        let edges = [
            (1, 1, 1, 0, 0, 0, 0),
            (999, 12, 31, 23, 59, 59, 999_999),
            (2026, 11, 26, 7, 20, 0, 123_456),
            (9999, 12, 31, 23, 59, 59, 999_999),
        ];
        for (y, mo, d, h, mi, s, us) in edges {
            let t = chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_micro_opt(h, mi, s, us)
                .unwrap();
            assert_eq!(
                format_time(t),
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
        }
        // Outside four digits the text only widens (chrono would add a sign).
        let far = chrono::NaiveDate::from_ymd_opt(12026, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 6)
            .unwrap();
        assert_eq!(format_time(far), "12026-01-02T03:04:05.000006Z");
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
