//! The outside log: an append-only file (`EAP_OUTSIDE_LOG`) kept where database backups and the
//! database's superuser do not reach. Every erasure (ids and times only) and every signed
//! checkpoint is appended to it as one JSON line, so that
//! - a restored backup can be re-erased (`eap-referrals erasures replay`): a restore must not
//!   bring an erased person back;
//! - a rewritten or truncated tail of the access log is caught by comparing the database with
//!   the checkpoints kept here (`/v1/audit/verify`, `eap-referrals audit verify --outside`).
//!
//! The file knows nothing of what it holds: each capability writes and reads its own records.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct OutsideLog {
    path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutsideError {
    #[error("cannot write the outside log {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("cannot read the outside log {0}: {1}")]
    Read(PathBuf, std::io::Error),
}

impl OutsideLog {
    /// Appends to `path`; `None` keeps nothing outside (development, tests that do not need it).
    pub fn new(path: Option<PathBuf>) -> Self {
        OutsideLog { path }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one record as a line and waits until it is on disk: a caller that goes on to
    /// commit an erasure relies on the record surviving a crash.
    pub fn append(&self, record: &impl Serialize) -> Result<(), OutsideError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let write = || {
            let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut options = std::fs::OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            // One write of the whole line: with O_APPEND, lines of concurrent writers do not
            // interleave.
            file.write_all(&line)?;
            file.sync_data()
        };
        write().map_err(|e| OutsideError::Write(path.clone(), e))
    }
}

/// The records of type `T` in the file at `path`, in order; lines of another shape (the other
/// kinds of record lack `T`'s fields) and a torn last line left by a crash are skipped.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, OutsideError> {
    let file = std::fs::File::open(path).map_err(|e| OutsideError::Read(path.into(), e))?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| OutsideError::Read(path.into(), e))?;
        if let Ok(record) = serde_json::from_str::<T>(&line) {
            out.push(record);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(tag = "kind", rename = "a")]
    struct A {
        n: u32,
    }

    #[test]
    fn records_are_appended_and_read_back_skipping_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outside.jsonl");
        let log = OutsideLog::new(Some(path.clone()));
        log.append(&A { n: 1 }).unwrap();
        log.append(&serde_json::json!({"kind": "b", "m": 9}))
            .unwrap();
        log.append(&A { n: 2 }).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"kind\":\"a\",\"n\"")
            .unwrap();
        assert_eq!(read::<A>(&path).unwrap(), vec![A { n: 1 }, A { n: 2 }]);
    }

    #[test]
    fn without_a_path_nothing_is_written() {
        OutsideLog::default().append(&A { n: 1 }).unwrap();
    }
}
