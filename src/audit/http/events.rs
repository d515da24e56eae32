//! Searching and exporting the sealed log.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::audit::cursor;
use crate::audit::export::{self, Chunks, Format};
use crate::audit::model::{LoggedAction, Outcome};
use crate::audit::search::{self, EventPage, Selection};
use crate::auth::caller::Auditor;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

/// The query of a search or an export: the same filters, then what each adds (paging for a
/// search, the format for an export). A macro, because neither serde nor utoipa can flatten a
/// struct of query parameters under `deny_unknown_fields`.
macro_rules! event_query {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, Validate, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Events that occurred at or after this time (RFC 3339, e.g.
            /// `2026-11-25T00:00:00Z`).
            #[param(format = DateTime)]
            pub from: Option<String>,
            /// Events up to, not including, the first that occurred at or after this time
            /// (RFC 3339), so adjacent ranges share no event and miss none. At or before
            /// `from`, the window is empty.
            #[param(format = DateTime)]
            pub to: Option<String>,
            /// Only events by this client id.
            #[validate(length(min = 1, max = 64))]
            #[param(min_length = 1, max_length = 64)]
            pub actor: Option<String>,
            /// Only this action, e.g. `contact.read`.
            #[validate(custom(function = "known_action"))]
            #[param(value_type = Option<LoggedAction>)]
            pub action: Option<String>,
            /// Only events about this resource (e.g. a referral id).
            #[validate(length(min = 1, max = 64))]
            #[param(min_length = 1, max_length = 64)]
            pub resource_id: Option<String>,
            #[param(value_type = Option<Outcome>)]
            pub outcome: Option<Outcome>,
            $($extra)*
        }

        impl $name {
            fn filters(&self) -> Result<Selection, ApiError> {
                let from = parse_time("from", &self.from)?;
                // `to` at or before `from` is an empty window, not an error: each bound is
                // valid on its own, and a search over no time finds nothing (as
                // `/v1/audit/verify` does).
                let to = parse_time("to", &self.to)?;
                let matches_nothing = [&self.actor, &self.resource_id]
                    .into_iter()
                    .flatten()
                    .any(|v| v.chars().any(char::is_control));
                Ok(Selection {
                    matches_nothing,
                    from,
                    to,
                    after: None,
                    limit: 0,
                    actor: self.actor.clone(),
                    action: self.action.clone(),
                    resource_id: self.resource_id.clone(),
                    outcome: self.outcome,
                })
            }
        }
    };
}

event_query!(EventQuery {
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$", min_length = 1, max_length = 18)]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
});

event_query!(ExportQuery {
    /// `ndjson` (the default; carries its proof) or `csv` (for spreadsheets; no proof).
    #[param(inline)]
    pub format: Option<ExportFormat>,
});

/// The format of an export.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Ndjson,
    Csv,
}

fn known_action(action: &str) -> Result<(), validator::ValidationError> {
    if crate::audit::model::actions().contains(&action) {
        return Ok(());
    }
    let mut e = validator::ValidationError::new("enum");
    e.message = Some("must be one of the logged actions (the `LoggedAction` schema)".into());
    Err(e)
}

pub(super) fn parse_time(
    field: &str,
    value: &Option<String>,
) -> Result<Option<NaiveDateTime>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.naive_utc())
                .map_err(|_| {
                    ApiError::Validation(vec![FieldError::parameter(
                        field,
                        ErrorCode::Format,
                        "must be an RFC 3339 date-time",
                    )
                    .expecting(crate::validation::expected_for_format("date-time"))])
                })
        })
        .transpose()
}

impl EventQuery {
    fn selection(self) -> Result<Selection, ApiError> {
        let (after, limit) = cursor::EventPaging::new(self.after.clone(), self.limit).resolve()?;
        Ok(Selection {
            after,
            limit,
            ..self.filters()?
        })
    }
}

/// Searches the sealed access log, one page at a time, in log order.
///
/// The search covers the log up to the latest checkpoint (events appear within one checkpoint
/// interval). `GET /v1/audit/export` streams the same selection whole.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(EventQuery),
    responses(
        (status = 200, description = "Events in log order", body = EventPage),
        (status = 422, description = "Invalid filter: bad time, unknown action or parameter, \
            limit out of range",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/events")]
pub async fn list_events(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let sel = query.into_inner()?.selection()?;
    let page: EventPage = search::search(&state.db, auditor.0.event(None), sel).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Exports the sealed access log: the whole selection, streamed in log order in constant
/// memory.
///
/// NDJSON (the default) is one event per line. An NDJSON export with no filter other than the
/// time range is a contiguous stretch of the log and carries its proof: a first line
/// `{"range":{"start","end","left"}}` and a last line `{"proof":{"tree_size","right"}}`, so
/// `eap-referrals audit verify` can check it against a signed checkpoint. A sealed event whose
/// row has gone from the database appears as `{"missing":{"seq","id","leaf_hash"}}`. CSV gives
/// the same rows with a header line, and no proof. The export covers the log up to the latest
/// checkpoint. The call is logged once, before the first byte is sent.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "Events in log order", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 422, description = "Invalid filter: bad time, unknown action, format or \
            parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/export")]
pub async fn export_events(
    auditor: Auditor,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: ApiQuery<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    let sel = query.filters()?;
    let (format, content_type) = match query.format.unwrap_or_default() {
        ExportFormat::Ndjson => (Format::Ndjson, "application/x-ndjson"),
        ExportFormat::Csv => (Format::Csv, "text/csv; charset=utf-8"),
    };
    let started = export::start(&state.db, auditor.0.event(None), sel).await?;
    // A HEAD gets the export's checks, its access event and its headers, but the exporter is
    // not started: the connection would read the whole selection from the database only to
    // drop every byte. An already finished stream keeps the GET's framing (chunked, no length).
    let chunks = if crate::head::is_head(&req) {
        tokio::sync::mpsc::channel(1).1
    } else {
        started.stream(format)
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ChannelBody(chunks)))
}

/// A response body fed by the blocking exporter through a bounded channel: the exporter waits
/// while the client is slow, so memory holds a few chunks at most.
struct ChannelBody(Chunks);

impl MessageBody for ChannelBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(Bytes::from)))
    }
}
