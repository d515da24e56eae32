//! The provider's change feed over HTTP: cursors, `Prefer: wait`, and the long poll.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::ProviderCaller;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::ids::ReferralId;
use crate::pagination::{Cursor, Paging};
use crate::state::AppState;
use crate::workflow::feed::{self, Poll};
use crate::workflow::model::FeedKind;
use crate::workflow::store;

const BAD_CURSOR: &str = "must be a cursor from this feed (txid.id)";

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous call; omit to start from the beginning.
    #[param(
        pattern = r"^[0-9]{1,18}\.[0-9]{1,18}$",
        min_length = 3,
        max_length = 37
    )]
    pub after: Option<String>,
    /// Events per call, 1–1000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Long poll: with no event yet, wait up to this many seconds (0–60) for one. Also accepted
    /// as `Prefer: wait=N` (RFC 7240).
    #[validate(range(min = 0, max = 60))]
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u32>,
}

/// `Prefer: wait=N`, capped at 60 s.
fn prefer_wait(req: &HttpRequest) -> Option<u32> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| v.trim().trim_matches('"').parse::<u32>().ok())
                .flatten()
        })
        .map(|w| w.min(60))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    #[schema(value_type = String)]
    pub referral_id: ReferralId,
    /// `erased`: the person's data was destroyed: delete any copy; an open offer or assignment
    /// is withdrawn with it.
    pub kind: FeedKind,
    pub at: DateTime<Utc>,
}

/// A provider's events after a cursor. Not a page like the lists (`items`, `next_cursor`
/// absent on the last page): a feed has no last page, so `next_cursor` is always present and
/// an empty `events` means "nothing yet" — call again with the same cursor (long-polling with
/// `wait`), and it resumes exactly where the last call stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    pub events: Vec<FeedEvent>,
    /// Pass back as `after`. Present even when no events came, so polling can resume.
    pub next_cursor: String,
}

/// A feed cursor is its position as `txid.id` in decimal. Any text matching the documented
/// pattern (`^[0-9]{1,18}\.[0-9]{1,18}$`) is a position, since 18 digits always fit an i64, so
/// every cursor the schema admits is accepted: one never handed out just resumes from there.
fn cursor(p: store::Position) -> String {
    format!("{}.{}", p.txid, p.id)
}

fn parse_cursor(c: &str) -> Option<store::Position> {
    let (txid, id) = c.split_once('.')?;
    let digits = |s: &str| (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(txid) || !digits(id) {
        return None;
    }
    Some(store::Position {
        txid: txid.parse().ok()?,
        id: id.parse().ok()?,
    })
}

/// The feed's cursor: a position `txid.id`.
pub struct FeedPosition;

impl Cursor for FeedPosition {
    type Position = store::Position;
    const PATTERN: &'static str = r"^[0-9]{1,18}\.[0-9]{1,18}$";
    const MIN_LENGTH: usize = 3;
    const MAX_LENGTH: usize = 37;

    fn decode(c: &str) -> Result<store::Position, ApiError> {
        parse_cursor(c).ok_or_else(|| crate::pagination::bad_cursor::<Self>(BAD_CURSOR))
    }
}

/// The feed's paging, which `FeedQuery` documents.
pub type FeedPaging = Paging<FeedPosition, 1000, 100>;

/// The provider's change feed, oldest first, with a cursor that never skips or repeats an
/// event, even when transactions commit out of order. Each delivered referral is an access-log
/// event; an empty poll is not logged.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(
        FeedQuery,
        ("Prefer" = Option<String>, Header,
         description = "`wait=N` (RFC 7240): the same as the `wait` parameter"),
    ),
    responses(
        (status = 200, description = "Events after the cursor (after waiting, if asked, for the \
            first one)",
         body = Feed,
         headers((
             "Preference-Applied" = String,
             description = "`wait=N` when `Prefer: wait` was honoured"
         ))),
        (status = 422, description = "Invalid cursor or limit",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/events")]
pub async fn poll_feed(
    provider: ProviderCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: ApiQuery<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let (after, limit) = FeedPaging::new(q.after, q.limit).resolve()?;
    let after = after.unwrap_or_default();
    let preferred = prefer_wait(&req);
    // A HEAD does not wait: the events a long poll waits for travel in the body, which a HEAD
    // never receives, and a waiting HEAD would hold one of the instance's long-poll places for
    // nothing. It answers at once, as `wait=0` would (the same read and access-log events), and
    // so does not claim the preference applied.
    let head = crate::head::is_head(&req);
    let wait = if head {
        0
    } else {
        q.wait.or(preferred).unwrap_or(0)
    };
    let poll = Poll {
        after,
        limit,
        wait: Duration::from_secs(u64::from(wait)),
        max_waiting: state.config.max_long_polls,
    };
    let rows = feed::poll(
        &state.db,
        provider.caller,
        provider.provider_id.into_string(),
        poll,
    )
    .await?;
    let next_cursor = cursor(rows.last().map_or(after, |e| e.position()));
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if q.wait.is_none() && preferred.is_some() && !head {
        resp.insert_header(("preference-applied", format!("wait={wait}")));
    }
    Ok(resp.json(Feed {
        events: rows
            .into_iter()
            .map(|e| FeedEvent {
                referral_id: ReferralId::from_trusted(e.referral_id),
                kind: e.kind,
                at: e.created_at.and_utc(),
            })
            .collect(),
        next_cursor,
    }))
}
