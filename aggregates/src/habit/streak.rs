//! Which days of a habit count as done, and the streaks, rates and perfect weeks they make.
//!
//! Rules (the aggregate and the read model both use these functions):
//! - An entry is **successful** when it is YES, or a numeric amount that meets the target on its
//!   own (at least: amount ≥ target; at most: amount ≤ target).
//! - A day is **done** when, for some successful day `s` with `s ≤ day ≤ s + D − 1`, the window
//!   `[s, s + D − 1]` holds at least N successful entries (Loop's auto-checkmarks: 3 in 7 done on
//!   Mon, Tue, Wed makes that whole week from Monday done). A daily habit's done days are its
//!   successful days. Windows start on a success, so nothing before the first success is done.
//! - A **SKIP** day that is not done is a freeze: it keeps a streak alive without lengthening it.
//! - Any other day (NO, an amount that misses the target, nothing logged) breaks the streak.
//! - A streak's **length** is the number of done days in it (skips excluded).
//! - The **current** streak ends today, or yesterday when today has no entry and is not done
//!   (a day not yet logged does not break it); `today` is an input, the user's local day.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};

use super::{EntryValue, Frequency, HabitKind};

/// How one day of a habit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Done (a success, or inside a window of D days with N successes).
    Done,
    /// Skipped and not done: a freeze.
    Skipped,
    /// Neither: breaks a streak.
    Missed,
}

/// The marks of a habit's days from its first entry on.
#[derive(Debug, Clone, PartialEq)]
pub struct Marks {
    first: Option<NaiveDate>,
    marks: Vec<Mark>,
    entries: BTreeMap<NaiveDate, EntryValue>,
}

impl Marks {
    /// Marks the days of `entries` for a habit of `kind` done `frequency`, from the first entry
    /// to at least `until` (later when entries or their windows reach further).
    pub fn new(
        entries: &BTreeMap<NaiveDate, EntryValue>,
        kind: &HabitKind,
        frequency: Frequency,
        until: NaiveDate,
    ) -> Self {
        let Some(first) = entries.keys().next().copied() else {
            return Self {
                first: None,
                marks: Vec::new(),
                entries: BTreeMap::new(),
            };
        };
        let window = i64::from(frequency.days);
        let last_entry = *entries.keys().next_back().expect("not empty");
        let last = until.max(last_entry + Duration::days(window - 1));
        let len = (last - first).num_days().max(0) as usize + 1;
        let mut marks: Vec<Mark> = (0..len)
            .map(|i| match entries.get(&(first + Duration::days(i as i64))) {
                Some(EntryValue::Skip) => Mark::Skipped,
                _ => Mark::Missed,
            })
            .collect();
        let successes: Vec<usize> = entries
            .iter()
            .filter(|(_, v)| kind.is_success(v))
            .map(|(d, _)| (*d - first).num_days() as usize)
            .collect();
        let n = frequency.times as usize;
        let d = frequency.days as usize;
        for (i, start) in successes.iter().enumerate() {
            let end = start + d - 1;
            let count = successes[i..].iter().take_while(|s| **s <= end).count();
            if count >= n {
                for mark in &mut marks[*start..=end.min(len - 1)] {
                    *mark = Mark::Done;
                }
            }
        }
        Self {
            first: Some(first),
            marks,
            entries: entries.clone(),
        }
    }

    /// How `day` counts (Missed outside the marked days).
    pub fn mark(&self, day: NaiveDate) -> Mark {
        self.index(day)
            .and_then(|i| self.marks.get(i).copied())
            .unwrap_or(Mark::Missed)
    }

    fn index(&self, day: NaiveDate) -> Option<usize> {
        let first = self.first?;
        usize::try_from((day - first).num_days()).ok()
    }

    fn day_at(&self, i: usize) -> NaiveDate {
        self.first.expect("marks exist") + Duration::days(i as i64)
    }

    /// The length of the streak that ends on `day` (0 when `day` is missed).
    pub fn streak_ending(&self, day: NaiveDate) -> u32 {
        let Some(end) = self.index(day).filter(|i| *i < self.marks.len()) else {
            return 0;
        };
        let mut length = 0;
        for mark in self.marks[..=end].iter().rev() {
            match mark {
                Mark::Done => length += 1,
                Mark::Skipped => {}
                Mark::Missed => break,
            }
        }
        length
    }

