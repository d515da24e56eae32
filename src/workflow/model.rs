//! The referral lifecycle as the provider drives it (docs/DESIGN.md §3). The one place that
//! says which transition is allowed from which status. No I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::directory::model::Code;
use crate::referrals::model::Status;

/// What a provider can do to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Accept,
    Decline,
    Contacted,
    Scheduled,
    InProgress,
    Close,
}

/// How a referral ended, reported when the provider closes it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    NoShow,
    UnableToContact,
    DeclinedByEmployee,
    ReferredElsewhere,
}

impl Code for Outcome {
    /// In the order reports list them.
    const ALL: &'static [Outcome] = &[
        Outcome::Completed,
        Outcome::NoShow,
        Outcome::UnableToContact,
        Outcome::DeclinedByEmployee,
        Outcome::ReferredElsewhere,
    ];

    fn code(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::NoShow => "no_show",
            Outcome::UnableToContact => "unable_to_contact",
            Outcome::DeclinedByEmployee => "declined_by_employee",
            Outcome::ReferredElsewhere => "referred_elsewhere",
        }
    }
}

/// What a provider's feed tells it happened to a referral (`provider_events.kind`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Offered,
    OfferExpired,
    Cancelled,
    Declined,
    Accepted,
    Contacted,
    Scheduled,
    InProgress,
    Closed,
    /// The person's data was destroyed: the provider deletes any copy.
    Erased,
}

impl Code for FeedKind {
    const ALL: &'static [FeedKind] = &[
        FeedKind::Offered,
        FeedKind::OfferExpired,
        FeedKind::Cancelled,
        FeedKind::Declined,
        FeedKind::Accepted,
        FeedKind::Contacted,
        FeedKind::Scheduled,
        FeedKind::InProgress,
        FeedKind::Closed,
        FeedKind::Erased,
    ];

    fn code(self) -> &'static str {
        match self {
            FeedKind::Offered => "offered",
            FeedKind::OfferExpired => "offer_expired",
            FeedKind::Cancelled => "cancelled",
            FeedKind::Declined => "declined",
            FeedKind::Accepted => "accepted",
            FeedKind::Contacted => "contacted",
            FeedKind::Scheduled => "scheduled",
            FeedKind::InProgress => "in_progress",
            FeedKind::Closed => "closed",
            FeedKind::Erased => "erased",
        }
    }
}

impl From<Action> for FeedKind {
    /// The event a provider's own action leaves in its feed.
    fn from(action: Action) -> Self {
        match action {
            Action::Accept => FeedKind::Accepted,
            Action::Decline => FeedKind::Declined,
            Action::Contacted => FeedKind::Contacted,
            Action::Scheduled => FeedKind::Scheduled,
            Action::InProgress => FeedKind::InProgress,
            Action::Close => FeedKind::Closed,
        }
    }
}

/// How one offer to one provider ended (`referral_attempts.outcome`; null while it is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum AttemptOutcome {
    Accepted,
    Declined,
    Expired,
    /// The referral was withdrawn: cancelled by the portal.
    Cancelled,
    /// The referral was withdrawn: its personal data was erased.
    Erased,
}

impl Code for AttemptOutcome {
    const ALL: &'static [AttemptOutcome] = &[
        AttemptOutcome::Accepted,
        AttemptOutcome::Declined,
        AttemptOutcome::Expired,
        AttemptOutcome::Cancelled,
        AttemptOutcome::Erased,
    ];

    fn code(self) -> &'static str {
        match self {
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Declined => "declined",
            AttemptOutcome::Expired => "expired",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Erased => "erased",
        }
    }
}

crate::text_code!(Outcome, FeedKind, AttemptOutcome);

/// Why a provider turns an offer down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    AtCapacity,
    NotAFit,
    LanguageUnavailable,
    ModalityUnavailable,
    ConflictOfInterest,
    Other,
}

impl DeclineReason {
    pub fn code(self) -> &'static str {
        match self {
            DeclineReason::AtCapacity => "at_capacity",
            DeclineReason::NotAFit => "not_a_fit",
            DeclineReason::LanguageUnavailable => "language_unavailable",
            DeclineReason::ModalityUnavailable => "modality_unavailable",
            DeclineReason::ConflictOfInterest => "conflict_of_interest",
            DeclineReason::Other => "other",
        }
    }
}

/// The provider's actions allowed from `status`, in a stable order.
pub fn allowed_actions(status: Status) -> &'static [Action] {
    use Action::*;
    match status {
        Status::Offered => &[Accept, Decline],
        Status::Accepted => &[Contacted, Close],
        Status::Contacted => &[Scheduled, Close],
        Status::Scheduled => &[InProgress, Close],
        Status::InProgress => &[Close],
        Status::Submitted | Status::Closed | Status::Unroutable | Status::Cancelled => &[],
    }
}

