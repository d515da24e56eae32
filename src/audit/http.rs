//! The auditor's API: read and export the sealed access log, fetch signed checkpoints and
//! proofs, and have the server re-derive the log. Every call by an auditor is itself logged
//! (one event per call, never one per row returned), before anything is sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::merkle::{self, Hash};
use super::model::{
    Checkpoint, Finding, LoggedEvent, MissingRow, PublicKeys, RangeEnd, RangeStart, Report,
    Verifier,
};
use super::store::{self, Filter, SealedRow};
use crate::app::AppState;
use crate::auth::caller::Auditor;
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiQuery, PathId};
use crate::pagination::{Cursor, Paging};

/// Rows per database round trip while exporting: large enough to amortise the query, small
/// enough that memory stays flat and no connection is held while the client reads.
const CHUNK: i64 = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    Success,
    Denied,
    Failure,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events that occurred at or after this time (RFC 3339, e.g. `2026-11-25T00:00:00Z`).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Events that occurred before this time (RFC 3339). At or before `from`, the window is
    /// empty.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only events by this client id.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub actor: Option<String>,
    /// Only this action, e.g. `contact.read`.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub action: Option<String>,
    /// Only events about this resource (e.g. a referral id).
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub resource_id: Option<String>,
    #[param(inline)]
    pub outcome: Option<OutcomeFilter>,
    /// The `next_cursor` of the previous page (JSON only).
    #[param(pattern = "^[0-9]{1,18}$", min_length = 1, max_length = 18)]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100; JSON only).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One page of the sealed log, in log order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<LoggedEvent>,
    pub next_cursor: Option<String>,
    /// The log as of this checkpoint's size is what was searched.
    pub tree_size: u64,
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<NaiveDateTime>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.naive_utc())
                .map_err(|_| {
                    ApiError::validation(field, "invalid", "must be an RFC 3339 date-time")
                })
        })
        .transpose()
}

fn encode_cursor(n: u64) -> String {
    n.to_string()
}

/// Cursors are log positions (events) or checkpoint numbers, in decimal: every value the
/// documented pattern admits is a position, so a well-formed cursor is never refused.
pub struct LogPosition;

impl Cursor for LogPosition {
    type Position = u64;
    const PATTERN: &'static str = "^[0-9]{1,18}$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = 18;

    fn decode(c: &str) -> Result<u64, ApiError> {
        (c.len() <= 18 && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
            .then(|| c.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| ApiError::validation("after", "invalid", "not a cursor from this API"))
    }
}

/// A checkpoint number; the history is newest first.
pub struct CheckpointNumber;

impl Cursor for CheckpointNumber {
    type Position = u64;
    const ABOUT: &'static str =
        "The `next_cursor` of the previous page (older checkpoints follow).";
    const PATTERN: &'static str = LogPosition::PATTERN;
    const MIN_LENGTH: usize = LogPosition::MIN_LENGTH;
    const MAX_LENGTH: usize = LogPosition::MAX_LENGTH;

