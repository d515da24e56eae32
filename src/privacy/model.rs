//! Retention rules: when a referral's personal data falls due for destruction. No I/O.

use chrono::{NaiveDateTime, TimeDelta};

use crate::config::Config;
use crate::referrals::model::Status;

/// How long personal data is kept (docs/DESIGN.md §2; `EAP_RETENTION_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// After a referral is closed or cancelled.
    pub closed: TimeDelta,
    /// After submission, for a referral no provider has accepted.
    pub unaccepted: TimeDelta,
}

impl RetentionPolicy {
    pub fn from_config(config: &Config) -> Self {
        RetentionPolicy {
            closed: TimeDelta::days(i64::from(config.retention_closed_days)),
            unaccepted: TimeDelta::days(i64::from(config.retention_unaccepted_days)),
        }
    }
}

/// Which retention rule made a referral's data due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Closed or cancelled, and the closed-retention period has passed since.
    Closed,
    /// Still waiting for a provider (submitted, offered, unroutable) since submission plus the
    /// unaccepted-retention period: nobody will reach this person any more.
    NeverAccepted,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Closed => "closed",
            Rule::NeverAccepted => "never_accepted",
        }
    }
}

/// When a referral's personal data falls due, and under which rule. A referral in active care
/// (accepted up to in progress) is never due: the provider is still working with the person.
pub fn due_at(
    policy: &RetentionPolicy,
    status: Status,
    created_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
) -> Option<(NaiveDateTime, Rule)> {
    match status {
        Status::Closed | Status::Cancelled => {
            // A final referral always has closed_at; fall back to creation rather than keep
            // the data forever if a row somehow lacks it.
            Some((
                closed_at.unwrap_or(created_at) + policy.closed,
                Rule::Closed,
            ))
        }
        Status::Submitted | Status::Offered | Status::Unroutable => {
            Some((created_at + policy.unaccepted, Rule::NeverAccepted))
        }
        Status::Accepted | Status::Contacted | Status::Scheduled | Status::InProgress => None,
    }
}

/// When and under which rule the data is due, if it is due at `now` (exactly at the deadline
/// counts).
pub fn due(
    policy: &RetentionPolicy,
    status: Status,
    created_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Option<(NaiveDateTime, Rule)> {
    due_at(policy, status, created_at, closed_at).filter(|(at, _)| *at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Code;

    fn t(days: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_767_225_600, 0)
            .unwrap()
            .naive_utc()
            + TimeDelta::days(days)
    }

    const POLICY: RetentionPolicy = RetentionPolicy {
        closed: TimeDelta::days(30),
        unaccepted: TimeDelta::days(90),
    };

    #[test]
    fn each_status_has_its_rule() {
        for &status in Status::ALL {
            let closed_at = status.is_final().then(|| t(10));
            let got = due(&POLICY, status, t(0), closed_at, t(40)).map(|(_, r)| r);
            let want = match status {
                Status::Closed | Status::Cancelled => Some(Rule::Closed),
                _ => None,
            };
            assert_eq!(got, want, "{status:?} at day 40");
            let got = due(&POLICY, status, t(0), closed_at, t(90)).map(|(_, r)| r);
            let want = match status {
                Status::Closed | Status::Cancelled => Some(Rule::Closed),
                Status::Submitted | Status::Offered | Status::Unroutable => {
                    Some(Rule::NeverAccepted)
                }
                _ => None,
            };
            assert_eq!(got, want, "{status:?} at day 90");
        }
    }

    #[test]
    fn the_boundary_is_inclusive() {
        let closed = Some(t(5));
        assert_eq!(
            due(
                &POLICY,
                Status::Closed,
                t(0),
                closed,
                t(35) - TimeDelta::microseconds(1)
            ),
            None
        );
        assert_eq!(
            due(&POLICY, Status::Closed, t(0), closed, t(35)),
            Some((t(35), Rule::Closed))
        );
        assert_eq!(
            due(&POLICY, Status::Offered, t(0), None, t(90)),
            Some((t(90), Rule::NeverAccepted))
        );
    }

    #[test]
    fn active_care_is_never_due() {
        for status in [
            Status::Accepted,
            Status::Contacted,
            Status::Scheduled,
            Status::InProgress,
        ] {
            assert_eq!(due_at(&POLICY, status, t(0), None), None);
        }
    }
}
