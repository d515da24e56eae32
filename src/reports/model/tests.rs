use proptest::prelude::*;

use super::*;
use chrono::TimeDelta;

#[test]
fn months_parse_and_print() {
    let m = Month::parse("2026-01").unwrap();
    assert_eq!(m.to_string(), "2026-01");
    assert_eq!(m.next().to_string(), "2026-02");
    assert_eq!(
        Month::parse("2026-12").unwrap().next().to_string(),
        "2027-01"
    );
    for bad in [
        "2026-13",
        "2026-00",
        "26-01",
        "2026-1",
        "2026-01-01",
        "",
        "abcd-ef",
        "1999-12",
    ] {
        assert_eq!(Month::parse(bad), None, "{bad}");
    }
    let t = chrono::NaiveDate::from_ymd_opt(2026, 3, 31)
        .unwrap()
        .and_hms_opt(23, 59, 59)
        .unwrap();
    assert_eq!(Month::of(t).to_string(), "2026-03");
    assert_eq!(Month::of(t).start().to_string(), "2026-03-01 00:00:00");
}

#[test]
fn windows_keep_only_settled_months() {
    let m = |s| Month::parse(s).unwrap();
    let now = m("2026-04").start() + TimeDelta::days(10);
    let months = |v: Vec<Month>| v.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    assert_eq!(
        months(window(m("2026-01"), 3, now)),
        ["2026-01", "2026-02", "2026-03"]
    );
    // Months not yet settled are left out, whatever was asked.
    assert_eq!(
        months(window(m("2026-02"), 12, now)),
        ["2026-02", "2026-03"]
    );
    assert!(window(m("2026-04"), 1, now).is_empty());
    assert!(window(m("2999-12"), 24, now).is_empty());
    // Never more than MAX_MONTHS.
    assert_eq!(window(m("2020-01"), 1000, now).len(), MAX_MONTHS as usize);
    assert!(window(m("2020-01"), 0, now).is_empty());
}

#[test]
fn a_month_is_reported_only_once_settled() {
    // The API documentation and docs/PRIVACY.md say 48 hours.
    assert_eq!(SETTLE_HOURS, 48);
    let m = |s| Month::parse(s).unwrap();
    let settled = m("2026-04").start() + TimeDelta::hours(48);
    for early in [
        m("2026-04").start(),
        m("2026-04").start() + TimeDelta::hours(1),
        settled - TimeDelta::microseconds(1),
    ] {
        assert_eq!(window(m("2026-03"), 1, early), vec![], "{early}");
    }
    assert_eq!(window(m("2026-03"), 1, settled), vec![m("2026-03")]);
    // A year's end is no different.
    let jan = m("2027-01").start();
    assert!(window(m("2026-12"), 1, jan + TimeDelta::hours(47)).is_empty());
    assert_eq!(window(m("2026-12"), 1, jan + TimeDelta::hours(48)).len(), 1);
}

#[test]
fn a_small_cell_takes_a_complement_with_it() {
    let (cells, total) = suppress_month(&[40, 3, 25, 12], 11);
    assert_eq!(total, Some(80));
    // 3 alone would be total − shown; the first cell in category order that is not small (40)
    // joins it, whatever its value: hidden sum 43 ≥ 2·11 − 1.
    assert_eq!(cells, vec![None, None, Some(25), Some(12)]);
}

#[test]
fn complements_continue_until_the_hidden_sum_is_twice_the_minimum_less_one() {
    // Zeros are small too; 0 + 2 + 0 = 2, then 11 joins (13 < 21), then 30 (43).
    let (cells, _) = suppress_month(&[0, 2, 0, 11, 30, 50], 11);
    assert_eq!(cells, vec![None, None, None, None, None, Some(50)]);
    // Small cells adding up to 21 still take one complement: otherwise [10, 10, 10] hidden
    // beside a shown 11 would add up to 30 = 3 × 10, and each would be 10.
    let (cells, total) = suppress_month(&[11, 10, 10, 10], 11);
    assert_eq!(total, Some(41));
    assert_eq!(cells, vec![None; 4]);
    let (cells, _) = suppress_month(&[30, 10, 10, 10, 12], 11);
    assert_eq!(cells, vec![None, None, None, None, Some(12)]);
}

