//! The provider's side of a referral over HTTP: its feed, its referrals, accept/decline/status,
//! and the audited contact reveal.

mod actions;
mod feed;
mod referrals;
mod reveal;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use actions::{accept, decline, update_status, Decline, ReportedStatus, StatusUpdate};
pub use feed::{poll_feed, Feed, FeedEvent, FeedPaging, FeedQuery};
pub use referrals::{get_referral, list_referrals, ReferralQuery};
pub use reveal::{contact, ContactReveal};

use super::model::{allowed_actions, Action, Outcome, Precondition};
use crate::directory::model::{Modality, Service, Urgency};
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;

/// A referral as its provider sees it: routing attributes and workflow state, no contact data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderReferral {
    #[schema(value_type = String)]
    pub id: ReferralId,
    pub service_type: Service,
    pub urgency: Urgency,
    pub modality: Modality,
    #[schema(value_type = crate::directory::model::Language)]
    pub language: String,
    #[schema(value_type = crate::directory::model::Region)]
    pub region: String,
    pub status: Status,
    pub outcome: Option<Outcome>,
    /// Also sent as the `ETag`; send it back in `If-Match` to act on the referral.
    pub version: i32,
    /// Accept or decline before this, or the offer moves on.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// What this provider may do now.
    pub allowed_actions: Vec<Action>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&ReferralRow> for ProviderReferral {
    fn from(r: &ReferralRow) -> Self {
        ProviderReferral {
            id: r.id.clone(),
            service_type: r.service_type,
            urgency: r.urgency,
            modality: r.modality,
            language: r.language.clone(),
            region: r.region.clone(),
            status: r.status,
            outcome: r.outcome,
            version: r.version,
            offer_expires_at: r.offer_expires_at.map(|t| t.and_utc()),
            allowed_actions: allowed_actions(r.status).to_vec(),
            created_at: r.created_at.and_utc(),
            closed_at: r.closed_at.map(|t| t.and_utc()),
        }
    }
}

fn with_etag(r: &ReferralRow) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", r.version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ProviderReferral::from(r))
}

/// `If-Match: "3"` (or `3`), a list (`"3", "4"`), or `*`. Missing is 428. RFC 9110 §13.1.1:
/// `*` matches any current representation (every referral a provider can act on has one), and
/// the comparison is strong, so a weak tag (`W/"3"`) or anything unparseable matches no version:
/// 412.
fn if_match(req: &HttpRequest) -> Result<Precondition, ApiError> {
    let raw = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(ApiError::PreconditionRequired("If-Match"))?
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)?
        .trim();
    if raw == "*" {
        return Ok(Precondition::Any);
    }
    Ok(Precondition::Versions(
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.starts_with("W/"))
            .filter_map(|t| t.trim_matches('"').parse().ok())
            .collect(),
    ))
}