/// Outcomes that make sense when closing from `status`: an employee who never had a session
/// cannot have "completed", and nobody can "no-show" before a session was scheduled.
pub fn allowed_outcomes(status: Status) -> &'static [Outcome] {
    use Outcome::*;
    match status {
        Status::Accepted | Status::Contacted => {
            &[UnableToContact, DeclinedByEmployee, ReferredElsewhere]
        }
        Status::Scheduled => &[
            NoShow,
            UnableToContact,
            DeclinedByEmployee,
            ReferredElsewhere,
        ],
        Status::InProgress => &[Completed, NoShow, DeclinedByEmployee, ReferredElsewhere],
        _ => &[],
    }
}

/// What `If-Match` asks for: any current representation (`*`), or one of the listed versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    Any,
    Versions(Vec<i32>),
}

impl Precondition {
    pub fn holds(&self, version: i32) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Versions(v) => v.contains(&version),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Not allowed from the current status; the allowed actions are listed.
    NotAllowed(Vec<Action>),
    /// Closing needs an outcome that fits the current status.
    Outcome(Vec<Outcome>),
}

/// The status an action leads to. Declining leads back to routing, which the caller runs.
pub fn next(
    status: Status,
    action: Action,
    outcome: Option<Outcome>,
) -> Result<Status, TransitionError> {
    if !allowed_actions(status).contains(&action) {
        return Err(TransitionError::NotAllowed(
            allowed_actions(status).to_vec(),
        ));
    }
    Ok(match action {
        Action::Accept => Status::Accepted,
        Action::Decline => Status::Offered,
        Action::Contacted => Status::Contacted,
        Action::Scheduled => Status::Scheduled,
        Action::InProgress => Status::InProgress,
        Action::Close => match outcome {
            Some(o) if allowed_outcomes(status).contains(&o) => Status::Closed,
            _ => return Err(TransitionError::Outcome(allowed_outcomes(status).to_vec())),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 6] = [
        Action::Accept,
        Action::Decline,
        Action::Contacted,
        Action::Scheduled,
        Action::InProgress,
        Action::Close,
    ];

    /// Every (status, action) pair: exactly the listed transitions succeed, and to the listed
    /// status.
    #[test]
    fn the_whole_transition_table() {
        let expected: &[(Status, Action, Status)] = &[
            (Status::Offered, Action::Accept, Status::Accepted),
            (Status::Offered, Action::Decline, Status::Offered),
            (Status::Accepted, Action::Contacted, Status::Contacted),
            (Status::Accepted, Action::Close, Status::Closed),
            (Status::Contacted, Action::Scheduled, Status::Scheduled),
            (Status::Contacted, Action::Close, Status::Closed),
            (Status::Scheduled, Action::InProgress, Status::InProgress),
            (Status::Scheduled, Action::Close, Status::Closed),
            (Status::InProgress, Action::Close, Status::Closed),
        ];
        for &status in Status::ALL {
            for action in ACTIONS {
                let outcome = allowed_outcomes(status).first().copied();
                let got = next(status, action, outcome);
                match expected
                    .iter()
                    .find(|(s, a, _)| *s == status && *a == action)
                {
                    Some((_, _, to)) => assert_eq!(got, Ok(*to), "{status:?} {action:?}"),
                    None => assert_eq!(
                        got,
                        Err(TransitionError::NotAllowed(
                            allowed_actions(status).to_vec()
                        )),
                        "{status:?} {action:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn closing_needs_a_fitting_outcome() {
        assert_eq!(
            next(Status::InProgress, Action::Close, Some(Outcome::Completed)),
            Ok(Status::Closed)
        );
        assert!(matches!(
            next(Status::Accepted, Action::Close, Some(Outcome::Completed)),
            Err(TransitionError::Outcome(_))
        ));
        assert!(matches!(
            next(Status::Contacted, Action::Close, Some(Outcome::NoShow)),
            Err(TransitionError::Outcome(_))
        ));
        assert!(matches!(
            next(Status::Scheduled, Action::Close, None),
            Err(TransitionError::Outcome(_))
        ));
    }

    #[test]
    fn final_states_allow_nothing() {
        for s in [
            Status::Closed,
            Status::Cancelled,
            Status::Unroutable,
            Status::Submitted,
        ] {
            assert!(allowed_actions(s).is_empty());
        }
    }
}
