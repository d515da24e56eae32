//! Utilisation counts and their suppression. No I/O.
//!
//! A report is a table: one row per calendar month, one column per category of the chosen
//! dimension. What makes it safe to publish:
//!
//! - **Whole, settled months only.** A cell counts one month; a window is a range of months that
//!   ended at least [`SETTLE_HOURS`] ago. Referrals never leave or change month once it has
//!   ended (rows are never deleted, `created_at` and the routing attributes never change, a
//!   closing time is final), but a time is stamped a little before its transaction commits, the
//!   purge stamps its withdrawals with the time of its batch, and instances' clocks differ by a
//!   little: the settling period covers all of that by a wide margin, so a published cell has
//!   the same value in every report that contains it, at any time.
//! - **Each month is suppressed on its own data.** Whether a cell or a month total is shown
//!   depends only on that month's counts, never on the window. Two overlapping windows show
//!   identical rows for their common months, so subtracting one report from another yields
//!   nothing that is not already published.
//! - **Small cells are hidden, zero included** (a zero next to a hidden 3 would say "nobody" and
//!   "a few" apart). When a month has any, **complementary suppression** also hides cells that
//!   are not small, chosen in the fixed category order — never by their values, which an
//!   attacker who knows the rule could then bound — until at least one of them is hidden and the
//!   hidden cells add up to at least `2·min − 1`. The month total (published, or known from the
//!   same month in a report by another dimension) minus the shown cells then reveals only a sum
//!   of at least that, and there is always room in the hidden cells to move any small count
//!   elsewhere without changing what is published. A month whose total is below the minimum
//!   hides its total and every cell.
//! - **Totals across months are shown only when nothing under them is hidden** (a category's
//!   total when all its cells in the window are shown, the grand total when every month total
//!   is). Otherwise the difference of two windows' totals would reveal a hidden month.
//!
//! The guarantee, with `min` the minimum: for every cell whose true count is below `min`, every
//! count from 0 to `min − 1` in that cell is consistent with everything published — the shown
//! cells, the month total, which cells are hidden — and with the rule itself. Someone who knows
//! the rule and the month total learns at most that a hidden cell may be small, never which
//! small count it holds. Why, for a small cell `i` holding `v` and any `w < min`: let `c` be the
//! first complement (the first cell in category order that is not small; all before it are
//! small, so hidden). Each change below keeps the shown cells and the total, and the rule
//! hides the same cells.
//! - `w < v`: move `v − w` into `c`. It only grows; no cell crosses the minimum.
//! - `w > v`, one complement: take `w − v` from the other small cells (down to 0), then from
//!   `c` (down to `min`). There is room: the hidden sum is at least `2·min − 1`, so the other
//!   small cells plus `c − min` hold at least `min − 1 − v ≥ w − v`. No cell crosses the
//!   minimum, `c` is still the first complement, and the hidden sum is unchanged.
//! - `w > v`, two complements `c`, `c2` (needed when the small cells and `c` fall short of
//!   `2·min − 1`; two always reach it): take it all from `c`. If `c` stays at least `min`,
//!   nothing changes; if it drops below, it is small and `c2` becomes the first complement,
//!   after which the hidden sum — the same, at least `2·min` — stops the rule.
//! - No complement (every cell small): fill the other cells up to `min − 1` and put what is
//!   left in one of them; if that one reaches the minimum it is the only one that does, and the
//!   rule hides it as the complement.
//! - A month hidden whole (total below `min`): any counts with a total below `min` fit.
//!
//! `model/tests.rs` checks this by brute force against an attacker who applies the rule to
//! every candidate month.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::directory::model::{Code, Modality, Service, Urgency};

/// The longest window a report covers.
pub const MAX_MONTHS: i32 = 24;

/// How long after its end a month can first be reported: far longer than any transaction, a
/// purge batch or the clock difference between instances, so nothing can still be added to a
/// month once it is reported.
pub const SETTLE_HOURS: i64 = 48;

/// A calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    /// `YYYY-MM`, years 2000–2999.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
        ((2000..=2999).contains(&y) && (1..=12).contains(&m)).then_some(Month(y * 12 + m - 1))
    }

    pub fn of(t: NaiveDateTime) -> Month {
        Month(t.year() * 12 + t.month0() as i32)
    }

    pub fn start(self) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(self.0.div_euclid(12), self.0.rem_euclid(12) as u32 + 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid month")
    }

    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.0.div_euclid(12),
            self.0.rem_euclid(12) + 1
        )
    }
}