    fn decode(c: &str) -> Result<u64, ApiError> {
        LogPosition::decode(c)
    }
}

/// The paging of the events list's JSON form, which `EventQuery` documents.
pub type EventPaging = Paging<LogPosition, 1000, 100>;

/// The validated filters, with the time range still to be mapped onto log positions.
struct Selection {
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
    filter: Filter,
    after: Option<u64>,
    limit: i64,
    /// A filter no logged event can match: events hold no control characters (the log cleans
    /// a claimed client id), so text with one selects nothing, and never reaches SQL (a NUL
    /// byte is an error in PostgreSQL `text`).
    matches_nothing: bool,
}

impl EventQuery {
    fn selection(self) -> Result<Selection, ApiError> {
        let from = parse_time("from", &self.from)?;
        // `to` at or before `from` is an empty window, not an error: each bound is valid on
        // its own, and a search over no time finds nothing (as `/v1/audit/verify` does).
        let to = parse_time("to", &self.to)?;
        let (after, limit) = EventPaging::new(self.after, self.limit).resolve()?;
        let matches_nothing = [&self.actor, &self.action, &self.resource_id]
            .into_iter()
            .flatten()
            .any(|v| v.chars().any(char::is_control));
        Ok(Selection {
            matches_nothing,
            from,
            to,
            after,
            limit,
            filter: Filter {
                start: 0,
                end: 0,
                actor: self.actor,
                action: self.action,
                resource_id: self.resource_id,
                outcome: self.outcome.map(|o| {
                    match o {
                        OutcomeFilter::Success => "success",
                        OutcomeFilter::Denied => "denied",
                        OutcomeFilter::Failure => "failure",
                    }
                    .to_owned()
                }),
            },
        })
    }
}

/// Maps the time range onto the log as of the latest checkpoint: from the first position whose
/// event occurred at or after `from` to just past the last one that occurred before `to`. The
/// selection is a contiguous stretch of the log, so an export of it can be proved complete.
fn resolve(conn: &mut AnyConnection, sel: &mut Selection) -> Result<u64, ApiError> {
    let size = store::latest_checkpoint(conn)?.map_or(0, |c| c.tree_size);
    if sel.matches_nothing {
        (sel.filter.start, sel.filter.end) = (0, 0);
        return Ok(size);
    }
    let start = match sel.from {
        Some(t) => store::first_seq_from(conn, t, size)?,
        None => 0,
    };
    let end = match sel.to {
        Some(t) => store::end_seq_before(conn, t, size)?,
        None => size,
    };
    sel.filter.start = start;
    sel.filter.end = end.max(start);
    Ok(size)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Ndjson,
    Csv,
}

fn format_of(req: &HttpRequest) -> Format {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/x-ndjson") {
        Format::Ndjson
    } else if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Json
    }
}

/// Searches the sealed access log, or exports it.
///
/// With `Accept: application/json` (the default) one page at a time. With
/// `Accept: application/x-ndjson` or `text/csv` the whole selection is streamed in log order,
/// in constant memory. An NDJSON export with no filter other than the time range is a
/// contiguous stretch of the log and carries its proof: a first line
/// `{"range":{"start","end","left"}}` and a last line `{"proof":{"tree_size","right"}}`, so
/// `eap-referrals audit verify` can check it against a signed checkpoint. A sealed event whose
/// row has gone from the database appears as `{"missing":{"seq","id","leaf_hash"}}`. The
/// search covers the log up to the latest checkpoint (events appear within one checkpoint
/// interval). The call is logged once, before the first byte is sent.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(EventQuery),
    responses(
        (status = 200, description = "Events in log order", content(
            (EventPage = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 422, description = "Invalid filter: bad time, unknown parameter, limit out of \
            range",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/events")]
pub async fn list_events(
    auditor: Auditor,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: ApiQuery<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut sel = query.into_inner()?.selection()?;
    let format = format_of(&req);
    let caller = auditor.0;
    if format == Format::Json {
        let page = state
            .db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    let size = resolve(conn, &mut sel)?;
                    let from = sel.after.map_or(0, |a| a + 1);
                    let rows = store::sealed_page(conn, &sel.filter, from, sel.limit)?;
                    let next_cursor = (rows.len() as i64 == sel.limit)
                        .then(|| rows.last().map(|r| encode_cursor(r.seq as u64)))
                        .flatten();
                    super::record(conn, &[caller.event(None, 200)])?;
                    Ok(EventPage {
                        items: rows.into_iter().filter_map(logged).collect(),
                        next_cursor,
                        tree_size: size,
                    })
                })
            })
            .await?;
        return Ok(HttpResponse::Ok().json(page));
    }
    // The auditor's own event is committed before the first byte leaves.
    let sel = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                resolve(conn, &mut sel)?;
                super::record(conn, &[caller.event(None, 200)])?;
                Ok(sel)
            })
        })
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let db = state.db.clone();
    let start = sel.after.map_or(sel.filter.start, |a| a + 1);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = export(&db, &sel.filter, start, format, &tx) {
            // The body is cut short; a verifier sees the missing proof line.
            tracing::warn!(error = %e, "access-log export failed part-way");
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ChannelBody(rx)))
}

fn logged(r: SealedRow) -> Option<LoggedEvent> {
    let hash = merkle::to_hex(&r.leaf_hash);
    r.event.map(|e| e.logged(Some(r.seq as u64), Some(hash)))
}

