//! The streamed export of the sealed log (NDJSON or CSV): the range is fixed and the auditor's
//! event committed before the first byte; then reader threads fetch chunks (two, taking turns,
//! for a whole stretch), each with a fresh pooled connection, while a blocking thread encodes
//! them in log order into a bounded channel the response body drains, and an NDJSON export of a
//! whole stretch ends with its proof against the latest checkpoint.

use super::merkle;
use super::model::{write_time, AuditEvent, LoggedEvent, MissingRow, RangeEnd, RangeStart};
use super::record;
use super::search::{logged, resolve, Selection};
use super::store::{self, EventRow, Filter, SealedRow, CHUNK};
use crate::codes::Code;
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The export's bytes as they are encoded, a chunk at a time; an error cuts the body short.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>;
type Sender = tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

/// Chunks of encoded rows held while the client reads: the exporter waits when it is full.
const CHANNEL_CHUNKS: usize = 4;

/// An export whose range is fixed and whose auditor's event is committed; nothing of the log
/// has been read yet.
pub struct Started {
    db: Db,
    filter: Filter,
}

/// Fixes the range and commits the auditor's event (before the first byte can leave).
pub async fn start(db: &Db, event: AuditEvent, sel: Selection) -> Result<Started, ApiError> {
    let filter = db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let (_, filter) = resolve(conn, &sel)?;
                record(conn, &[event])?;
                Ok(filter)
            })
        })
        .await?;
    Ok(Started {
        db: db.clone(),
        filter,
    })
}

impl Started {
    /// Starts the exporter; the receiver yields the body.
    pub fn stream(self, format: Format) -> Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let Started { db, filter } = self;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write(&db, &filter, format, &tx) {
                // The body is cut short; a verifier sees the missing proof line.
                tracing::warn!(error = %e, "access-log export failed part-way");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
            }
        });
        rx
    }
}

/// Threads reading a whole stretch of the log for one export.
const READERS: usize = 2;

type Page = Result<Vec<SealedRow>, ApiError>;

/// Reader `i` of `readers`: chunks `i`, `i + readers`, … of the selection, in order, each read
/// with a fresh pooled connection (none is held while the client reads), until the selection
/// ends, a read fails (sent, then stop) or the encoder has gone. A filtered selection has one
/// reader, which starts each page after the last one's final position.
fn read_chunks(
    db: &Db,
    filter: &Filter,
    i: usize,
    readers: usize,
    rows_tx: &std::sync::mpsc::SyncSender<Page>,
) {
    debug_assert!(readers == 1 || filter.is_contiguous());
    let mut next = filter.start + i as u64 * CHUNK as u64;
    loop {
        // A whole stretch has a leaf at every position, so a chunk's bounds are fixed: nothing
        // at or past its end is read (a second reader of a short export reads nothing at all).
        if filter.is_contiguous() && next >= filter.end {
            return;
        }
        let page = db.get().and_then(|mut c| {
            store::sealed_page(&mut c, filter, next, CHUNK).map_err(ApiError::from)
        });
        let last = match &page {
            // This reader's next chunk is `readers` chunks on.
            Ok(_) if filter.is_contiguous() => {
                next += readers as u64 * CHUNK as u64;
                false
            }
            // A filtered selection's next page starts after this one's final position.
            Ok(rows) => {
                if let Some(r) = rows.last() {
                    next = r.seq as u64 + 1;
                }
                (rows.len() as i64) < CHUNK
            }
            Err(_) => true,
        };
        if rows_tx.send(page).is_err() || last {
            return;
        }
    }
}

/// Stops quietly when the client has gone. Nothing is sent for an empty buffer (a filtered
/// selection's last page, after a full one, is empty): an empty chunk would end the response's
/// chunked body early. The next buffer starts with room for a chunk like this one: grown from
/// empty, each chunk was copied over again as it doubled.
fn send(tx: &Sender, buf: &mut Vec<u8>) -> bool {
    if buf.is_empty() {
        return !tx.is_closed();
    }
    let room = buf.len() + buf.len() / 8;
    tx.blocking_send(Ok(std::mem::replace(buf, Vec::with_capacity(room))))
        .is_ok()
}

