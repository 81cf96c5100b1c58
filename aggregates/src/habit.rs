//! The Habits pillar aggregate: one [`Habit`] per habit (aggregate type `habit`, id = the habit
//! id, a UUID v7 chosen by the client or assigned by the server).
//!
//! A habit is yes/no or numeric (unit, target, at least / at most), done "N times in D days"
//! ([`Frequency`]: daily = 1 in 1, three a week = 3 in 7), with an optional reminder time and an
//! archived flag. Its entries are per **local day** (chosen by the client): YES, NO, SKIP or an
//! amount ([`EntryValue`]). A later entry for a day replaces the earlier one; both stay in the
//! log ([`HabitEvent::HabitChecked`] says what it replaced).
//!
//! The habit is the consistency boundary of its streaks, XP and badges: it keeps its entries,
//! the days that already earned XP and the badges it has, so `decide` computes them purely
//! (rules in [`streak`] and [`gamification`]). The Loop strength score is [`score`].

pub mod gamification;
pub mod score;
pub mod streak;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use cqrs_es::DomainEvent;
pub use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};
use gamification::{Badge, NO_XP, STREAK_MILESTONES, xp_for};
use streak::{Mark, Marks};

/// The most characters (not bytes) a habit name may have, after trimming.
pub const NAME_MAX_CHARS: usize = 200;
/// The most characters a unit may have, after trimming.
pub const UNIT_MAX_CHARS: usize = 32;
/// The longest frequency window, in days.
pub const MAX_FREQUENCY_DAYS: u32 = 365;
/// The largest target or amount.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// How far before the habit's creation a day may be checked.
pub const MAX_BACKFILL_DAYS: i64 = 366;

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "habit";

/// "N times in D days".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frequency {
    /// N: successful entries needed in the window (1 ≤ N ≤ D).
    pub times: u32,
    /// D: the window in days (1 to [`MAX_FREQUENCY_DAYS`]).
    pub days: u32,
}

impl Frequency {
    /// Every day.
    pub const DAILY: Frequency = Frequency { times: 1, days: 1 };

    /// N / D.
    pub fn ratio(self) -> f64 {
        f64::from(self.times) / f64::from(self.days)
    }

    /// Checks the bounds; errors name `frequency_times` or `frequency_days`.
    pub fn validate(self) -> Result<Self, DomainError> {
        if self.days == 0 || self.days > MAX_FREQUENCY_DAYS {
            return Err(DomainError::invalid(
                "frequency_days",
                format!("must be 1 to {MAX_FREQUENCY_DAYS} days, got {}", self.days),
            ));
        }
        if self.times == 0 || self.times > self.days {
            return Err(DomainError::invalid(
                "frequency_times",
                format!(
                    "must be 1 to frequency_days ({}), got {}",
                    self.days, self.times
                ),
            ));
        }
        Ok(self)
    }
}

/// Whether a numeric habit's target is a floor or a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Do at least the target (pages read).
    AtLeast,
    /// Do at most the target (coffees).
    AtMost,
}

/// What a habit's entries are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HabitKind {
    /// YES / NO / SKIP.
    YesNo,
    /// An amount per day against a target.
    Numeric {
        /// What is counted (`pages`, `km`).
        unit: String,
        /// The target: per entry for success, per D-day window for the score (Loop).
        target: Decimal,
        /// Floor or ceiling.
        goal: Goal,
    },
}

impl HabitKind {
    /// Whether `value` is a successful entry: YES, or an amount meeting the target.
    pub fn is_success(&self, value: &EntryValue) -> bool {
        match (self, value) {
            (HabitKind::YesNo, EntryValue::Yes) => true,
            (HabitKind::Numeric { target, goal, .. }, EntryValue::Amount(a)) => match goal {
                Goal::AtLeast => a >= target,
                Goal::AtMost => a <= target,
            },
            _ => false,
        }
    }