/// A response body fed by the blocking exporter through a bounded channel: the exporter waits
/// while the client is slow, so memory holds a few chunks at most.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl MessageBody for ChannelBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().0.poll_recv(cx)
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Stops quietly when the client has gone.
fn send(tx: &Sender, buf: &mut Vec<u8>) -> bool {
    let chunk = Bytes::from(std::mem::take(buf));
    tx.blocking_send(Ok(chunk)).is_ok()
}

fn nodes(conn: &mut AnyConnection, parts: &[(u32, u64)]) -> Result<Vec<String>, ApiError> {
    parts
        .iter()
        .map(|&(level, index)| store::node(conn, level, index).map(|h| merkle::to_hex(&h)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::from)
}

fn export(
    db: &Db,
    filter: &Filter,
    start: u64,
    format: Format,
    tx: &Sender,
) -> Result<(), ApiError> {
    let proved = format == Format::Ndjson && filter.is_contiguous() && start == filter.start;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    if proved {
        let left = nodes(&mut *db.get()?, &merkle::decompose(0, filter.start))?;
        let header = RangeStart {
            start: filter.start,
            end: filter.end,
            left,
        };
        serde_json::to_writer(&mut buf, &serde_json::json!({ "range": header }))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        buf.push(b'\n');
    }
    if format == Format::Csv {
        buf.extend_from_slice(CSV_HEADER.as_bytes());
    }
    // One thread reads chunks while this one serialises the previous: the database and the
    // encoding overlap instead of taking turns.
    let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel::<Result<Vec<SealedRow>, ApiError>>(2);
    let finished = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut next = start;
            loop {
                // A connection per chunk: none is held while the client reads.
                let page = db.get().and_then(|mut c| {
                    store::sealed_page(&mut c, filter, next, CHUNK).map_err(ApiError::from)
                });
                let last = match &page {
                    Ok(rows) => {
                        if let Some(r) = rows.last() {
                            next = r.seq as u64 + 1;
                        }
                        (rows.len() as i64) < CHUNK
                    }
                    Err(_) => true,
                };
                if rows_tx.send(page).is_err() || last {
                    break;
                }
            }
        });
        for page in rows_rx {
            for r in page? {
                match format {
                    Format::Csv => {
                        if let Some(e) = logged(r) {
                            csv_row(&mut buf, &e);
                        }
                    }
                    _ => {
                        let line = match r.event {
                            Some(_) => serde_json::to_writer(&mut buf, &logged(r)),
                            None => serde_json::to_writer(
                                &mut buf,
                                &serde_json::json!({ "missing": MissingRow {
                                    seq: r.seq as u64,
                                    leaf_hash: merkle::to_hex(&r.leaf_hash),
                                    id: r.event_id,
                                }}),
                            ),
                        };
                        line.map_err(|e| ApiError::Internal(e.to_string()))?;
                        buf.push(b'\n');
                    }
                }
            }
            if !send(tx, &mut buf) {
                return Ok(false);
            }
        }
        Ok::<_, ApiError>(true)
    })?;
    if !finished {
        return Ok(());
    }
    if proved {
        // The latest checkpoint now, which may be newer than the one the range was cut from:
        // the proof completes the tree to whatever size it signs.
        let mut conn = db.get()?;
        let size = store::latest_checkpoint(&mut conn)?.map_or(0, |c| c.tree_size);
        let right = nodes(&mut conn, &merkle::decompose(filter.end, size))?;
        serde_json::to_writer(
            &mut buf,
            &serde_json::json!({ "proof": RangeEnd { tree_size: size, right } }),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        buf.push(b'\n');
        send(tx, &mut buf);
    }
    Ok(())
}

const CSV_HEADER: &str = "seq,leaf_hash,id,occurred_at,actor_client_id,actor_role,tenant_id,\
action,resource_type,resource_id,outcome,http_status,request_id,source_addr\r\n";

/// One CSV field. Some values are the caller's words (a claimed client id on a failed token
/// request, a request id): one that starts like a spreadsheet formula is neutralised with a
/// leading `'` (OWASP's advice for CSV injection), so opening the export cannot run it. The
/// NDJSON export carries values unchanged and is the one to verify.
fn csv_field(buf: &mut Vec<u8>, v: Option<&str>) {
    let v = v.unwrap_or("");
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let owned;
    let v = if formula {
        owned = format!("'{v}");
        owned.as_str()
    } else {
        v
    };
    if formula || v.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(v.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(v.as_bytes());
    }
}

