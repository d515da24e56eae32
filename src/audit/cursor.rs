//! The access log's page cursors: log positions (events) or checkpoint numbers, in decimal.
//! Every value the documented pattern admits is a position, so a well-formed cursor is never
//! refused.

use crate::error::ApiError;

pub fn encode(n: u64) -> String {
    n.to_string()
}

pub fn decode(c: &Option<String>) -> Result<Option<u64>, ApiError> {
    c.as_deref()
        .map(|c| {
            (c.len() <= 18 && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
                .then(|| c.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    ApiError::validation("after", "invalid", "not a cursor from this API")
                })
        })
        .transpose()
}
