//! The verifier both `GET /v1/audit/verify` and `eap-referrals audit verify` run: a range of
//! the sealed log, event by event, against signed checkpoints. docs/AUDIT.md specifies the
//! export format for outsiders.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, PublicKeys};
use super::events::LoggedEvent;
use crate::audit::merkle::{self, Frontier, Hash};

/// How much older than an event sealed before it an event may claim to be before it counts as
/// inserted. Events are sealed in commit order and stamped inside their transaction, so their
/// times are out of order only by the length of a transaction; a row slipped in later with a
/// back-dated time stands out against its sealed neighbours. (Compared with neighbours, not
/// with checkpoint times: a long transaction elsewhere on PostgreSQL can hold sealing back for
/// minutes without making anything late.)
pub const LATE_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

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
    /// The log is shorter than a checkpoint kept outside the database: its tail was removed.
    Truncated,
    /// The log no longer reproduces a checkpoint kept outside the database: its history was
    /// replaced (for instance truncated, then extended with other events).
    Rewritten,
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
    /// Tree sizes whose roots to record on the way (the sizes of checkpoints kept outside),
    /// and the roots recorded.
    wanted: BTreeSet<u64>,
    roots: BTreeMap<u64, Hash>,
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
            wanted: BTreeSet::new(),
            roots: BTreeMap::new(),
        }
    }

    /// Also records the root of the log's first `n` events for each of `sizes` the stream
    /// reaches: the range start, each event in order, and each subtree of the proof line.
    pub fn record_roots_at(&mut self, sizes: impl IntoIterator<Item = u64>) {
        self.wanted.extend(sizes);
    }

    fn record_root(&mut self) {
        if let Some(f) = &self.frontier {
            if self.wanted.contains(&f.size()) {
                self.roots.insert(f.size(), f.root());
            }
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
        self.record_root();
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
            if !self.wanted.is_empty() {
                self.record_root();
            }
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
        if self.frontier.is_none() {
            return;
        }
        let shape = merkle::decompose(self.end, tree_size);
        let mut fits = shape.len() == right.len();
        for ((level, _), h) in shape.iter().zip(right) {
            fits = fits
                && self
                    .frontier
                    .as_mut()
                    .is_some_and(|f| f.push_subtree(*level, *h));
            if fits {
                self.record_root();
            }
        }
        let Some(f) = self.frontier.take() else {
            return;
        };
        if fits && Some(f.root()) == cp.root() {
            self.root_verified = true;
        } else {
            let detail = format!(
                "positions {}..{} do not reproduce the root of checkpoint {} (size {tree_size})",
                self.start, self.end, cp.n
            );
            self.find(FindingKind::RootMismatch, None, None, detail);
        }
    }

    pub fn finish(self) -> Report {
        self.finish_with_roots().0
    }

    /// The report, and the roots recorded at the sizes asked for with
    /// [`record_roots_at`](Self::record_roots_at).
    pub fn finish_with_roots(mut self) -> (Report, BTreeMap<u64, Hash>) {
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
        let report = Report {
            start: self.start,
            end: self.end,
            events: self.events,
            checkpoint: self.checkpoint,
            root_verified: self.root_verified,
            findings: self.findings,
        };
        (report, self.roots)
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
    let mut v = Verifier::new(keys, checkpoints);
    read_export(events, &mut v)?;
    Ok(v.finish())
}

/// What the offline verifier found against checkpoints kept outside the database.
#[derive(Debug, Default)]
pub struct OutsideComparison {
    /// Kept checkpoints compared with the export (their sizes' roots, or the tree's size).
    pub compared: usize,
    /// Kept checkpoints whose size falls where the export gives no root: before its range,
    /// or between its range and its tree size, off a subtree boundary. An export from
    /// position 0 compares them all.
    pub not_compared: usize,
}

/// [`verify_export`], and the export compared with the checkpoints `kept` outside the database
/// by [`compare_outside`]; its findings join the report's. The export's tree (the size of the
/// checkpoint its proof line completes) stands for the log as it was when it was taken, so the
/// outside file must be copied before the export is taken: a checkpoint kept later may be
/// larger and would read as a truncation.
pub fn verify_export_against_outside(
    events: impl std::io::BufRead,
    checkpoints: &[Checkpoint],
    keys: &PublicKeys,
    kept: &[Checkpoint],
) -> std::io::Result<(Report, OutsideComparison)> {
    let mut v = Verifier::new(keys, checkpoints);
    v.record_roots_at(kept.iter().map(|c| c.tree_size));
    read_export(events, &mut v)?;
    let (mut report, roots) = v.finish_with_roots();
    let mut comparison = OutsideComparison::default();
    // Without a verified tree the export proves nothing about the log; the report says why.
    let Some(at) = report.checkpoint.clone().filter(|_| report.root_verified) else {
        comparison.not_compared = kept.len();
        return Ok((report, comparison));
    };
    let comparable: Vec<Checkpoint> = kept
        .iter()
        .filter(|c| {
            let usable = c.tree_size > at.tree_size || roots.contains_key(&c.tree_size);
            // One the key did not sign is kept for compare_outside to report.
            usable || !c.verify(keys)
        })
        .cloned()
        .collect();
    comparison.compared = comparable.len();
    comparison.not_compared = kept.len() - comparable.len();
    let found = compare_outside(&comparable, keys, at.tree_size, Some(&at), &mut |n| {
        roots.get(&n).copied().ok_or(())
    })
    .expect("only sizes with a recorded root are compared");
    report.findings.extend(found);
    Ok((report, comparison))
}

/// Feeds an NDJSON export to the verifier, line by line.
fn read_export(events: impl std::io::BufRead, v: &mut Verifier) -> std::io::Result<()> {
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
                None => bad(v),
            }
        } else if text.starts_with(b"{\"proof\"") {
            match serde_json::from_slice::<Trailer>(text)
                .ok()
                .and_then(|t| Some((hashes(&t.proof.right)?, t.proof)))
            {
                Some((right, p)) => v.range_end(p.tree_size, &right),
                None => bad(v),
            }
        } else if text.starts_with(b"{\"missing\"") {
            match serde_json::from_slice::<Gone>(text)
                .ok()
                .and_then(|g| Some((merkle::from_hex(&g.missing.leaf_hash)?, g.missing)))
            {
                Some((h, m)) => v.missing(m.seq, &m.id, h),
                None => bad(v),
            }
        } else {
            match serde_json::from_slice::<LoggedEvent>(text) {
                Ok(e) => v.event(&e),
                Err(_) => bad(v),
            }
        }
    }
    Ok(())
}