    /// Checks unit and target; errors name `unit` or `target`.
    pub fn validate(self) -> Result<Self, DomainError> {
        match self {
            HabitKind::YesNo => Ok(self),
            HabitKind::Numeric { unit, target, goal } => {
                let unit = unit.trim().to_string();
                let len = unit.chars().count();
                if len == 0 || len > UNIT_MAX_CHARS {
                    return Err(DomainError::invalid(
                        "unit",
                        format!("a numeric habit needs a unit of 1 to {UNIT_MAX_CHARS} characters"),
                    ));
                }
                if target <= Decimal::ZERO || target > MAX_AMOUNT {
                    return Err(DomainError::invalid(
                        "target",
                        format!("must be more than 0 and at most {MAX_AMOUNT}, got {target}"),
                    ));
                }
                Ok(HabitKind::Numeric {
                    unit,
                    target: target.normalize(),
                    goal,
                })
            }
        }
    }
}

/// One day's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryValue {
    /// Done (yes/no habits).
    Yes,
    /// Not done.
    No,
    /// Skipped on purpose: a streak freeze.
    Skip,
    /// An amount (numeric habits), a decimal string in JSON.
    Amount(Decimal),
}

/// The definition of a habit to create.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateHabit {
    /// The new habit's id (UUID v7; the API assigns one when the client gives none).
    pub habit_id: Uuid,
    /// 1 to [`NAME_MAX_CHARS`] characters after trimming.
    pub name: String,
    /// Yes/no or numeric.
    pub kind: HabitKind,
    /// N in D.
    pub frequency: Frequency,
    /// Local time of the daily reminder, if any.
    pub reminder: Option<NaiveTime>,
}

/// The changes of an UpdateHabit; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HabitChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new N (the current D unless `frequency_days` changes too).
    pub frequency_times: Option<u32>,
    /// A new D.
    pub frequency_days: Option<u32>,
    /// A new target (numeric habits only).
    pub target: Option<Decimal>,
    /// A new reminder: `Some(None)` removes it.
    pub reminder: Option<Option<NaiveTime>>,
}

/// What a user can ask of a habit. Another user's habit is NOT_FOUND.
#[derive(Debug, Clone, PartialEq)]
pub enum HabitCommand {
    /// Create the habit (ALREADY_EXISTS when the id is taken).
    Create(CreateHabit),
    /// Change its name, frequency, target or reminder (its kind never changes).
    Update(HabitChanges),
    /// Archive it: no more check-ins until unarchived.
    Archive,
    /// Unarchive it.
    Unarchive,
    /// Record the entry of local day `day` (replacing an earlier one).
    Check {
        /// The user's local day (at most one day after the command's UTC date).
        day: NaiveDate,
        /// YES / NO / SKIP for yes/no habits; an amount or SKIP for numeric ones.
        value: EntryValue,
    },
}

/// A habit's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HabitState {
    /// Its id.
    pub habit_id: Uuid,
    /// Its user.
    pub owner: Uuid,
    /// Its name.
    pub name: String,
    /// Yes/no or numeric.
    pub kind: HabitKind,
    /// N in D.
    pub frequency: Frequency,
    /// Reminder time.
    pub reminder: Option<NaiveTime>,
    /// Archived.
    pub archived: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The current entry of each day.
    pub entries: BTreeMap<NaiveDate, EntryValue>,
    /// Days that earned XP (never again).
    pub credited: BTreeSet<NaiveDate>,
    /// Badges earned.
    pub badges: BTreeSet<Badge>,
}

impl HabitState {
    /// The marks of its days up to `until`.
    pub fn marks(&self, until: NaiveDate) -> Marks {
        Marks::new(&self.entries, &self.kind, self.frequency, until)
    }
}

/// The aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Habit {
    state: Option<HabitState>,
}

impl Habit {
    /// The habit, once created.
    pub fn state(&self) -> Option<&HabitState> {
        self.state.as_ref()
    }
}