fn csv_row(buf: &mut Vec<u8>, e: &LoggedEvent) {
    let seq = e.seq.map(|s| s.to_string());
    let status = e.http_status.to_string();
    let fields = [
        seq.as_deref(),
        e.leaf_hash.as_deref(),
        Some(e.id.as_str()),
        Some(e.occurred_at.as_str()),
        e.actor_client_id.as_deref(),
        e.actor_role.as_deref(),
        e.tenant_id.as_deref(),
        Some(e.action.as_str()),
        Some(e.resource_type.as_str()),
        e.resource_id.as_deref(),
        Some(e.outcome.as_str()),
        Some(status.as_str()),
        Some(e.request_id.as_str()),
        e.source_addr.as_deref(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        csv_field(buf, *f);
    }
    buf.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------------------------
// Checkpoints, the public key and proofs.

pub type CheckpointQuery = Paging<CheckpointNumber, 1000, 100>;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointPage {
    /// The newest checkpoint (absent before the first is issued).
    pub latest: Option<Checkpoint>,
    /// History, newest first.
    pub items: Vec<Checkpoint>,
    pub next_cursor: Option<String>,
}

/// Signed checkpoints (tree heads) of the access log: the latest and the history.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(CheckpointQuery),
    responses(
        (status = 200, description = "The latest checkpoint and one page of history",
         body = CheckpointPage),
    ),
)]
#[get("/v1/audit/checkpoints")]
pub async fn list_checkpoints(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<CheckpointQuery>,
) -> Result<web::Json<CheckpointPage>, ApiError> {
    let (before, limit) = query.into_inner()?.resolve()?;
    let caller = auditor.0;
    let page = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let latest = store::latest_checkpoint(conn)?;
                let items = store::checkpoints(conn, before, limit)?;
                super::record(conn, &[caller.event(None, 200)])?;
                let next_cursor = (items.len() as i64 == limit)
                    .then(|| items.last().map(|c| encode_cursor(c.n)))
                    .flatten();
                Ok(CheckpointPage {
                    latest,
                    items,
                    next_cursor,
                })
            })
        })
        .await?;
    Ok(web::Json(page))
}

/// A JWK (RFC 8037 OKP) of a checkpoint signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointJwk {
    #[schema(example = "OKP")]
    pub kty: &'static str,
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id checkpoints name (RFC 7638 thumbprint).
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointJwks {
    pub keys: Vec<CheckpointJwk>,
}

/// The public key that verifies checkpoint signatures (a JWK Set). It is not the token key.
/// Save it once, from a trusted channel: it is all `eap-referrals audit verify` needs.
#[utoipa::path(
    tag = "audit",
    responses((status = 200, description = "JWK Set", body = CheckpointJwks)),
)]
#[get("/v1/audit/public-key")]
pub async fn public_key(state: web::Data<AppState>) -> HttpResponse {
    let key = &state.keys.checkpoint;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(CheckpointJwks {
            keys: vec![CheckpointJwk {
                kty: "OKP",
                crv: "Ed25519",
                x: key.public_x(),
                kid: key.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            }],
        })
}

pub fn public_keys(state: &AppState) -> PublicKeys {
    let key = &state.keys.checkpoint;
    PublicKeys(
        [(key.kid.clone(), key.signing.verifying_key())]
            .into_iter()
            .collect(),
    )
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// A checkpointed tree size; default the latest checkpoint.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub tree_size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub event_id: String,
    pub seq: u64,
    pub leaf_hash: String,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: Checkpoint,
    /// RFC 6962 audit path, leaf side first, lowercase hex.
    pub audit_path: Vec<String>,
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| merkle::to_hex(h)).collect()
}

fn checkpoint_for(conn: &mut AnyConnection, size: Option<u64>) -> Result<Checkpoint, ApiError> {
    match size {
        // No such checkpoint: there is nothing at that address (404), as for an unknown id.
        Some(s) => store::checkpoint_of_size(conn, s)?.ok_or(ApiError::NotFound),
        None => store::latest_checkpoint(conn)?.ok_or_else(|| ApiError::Conflict {
            detail: "no checkpoint has been issued yet".into(),
            allowed: None,
        }),
    }
}