/// The months of a window of `count` months from `from` that can be reported at `now`: those
/// that ended at least [`SETTLE_HOURS`] before it (their counts can no longer change, so every
/// report shows them the same). Later months are left out, not refused, so any `from` and any
/// `count` up to [`MAX_MONTHS`] is a valid question; the answer may be no month at all.
pub fn window(from: Month, count: u32, now: NaiveDateTime) -> Vec<Month> {
    let count = count.min(MAX_MONTHS as u32) as i32;
    (from.0..from.0 + count)
        .map(Month)
        .take_while(|m| m.next().start() + TimeDelta::hours(SETTLE_HOURS) <= now)
        .collect()
}

/// What a report is grouped by, besides the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By month of submission.
    ServiceType,
    /// By month of submission.
    Urgency,
    /// By month of submission.
    Modality,
    /// By month of closing or cancellation: how referrals ended (`cancelled` included).
    Outcome,
}

impl GroupBy {
    /// Every column, in a fixed order, whether or not it has referrals (an absent column would
    /// tell its count was zero).
    pub fn categories(self) -> Vec<&'static str> {
        fn codes<C: Code>() -> Vec<&'static str> {
            C::ALL.iter().map(|c| c.code()).collect()
        }
        match self {
            GroupBy::ServiceType => codes::<Service>(),
            GroupBy::Urgency => codes::<Urgency>(),
            GroupBy::Modality => codes::<Modality>(),
            // How referrals end: the provider's closing outcomes, and cancellation.
            GroupBy::Outcome => crate::workflow::model::Outcome::ALL
                .iter()
                .map(|o| o.code())
                .chain([crate::referrals::model::Status::Cancelled.code()])
                .collect(),
        }
    }
}

/// Counts per month (rows, in window order) and category (columns, in `categories` order).
pub fn tally<'a>(
    months: &[Month],
    categories: &[&str],
    items: impl IntoIterator<Item = (Month, &'a str)>,
) -> Vec<Vec<u64>> {
    let mut counts = vec![vec![0u64; categories.len()]; months.len()];
    for (month, category) in items {
        let (Some(r), Some(c)) = (
            months.iter().position(|m| *m == month),
            categories.iter().position(|k| *k == category),
        ) else {
            continue;
        };
        counts[r][c] += 1;
    }
    counts
}

/// One month's cells and total as published (`None` = suppressed). Depends on this month's
/// counts and the minimum only; the module docs say why it is safe.
pub fn suppress_month(counts: &[u64], min: u64) -> (Vec<Option<u64>>, Option<u64>) {
    let total: u64 = counts.iter().sum();
    if total < min {
        // Every cell is at most the total, so all are small: hide the whole month.
        return (vec![None; counts.len()], None);
    }
    let mut hidden: Vec<bool> = counts.iter().map(|&n| n < min).collect();
    if hidden.contains(&true) {
        // Complementary suppression: cells that are not small, in category order (never by
        // value), until one is hidden and the hidden sum is at least 2·min − 1.
        let enough = (2 * min).saturating_sub(1);
        let mut sum: u64 = counts.iter().filter(|&&n| n < min).sum();
        let mut complements = 0;
        for (i, &n) in counts.iter().enumerate() {
            if complements > 0 && sum >= enough {
                break;
            }
            if !hidden[i] {
                hidden[i] = true;
                sum += n;
                complements += 1;
            }
        }
    }
    let cells = counts
        .iter()
        .zip(&hidden)
        .map(|(&n, &h)| (!h).then_some(n))
        .collect();
    (cells, Some(total))
}

/// A report as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `cells[month][category]`.
    pub cells: Vec<Vec<Option<u64>>>,
    pub month_totals: Vec<Option<u64>>,
    pub category_totals: Vec<Option<u64>>,
    pub grand_total: Option<u64>,
}

/// Suppresses a window's counts (`counts[month][category]`).
pub fn publish(counts: &[Vec<u64>], categories: usize, min: u64) -> Published {
    let (cells, month_totals): (Vec<_>, Vec<_>) =
        counts.iter().map(|row| suppress_month(row, min)).unzip();
    // A total over months only when every value under it is shown: it then adds nothing, but
    // saves the reader a sum; otherwise two windows' totals would differ by a hidden month.
    let category_totals = (0..categories)
        .map(|c| {
            cells
                .iter()
                .map(|row: &Vec<Option<u64>>| row[c])
                .sum::<Option<u64>>()
        })
        .collect();
    let grand_total = month_totals.iter().copied().sum::<Option<u64>>();
    Published {
        cells,
        month_totals,
        category_totals,
        grand_total,
    }
}

#[cfg(test)]
mod tests;