#[test]
fn the_reviewed_leaks_are_closed() {
    // [12, 12, 10] published as [–, 12, –] with total 34 used to pin crisis at 10: the
    // complement was the smallest shown cell, so at most 12. Now it is the first in order.
    let (cells, _) = suppress_month(&[12, 12, 10], 11);
    assert_eq!(cells, vec![None, Some(12), None]);
    let (cells, _) = suppress_month(&[11, 10, 10], 11);
    assert_eq!(cells, vec![None, None, None]);
}

#[test]
fn a_small_month_hides_everything() {
    let (cells, total) = suppress_month(&[7, 0, 3], 11);
    assert_eq!(total, None);
    assert_eq!(cells, vec![None, None, None]);
}

#[test]
fn nothing_small_nothing_hidden() {
    let p = publish(&[vec![11, 20], vec![15, 12]], 2, 11);
    assert_eq!(p.category_totals, vec![Some(26), Some(32)]);
    assert_eq!(p.grand_total, Some(58));
}

#[test]
fn totals_over_hidden_cells_are_hidden() {
    let p = publish(&[vec![25, 20, 2], vec![15, 12, 30]], 3, 11);
    assert_eq!(p.cells[0], vec![None, Some(20), None]);
    assert_eq!(p.category_totals, vec![None, Some(32), None]);
    assert_eq!(p.grand_total, Some(104));
    let p = publish(&[vec![1, 2, 3], vec![15, 12, 30]], 3, 11);
    assert_eq!(p.month_totals, vec![None, Some(57)]);
    assert_eq!(p.grand_total, None);
}

// ---------------------------------------------------------------------------------------------
// The rule-aware attacker. It knows the suppression rule and a month's total (published, or
// read off the same month grouped by another dimension: any two columns of counts with the
// same total are the margins of some table of referrals, so the total is the only link between
// dimensions). For every possible month — every vector of counts up to a total — it groups the
// vectors by what would be published, so each group is exactly what the attacker cannot tell
// apart. The guarantee: a hidden cell that holds a count below the minimum could, as far as the
// attacker can tell, hold any count from 0 to min − 1.

/// Every vector of `k` counts adding up to `total`.
fn compositions(k: usize, total: u64, f: &mut impl FnMut(&[u64])) {
    fn go(prefix: &mut Vec<u64>, k: usize, left: u64, f: &mut impl FnMut(&[u64])) {
        if prefix.len() + 1 == k {
            prefix.push(left);
            f(prefix);
            prefix.pop();
            return;
        }
        for n in 0..=left {
            prefix.push(n);
            go(prefix, k, left - n, f);
            prefix.pop();
        }
    }
    go(&mut Vec::with_capacity(k), k, total, f);
}

/// Cells (category, true count) that the attacker pins to fewer than all of 0..min−1, for
/// every month of `k` categories with a total up to `max_total` (groups with a published total
/// up to it are complete, and so is the one with a hidden total when `max_total` ≥ min − 1).
fn rule_aware_leaks(
    rule: impl Fn(&[u64], u64) -> (Vec<Option<u64>>, Option<u64>),
    k: usize,
    min: u64,
    max_total: u64,
) -> Vec<(Vec<u64>, usize)> {
    use std::collections::HashMap;
    assert!(max_total + 1 >= min);
    // Published output → for each category, the set of counts seen (as a bit set) among the
    // vectors that publish it; plus the vectors themselves, to name the leaks.
    type Output = (Vec<Option<u64>>, Option<u64>);
    type Seen = Vec<u128>;
    let mut groups: HashMap<Output, (Seen, Vec<Vec<u64>>)> = HashMap::new();
    for total in 0..=max_total {
        compositions(k, total, &mut |x| {
            let (seen, members) = groups
                .entry(rule(x, min))
                .or_insert_with(|| (vec![0; k], Vec::new()));
            for (s, &n) in seen.iter_mut().zip(x) {
                if n < 128 {
                    *s |= 1 << n;
                }
            }
            members.push(x.to_vec());
        });
    }
    let every_small: u128 = (1u128 << min) - 1;
    let mut leaks = Vec::new();
    for ((cells, _), (seen, members)) in &groups {
        for c in (0..k).filter(|&c| cells[c].is_none()) {
            if seen[c] & every_small == every_small {
                continue;
            }
            leaks.extend(
                members
                    .iter()
                    .filter(|x| x[c] < min)
                    .map(|x| (x.clone(), c)),
            );
        }
    }
    leaks.sort();
    leaks
}

