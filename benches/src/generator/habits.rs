//! Habits: two or three habits created on a user's first day (one or two yes/no, one numeric),
//! each checked on most evenings for that local day; now and then yesterday's entry is
//! corrected (the later entry replaces it). Streak and badge events come from the aggregate.

use aggregates::Issued;
use aggregates::habit::{CreateHabit, EntryValue, Frequency, Goal, Habit, HabitCommand, HabitKind};
use chrono::{DateTime, Duration as Span, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who track habits.
const SHARE: f64 = 0.2;
/// The chance a habit is checked on a given day.
const CHECKED: f64 = 0.85;
/// The chance a checked habit's entry of yesterday is corrected too.
const CORRECTED: f64 = 0.02;

/// A yes/no habit a user may keep.
struct YesNo {
    name: &'static str,
    frequency: Frequency,
    /// The chance of a YES on a checked day (else mostly NO, sometimes SKIP).
    done: f64,
}

/// A numeric habit a user may keep: amounts are `low..=high` at `scale` decimals.
struct Numeric {
    name: &'static str,
    unit: &'static str,
    target: i64,
    goal: Goal,
    low: i64,
    high: i64,
    scale: u32,
}

const THREE_A_WEEK: Frequency = Frequency { times: 3, days: 7 };

const YES_NO: [YesNo; 4] = [
    YesNo {
        name: "meditate",
        frequency: Frequency::DAILY,
        done: 0.85,
    },
    YesNo {
        name: "stretch",
        frequency: Frequency::DAILY,
        done: 0.75,
    },
    YesNo {
        name: "floss",
        frequency: Frequency::DAILY,
        done: 0.9,
    },
    YesNo {
        name: "gym",
        frequency: THREE_A_WEEK,
        done: 0.45,
    },
];

const NUMERIC: [Numeric; 3] = [
    Numeric {
        name: "read",
        unit: "pages",
        target: 20,
        goal: Goal::AtLeast,
        low: 0,
        high: 45,
        scale: 0,
    },
    Numeric {
        name: "run",
        unit: "km",
        target: 5,
        goal: Goal::AtLeast,
        low: 20,
        high: 99,
        scale: 1,
    },
    Numeric {
        name: "coffee",
        unit: "cups",
        target: 2,
        goal: Goal::AtMost,
        low: 0,
        high: 4,
        scale: 0,
    },
];

/// Which of the plans a habit follows.
#[derive(Clone, Copy)]
enum Plan {
    YesNo(&'static YesNo),
    Numeric(&'static Numeric),
}

impl Plan {
    fn create(self, habit_id: Uuid) -> CreateHabit {
        let (name, kind, frequency) = match self {
            Plan::YesNo(p) => (p.name, HabitKind::YesNo, p.frequency),
            Plan::Numeric(p) => (
                p.name,
                HabitKind::Numeric {
                    unit: p.unit.into(),
                    target: Decimal::from(p.target),
                    goal: p.goal,
                },
                Frequency::DAILY,
            ),
        };
        CreateHabit {
            habit_id,
            name: name.into(),
            kind,
            frequency,
            reminder: None,
        }
    }

    /// A day's entry.
    fn entry(self, rng: &mut Rng) -> EntryValue {
        match self {
            Plan::YesNo(p) if rng.chance(p.done) => EntryValue::Yes,
            Plan::YesNo(_) if rng.chance(0.9) => EntryValue::No,
            Plan::Numeric(p) if rng.chance(0.97) => {
                let span = (p.high - p.low + 1) as u64;
                EntryValue::Amount(Decimal::new(p.low + rng.below(span) as i64, p.scale))
            }
            _ => EntryValue::Skip,
        }
    }
}

/// The habits of the users who track some.
pub(super) struct Habits {
    habits: Adopters<Vec<(Stream<Habit>, Plan)>>,
}

impl Habits {
    /// No habit yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Habits {
            habits: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Habits {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(habits) = self.habits.of(index, rng, |rng| {
            let first = rng.below(YES_NO.len() as u64) as usize;
            let mut plans = vec![
                Plan::YesNo(&YES_NO[first]),
                Plan::Numeric(rng.pick(&NUMERIC)),
            ];
            if rng.chance(0.5) {
                let second =
                    (first + 1 + rng.below(YES_NO.len() as u64 - 1) as usize) % YES_NO.len();
                plans.push(Plan::YesNo(&YES_NO[second]));
            }
            let at = day + Span::hours(9);
            plans
                .into_iter()
                .map(|plan| {
                    let habit_id = rng.uuid();
                    let mut habit = Stream::new(habit_id);
                    let create = HabitCommand::Create(plan.create(habit_id));
                    habit.exec(Issued::new(user, at, create), user, at, rng, out)?;
                    Ok((habit, plan))
                })
                .collect()
        })?
        else {
            return Ok(());
        };
        let evening = day + Span::minutes(20 * 60 + rng.below(180) as i64);
        for (habit, plan) in habits.iter_mut() {
            if !rng.chance(CHECKED) {
                continue;
            }
            let at = evening + Span::minutes(rng.below(10) as i64);
            let today = at.date_naive();
            let value = plan.entry(rng);
            let check = HabitCommand::Check { day: today, value };
            habit.exec(Issued::new(user, at, check), user, at, rng, out)?;
            if rng.chance(CORRECTED) {
                let value = plan.entry(rng);
                let yesterday = today - Span::days(1);
                let check = HabitCommand::Check {
                    day: yesterday,
                    value,
                };
                habit.exec(Issued::new(user, at, check), user, at, rng, out)?;
            }
        }
        Ok(())
    }
}
