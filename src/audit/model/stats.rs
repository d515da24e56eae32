//! The access log's counts over time: which buckets and groupings an auditor may ask for, how
//! large a window each allows, and how a window splits into whole hours (read from the hourly
//! counts the sealer keeps) and its ragged ends (counted event by event). Pure: the counting
//! itself is SQL (`store::counts`).

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The width of one bucket of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccessStatsBucket)]
pub enum Bucket {
    Hour,
    Day,
}

/// What each bucket's events are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccessStatsGroup)]
pub enum GroupBy {
    /// `success`, `denied`, `failure`.
    Outcome,
    /// The acting client's id (none for an anonymous or unknown caller).
    Actor,
}

/// The most buckets one answer covers: a month of hours, a year of days. Larger windows are
/// refused rather than answered slowly or thinned out, so a chart never hides a spike.
pub const MAX_BUCKETS: i64 = 744;
pub const MAX_DAYS: i64 = 366;

/// The most rows (bucket × key) one answer holds: bounds an actor grouping over a window in
/// which many distinct clients acted. Past it the answer says it was cut short.
pub const MAX_ROWS: i64 = 10_000;

impl Bucket {
    /// Hours in one bucket: buckets are whole UTC hours or days, numbered from the epoch.
    pub fn hours(self) -> i64 {
        match self {
            Bucket::Hour => 1,
            Bucket::Day => 24,
        }
    }

    /// The start of bucket `index` (counted from 1970-01-01T00:00Z), as RFC 3339.
    pub fn start(self, index: i64) -> String {
        let start = start_of_hour(index * self.hours());
        match self {
            Bucket::Hour => start.format("%Y-%m-%dT%H:00:00Z").to_string(),
            Bucket::Day => start.format("%Y-%m-%dT00:00:00Z").to_string(),
        }
    }

    pub fn width(self) -> Duration {
        Duration::hours(self.hours())
    }

    /// The longest window this bucket may cover.
    pub fn max_window(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(MAX_BUCKETS),
            Bucket::Day => Duration::days(MAX_DAYS),
        }
    }
}

/// Why a window is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WindowError {
    /// `to` is at or before `from`.
    Empty,
    /// Wider than the bucket allows.
    TooWide { max: Duration },
}

/// Checks a window for a bucket width: non-empty, and at most `max_window` long.
pub fn check_window(
    from: NaiveDateTime,
    to: NaiveDateTime,
    bucket: Bucket,
) -> Result<(), WindowError> {
    if to <= from {
        return Err(WindowError::Empty);
    }
    let max = bucket.max_window();
    if to - from > max {
        return Err(WindowError::TooWide { max });
    }
    Ok(())
}

/// Hours since 1970-01-01T00:00Z of the hour holding `t` (UTC).
pub fn hour_of(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(3600)
}

/// When hour `h` (since the epoch) starts.
pub fn start_of_hour(h: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(h * 3600, 0)
        .map(|t| t.naive_utc())
        .unwrap_or(NaiveDateTime::MAX)
}

/// A window `[from, to)` as it is counted: the whole hours inside it from the hourly counts,
/// and what lies before and after them event by event. Together the three parts cover the
/// window once, whatever its ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// Whole hours `[hours.0, hours.1)`; empty when the window holds no whole hour.
    pub hours: (i64, i64),
    /// The head `[from, head_end)`, before the first whole hour.
    pub head_end: NaiveDateTime,
    /// The tail `[tail_start, to)`, after the last whole hour.
    pub tail_start: NaiveDateTime,
}

pub fn split(from: NaiveDateTime, to: NaiveDateTime) -> Split {
    let floor = hour_of(from);
    let first = if start_of_hour(floor) == from {
        floor
    } else {
        floor + 1
    };
    let last = hour_of(to);
    if first < last {
        Split {
            hours: (first, last),
            head_end: start_of_hour(first),
            tail_start: start_of_hour(last),
        }
    } else {
        // No whole hour: the head is the whole window and the tail is empty.
        Split {
            hours: (0, 0),
            head_end: to,
            tail_start: to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every instant of the window is counted by exactly one part, and nothing outside it.
        #[test]
        fn a_split_covers_the_window_once(
            from in 1_700_000_000i64..1_700_400_000,
            len in 1i64..300_000,
            probe in 1_699_990_000i64..1_700_710_000,
            sub in 0u32..1_000_000_000,
        ) {
            let at = |s: i64, ns: u32| chrono::DateTime::from_timestamp(s, ns).unwrap().naive_utc();
            let (from, to, t) = (at(from, sub), at(from + len, 0), at(probe, sub / 3));
            let parts = split(from, to);
            let in_head = from <= t && t < parts.head_end;
            let in_hours = parts.hours.0 <= hour_of(t) && hour_of(t) < parts.hours.1;
            let in_tail = parts.tail_start <= t && t < to;
            let inside = from <= t && t < to;
            prop_assert_eq!(
                [in_head, in_hours, in_tail].iter().filter(|&&b| b).count(),
                usize::from(inside),
                "{:?} in {}..{}: {:?}", t, from, to, parts
            );
        }
    }

    #[test]
    fn buckets_are_numbered_from_the_epoch_in_utc() {
        assert_eq!(hour_of(t("1970-01-01 00:59")), 0);
        assert_eq!(hour_of(t("2026-12-01 04:30")), 498_916);
        assert_eq!(Bucket::Hour.start(498_916), "2026-12-01T04:00:00Z");
        assert_eq!(Bucket::Day.start(498_916 / 24), "2026-12-01T00:00:00Z");
        assert_eq!(
            split(t("2026-12-01 04:00"), t("2026-12-01 06:30")),
            Split {
                hours: (498_916, 498_918),
                head_end: t("2026-12-01 04:00"),
                tail_start: t("2026-12-01 06:00"),
            }
        );
        assert_eq!(
            split(t("2026-12-01 04:10"), t("2026-12-01 04:50")).hours,
            (0, 0)
        );
    }

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_window_must_be_non_empty_and_within_the_bucket_limit() {
        let cases = [
            (
                "2026-01-01 00:00",
                "2026-01-01 00:00",
                Bucket::Hour,
                Err(WindowError::Empty),
            ),
            (
                "2026-01-02 00:00",
                "2026-01-01 00:00",
                Bucket::Day,
                Err(WindowError::Empty),
            ),
            ("2026-01-01 00:00", "2026-02-01 00:00", Bucket::Hour, Ok(())),
            (
                "2026-01-01 00:00",
                "2026-02-01 00:01",
                Bucket::Hour,
                Err(WindowError::TooWide {
                    max: Duration::hours(744),
                }),
            ),
            ("2026-01-01 00:00", "2027-01-02 00:00", Bucket::Day, Ok(())),
            (
                "2026-01-01 00:00",
                "2027-01-03 00:00",
                Bucket::Day,
                Err(WindowError::TooWide {
                    max: Duration::days(366),
                }),
            ),
        ];
        for (from, to, bucket, want) in cases {
            assert_eq!(
                check_window(t(from), t(to), bucket),
                want,
                "{from}..{to} {bucket:?}"
            );
        }
    }
}