/// The rule this module replaced: complements were the smallest shown cells, until the hidden
/// sum reached the minimum.
fn smallest_first(counts: &[u64], min: u64) -> (Vec<Option<u64>>, Option<u64>) {
    let total: u64 = counts.iter().sum();
    if total < min {
        return (vec![None; counts.len()], None);
    }
    let mut hidden: Vec<bool> = counts.iter().map(|&n| n < min).collect();
    let sum = |h: &[bool]| -> u64 {
        counts
            .iter()
            .zip(h)
            .filter(|(_, h)| **h)
            .map(|(n, _)| n)
            .sum()
    };
    let count = |h: &[bool]| h.iter().filter(|h| **h).count();
    while count(&hidden) > 0 && (sum(&hidden) < min || count(&hidden) < 2) {
        let Some(next) = (0..counts.len())
            .filter(|&i| !hidden[i])
            .min_by_key(|&i| counts[i])
        else {
            break;
        };
        hidden[next] = true;
    }
    let cells = counts
        .iter()
        .zip(&hidden)
        .map(|(&n, &h)| (!h).then_some(n))
        .collect();
    (cells, Some(total))
}

#[test]
fn the_attacker_finds_the_old_rules_leaks() {
    // The reviewer's examples: the old rule lets the attacker pin crisis at exactly 10.
    let leaks = rule_aware_leaks(smallest_first, 3, 11, 45);
    assert!(leaks.contains(&(vec![12, 12, 10], 2)), "{leaks:?}");
    assert!(leaks.contains(&(vec![11, 10, 10], 1)), "{leaks:?}");
}