/// Compares the log with the checkpoints kept outside the database (`EAP_OUTSIDE_LOG`): a
/// database superuser can truncate the log's tail, and even re-seal other events after it,
/// leaving a log that agrees with every checkpoint the database still holds. What was kept
/// outside cannot be taken back. `size` is the log's sealed size, `latest` the newest
/// checkpoint the database holds, and `root_at(n)` the root of the log's first `n` events,
/// asked for in increasing `n`.
///
/// Every kept size is checked, not only the largest: after a rewrite the service goes on
/// signing checkpoints of the forged log, and those are kept outside too; only the ones kept
/// before it disagree. A kept checkpoint the key did not sign is reported and ignored.
pub fn compare_outside<E>(
    kept: &[Checkpoint],
    keys: &PublicKeys,
    size: u64,
    latest: Option<&Checkpoint>,
    root_at: &mut impl FnMut(u64) -> Result<Hash, E>,
) -> Result<Vec<Finding>, E> {
    let mut findings = Vec::new();
    let mut by_size: std::collections::BTreeMap<u64, Vec<&Checkpoint>> = Default::default();
    for c in kept {
        if c.verify(keys) {
            by_size.entry(c.tree_size).or_default().push(c);
        } else {
            findings.push(Finding::new(
                FindingKind::BadSignature,
                None,
                None,
                format!("checkpoint {} kept outside does not verify", c.n),
            ));
        }
    }
    for (&n, checkpoints) in by_size.range(..=size) {
        let root = root_at(n)?;
        if let Some(c) = checkpoints.iter().find(|c| c.root() != Some(root)) {
            findings.push(Finding::new(
                FindingKind::Rewritten,
                None,
                None,
                format!(
                    "the first {n} events of the log no longer hash to the root of checkpoint \
                     {} kept outside the database: its history was replaced",
                    c.n
                ),
            ));
            break;
        }
    }
    if let Some((&n, checkpoints)) = by_size.range(size + 1..).next_back() {
        findings.push(Finding::new(
            FindingKind::Truncated,
            Some(size),
            None,
            format!(
                "checkpoint {} kept outside the database covers {n} events, but the log holds \
                 {size}{}: the events from position {size} on were removed",
                checkpoints[0].n,
                latest.map_or(String::new(), |l| format!(
                    " (its latest checkpoint is {}, of size {})",
                    l.n, l.tree_size
                )),
            ),
        ));
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::super::events::tests::sample;
    use super::*;

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
        let left = hex(merkle::decompose(0, 5), &mut get);
        let right = hex(merkle::decompose(15, 20), &mut get);
        let header = serde_json::json!({"range": RangeStart { start: 5, end: 15, left }});
        let trailer = serde_json::json!({"proof": RangeEnd { tree_size: 20, right }});
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

        // Against checkpoints kept outside: a prefix root is known at the range start, after
        // each event and at each subtree boundary of the proof line (16 and 20 here).
        let kept_at = |n: u64, root: &Hash| Checkpoint::sign(100 + n, n, root, t, "k", &key);
        let honest_at = |n: u64| kept_at(n, &merkle::root(&mut get.clone(), n).unwrap());
        let outside = |kept: &[Checkpoint]| {
            verify_export_against_outside(
                lines(body.clone()).as_bytes(),
                std::slice::from_ref(&cp),
                &keys,
                kept,
            )
            .unwrap()
        };
        let honest: Vec<Checkpoint> = [3, 5, 7, 16, 18, 20].map(honest_at).into();
        let (r, c) = outside(&honest);
        assert!(r.ok(), "{:#?}", r.findings);
        assert_eq!((c.compared, c.not_compared), (4, 2));
        let mut forged = honest.clone();
        forged.push(kept_at(12, &[1; 32]));
        let (r, _) = outside(&forged);
        let kinds: Vec<FindingKind> = r.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Rewritten], "{:#?}", r.findings);
        let mut longer = honest.clone();
        longer.push(kept_at(25, &[2; 32]));
        let (r, _) = outside(&longer);
        assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
        assert_eq!(
            (r.findings[0].kind, r.findings[0].seq),
            (FindingKind::Truncated, Some(20))
        );

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
}
