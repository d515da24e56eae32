//! The access log's page cursors: log positions (events) or checkpoint numbers, in decimal.
//! Every value the documented pattern admits is a position, so a well-formed cursor is never
//! refused.

use crate::error::ApiError;
use crate::pagination::{Cursor, Paging};

pub fn encode(n: u64) -> String {
    n.to_string()
}

/// A position in the sealed log.
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
            .ok_or_else(|| crate::pagination::bad_cursor::<Self>("not a cursor from this API"))
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

/// The checkpoint history's paging.
pub type CheckpointPaging = Paging<CheckpointNumber, 1000, 100>;