#[test]
fn no_small_count_is_narrowed_by_an_attacker_who_knows_the_rule() {
    // (categories, minimum, largest total): the report dimensions have 3, 4, 6 and 7
    // categories; the minimum is never below 5 and 11 by default.
    for (k, min, max_total) in [
        (2, 5, 60),
        (2, 11, 80),
        (3, 5, 45),
        (3, 11, 60),
        (3, 15, 70),
        (4, 5, 36),
        (4, 11, 46),
        (5, 5, 28),
        (6, 5, 20),
        (7, 5, 16),
    ] {
        let leaks = rule_aware_leaks(suppress_month, k, min, max_total);
        assert!(
            leaks.is_empty(),
            "{k} categories, minimum {min}: {} narrowed, e.g. {:?}",
            leaks.len(),
            &leaks[..leaks.len().min(5)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The linear attacker. It holds two reports of the same referrals — any two windows, each grouped
// by either of two dimensions — and knows that a month has the same total whichever dimension it
// is grouped by. Every published number is a linear equation over the true cells; everything
// the attacker can compute exactly is a vector in the span of those equations. For each cell,
// each month total, each sum of one category over a run of months, and each sum of a month's
// hidden cells, it checks whether the vector is in the span and, if so, that the value it
// yields is at least the minimum (zero included: "nobody" is as telling as "a few").

const MONTHS: usize = 5;

struct Attacker {
    /// Rows in reduced echelon form: (coefficients, right-hand side, pivot column).
    rows: Vec<(Vec<f64>, f64, usize)>,
    width: usize,
}

impl Attacker {
    fn new(width: usize) -> Self {
        Attacker {
            rows: Vec::new(),
            width,
        }
    }

    /// Reduces `v` by the rows so far; returns what is left and the accumulated value.
    fn reduce(&self, mut v: Vec<f64>, mut rhs: f64) -> (Vec<f64>, f64) {
        for (row, r, pivot) in &self.rows {
            let k = v[*pivot];
            if k.abs() > 1e-9 {
                for (a, b) in v.iter_mut().zip(row) {
                    *a -= k * b;
                }
                rhs -= k * r;
            }
        }
        (v, rhs)
    }

    fn learn(&mut self, v: Vec<f64>, rhs: f64) {
        let (mut v, mut rhs) = self.reduce(v, rhs);
        let Some(pivot) = (0..self.width).max_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs())) else {
            return;
        };
        let p = v[pivot];
        if p.abs() < 1e-9 {
            return;
        }
        for a in v.iter_mut() {
            *a /= p;
        }
        rhs /= p;
        // Keep the rows fully reduced: clear the new pivot column from the older rows.
        for (row, r, _) in self.rows.iter_mut() {
            let k = row[pivot];
            if k.abs() > 1e-12 {
                for (a, b) in row.iter_mut().zip(&v) {
                    *a -= k * b;
                }
                *r -= k * rhs;
            }
        }
        self.rows.push((v, rhs, pivot));
    }

    /// The exact value of `target · cells`, when the equations determine it.
    fn derive(&self, target: &[f64]) -> Option<f64> {
        let (rest, value) = self.reduce(target.to_vec(), 0.0);
        // Reducing `target` leaves `target − Σ k·row` with value `−Σ k·rhs`.
        rest.iter().all(|a| a.abs() < 1e-6).then_some(-value)
    }
}

#[derive(Debug, Clone)]
struct Case {
    min: u64,
    /// Number of categories of each of the two dimensions.
    dims: [usize; 2],
    /// Referrals as (month, category in dimension 0, category in dimension 1).
    referrals: Vec<(usize, usize, usize)>,
    /// Two reports: (dimension, first month, last month).
    queries: [(usize, usize, usize); 2],
}

fn case() -> impl Strategy<Value = Case> {
    let dims = prop::sample::select(vec![3usize, 4, 6, 7]);
    (5u64..=15, dims.clone(), dims, any::<u64>(), 0usize..4)
        .prop_flat_map(|(min, d0, d1, seed, density)| {
            let window = (0..MONTHS).prop_flat_map(|a| (Just(a), a..MONTHS));
            let query = (0usize..2, window).prop_map(|(d, (a, b))| (d, a, b));
            (
                Just(min),
                Just([d0, d1]),
                Just(seed),
                Just(density),
                query.clone(),
                query,
            )
        })
        .prop_map(|(min, dims, seed, density, q0, q1)| {
            // Skewed, seeded draws: rare categories and thin months around the minimum are the
            // interesting ones, and uniform draws would rarely make them.
            let mut state = seed | 1;
            let mut next = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            let mut referrals = Vec::new();
            let weights: Vec<Vec<u64>> = dims
                .iter()
                .map(|&d| (0..d).map(|_| [0, 1, 1, 3, 10][next(5) as usize]).collect())
                .collect();
            let pick = |w: &[u64], r: u64| {
                let total: u64 = w.iter().sum::<u64>().max(1);
                let mut r = r % total;
                w.iter()
                    .position(|&x| {
                        if r < x {
                            true
                        } else {
                            r -= x;
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            for month in 0..MONTHS {
                let n = next([12, 25, 45, 90][density] + 1);
                for _ in 0..n {
                    let a = pick(&weights[0], next(1 << 20));
                    let b = pick(&weights[1], next(1 << 20));
                    referrals.push((month, a, b));
                }
            }
            Case {
                min,
                dims,
                referrals,
                queries: [q0, q1],
            }
        })
}

fn counts(case: &Case, dim: usize) -> Vec<Vec<u64>> {
    let mut out = vec![vec![0u64; case.dims[dim]]; MONTHS];
    for &(m, a, b) in &case.referrals {
        out[m][if dim == 0 { a } else { b }] += 1;
    }
    out
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    // Unknowns: every (dimension, month, category) cell.
    let offset = [0, MONTHS * case.dims[0]];
    let width = MONTHS * (case.dims[0] + case.dims[1]);
    let var = |d: usize, m: usize, c: usize| offset[d] + m * case.dims[d] + c;
    let truth: Vec<Vec<Vec<u64>>> = vec![counts(case, 0), counts(case, 1)];
    let value = |v: &[f64]| -> f64 {
        let mut sum = 0.0;
        for d in 0..2 {
            for m in 0..MONTHS {
                for c in 0..case.dims[d] {
                    sum += v[var(d, m, c)] * truth[d][m][c] as f64;
                }
            }
        }
        sum
    };
    let mut attacker = Attacker::new(width);
    let mut hidden: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for &(d, from, to) in &case.queries {
        let window: Vec<Vec<u64>> = truth[d][from..=to].to_vec();
        let published = publish(&window, case.dims[d], case.min);
        // Nothing below the minimum is ever printed.
        let printed = published
            .cells
            .iter()
            .flatten()
            .chain(&published.month_totals)
            .chain(&published.category_totals)
            .chain(std::iter::once(&published.grand_total));
        for n in printed.flatten() {
            prop_assert!(*n >= case.min, "printed {n} < {}", case.min);
        }
        let mut grand = vec![0.0; width];
        for (i, m) in (from..=to).enumerate() {
            let mut row = vec![0.0; width];
            for c in 0..case.dims[d] {
                row[var(d, m, c)] = 1.0;
                grand[var(d, m, c)] = 1.0;
                if let Some(n) = published.cells[i][c] {
                    let mut e = vec![0.0; width];
                    e[var(d, m, c)] = 1.0;
                    attacker.learn(e, n as f64);
                }
            }
            if let Some(n) = published.month_totals[i] {
                attacker.learn(row, n as f64);
            }
            let gone: Vec<usize> = (0..case.dims[d])
                .filter(|&c| published.cells[i][c].is_none())
                .collect();
            hidden.push((d, m, gone));
        }
        for c in 0..case.dims[d] {
            if let Some(n) = published.category_totals[c] {
                let mut e = vec![0.0; width];
                for m in from..=to {
                    e[var(d, m, c)] = 1.0;
                }
                attacker.learn(e, n as f64);
            }
        }
        if let Some(n) = published.grand_total {
            attacker.learn(grand, n as f64);
        }
    }
    // Both dimensions count the same referrals: a month's totals agree.
    if case.queries[0].0 != case.queries[1].0 {
        for m in 0..MONTHS {
            let mut e = vec![0.0; width];
            for c in 0..case.dims[0] {
                e[var(0, m, c)] = 1.0;
            }
            for c in 0..case.dims[1] {
                e[var(1, m, c)] = -1.0;
            }
            attacker.learn(e, 0.0);
        }
    }
    // What the attacker tries to learn.
    let mut targets: Vec<Vec<f64>> = Vec::new();
    for d in 0..2 {
        for m in 0..MONTHS {
            let mut row = vec![0.0; width];
            for c in 0..case.dims[d] {
                let mut e = vec![0.0; width];
                e[var(d, m, c)] = 1.0;
                targets.push(e);
                row[var(d, m, c)] = 1.0;
            }
            targets.push(row);
        }
        for c in 0..case.dims[d] {
            for a in 0..MONTHS {
                for b in a..MONTHS {
                    let mut e = vec![0.0; width];
                    for m in a..=b {
                        e[var(d, m, c)] = 1.0;
                    }
                    targets.push(e);
                }
            }
        }
    }
    for (d, m, gone) in &hidden {
        // Each hidden cell of a month paired with each other one, and all of them together.
        for (i, &a) in gone.iter().enumerate() {
            for &b in &gone[i + 1..] {
                let mut e = vec![0.0; width];
                e[var(*d, *m, a)] = 1.0;
                e[var(*d, *m, b)] = 1.0;
                targets.push(e);
            }
        }
        let mut e = vec![0.0; width];
        for &c in gone {
            e[var(*d, *m, c)] = 1.0;
        }
        if !gone.is_empty() {
            targets.push(e);
        }
    }
    for t in &targets {
        if let Some(derived) = attacker.derive(t) {
            let actual = value(t);
            prop_assert!(
                (derived - actual).abs() < 1e-6,
                "the attacker's algebra is wrong"
            );
            prop_assert!(
                actual >= case.min as f64,
                "derived {actual} (< {}) from {:?}",
                case.min,
                case.queries
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_pair_of_reports_reveals_a_small_count(case in case()) {
        check(&case)?;
    }
}
