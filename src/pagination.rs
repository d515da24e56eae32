//! Cursor pagination shared by every list operation: `after`, the `next_cursor` of the previous
//! page, and `limit`, the page size, bounded per list.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::Required;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::{ApiError, ErrorCode, FieldError};

/// The query parameters paging adds to a list.
pub const PARAMETERS: [&str; 2] = ["after", "limit"];

/// What a list's `after` is: the text the spec admits, and the position that text names.
pub trait Cursor {
    type Position;
    /// `after`'s description where a list documents its parameters through [`Paging`].
    const ABOUT: &'static str = "The `next_cursor` of the previous page; omit for the first page.";
    const PATTERN: &'static str;
    const MIN_LENGTH: usize;
    const MAX_LENGTH: usize;
    /// The position `text` names, or a 422 naming `after`.
    fn decode(text: &str) -> Result<Self::Position, ApiError>;
}

/// Every list of things with ids is keyset-paged by its id and its cursor is the page's last
/// id, so any text of an issued id's form is a place in that order: every cursor the schema
/// admits (`ISSUED_ID_PATTERN`) is accepted.
#[derive(Debug)]
pub struct IssuedId;

impl Cursor for IssuedId {
    type Position = String;
    const PATTERN: &'static str = crate::extract::ISSUED_ID_PATTERN;
    const MIN_LENGTH: usize = 36;
    const MAX_LENGTH: usize = 36;

    fn decode(text: &str) -> Result<String, ApiError> {
        if crate::extract::is_issued_id(text) {
            return Ok(text.to_owned());
        }
        Err(bad_cursor::<Self>("must be a cursor from this API (an id)"))
    }
}

/// The 422 for an `after` that names no position: the answer its schema check gives text not
/// of the cursor's pattern (every list's cursor decodes any text of its pattern, so this is the
/// second line).
pub fn bad_cursor<C: Cursor>(message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::parameter(
        PARAMETERS[0],
        ErrorCode::Pattern,
        message,
    )
    .expecting(crate::validation::expected_for_pattern(C::PATTERN))])
}

/// A list's `after` (a `C`) and `limit`, 1–`MAX` (`DEFAULT` when absent). A list with filters
/// keeps its own query type, since `#[serde(flatten)]` would read `limit` as text from a query
/// string and name no expected fields when refusing an unknown one; it documents the same
/// bounds (checked by a test in `openapi`) and resolves them through [`Paging::new`].
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Paging<C, const MAX: u32, const DEFAULT: u32> {
    pub after: Option<String>,
    #[validate(range(min = 1, max = MAX))]
    pub limit: Option<u32>,
    #[serde(skip)]
    cursor: PhantomData<C>,
}

/// Lists of things with ids.
pub type PageQuery = Paging<IssuedId, 200, 50>;

impl<C: Cursor, const MAX: u32, const DEFAULT: u32> Paging<C, MAX, DEFAULT> {
    pub fn new(after: Option<String>, limit: Option<u32>) -> Self {
        Paging {
            after,
            limit,
            cursor: PhantomData,
        }
    }

    /// The decoded position to continue after, and the page size.
    pub fn resolve(&self) -> Result<(Option<C::Position>, i64), ApiError> {
        let after = self.after.as_deref().map(C::decode).transpose()?;
        Ok((after, i64::from(self.limit.unwrap_or(DEFAULT))))
    }
}

/// Written by hand because the derive takes only literal bounds.
impl<C: Cursor, const MAX: u32, const DEFAULT: u32> IntoParams for Paging<C, MAX, DEFAULT> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let after = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(C::PATTERN))
            .min_length(Some(C::MIN_LENGTH))
            .max_length(Some(C::MAX_LENGTH));
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(MAX));
        let param = |name: &str, description: String, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            param(PARAMETERS[0], C::ABOUT.to_owned(), after),
            param(
                PARAMETERS[1],
                format!("Page size, 1–{MAX} (default {DEFAULT})."),
                limit,
            ),
        ]
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