    /// The length of the whole streak `day` belongs to, including the done days after it
    /// (0 when `day` is missed).
    pub fn streak_through(&self, day: NaiveDate) -> u32 {
        if self.mark(day) == Mark::Missed {
            return 0;
        }
        let mut length = self.streak_ending(day);
        let start = self.index(day).expect("a marked day") + 1;
        for mark in self.marks.iter().skip(start) {
            match mark {
                Mark::Done => length += 1,
                Mark::Skipped => {}
                Mark::Missed => break,
            }
        }
        length
    }

    /// The current streak on local day `today`: the streak ending today, or yesterday when
    /// today has no entry and is not done.
    pub fn current(&self, today: NaiveDate) -> u32 {
        if self.mark(today) == Mark::Missed && !self.entries.contains_key(&today) {
            return self.streak_ending(today - Duration::days(1));
        }
        self.streak_ending(today)
    }

    /// The longest streak among the days up to `until`.
    pub fn longest(&self, until: NaiveDate) -> u32 {
        let Some(end) = self.index(until) else {
            return 0;
        };
        let (mut best, mut run) = (0, 0);
        for mark in self.marks.iter().take(end + 1) {
            match mark {
                Mark::Done => {
                    run += 1;
                    best = best.max(run);
                }
                Mark::Skipped => {}
                Mark::Missed => run = 0,
            }
        }
        best
    }

    /// The share (0–1) of done days among the last `days` local days up to `today`, counting
    /// only days since `start` (the habit's first day), leaving out skipped days and today when
    /// it has no entry and is not done. 0 when no day counts.
    pub fn completion_rate(&self, start: NaiveDate, today: NaiveDate, days: u32) -> f64 {
        let from = (today - Duration::days(i64::from(days) - 1)).max(start);
        let (mut done, mut counted) = (0u32, 0u32);
        for day in from.iter_days().take_while(|d| *d <= today) {
            match self.mark(day) {
                Mark::Done => {
                    done += 1;
                    counted += 1;
                }
                Mark::Skipped => {}
                Mark::Missed if day == today && !self.entries.contains_key(&day) => {}
                Mark::Missed => counted += 1,
            }
        }
        if counted == 0 {
            0.0
        } else {
            f64::from(done) / f64::from(counted)
        }
    }

    /// Whether every day of the ISO week (Monday to Sunday) containing `day` is done.
    pub fn perfect_week(&self, day: NaiveDate) -> bool {
        let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        monday
            .iter_days()
            .take(7)
            .all(|d| self.mark(d) == Mark::Done)
    }

