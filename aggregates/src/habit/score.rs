//! The habit strength score of Loop Habit Tracker, computed exactly as Loop computes it
//! (`ScoreList.recompute` and `Score.compute` of Loop 2.x).
//!
//! For a habit "N times in D days" (frequency `f = N / D`):
//! - the multiplier is `m = 0.5^(sqrt(f) / 13)`;
//! - each day `t` from the first entry on, `score_t = score_{t-1}·m + p_t·(1 − m)`;
//! - yes/no habits: `p_t = min(1, YES entries in the last D days / N)`. Like Loop, a non-daily
//!   habit (`f < 1`) doubles N and D (a window of 2D days, 2N entries) to smooth irregular
//!   schedules; a habit done regularly gets the same `p` either way;
//! - numeric habits: the rolling sum `s` of the amounts of the last D days against the target:
//!   at least: `p_t = min(1, s / target)`; at most: `p_t = clamp(1 − (s − target) / target, 0, 1)`;
//! - a SKIP day carries the score over unchanged (and counts nothing in the sums);
//! - the score starts at 0 (at-most habits: at 1) the day before the first entry.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{EntryValue, Frequency, Goal, HabitKind};

/// Loop's multiplier for a frequency of `times` in `days`: `0.5^(sqrt(times/days) / 13)`.
pub fn multiplier(frequency: Frequency) -> f64 {
    0.5_f64.powf(frequency.ratio().sqrt() / 13.0)
}

/// One day's step: `previous·m + completed·(1 − m)`.
pub fn step(multiplier: f64, previous: f64, completed: f64) -> f64 {
    previous * multiplier + completed * (1.0 - multiplier)
}

/// The score of every day from the first entry to `until` (both included), in day order; empty
/// when there is no entry on or before `until`.
pub fn scores(
    entries: &BTreeMap<NaiveDate, EntryValue>,
    kind: &HabitKind,
    frequency: Frequency,
    until: NaiveDate,
) -> Vec<(NaiveDate, f64)> {
    let Some(first) = entries.keys().next().copied().filter(|f| *f <= until) else {
        return Vec::new();
    };
    let m = multiplier(frequency);
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= until).collect();
    let value = |d: NaiveDate| entries.get(&d);
    let mut out = Vec::with_capacity(days.len());
    match kind {
        HabitKind::YesNo => {
            let (mut n, mut d) = (frequency.times, frequency.days);
            if frequency.ratio() < 1.0 {
                n *= 2;
                d *= 2;
            }
            let mut score = 0.0;
            let mut rolling = 0u32;
            for (i, day) in days.iter().enumerate() {
                if value(*day) == Some(&EntryValue::Yes) {
                    rolling += 1;
                }
                if i >= d as usize && value(days[i - d as usize]) == Some(&EntryValue::Yes) {
                    rolling -= 1;
                }
                if value(*day) != Some(&EntryValue::Skip) {
                    let completed = (f64::from(rolling) / f64::from(n)).min(1.0);
                    score = step(m, score, completed);
                }
                out.push((*day, score));
            }
        }
        HabitKind::Numeric { target, goal, .. } => {
            let amount = |d: NaiveDate| match value(d) {
                Some(EntryValue::Amount(a)) => *a,
                _ => Decimal::ZERO,
            };
            let target = to_f64(*target);
            let at_most = *goal == Goal::AtMost;
            let d = frequency.days as usize;
            let mut score = if at_most { 1.0 } else { 0.0 };
            let mut rolling = Decimal::ZERO;
            for (i, day) in days.iter().enumerate() {
                rolling += amount(*day);
                if i >= d {
                    rolling -= amount(days[i - d]);
                }
                if value(*day) != Some(&EntryValue::Skip) {
                    let sum = to_f64(rolling);
                    let completed = if at_most {
                        (1.0 - (sum - target) / target).clamp(0.0, 1.0)
                    } else {
                        (sum / target).min(1.0)
                    };
                    score = step(m, score, completed);
                }
                out.push((*day, score));
            }
        }
    }
    out
}

/// The score on `day` (0 before any entry; an at-most habit's 1).
pub fn score_on(
    entries: &BTreeMap<NaiveDate, EntryValue>,
    kind: &HabitKind,
    frequency: Frequency,
    day: NaiveDate,
) -> f64 {
    scores(entries, kind, frequency, day)
        .last()
        .map(|(_, s)| *s)
        .unwrap_or(match kind {
            HabitKind::Numeric {
                goal: Goal::AtMost, ..
            } => 1.0,
            _ => 0.0,
        })
}