/// What happened to a habit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HabitEvent {
    /// The habit was created.
    HabitCreated {
        /// Its id.
        habit_id: Uuid,
        /// Its user.
        user_id: Uuid,
        /// Its name (trimmed).
        name: String,
        /// Yes/no or numeric.
        kind: HabitKind,
        /// N in D.
        frequency: Frequency,
        /// Reminder time.
        reminder: Option<NaiveTime>,
        /// When.
        created_at: DateTime<Utc>,
    },
    /// The definition changed; carries the whole new definition.
    HabitUpdated {
        /// The habit.
        habit_id: Uuid,
        /// Name.
        name: String,
        /// Kind (same variant as before; a numeric target may have changed).
        kind: HabitKind,
        /// Frequency.
        frequency: Frequency,
        /// Reminder.
        reminder: Option<NaiveTime>,
        /// When.
        updated_at: DateTime<Utc>,
    },
    /// Archived.
    HabitArchived {
        /// The habit.
        habit_id: Uuid,
        /// When.
        archived_at: DateTime<Utc>,
    },
    /// Unarchived.
    HabitUnarchived {
        /// The habit.
        habit_id: Uuid,
        /// When.
        unarchived_at: DateTime<Utc>,
    },
    /// An entry for a local day (bus: `habits.checked`).
    HabitChecked {
        /// The habit.
        habit_id: Uuid,
        /// The local day.
        day: NaiveDate,
        /// The entry.
        value: EntryValue,
        /// The entry it replaced, if the day had one.
        previous: Option<EntryValue>,
        /// Whether the entry is successful (YES or the target met).
        success: bool,
        /// The streak ending on `day` after this entry.
        streak: u32,
        /// XP earned (0 unless successful and the day's first credit).
        xp: u32,
        /// When.
        checked_at: DateTime<Utc>,
    },
    /// A streak through `day` reached a milestone (7, 30, 100) for the first time
    /// (bus: `habits.streak_reached`).
    HabitStreakReached {
        /// The habit.
        habit_id: Uuid,
        /// The checked day that made it.
        day: NaiveDate,
        /// 7, 30 or 100.
        length: u32,
        /// When.
        reached_at: DateTime<Utc>,
    },
    /// A badge earned (once per habit; bus: `habits.badge_earned`).
    HabitBadgeEarned {
        /// The habit.
        habit_id: Uuid,
        /// The badge.
        badge: Badge,
        /// The checked day that earned it.
        day: NaiveDate,
        /// When.
        earned_at: DateTime<Utc>,
    },
}

