//! Cursor pagination shared by every list operation.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::ApiError;

/// The query parameters paging adds to a list.
pub const PARAMETERS: [&str; 2] = ["after", "limit"];

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page; omit for the first page.
    #[param(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The decoded position to continue after, and the page size.
    pub fn resolve(&self) -> Result<(Option<String>, i64), ApiError> {
        let after = match &self.after {
            None => None,
            // Every list is keyset-paged by its id and its cursor is the page's last id, so any
            // text of an issued id's form is a place in that order: every cursor the schema
            // admits (`ISSUED_ID_PATTERN`) is accepted.
            Some(c) if crate::extract::is_issued_id(c) => Some(c.clone()),
            Some(_) => {
                return Err(ApiError::validation(
                    "after",
                    "invalid",
                    "must be a cursor from this API (an id)",
                ))
            }
        };
        Ok((after, i64::from(self.limit.unwrap_or(DEFAULT_LIMIT))))
    }
}

/// One page of results; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page from rows fetched with `limit`; a full page gets a cursor at its last key
    /// (an id, so it matches the `after` pattern).
    pub fn from_rows<R>(
        rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> &str,
        view: impl Fn(R) -> T,
    ) -> Self {
        let next_cursor = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| key(r).to_owned()))
            .flatten();
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}