fn to_f64(d: Decimal) -> f64 {
    f64::try_from(d).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n - 1)
    }

    fn daily() -> Frequency {
        Frequency { times: 1, days: 1 }
    }

    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 0.0001,
            "expected {expected}, got {actual}"
        );
    }

    fn yes_days(range: std::ops::RangeInclusive<i64>) -> BTreeMap<NaiveDate, EntryValue> {
        range.map(|n| (day(n), EntryValue::Yes)).collect()
    }

    #[test]
    fn loop_vectors_of_a_daily_habit_done_every_day() {
        let entries = yes_days(1..=30);
        for (n, expected) in [(1, 0.0519), (7, 0.3115), (14, 0.5260), (30, 0.7980)] {
            close(
                score_on(&entries, &HabitKind::YesNo, daily(), day(n)),
                expected,
            );
        }
    }

    #[test]
    fn loop_vector_30_yes_then_3_no() {
        let mut entries = yes_days(1..=30);
        for n in 31..=33 {
            entries.insert(day(n), EntryValue::No);
        }
        close(
            score_on(&entries, &HabitKind::YesNo, daily(), day(33)),
            0.6801,
        );
        // unlogged days count as NO too
        let entries = yes_days(1..=30);
        close(
            score_on(&entries, &HabitKind::YesNo, daily(), day(33)),
            0.6801,
        );
    }

    #[test]
    fn loop_vector_3_per_week_done_2_per_week_converges_to_two_thirds() {
        let freq = Frequency { times: 3, days: 7 };
        // Monday and Thursday of every week for three years
        let entries: BTreeMap<_, _> = (0..156)
            .flat_map(|w| [day(1 + 7 * w), day(4 + 7 * w)])
            .map(|d| (d, EntryValue::Yes))
            .collect();
        let last = day(156 * 7);
        close(score_on(&entries, &HabitKind::YesNo, freq, last), 0.6667);
    }

    #[test]
    fn skip_days_carry_the_score_over() {
        let mut entries = yes_days(1..=10);
        entries.insert(day(11), EntryValue::Skip);
        entries.insert(day(12), EntryValue::Skip);
        let s = scores(&entries, &HabitKind::YesNo, daily(), day(12));
        assert_eq!(s.len(), 12);
        assert_eq!(s[9].1, s[10].1);
        assert_eq!(s[10].1, s[11].1);
        assert!(s[9].1 > s[8].1);
    }

    #[test]
    fn numeric_habits_compare_the_rolling_sum_with_the_target() {
        let ten = Decimal::from(10);
        let at_least = HabitKind::Numeric {
            unit: "pages".into(),
            target: ten,
            goal: Goal::AtLeast,
        };
        let entries: BTreeMap<_, _> = (1..=7)
            .map(|n| (day(n), EntryValue::Amount(Decimal::from(5))))
            .collect();
        let m = multiplier(daily());
        // half the target every day: p = 0.5
        let expected = 0.5 * (1.0 - m.powi(7));
        close(score_on(&entries, &at_least, daily(), day(7)), expected);

        let at_most = HabitKind::Numeric {
            unit: "coffees".into(),
            target: Decimal::from(2),
            goal: Goal::AtMost,
        };
        // 3 coffees a day against at most 2: p = 1 − (3 − 2)/2 = 0.5, from a start of 1
        let entries: BTreeMap<_, _> = (1..=3)
            .map(|n| (day(n), EntryValue::Amount(Decimal::from(3))))
            .collect();
        let expected = step(m, step(m, step(m, 1.0, 0.5), 0.5), 0.5);
        close(score_on(&entries, &at_most, daily(), day(3)), expected);
        // 5 or more a day: p clamps to 0
        let entries: BTreeMap<_, _> = [(day(1), EntryValue::Amount(Decimal::from(9)))].into();
        close(score_on(&entries, &at_most, daily(), day(1)), m);
        assert_eq!(score_on(&BTreeMap::new(), &at_most, daily(), day(1)), 1.0);
    }

    #[test]
    fn nothing_before_the_first_entry() {
        let entries = yes_days(5..=6);
        assert!(scores(&entries, &HabitKind::YesNo, daily(), day(4)).is_empty());
        assert_eq!(score_on(&entries, &HabitKind::YesNo, daily(), day(4)), 0.0);
    }
}