impl DomainEvent for HabitEvent {
    /// The variant name, e.g. `HabitChecked` (on the bus: `habits.checked`).
    fn event_type(&self) -> String {
        match self {
            HabitEvent::HabitCreated { .. } => "HabitCreated",
            HabitEvent::HabitUpdated { .. } => "HabitUpdated",
            HabitEvent::HabitArchived { .. } => "HabitArchived",
            HabitEvent::HabitUnarchived { .. } => "HabitUnarchived",
            HabitEvent::HabitChecked { .. } => "HabitChecked",
            HabitEvent::HabitStreakReached { .. } => "HabitStreakReached",
            HabitEvent::HabitBadgeEarned { .. } => "HabitBadgeEarned",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl HabitEvent {
    /// The habit the event is about.
    pub fn habit_id(&self) -> Uuid {
        match self {
            HabitEvent::HabitCreated { habit_id, .. }
            | HabitEvent::HabitUpdated { habit_id, .. }
            | HabitEvent::HabitArchived { habit_id, .. }
            | HabitEvent::HabitUnarchived { habit_id, .. }
            | HabitEvent::HabitChecked { habit_id, .. }
            | HabitEvent::HabitStreakReached { habit_id, .. }
            | HabitEvent::HabitBadgeEarned { habit_id, .. } => *habit_id,
        }
    }
}

crate::pillar_aggregate!(Habit, "habit", HabitCommand, HabitEvent);

impl Habit {
    /// Folds `event` into the habit.
    fn evolve(&mut self, event: HabitEvent) {
        if let HabitEvent::HabitCreated {
            habit_id,
            user_id,
            name,
            kind,
            frequency,
            reminder,
            created_at,
        } = event
        {
            self.state = Some(HabitState {
                habit_id,
                owner: user_id,
                name,
                kind,
                frequency,
                reminder,
                archived: false,
                created_at,
                entries: BTreeMap::new(),
                credited: BTreeSet::new(),
                badges: BTreeSet::new(),
            });
            return;
        }
        let Some(s) = self.state.as_mut() else {
            return;
        };
        match event {
            HabitEvent::HabitCreated { .. } => {}
            HabitEvent::HabitUpdated {
                name,
                kind,
                frequency,
                reminder,
                ..
            } => {
                s.name = name;
                s.kind = kind;
                s.frequency = frequency;
                s.reminder = reminder;
            }
            HabitEvent::HabitArchived { .. } => s.archived = true,
            HabitEvent::HabitUnarchived { .. } => s.archived = false,
            HabitEvent::HabitChecked { day, value, xp, .. } => {
                s.entries.insert(day, value);
                if xp > NO_XP {
                    s.credited.insert(day);
                }
            }
            HabitEvent::HabitStreakReached { .. } => {}
            HabitEvent::HabitBadgeEarned { badge, .. } => {
                s.badges.insert(badge);
            }
        }
    }

    /// The pure decision: the events `command` produces against the current habit.
    fn decide(&self, command: Issued<HabitCommand>) -> Result<Vec<HabitEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        match command {
            HabitCommand::Create(create) => self.create(actor, at, create),
            HabitCommand::Update(changes) => {
                let s = self.owned(actor)?;
                self.update(s, at, changes)
            }
            HabitCommand::Archive => {
                let s = self.owned(actor)?;
                if s.archived {
                    return Err(rejected(s.habit_id, "is already archived"));
                }
                Ok(vec![HabitEvent::HabitArchived {
                    habit_id: s.habit_id,
                    archived_at: at,
                }])
            }
            HabitCommand::Unarchive => {
                let s = self.owned(actor)?;
                if !s.archived {
                    return Err(rejected(s.habit_id, "is not archived"));
                }
                Ok(vec![HabitEvent::HabitUnarchived {
                    habit_id: s.habit_id,
                    unarchived_at: at,
                }])
            }
            HabitCommand::Check { day, value } => {
                let s = self.owned(actor)?;
                check(s, at, day, value)
            }
        }
    }

    fn create(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        create: CreateHabit,
    ) -> Result<Vec<HabitEvent>, DomainError> {
        if create.habit_id.is_nil() {
            return Err(DomainError::invalid("habit_id", "must not be the nil UUID"));
        }
        let name = validate_name(&create.name)?;
        let kind = create.kind.validate()?;
        let frequency = create.frequency.validate()?;
        if self.state.is_some() {
            return Err(DomainError::AlreadyExists {
                entity: ENTITY,
                id: create.habit_id.to_string(),
            });
        }
        Ok(vec![HabitEvent::HabitCreated {
            habit_id: create.habit_id,
            user_id: actor,
            name,
            kind,
            frequency,
            reminder: create.reminder,
            created_at: at,
        }])
    }

    fn update(
        &self,
        s: &HabitState,
        at: DateTime<Utc>,
        changes: HabitChanges,
    ) -> Result<Vec<HabitEvent>, DomainError> {
        let name = match &changes.name {
            Some(name) => validate_name(name)?,
            None => s.name.clone(),
        };
        let frequency = Frequency {
            times: changes.frequency_times.unwrap_or(s.frequency.times),
            days: changes.frequency_days.unwrap_or(s.frequency.days),
        }
        .validate()?;
        let kind = match (changes.target, &s.kind) {
            (None, kind) => kind.clone(),
            (Some(_), HabitKind::YesNo) => {
                return Err(DomainError::invalid(
                    "target",
                    "a yes/no habit has no target",
                ));
            }
            (Some(target), HabitKind::Numeric { unit, goal, .. }) => HabitKind::Numeric {
                unit: unit.clone(),
                target,
                goal: *goal,
            }
            .validate()?,
        };
        let reminder = changes.reminder.unwrap_or(s.reminder);
        if name == s.name && kind == s.kind && frequency == s.frequency && reminder == s.reminder {
            return Ok(Vec::new()); // nothing changes: nothing to record
        }
        Ok(vec![HabitEvent::HabitUpdated {
            habit_id: s.habit_id,
            name,
            kind,
            frequency,
            reminder,
            updated_at: at,
        }])
    }

    /// The habit if `actor` owns it; NOT_FOUND otherwise (another user's habit reveals nothing).
    fn owned(&self, actor: Uuid) -> Result<&HabitState, DomainError> {
        match &self.state {
            Some(s) if s.owner == actor => Ok(s),
            _ => Err(DomainError::NotFound {
                entity: ENTITY,
                id: String::new(),
            }),
        }
    }
}

/// The events of a check-in: the entry, then any streak milestone and badges it earns.
fn check(
    s: &HabitState,
    at: DateTime<Utc>,
    day: NaiveDate,
    value: EntryValue,
) -> Result<Vec<HabitEvent>, DomainError> {
    let latest = at.date_naive() + Duration::days(1);
    if day > latest {
        return Err(DomainError::invalid(
            "day",
            format!("{day} is in the future (the latest local day now is {latest})"),
        ));
    }
    let earliest = s.created_at.date_naive() - Duration::days(MAX_BACKFILL_DAYS);
    if day < earliest {
        return Err(DomainError::invalid(
            "day",
            format!("{day} is more than {MAX_BACKFILL_DAYS} days before the habit was created"),
        ));
    }
    match (&s.kind, &value) {
        (HabitKind::YesNo, EntryValue::Amount(_)) => {
            return Err(DomainError::invalid(
                "value",
                "a yes/no habit takes YES, NO or SKIP, not an amount",
            ));
        }
        (HabitKind::Numeric { .. }, EntryValue::Yes | EntryValue::No) => {
            return Err(DomainError::invalid(
                "value",
                "a numeric habit takes an amount or SKIP",
            ));
        }
        (_, EntryValue::Amount(a)) if *a < Decimal::ZERO || *a > MAX_AMOUNT => {
            return Err(DomainError::invalid(
                "amount",
                format!("an amount must be 0 to {MAX_AMOUNT}, got {a}"),
            ));
        }
        _ => {}
    }
    if s.archived {
        return Err(rejected(
            s.habit_id,
            "is archived; unarchive it to check it in",
        ));
    }
    let value = match value {
        EntryValue::Amount(a) => EntryValue::Amount(a.normalize()),
        other => other,
    };
    let mut entries = s.entries.clone();
    let previous = entries.insert(day, value.clone());
    let marks = Marks::new(&entries, &s.kind, s.frequency, day);
    let success = s.kind.is_success(&value);
    let streak = marks.streak_ending(day);
    let xp = if success && !s.credited.contains(&day) {
        xp_for(streak)
    } else {
        NO_XP
    };
    let habit_id = s.habit_id;
    let mut events = vec![HabitEvent::HabitChecked {
        habit_id,
        day,
        value,
        previous,
        success,
        streak,
        xp,
        checked_at: at,
    }];
    let earn = |badge: Badge, events: &mut Vec<HabitEvent>| {
        if !s.badges.contains(&badge) {
            events.push(HabitEvent::HabitBadgeEarned {
                habit_id,
                badge,
                day,
                earned_at: at,
            });
        }
    };
    if success {
        earn(Badge::FirstCheckIn, &mut events);
    }
    if marks.mark(day) != Mark::Missed {
        let through = marks.streak_through(day);
        for length in STREAK_MILESTONES.into_iter().filter(|l| through >= *l) {
            let badge = Badge::of_streak(length).expect("a milestone has a badge");
            if !s.badges.contains(&badge) {
                events.push(HabitEvent::HabitStreakReached {
                    habit_id,
                    day,
                    length,
                    reached_at: at,
                });
                earn(badge, &mut events);
            }
        }
    }
    let reach = Duration::days(i64::from(s.frequency.days));
    if !marks
        .perfect_weeks_between(day - reach, day + reach)
        .is_empty()
    {
        earn(Badge::PerfectWeek, &mut events);
    }
    Ok(events)
}

fn rejected(habit_id: Uuid, what: &str) -> DomainError {
    DomainError::Rejected(format!("{ENTITY} {habit_id} {what}"))
}

/// Trims `name` and checks it has 1 to [`NAME_MAX_CHARS`] characters.
fn validate_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(DomainError::invalid("name", "must not be empty"));
    }
    if len > NAME_MAX_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!("must be at most {NAME_MAX_CHARS} characters, got {len}"),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests;