/// An inclusion proof: where one event sits in the log, and the hashes that lead from its leaf
/// to a signed checkpoint's root (RFC 9162 §2.1.3).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ProofQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 404, description = "No such event in the sealed log",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is not covered by that checkpoint yet, or no \
            checkpoint exists",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or no checkpoint of that size",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/events/{id}/proof")]
pub async fn inclusion_proof(
    auditor: Auditor,
    state: web::Data<AppState>,
    id: PathId,
    query: ApiQuery<ProofQuery>,
) -> Result<web::Json<InclusionProof>, ApiError> {
    let id = id.get()?;
    let q = query.into_inner()?;
    let caller = auditor.0;
    let proof = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                super::record(conn, &[caller.event(Some(&id), 200)])?;
                let (seq, leaf) = store::leaf_of(conn, &id)?.ok_or(ApiError::NotFound)?;
                let checkpoint = checkpoint_for(conn, q.tree_size)?;
                if seq as u64 >= checkpoint.tree_size {
                    return Err(ApiError::Conflict {
                        detail: "the event was sealed after this checkpoint; ask again later"
                            .into(),
                        allowed: None,
                    });
                }
                let path = merkle::inclusion_proof(
                    &mut |l, i| store::node(conn, l, i),
                    seq as u64,
                    checkpoint.tree_size,
                )?;
                Ok(InclusionProof {
                    event_id: id,
                    seq: seq as u64,
                    leaf_hash: merkle::to_hex(&leaf),
                    checkpoint,
                    audit_path: hexes(&path),
                })
            })
        })
        .await?;
    Ok(web::Json(proof))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older checkpoint's tree size.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub from: u64,
    /// The newer checkpoint's tree size; default the latest.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub to: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: Checkpoint,
    pub to: Checkpoint,
    /// RFC 6962 consistency proof, lowercase hex.
    pub proof: Vec<String>,
}

/// A consistency proof between two checkpoints: the newer log extends the older one without
/// changing any of its events (RFC 9162 §2.1.4).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 409, description = "No checkpoint has been issued yet",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No checkpoint of that size, or `from` after `to` (no such \
            proof)",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing, unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/consistency")]
pub async fn consistency_proof(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<ConsistencyQuery>,
) -> Result<web::Json<ConsistencyProof>, ApiError> {
    let q = query.into_inner()?;
    let caller = auditor.0;
    let proof = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                super::record(conn, &[caller.event(None, 200)])?;
                let to = checkpoint_for(conn, q.to)?;
                // A proof from a larger log to a smaller one does not exist (RFC 9162 §2.1.4).
                if q.from > to.tree_size {
                    return Err(ApiError::NotFound);
                }
                let from = checkpoint_for(conn, Some(q.from))?;
                let proof = merkle::consistency_proof(
                    &mut |l, i| store::node(conn, l, i),
                    from.tree_size,
                    to.tree_size,
                )?;
                Ok(ConsistencyProof {
                    from,
                    to,
                    proof: hexes(&proof),
                })
            })
        })
        .await?;
    Ok(web::Json(proof))
}

// ---------------------------------------------------------------------------------------------
// Server-side verification.

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// First log position to check (default 0).
    #[validate(range(max = 9_223_372_036_854_775_807u64))]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807i64)]
    pub from: Option<u64>,
    /// One past the last position to check (default: the latest checkpoint's size). A range
    /// with `to` at or before `from` is empty: nothing in it can be wrong.
    #[validate(range(max = 9_223_372_036_854_775_807u64))]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807i64)]
    pub to: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// No problem found, and the range reproduced the latest signed checkpoint.
    pub ok: bool,
    /// The first problem in log order.
    pub first_problem: Option<Finding>,
    /// Every problem found (at most 100 listed).
    pub findings: Vec<Finding>,
    pub findings_total: usize,
    pub start: u64,
    pub end: u64,
    pub events: u64,
    pub checkpoint: Option<Checkpoint>,
    pub root_verified: bool,
}

impl From<Report> for VerifyResponse {
    fn from(r: Report) -> Self {
        let ok = r.ok();
        let findings_total = r.findings.len();
        let mut findings = r.findings;
        findings.truncate(100);
        VerifyResponse {
            ok,
            first_problem: findings.first().cloned(),
            findings,
            findings_total,
            start: r.start,
            end: r.end,
            events: r.events,
            checkpoint: r.checkpoint,
            root_verified: r.root_verified,
        }
    }
}