fn nodes(conn: &mut AnyConnection, parts: &[(u32, u64)]) -> Result<Vec<String>, ApiError> {
    parts
        .iter()
        .map(|&(level, index)| store::node(conn, level, index).map(|h| merkle::to_hex(&h)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::from)
}

fn write(db: &Db, filter: &Filter, format: Format, tx: &Sender) -> Result<(), ApiError> {
    let proved = format == Format::Ndjson && filter.is_contiguous();
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
    // Reader threads fetch chunks while this one serialises: the database and the encoding
    // overlap instead of taking turns. A whole stretch is read by two threads taking alternate
    // chunks, each on its own connection: a chunk's positions are known in advance, and with one
    // reader the database sat idle while it decoded (a quarter of the machine idle during an
    // export). A filtered selection is read by one thread: where its next page starts depends
    // on the last.
    let readers = if filter.is_contiguous() { READERS } else { 1 };
    let finished = std::thread::scope(|scope| {
        let rows_rx: Vec<_> = (0..readers)
            .map(|i| {
                let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel::<Page>(1);
                scope.spawn(move || read_chunks(db, filter, i, readers, &rows_tx));
                rows_rx
            })
            .collect();
        // Pages in log order: reader i holds chunks i, i + readers, …; a reader that has sent
        // its last page hangs up, and the next it would have sent is the end.
        let pages = (0..).map_while(|k| rows_rx[k % readers].recv().ok());
        for page in pages {
            for r in page? {
                match format {
                    Format::Csv => {
                        if let Some(e) = logged(r) {
                            csv_row(&mut buf, &e);
                        }
                    }
                    Format::Ndjson => match &r.event {
                        Some(e) => ndjson_line(&mut buf, r.seq, &r.leaf_hash, e),
                        None => {
                            serde_json::to_writer(
                                &mut buf,
                                &serde_json::json!({ "missing": MissingRow {
                                    seq: r.seq as u64,
                                    leaf_hash: merkle::to_hex(&r.leaf_hash),
                                    id: r.event_id,
                                }}),
                            )
                            .map_err(|e| ApiError::Internal(e.to_string()))?;
                            buf.push(b'\n');
                        }
                    },
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

/// One NDJSON line of a sealed event, written straight from its row: the bytes serde_json
/// gives for the event's `LoggedEvent` (a test holds the two equal), without building one. The
/// owned event, its formatted strings and the serializer's generic path were a large share of
/// the export's own CPU (docs/PERFORMANCE.md).
fn ndjson_line(buf: &mut Vec<u8>, seq: i64, leaf_hash: &[u8], e: &EventRow) {
    let mut num = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"seq\":");
    buf.extend_from_slice(num.format(seq as u64).as_bytes());
    buf.extend_from_slice(b",\"leaf_hash\":\"");
    merkle::write_hex(buf, leaf_hash);
    buf.extend_from_slice(b"\",\"id\":");
    json_str(buf, &e.id);
    buf.extend_from_slice(b",\"occurred_at\":\"");
    write_time(buf, e.occurred_at);
    buf.extend_from_slice(b"\",\"actor_client_id\":");
    json_opt(buf, e.actor_client_id.as_deref());
    buf.extend_from_slice(b",\"actor_role\":");
    json_opt(buf, e.actor_role.as_deref());
    buf.extend_from_slice(b",\"tenant_id\":");
    json_opt(buf, e.tenant_id.as_deref());
    buf.extend_from_slice(b",\"action\":");
    json_str(buf, &e.action);
    buf.extend_from_slice(b",\"resource_type\":");
    json_str(buf, &e.resource_type);
    buf.extend_from_slice(b",\"resource_id\":");
    json_opt(buf, e.resource_id.as_deref());
    buf.extend_from_slice(b",\"outcome\":");
    json_str(buf, e.outcome.code());
    buf.extend_from_slice(b",\"http_status\":");
    buf.extend_from_slice(num.format(e.http_status).as_bytes());
    buf.extend_from_slice(b",\"request_id\":");
    json_str(buf, &e.request_id);
    buf.extend_from_slice(b",\"source_addr\":");
    json_opt(buf, e.source_addr.as_deref());
    buf.extend_from_slice(b"}\n");
}

/// A JSON string as serde_json writes it. Text with no quote, backslash or control character
/// (every id the service issues, and nearly every value) is copied as it is; anything else goes
/// through serde_json's own escaping.
fn json_str(buf: &mut Vec<u8>, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(v.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, v).expect("a string serialises into memory");
    }
}

fn json_opt(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => json_str(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
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

#[cfg(test)]
mod tests {
    use super::{csv_field, ndjson_line};
    use crate::audit::model::Outcome;
    use crate::audit::search::logged;
    use crate::audit::store::{EventRow, SealedRow};
    use proptest::prelude::*;

    fn row(text: &str, none: bool, outcome: Outcome, micros: i64) -> EventRow {
        let some = |v: &str| (!none).then(|| v.to_owned());
        EventRow {
            id: format!("{text}-id"),
            occurred_at: chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .naive_utc(),
            actor_client_id: some(text),
            actor_role: some("provider"),
            tenant_id: some(&format!("t{text}")),
            action: text.to_owned(),
            resource_type: "referral".into(),
            resource_id: some(text),
            outcome,
            http_status: 404,
            request_id: format!("{text}{text}"),
            source_addr: some("127.0.0.1"),
        }
    }

    /// The line serde_json writes for the event's `LoggedEvent`, which `ndjson_line` replaces.
    fn by_serde(seq: i64, leaf_hash: &[u8], e: &EventRow) -> Vec<u8> {
        let sealed = SealedRow {
            seq,
            leaf_hash: leaf_hash.to_vec(),
            event_id: e.id.clone(),
            event: Some(e.clone()),
        };
        let mut line = serde_json::to_vec(&logged(sealed)).unwrap();
        line.push(b'\n');
        line
    }

    fn by_hand(seq: i64, leaf_hash: &[u8], e: &EventRow) -> Vec<u8> {
        let mut line = Vec::new();
        ndjson_line(&mut line, seq, leaf_hash, e);
        line
    }

    #[test]
    fn an_export_line_is_the_events_json_byte_for_byte() {
        let hash: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let texts = [
            "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091",
            "quote \" and back\\slash",
            "line\nbreak, tab\t, bell\u{7}, nul\u{0}, del\u{7f}",
            "non-ASCII: é, ß, 日本, 🙂",
            "",
        ];
        for (i, text) in texts.iter().enumerate() {
            for none in [false, true] {
                for outcome in [Outcome::Success, Outcome::Denied, Outcome::Failure] {
                    let e = row(text, none, outcome, 1_764_141_600_123_456 + i as i64);
                    let seq = [0, 9, 1_000_000_007][i % 3];
                    assert_eq!(
                        String::from_utf8(by_hand(seq, &hash, &e)).unwrap(),
                        String::from_utf8(by_serde(seq, &hash, &e)).unwrap()
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_event_exports_as_its_json(
            text in "\\PC*|[\\x00-\\x7f]{0,12}",
            none in any::<bool>(),
            seq in 0i64..i64::MAX,
            micros in 0i64..253_402_300_799_999_999,
            hash in proptest::collection::vec(any::<u8>(), 32),
            outcome in prop_oneof![
                Just(Outcome::Success),
                Just(Outcome::Denied),
                Just(Outcome::Failure),
            ],
            status in any::<i32>(),
        ) {
            let mut e = row(&text, none, outcome, micros);
            e.http_status = status;
            prop_assert_eq!(by_hand(seq, &hash, &e), by_serde(seq, &hash, &e));
        }
    }

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
