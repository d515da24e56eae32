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
use crate::audit::model::Outcome;
use crate::audit::search::{self, EventPage, Selection};
use crate::auth::caller::Auditor;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    Success,
    Denied,
    Failure,
}

impl From<OutcomeFilter> for Outcome {
    fn from(o: OutcomeFilter) -> Self {
        match o {
            OutcomeFilter::Success => Outcome::Success,
            OutcomeFilter::Denied => Outcome::Denied,
            OutcomeFilter::Failure => Outcome::Failure,
        }
    }
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

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<NaiveDateTime>, ApiError> {
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
        let from = parse_time("from", &self.from)?;
        // `to` at or before `from` is an empty window, not an error: each bound is valid on
        // its own, and a search over no time finds nothing (as `/v1/audit/verify` does).
        let to = parse_time("to", &self.to)?;
        let matches_nothing = [&self.actor, &self.action, &self.resource_id]
            .into_iter()
            .flatten()
            .any(|v| v.chars().any(char::is_control));
        let (after, limit) = cursor::EventPaging::new(self.after, self.limit).resolve()?;
        Ok(Selection {
            matches_nothing,
            from,
            to,
            after,
            limit,
            actor: self.actor,
            action: self.action,
            resource_id: self.resource_id,
            outcome: self.outcome.map(Outcome::from),
        })
    }
}

/// The export format asked for; `None` is a JSON page.
fn format_of(req: &HttpRequest) -> Option<Format> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/x-ndjson") {
        Some(Format::Ndjson)
    } else if accept.contains("text/csv") {
        Some(Format::Csv)
    } else {
        None
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
    let sel = query.into_inner()?.selection()?;
    let event = auditor.0.event(None);
    let Some(format) = format_of(&req) else {
        let page: EventPage = search::search(&state.db, event, sel).await?;
        return Ok(HttpResponse::Ok().json(page));
    };
    let chunks = export::export(&state.db, event, sel, format).await?;
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
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