/// Re-derives a range of the log from the database — every event's leaf, the tree and the
/// latest signed checkpoint — and reports the first problem: a modified, missing, inserted or
/// reordered event (named), or a tree that no longer matches its signature. Also reports an
/// unsealed event that claims to predate the latest checkpoint (a row slipped in behind the
/// sealer). Costs one pass over the range.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(VerifyQuery),
    responses(
        (status = 200, description = "The verdict (also when problems are found)",
         body = VerifyResponse),
        (status = 409, description = "No checkpoint has been issued yet",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/verify")]
pub async fn verify_log(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<VerifyQuery>,
) -> Result<web::Json<VerifyResponse>, ApiError> {
    let q = query.into_inner()?;
    let caller = auditor.0;
    let keys = public_keys(&state);
    let report = state
        .db
        .run(move |conn| {
            // Logged first, in its own short transaction: the pass over the log that follows
            // is a long read and must not hold a write transaction open.
            let latest = write_tx(conn, |conn| {
                let latest = checkpoint_for(conn, None)?;
                super::record(conn, &[caller.event(None, 200)])?;
                Ok::<_, ApiError>(latest)
            })?;
            verify_range(conn, &keys, &latest, q.from.unwrap_or(0), q.to)
        })
        .await?;
    Ok(web::Json(report.into()))
}

/// The server's verifier: the same checks as the offline one, fed from the database, over the
/// log as of `latest` (the checkpoint read when the call was logged).
fn verify_range(
    conn: &mut AnyConnection,
    keys: &PublicKeys,
    latest: &Checkpoint,
    start: u64,
    end: Option<u64>,
) -> Result<Report, ApiError> {
    let size = latest.tree_size;
    let end = end.unwrap_or(size).min(size);
    let start = start.min(end);
    let checkpoints = store::checkpoints_from(conn, 0)?;
    let mut v = Verifier::new(keys, &checkpoints);
    let left = decoded(conn, &merkle::decompose(0, start))?;
    v.range_start(start, end, &left);
    let filter = Filter {
        start,
        end,
        ..Filter::default()
    };
    let mut next = start;
    loop {
        let rows = store::sealed_page(conn, &filter, next, CHUNK)?;
        let n = rows.len();
        for r in rows {
            next = r.seq as u64 + 1;
            match r.event {
                Some(e) => {
                    v.event(&e.logged(Some(r.seq as u64), Some(merkle::to_hex(&r.leaf_hash))))
                }
                None => {
                    let sealed: Hash = r.leaf_hash.try_into().unwrap_or([0; 32]);
                    v.missing(r.seq as u64, &r.event_id, sealed);
                }
            }
        }
        if (n as i64) < CHUNK {
            break;
        }
    }
    let right = decoded(conn, &merkle::decompose(end, size))?;
    v.range_end(size, &right);
    // A row that claims to be older than the sealed log's newest event by more than the grace,
    // yet is not sealed, was slipped in behind the sealer.
    if let Some(newest) = store::last_sealed_time(conn)? {
        if let Some(e) = store::unsealed_before(conn, newest - super::model::LATE_GRACE)? {
            v.note(Finding {
                kind: super::model::FindingKind::Inserted,
                seq: None,
                event_id: Some(e.id.clone()),
                detail: format!(
                    "event {} claims to have occurred at {} but is not in the sealed log, whose \
                     newest event ({}) is more than {} minutes later: it was added behind the sealer",
                    e.id,
                    super::model::format_time(e.occurred_at),
                    super::model::format_time(newest),
                    super::model::LATE_GRACE.num_minutes()
                ),
            });
        }
    }
    Ok(v.finish())
}

fn decoded(conn: &mut AnyConnection, parts: &[(u32, u64)]) -> Result<Vec<Hash>, ApiError> {
    parts
        .iter()
        .map(|&(level, index)| store::node(conn, level, index))
        .collect::<Result<_, _>>()
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    fn field(v: &str) -> String {
        let mut buf = Vec::new();
        csv_field(&mut buf, Some(v));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(field("plain-id"), "plain-id");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1+1"), "\"'-1+1\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
    }
}