    /// The Mondays of the perfect weeks among the weeks that overlap `[from, to]`.
    pub fn perfect_weeks_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut monday = from - Duration::days(i64::from(from.weekday().num_days_from_monday()));
        let mut weeks = Vec::new();
        while monday <= to {
            if self.perfect_week(monday) {
                weeks.push(monday);
            }
            monday += Duration::days(7);
        }
        weeks
    }

    /// Every marked day with its mark, in day order.
    pub fn days(&self) -> impl Iterator<Item = (NaiveDate, Mark)> + '_ {
        self.marks
            .iter()
            .enumerate()
            .map(|(i, m)| (self.day_at(i), *m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    use crate::habit::Goal;

    /// 2026-03-02 is a Monday.
    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap() + Duration::days(n - 1)
    }

    fn freq(times: u32, days: u32) -> Frequency {
        Frequency { times, days }
    }

    fn marks(values: &[(i64, EntryValue)], f: Frequency, until: i64) -> Marks {
        let entries = values.iter().map(|(n, v)| (day(*n), v.clone())).collect();
        Marks::new(&entries, &HabitKind::YesNo, f, day(until))
    }

    use EntryValue::{No, Skip, Yes};

    #[test]
    fn daily_streaks_count_successes_and_break_on_a_miss() {
        let m = marks(
            &[(1, Yes), (2, Yes), (3, No), (4, Yes), (5, Yes), (6, Yes)],
            freq(1, 1),
            6,
        );
        assert_eq!(m.streak_ending(day(2)), 2);
        assert_eq!(m.streak_ending(day(3)), 0);
        assert_eq!(m.current(day(6)), 3);
        assert_eq!(m.longest(day(6)), 3);
        assert_eq!(m.longest(day(2)), 2);
        assert_eq!(m.streak_through(day(4)), 3);
    }

    #[test]
    fn today_unlogged_keeps_yesterdays_streak_an_explicit_no_breaks_it() {
        let m = marks(&[(1, Yes), (2, Yes)], freq(1, 1), 3);
        assert_eq!(m.current(day(3)), 2, "day 3 not logged yet");
        assert_eq!(m.current(day(4)), 0, "day 3 was missed");
        let m = marks(&[(1, Yes), (2, Yes), (3, No)], freq(1, 1), 3);
        assert_eq!(m.current(day(3)), 0);
    }

    #[test]
    fn a_skip_is_a_freeze() {
        let m = marks(&[(1, Yes), (2, Skip), (3, Skip), (4, Yes)], freq(1, 1), 4);
        assert_eq!(m.mark(day(2)), Mark::Skipped);
        assert_eq!(m.current(day(4)), 2, "kept alive, not lengthened");
        assert_eq!(m.current(day(5)), 2);
        assert_eq!(m.longest(day(4)), 2);
    }

    #[test]
    fn n_in_d_windows_mark_the_days_they_cover() {
        // 3 in 7 on Mon, Tue, Wed: the whole week is done; the next Monday is not
        let m = marks(&[(1, Yes), (2, Yes), (3, Yes)], freq(3, 7), 8);
        for n in 1..=7 {
            assert_eq!(m.mark(day(n)), Mark::Done, "day {n}");
        }
        assert_eq!(m.mark(day(8)), Mark::Missed);
        assert!(m.perfect_week(day(4)));
        assert_eq!(m.current(day(7)), 7);
        // only 2 in the window: nothing is done
        let m = marks(&[(1, Yes), (5, Yes), (9, Yes)], freq(3, 7), 9);
        assert!(m.days().all(|(_, mark)| mark != Mark::Done));
        // a NO inside a satisfied window is still done
        let m = marks(&[(1, Yes), (2, No), (3, Yes), (4, Yes)], freq(3, 7), 4);
        assert_eq!(m.mark(day(2)), Mark::Done);
        assert_eq!(m.streak_ending(day(4)), 4);
    }

    #[test]
    fn numeric_entries_succeed_when_they_meet_the_target() {
        let kind = HabitKind::Numeric {
            unit: "glasses".into(),
            target: Decimal::from(8),
            goal: Goal::AtLeast,
        };
        let entries = [
            (day(1), EntryValue::Amount(Decimal::from(8))),
            (day(2), EntryValue::Amount(Decimal::new(79, 1))),
        ]
        .into();
        let m = Marks::new(&entries, &kind, freq(1, 1), day(2));
        assert_eq!(m.mark(day(1)), Mark::Done);
        assert_eq!(m.mark(day(2)), Mark::Missed);
    }

    #[test]
    fn rates_count_done_days_since_the_start() {
        let m = marks(
            &[(1, Yes), (2, No), (3, Skip), (4, Yes), (5, Yes)],
            freq(1, 1),
            6,
        );
        // days 1..=5 count, 3 is skipped, 6 (today) is not logged: 3 done of 4
        assert_eq!(m.completion_rate(day(1), day(6), 7), 0.75);
        // the last 2 days: 5 done, 6 not yet logged
        assert_eq!(m.completion_rate(day(1), day(6), 2), 1.0);
        // a habit started on day 4
        assert_eq!(m.completion_rate(day(4), day(6), 30), 1.0);
        assert_eq!(
            marks(&[], freq(1, 1), 1).completion_rate(day(1), day(1), 7),
            0.0
        );
    }

    #[test]
    fn perfect_weeks_need_every_day_done() {
        let all: Vec<_> = (1..=7).map(|n| (n, Yes)).collect();
        assert!(marks(&all, freq(1, 1), 7).perfect_week(day(3)));
        let mut skipped = all.clone();
        skipped[3] = (4, Skip);
        assert!(!marks(&skipped, freq(1, 1), 7).perfect_week(day(3)));
        // Tuesday to Monday is not an ISO week
        let shifted: Vec<_> = (2..=8).map(|n| (n, Yes)).collect();
        let m = marks(&shifted, freq(1, 1), 8);
        assert!(!m.perfect_week(day(2)));
        assert_eq!(
            m.perfect_weeks_between(day(1), day(8)),
            Vec::<NaiveDate>::new()
        );
        assert_eq!(
            marks(&all, freq(1, 1), 7).perfect_weeks_between(day(7), day(7)),
            vec![day(1)]
        );
    }
}
