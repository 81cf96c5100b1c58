//! The Focus pillar aggregate: a user's focus timer (pomodoros, breaks, flowtime, countdowns).
//!
//! **Consistency boundary.** "One running session per user" is an invariant *across* sessions,
//! so the aggregate is not a session but the user's [`FocusTimer`]: aggregate type `focus`,
//! aggregate id = the user's id. It holds the running session (if any), the ids of the sessions
//! that ended, and the pomodoro cycle ([`FocusCycle`]). Each session has its own `session_id`
//! (UUID v7, chosen by the client in StartFocus or assigned by the server), carried by every
//! event, so read models key their rows by session. Nothing special is configured for snapshots:
//! the server's `--snapshots focus=N` applies like for any other type.
//!
//! Handling is pure: times come from the [`Issued`] envelope (a pause at 10:10 and a resume at
//! 10:15 are what make "focused minutes exclude pauses" testable), and planned minutes arrive
//! already defaulted — the API fills them from the user's preferences
//! ([`FocusKind::default_minutes`]) before issuing the command.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::preferences::Preferences;
use crate::{DomainError, Issued};

/// Planned minutes a session may have: 1 minute to 24 hours.
pub const PLANNED_MINUTES_RANGE: RangeInclusive<u32> = 1..=1440;
/// The most characters (not bytes) an interruption or abandon reason may have, after trimming.
pub const REASON_MAX_CHARS: usize = 500;

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "focus session";

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocusKind {
    /// A pomodoro work interval (default length: the preferences' work minutes).
    Pomodoro,
    /// A short break between pomodoros.
    ShortBreak,
    /// A long break after every Nth pomodoro.
    LongBreak,
    /// Open-ended focus: planned minutes are optional.
    Flowtime,
    /// A plain countdown: planned minutes are required.
    Countdown,
}

impl FocusKind {
    /// Every kind, in wire order.
    pub const ALL: [FocusKind; 5] = [
        FocusKind::Pomodoro,
        FocusKind::ShortBreak,
        FocusKind::LongBreak,
        FocusKind::Flowtime,
        FocusKind::Countdown,
    ];

    /// The name used in events and messages, e.g. `short_break`.
    pub fn as_str(self) -> &'static str {
        match self {
            FocusKind::Pomodoro => "pomodoro",
            FocusKind::ShortBreak => "short_break",
            FocusKind::LongBreak => "long_break",
            FocusKind::Flowtime => "flowtime",
            FocusKind::Countdown => "countdown",
        }
    }

    /// Whether this is a break (its time is rest, not focus, in the rollups).
    pub fn is_break(self) -> bool {
        matches!(self, FocusKind::ShortBreak | FocusKind::LongBreak)
    }

    /// The planned minutes when the client gives none: the user's pomodoro timings for
    /// pomodoros and breaks, none for flowtime (open-ended) and countdown (the client must say).
    ///
    /// ```
    /// use aggregates::focus::FocusKind;
    /// use aggregates::preferences::Preferences;
    /// let prefs = Preferences::default();
    /// assert_eq!(FocusKind::Pomodoro.default_minutes(&prefs), Some(25));
    /// assert_eq!(FocusKind::LongBreak.default_minutes(&prefs), Some(15));
    /// assert_eq!(FocusKind::Flowtime.default_minutes(&prefs), None);
    /// ```
    pub fn default_minutes(self, prefs: &Preferences) -> Option<u32> {
        match self {
            FocusKind::Pomodoro => Some(prefs.pomodoro_work_minutes),
            FocusKind::ShortBreak => Some(prefs.short_break_minutes),
            FocusKind::LongBreak => Some(prefs.long_break_minutes),
            FocusKind::Flowtime | FocusKind::Countdown => None,
        }
    }
}

impl FromStr for FocusKind {
    type Err = DomainError;

    /// Parses `pomodoro`, `short_break`, `long_break`, `flowtime` or `countdown`; anything else
    /// is an invalid `kind`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FocusKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = FocusKind::ALL.iter().map(|k| k.as_str()).collect();
                DomainError::invalid(
                    "kind",
                    format!("must be one of {}, got {s:?}", known.join(", ")),
                )
            })
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocusOutcome {
    /// Done as planned (or stopped by the user as done).
    Completed,
    /// Given up.
    Abandoned,
}

impl FocusOutcome {
    /// `completed` or `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            FocusOutcome::Completed => "completed",
            FocusOutcome::Abandoned => "abandoned",
        }
    }
}

/// Where the user is in the pomodoro cycle. The aggregate keeps it, and the read models fold it
/// with the same [`FocusCycle::record`], so the rule is written once.
///
/// ```
/// use aggregates::focus::{FocusCycle, FocusKind, FocusOutcome};
/// let mut cycle = FocusCycle::default();
/// assert_eq!(cycle.suggest_next(4), FocusKind::Pomodoro);
/// cycle.record(FocusKind::Pomodoro, FocusOutcome::Completed);
/// assert_eq!(cycle.suggest_next(4), FocusKind::ShortBreak);
/// assert_eq!(cycle.suggest_next(1), FocusKind::LongBreak);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusCycle {
    /// Pomodoros completed since the last completed long break.
    pub pomodoros: u32,
    /// The kind of the last completed pomodoro or break (flowtime and countdown are outside the
    /// cycle), if any.
    pub last_completed: Option<FocusKind>,
}

impl FocusCycle {
    /// Folds the end of a session: a completed pomodoro counts, a completed long break starts a
    /// new cycle, a completed short break is remembered; abandoned sessions, flowtime and
    /// countdowns change nothing.
    pub fn record(&mut self, kind: FocusKind, outcome: FocusOutcome) {
        if outcome != FocusOutcome::Completed {
            return;
        }
        match kind {
            FocusKind::Pomodoro => {
                self.pomodoros = self.pomodoros.saturating_add(1);
                self.last_completed = Some(kind);
            }
            FocusKind::ShortBreak => self.last_completed = Some(kind),
            FocusKind::LongBreak => {
                self.pomodoros = 0;
                self.last_completed = Some(kind);
            }
            FocusKind::Flowtime | FocusKind::Countdown => {}
        }
    }

    /// The next kind the cycle suggests: after a pomodoro, a long break once
    /// `cycles_before_long_break` pomodoros are done since the last long break, else a short
    /// break; after a break (or at the very start), a pomodoro.
    pub fn suggest_next(&self, cycles_before_long_break: u32) -> FocusKind {
        match self.last_completed {
            Some(FocusKind::Pomodoro) if self.pomodoros >= cycles_before_long_break.max(1) => {
                FocusKind::LongBreak
            }
            Some(FocusKind::Pomodoro) => FocusKind::ShortBreak,
            _ => FocusKind::Pomodoro,
        }
    }
}

/// The fields of a session to start.
#[derive(Debug, Clone, PartialEq)]
pub struct StartFocus {
    /// The new session's id (UUID v7; the API assigns one when the client gives none).
    pub session_id: Uuid,
    /// What the session is for.
    pub kind: FocusKind,
    /// Planned length in [`PLANNED_MINUTES_RANGE`]; required except for flowtime (the API has
    /// already filled the preferences' default for pomodoros and breaks).
    pub planned_minutes: Option<u32>,
    /// The task the session works on, if any.
    pub task_id: Option<Uuid>,
}

/// What a user can ask of their focus timer. Every command but `Start` names the running
/// session: another id is NOT_FOUND (never started by this user) or FAILED_PRECONDITION (it has
/// already ended).
#[derive(Debug, Clone, PartialEq)]
pub enum FocusCommand {
    /// Start a session; FAILED_PRECONDITION (naming it) while another one runs.
    Start(StartFocus),
    /// Pause the running session.
    Pause {
        /// The running session.
        session_id: Uuid,
    },
    /// Resume the paused session.
    Resume {
        /// The paused session.
        session_id: Uuid,
    },
    /// Record an interruption (the session keeps its state).
    RecordInterruption {
        /// The running or paused session.
        session_id: Uuid,
        /// What interrupted, at most [`REASON_MAX_CHARS`] characters (may be empty).
        reason: String,
    },
    /// End the session as completed.
    Complete {
        /// The running or paused session.
        session_id: Uuid,
    },
    /// End the session as abandoned.
    Abandon {
        /// The running or paused session.
        session_id: Uuid,
        /// Why, at most [`REASON_MAX_CHARS`] characters (may be empty).
        reason: String,
    },
}

/// The session that runs (or is paused) now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningSession {
    /// Its id.
    pub session_id: Uuid,
    /// What it is for.
    pub kind: FocusKind,
    /// Planned length.
    pub planned_minutes: Option<u32>,
    /// The linked task.
    pub task_id: Option<Uuid>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it was paused; `None` while it runs.
    pub paused_at: Option<DateTime<Utc>>,
    /// Start of the current running stretch (the start, or the last resume).
    pub active_since: DateTime<Utc>,
    /// Milliseconds of active time in the stretches before `active_since` (pauses excluded).
    pub active_ms: i64,
    /// Interruptions recorded so far.
    pub interruptions: u32,
}

impl RunningSession {
    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Active milliseconds (pauses excluded) if the session ended at `at`; a clock that went
    /// backwards counts as no time.
    pub fn active_ms_at(&self, at: DateTime<Utc>) -> i64 {
        let current = match self.paused_at {
            Some(_) => 0,
            None => (at - self.active_since).num_milliseconds().max(0),
        };
        self.active_ms + current
    }
}

/// The aggregate: one per user, its id the user's id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FocusTimer {
    owner: Option<Uuid>,
    running: Option<RunningSession>,
    cycle: FocusCycle,
    /// Every session that ended, with its outcome: a session id is used once, and a command on
    /// an ended session says so (grows by one id per session; snapshots keep loads short).
    ended: BTreeMap<Uuid, FocusOutcome>,
}

impl FocusTimer {
    /// The running (or paused) session, if any.
    pub fn running(&self) -> Option<&RunningSession> {
        self.running.as_ref()
    }

    /// The pomodoro cycle so far.
    pub fn cycle(&self) -> FocusCycle {
        self.cycle
    }

    /// How `session_id` ended, if it did.
    pub fn outcome_of(&self, session_id: Uuid) -> Option<FocusOutcome> {
        self.ended.get(&session_id).copied()
    }
}

/// What happened to a user's focus timer. Every event names its session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FocusEvent {
    /// A session started.
    FocusStarted {
        /// The new session.
        session_id: Uuid,
        /// The user (also the aggregate id).
        user_id: Uuid,
        /// What it is for.
        kind: FocusKind,
        /// Planned length (none only for flowtime).
        planned_minutes: Option<u32>,
        /// The linked task.
        task_id: Option<Uuid>,
        /// When.
        started_at: DateTime<Utc>,
    },
    /// The session was paused.
    FocusPaused {
        /// The session.
        session_id: Uuid,
        /// When.
        paused_at: DateTime<Utc>,
    },
    /// The session was resumed.
    FocusResumed {
        /// The session.
        session_id: Uuid,
        /// When.
        resumed_at: DateTime<Utc>,
    },
    /// Something interrupted the session.
    FocusInterrupted {
        /// The session.
        session_id: Uuid,
        /// What (trimmed; may be empty).
        reason: String,
        /// When.
        interrupted_at: DateTime<Utc>,
    },
    /// The session ended. Self-contained, so a rollup needs no other event of the session.
    FocusEnded {
        /// The session.
        session_id: Uuid,
        /// Completed or abandoned.
        outcome: FocusOutcome,
        /// What it was for.
        kind: FocusKind,
        /// The linked task.
        task_id: Option<Uuid>,
        /// Planned length.
        planned_minutes: Option<u32>,
        /// When it started.
        started_at: DateTime<Utc>,
        /// When it ended.
        ended_at: DateTime<Utc>,
        /// Active time in whole seconds (truncated), pauses excluded; for a break, the
        /// break's length.
        focused_seconds: u64,
        /// `focused_seconds / 60`, for readers that want minutes.
        focused_minutes: f64,
        /// Interruptions recorded during the session.
        interruptions: u32,
        /// The abandon reason (none for a completion, or an empty reason).
        reason: Option<String>,
    },
}

impl DomainEvent for FocusEvent {
    /// The variant name, e.g. `FocusStarted` (on the bus: `focus.started`).
    fn event_type(&self) -> String {
        match self {
            FocusEvent::FocusStarted { .. } => "FocusStarted",
            FocusEvent::FocusPaused { .. } => "FocusPaused",
            FocusEvent::FocusResumed { .. } => "FocusResumed",
            FocusEvent::FocusInterrupted { .. } => "FocusInterrupted",
            FocusEvent::FocusEnded { .. } => "FocusEnded",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl FocusEvent {
    /// The session the event is about.
    pub fn session_id(&self) -> Uuid {
        match self {
            FocusEvent::FocusStarted { session_id, .. }
            | FocusEvent::FocusPaused { session_id, .. }
            | FocusEvent::FocusResumed { session_id, .. }
            | FocusEvent::FocusInterrupted { session_id, .. }
            | FocusEvent::FocusEnded { session_id, .. } => *session_id,
        }
    }
}

crate::pillar_aggregate!(FocusTimer, "focus", FocusCommand, FocusEvent);

impl FocusTimer {
    /// Folds `event` into the timer; events that do not fit the running session are ignored.
    fn evolve(&mut self, event: FocusEvent) {
        match event {
            FocusEvent::FocusStarted {
                session_id,
                user_id,
                kind,
                planned_minutes,
                task_id,
                started_at,
            } => {
                self.owner.get_or_insert(user_id);
                self.running = Some(RunningSession {
                    session_id,
                    kind,
                    planned_minutes,
                    task_id,
                    started_at,
                    paused_at: None,
                    active_since: started_at,
                    active_ms: 0,
                    interruptions: 0,
                });
            }
            FocusEvent::FocusPaused {
                session_id,
                paused_at,
            } => {
                if let Some(s) = self.running_mut(session_id) {
                    s.active_ms = s.active_ms_at(paused_at);
                    s.paused_at = Some(paused_at);
                }
            }
            FocusEvent::FocusResumed {
                session_id,
                resumed_at,
            } => {
                if let Some(s) = self.running_mut(session_id) {
                    s.paused_at = None;
                    s.active_since = resumed_at;
                }
            }
            FocusEvent::FocusInterrupted { session_id, .. } => {
                if let Some(s) = self.running_mut(session_id) {
                    s.interruptions = s.interruptions.saturating_add(1);
                }
            }
            FocusEvent::FocusEnded {
                session_id,
                outcome,
                kind,
                ..
            } => {
                if self.running_mut(session_id).is_some() {
                    self.running = None;
                }
                self.ended.insert(session_id, outcome);
                self.cycle.record(kind, outcome);
            }
        }
    }
}

impl FocusTimer {
    fn running_mut(&mut self, session_id: Uuid) -> Option<&mut RunningSession> {
        self.running.as_mut().filter(|s| s.session_id == session_id)
    }

    /// The pure decision: the events `command` produces against the current timer.
    fn decide(&self, command: Issued<FocusCommand>) -> Result<Vec<FocusEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        match command {
            FocusCommand::Start(start) => self.start(actor, at, start),
            FocusCommand::Pause { session_id } => {
                let s = self.session(actor, session_id)?;
                if s.is_paused() {
                    return Err(rejected(session_id, "is already paused"));
                }
                Ok(vec![FocusEvent::FocusPaused {
                    session_id,
                    paused_at: at,
                }])
            }
            FocusCommand::Resume { session_id } => {
                let s = self.session(actor, session_id)?;
                if !s.is_paused() {
                    return Err(rejected(session_id, "is not paused"));
                }
                Ok(vec![FocusEvent::FocusResumed {
                    session_id,
                    resumed_at: at,
                }])
            }
            FocusCommand::RecordInterruption { session_id, reason } => {
                let reason = validate_reason(&reason)?;
                self.session(actor, session_id)?;
                Ok(vec![FocusEvent::FocusInterrupted {
                    session_id,
                    reason,
                    interrupted_at: at,
                }])
            }
            FocusCommand::Complete { session_id } => {
                let s = self.session(actor, session_id)?;
                Ok(vec![ended(s, FocusOutcome::Completed, at, None)])
            }
            FocusCommand::Abandon { session_id, reason } => {
                let reason = validate_reason(&reason)?;
                let s = self.session(actor, session_id)?;
                let reason = (!reason.is_empty()).then_some(reason);
                Ok(vec![ended(s, FocusOutcome::Abandoned, at, reason)])
            }
        }
    }

    fn start(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        start: StartFocus,
    ) -> Result<Vec<FocusEvent>, DomainError> {
        if start.session_id.is_nil() {
            return Err(DomainError::invalid(
                "session_id",
                "must not be the nil UUID",
            ));
        }
        match start.planned_minutes {
            Some(m) if !PLANNED_MINUTES_RANGE.contains(&m) => {
                return Err(DomainError::invalid(
                    "planned_minutes",
                    format!(
                        "must be {} to {} minutes (24 h), got {m}",
                        PLANNED_MINUTES_RANGE.start(),
                        PLANNED_MINUTES_RANGE.end()
                    ),
                ));
            }
            None if start.kind != FocusKind::Flowtime => {
                return Err(DomainError::invalid(
                    "planned_minutes",
                    format!("is required for a {} session", start.kind.as_str()),
                ));
            }
            _ => {}
        }
        if start.task_id.is_some_and(|t| t.is_nil()) {
            return Err(DomainError::invalid("task_id", "must not be the nil UUID"));
        }
        self.check_owner(actor)?;
        if let Some(running) = &self.running {
            return Err(DomainError::Rejected(format!(
                "{ENTITY} {} is already running; complete or abandon it before starting another",
                running.session_id
            )));
        }
        if self.ended.contains_key(&start.session_id) {
            return Err(DomainError::AlreadyExists {
                entity: ENTITY,
                id: start.session_id.to_string(),
            });
        }
        Ok(vec![FocusEvent::FocusStarted {
            session_id: start.session_id,
            user_id: actor,
            kind: start.kind,
            planned_minutes: start.planned_minutes,
            task_id: start.task_id,
            started_at: at,
        }])
    }

    /// Another user's timer answers like a missing session: ids of others are never revealed.
    fn check_owner(&self, actor: Uuid) -> Result<(), DomainError> {
        match self.owner {
            Some(owner) if owner != actor => Err(DomainError::NotFound {
                entity: ENTITY,
                id: String::new(),
            }),
            _ => Ok(()),
        }
    }

    /// The running session if it is `session_id`; NOT_FOUND for an id this user never started,
    /// FAILED_PRECONDITION for one that has ended.
    fn session(&self, actor: Uuid, session_id: Uuid) -> Result<&RunningSession, DomainError> {
        self.check_owner(actor)?;
        match &self.running {
            Some(s) if s.session_id == session_id => Ok(s),
            _ => match self.ended.get(&session_id) {
                Some(outcome) => Err(rejected(
                    session_id,
                    &format!("has already ended ({})", outcome.as_str()),
                )),
                None => Err(DomainError::NotFound {
                    entity: ENTITY,
                    id: session_id.to_string(),
                }),
            },
        }
    }
}

fn ended(
    s: &RunningSession,
    outcome: FocusOutcome,
    at: DateTime<Utc>,
    reason: Option<String>,
) -> FocusEvent {
    let focused_seconds = (s.active_ms_at(at) / 1000).max(0) as u64;
    FocusEvent::FocusEnded {
        session_id: s.session_id,
        outcome,
        kind: s.kind,
        task_id: s.task_id,
        planned_minutes: s.planned_minutes,
        started_at: s.started_at,
        ended_at: at,
        focused_seconds,
        focused_minutes: focused_seconds as f64 / 60.0,
        interruptions: s.interruptions,
        reason,
    }
}

fn rejected(session_id: Uuid, what: &str) -> DomainError {
    DomainError::Rejected(format!("{ENTITY} {session_id} {what}"))
}

/// Trims `reason` and checks it is within [`REASON_MAX_CHARS`].
fn validate_reason(reason: &str) -> Result<String, DomainError> {
    let reason = reason.trim();
    let len = reason.chars().count();
    if len > REASON_MAX_CHARS {
        return Err(DomainError::invalid(
            "reason",
            format!("must be at most {REASON_MAX_CHARS} characters, got {len}"),
        ));
    }
    Ok(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    type Fw = TestFramework<FocusTimer>;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const S1: Uuid = Uuid::from_u128(0x5e55_0001);
    const S2: Uuid = Uuid::from_u128(0x5e55_0002);
    const TASK: Uuid = Uuid::from_u128(0x7a5c);

    /// 2026-03-02 10:mm:ss UTC.
    fn t(minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, minute, second)
            .unwrap()
    }

    fn fw() -> Fw {
        TestFramework::<FocusTimer>::with(())
    }

    fn issue(actor: Uuid, at: DateTime<Utc>, command: FocusCommand) -> Issued<FocusCommand> {
        Issued::new(actor, at, command)
    }

    fn start_cmd(session_id: Uuid, kind: FocusKind, planned: Option<u32>) -> FocusCommand {
        FocusCommand::Start(StartFocus {
            session_id,
            kind,
            planned_minutes: planned,
            task_id: None,
        })
    }

    fn started(session_id: Uuid, kind: FocusKind, at: DateTime<Utc>) -> FocusEvent {
        FocusEvent::FocusStarted {
            session_id,
            user_id: ALICE,
            kind,
            planned_minutes: Some(25),
            task_id: None,
            started_at: at,
        }
    }

    fn paused(session_id: Uuid, at: DateTime<Utc>) -> FocusEvent {
        FocusEvent::FocusPaused {
            session_id,
            paused_at: at,
        }
    }

    fn resumed(session_id: Uuid, at: DateTime<Utc>) -> FocusEvent {
        FocusEvent::FocusResumed {
            session_id,
            resumed_at: at,
        }
    }

    fn interrupted(session_id: Uuid, at: DateTime<Utc>) -> FocusEvent {
        FocusEvent::FocusInterrupted {
            session_id,
            reason: "phone".into(),
            interrupted_at: at,
        }
    }

    /// The one event `command` produces after `given`, as Alice at `at`.
    fn decide(given: Vec<FocusEvent>, at: DateTime<Utc>, command: FocusCommand) -> FocusEvent {
        let mut events = fw()
            .given(given)
            .when(issue(ALICE, at, command))
            .inspect_result()
            .expect("command accepted");
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    fn refused(given: Vec<FocusEvent>, actor: Uuid, command: FocusCommand) -> DomainError {
        fw().given(given)
            .when(issue(actor, t(59, 0), command))
            .inspect_result()
            .expect_err("command refused")
    }

    fn assert_invalid(err: DomainError, field: &str) {
        match &err {
            DomainError::Invalid { field: f, .. } => assert_eq!(*f, field, "{err:?}"),
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
    }

    fn fold(events: Vec<FocusEvent>) -> FocusTimer {
        let mut timer = FocusTimer::default();
        for e in events {
            timer.apply(e);
        }
        timer
    }

    /// A completed session of `kind` started at minute `m` and ended 1 minute later.
    fn session_done(id: u128, kind: FocusKind, outcome: FocusOutcome) -> Vec<FocusEvent> {
        let id = Uuid::from_u128(id);
        let m = (id.as_u128() % 50) as u32;
        let start = started(id, kind, t(m, 0));
        let end = decide(
            vec![start.clone()],
            t(m + 1, 0),
            match outcome {
                FocusOutcome::Completed => FocusCommand::Complete { session_id: id },
                FocusOutcome::Abandoned => FocusCommand::Abandon {
                    session_id: id,
                    reason: String::new(),
                },
            },
        );
        vec![start, end]
    }

    #[test]
    fn start_records_the_session_with_its_task() {
        fw().given_no_previous_events()
            .when(issue(
                ALICE,
                t(0, 0),
                FocusCommand::Start(StartFocus {
                    session_id: S1,
                    kind: FocusKind::Pomodoro,
                    planned_minutes: Some(25),
                    task_id: Some(TASK),
                }),
            ))
            .then_expect_events(vec![FocusEvent::FocusStarted {
                session_id: S1,
                user_id: ALICE,
                kind: FocusKind::Pomodoro,
                planned_minutes: Some(25),
                task_id: Some(TASK),
                started_at: t(0, 0),
            }]);
    }

    #[test]
    fn planned_minutes_must_be_1_to_1440() {
        for bad in [0, 1441, u32::MAX] {
            let err = refused(
                vec![],
                ALICE,
                start_cmd(S1, FocusKind::Countdown, Some(bad)),
            );
            assert_invalid(err.clone(), "planned_minutes");
            assert!(err.to_string().contains(&bad.to_string()), "{err}");
        }
        for good in [1, 1440] {
            let event = decide(
                vec![],
                t(0, 0),
                start_cmd(S1, FocusKind::Countdown, Some(good)),
            );
            assert!(
                matches!(event, FocusEvent::FocusStarted { planned_minutes: Some(m), .. } if m == good)
            );
        }
        // flowtime's optional target is checked too
        assert_invalid(
            refused(vec![], ALICE, start_cmd(S1, FocusKind::Flowtime, Some(0))),
            "planned_minutes",
        );
    }

    #[test]
    fn planned_minutes_are_required_except_for_flowtime() {
        for kind in [
            FocusKind::Pomodoro,
            FocusKind::ShortBreak,
            FocusKind::LongBreak,
            FocusKind::Countdown,
        ] {
            assert_invalid(
                refused(vec![], ALICE, start_cmd(S1, kind, None)),
                "planned_minutes",
            );
        }
        let event = decide(vec![], t(0, 0), start_cmd(S1, FocusKind::Flowtime, None));
        assert!(matches!(
            event,
            FocusEvent::FocusStarted {
                kind: FocusKind::Flowtime,
                planned_minutes: None,
                ..
            }
        ));
    }

    #[test]
    fn nil_ids_are_invalid() {
        assert_invalid(
            refused(
                vec![],
                ALICE,
                start_cmd(Uuid::nil(), FocusKind::Pomodoro, Some(25)),
            ),
            "session_id",
        );
        let nil_task = FocusCommand::Start(StartFocus {
            session_id: S1,
            kind: FocusKind::Pomodoro,
            planned_minutes: Some(25),
            task_id: Some(Uuid::nil()),
        });
        assert_invalid(refused(vec![], ALICE, nil_task), "task_id");
    }

    #[test]
    fn unknown_kinds_are_invalid() {
        assert_eq!(
            "short_break".parse::<FocusKind>(),
            Ok(FocusKind::ShortBreak)
        );
        for kind in FocusKind::ALL {
            assert_eq!(kind.as_str().parse::<FocusKind>(), Ok(kind));
        }
        let err = "nap".parse::<FocusKind>().unwrap_err();
        assert_invalid(err.clone(), "kind");
        assert!(
            err.to_string().contains("pomodoro"),
            "lists the known kinds: {err}"
        );
    }

    #[test]
    fn a_second_start_is_rejected_naming_the_running_session() {
        for given in [
            vec![started(S1, FocusKind::Pomodoro, t(0, 0))],
            vec![
                started(S1, FocusKind::Pomodoro, t(0, 0)),
                paused(S1, t(1, 0)),
            ],
        ] {
            let err = refused(given, ALICE, start_cmd(S2, FocusKind::Pomodoro, Some(25)));
            match &err {
                DomainError::Rejected(msg) => {
                    assert!(
                        msg.contains(&S1.to_string()),
                        "names the running one: {msg}"
                    )
                }
                other => panic!("expected Rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_session_id_is_used_once() {
        let given = session_done(0x5e55_0001, FocusKind::Pomodoro, FocusOutcome::Completed);
        let err = refused(
            given.clone(),
            ALICE,
            start_cmd(S1, FocusKind::Pomodoro, Some(25)),
        );
        assert_eq!(
            err,
            DomainError::AlreadyExists {
                entity: ENTITY,
                id: S1.to_string()
            }
        );
        // once it ended, a new session may start
        let event = decide(
            given,
            t(30, 0),
            start_cmd(S2, FocusKind::ShortBreak, Some(5)),
        );
        assert!(matches!(event, FocusEvent::FocusStarted { session_id, .. } if session_id == S2));
    }

    #[test]
    fn pause_and_resume_follow_the_state() {
        let running = vec![started(S1, FocusKind::Pomodoro, t(0, 0))];
        assert_eq!(
            decide(
                running.clone(),
                t(5, 0),
                FocusCommand::Pause { session_id: S1 }
            ),
            paused(S1, t(5, 0))
        );
        let err = refused(
            running.clone(),
            ALICE,
            FocusCommand::Resume { session_id: S1 },
        );
        assert!(
            matches!(&err, DomainError::Rejected(m) if m.contains("is not paused")),
            "{err:?}"
        );

        let is_paused = [running, vec![paused(S1, t(5, 0))]].concat();
        let err = refused(
            is_paused.clone(),
            ALICE,
            FocusCommand::Pause { session_id: S1 },
        );
        assert!(
            matches!(&err, DomainError::Rejected(m) if m.contains("already paused")),
            "{err:?}"
        );
        assert_eq!(
            decide(is_paused, t(7, 0), FocusCommand::Resume { session_id: S1 }),
            resumed(S1, t(7, 0))
        );
    }

    #[test]
    fn interruptions_are_recorded_and_counted() {
        let given = vec![started(S1, FocusKind::Pomodoro, t(0, 0))];
        let event = decide(
            given.clone(),
            t(2, 0),
            FocusCommand::RecordInterruption {
                session_id: S1,
                reason: "  phone ".into(),
            },
        );
        assert_eq!(event, interrupted(S1, t(2, 0)), "the reason is trimmed");

        // also while paused; the end reports the count
        let given = [
            given,
            vec![
                interrupted(S1, t(2, 0)),
                paused(S1, t(3, 0)),
                interrupted(S1, t(4, 0)),
            ],
        ]
        .concat();
        let end = decide(given, t(5, 0), FocusCommand::Complete { session_id: S1 });
        assert!(
            matches!(
                end,
                FocusEvent::FocusEnded {
                    interruptions: 2,
                    ..
                }
            ),
            "{end:?}"
        );

        let long = FocusCommand::RecordInterruption {
            session_id: S1,
            reason: "x".repeat(REASON_MAX_CHARS + 1),
        };
        let given = vec![started(S1, FocusKind::Pomodoro, t(0, 0))];
        assert_invalid(refused(given.clone(), ALICE, long), "reason");
        let at_limit = FocusCommand::RecordInterruption {
            session_id: S1,
            reason: "é".repeat(REASON_MAX_CHARS),
        };
        decide(given, t(1, 0), at_limit);
    }

    #[test]
    fn focused_time_excludes_pauses() {
        // 10:00 start, 10:10 pause, 10:15 resume, 10:20:30 pause, 10:25 resume, 10:30 complete:
        // 10 + 5.5 + 5 = 20.5 focused minutes in a 30 minute session
        let given = vec![
            started(S1, FocusKind::Pomodoro, t(0, 0)),
            paused(S1, t(10, 0)),
            resumed(S1, t(15, 0)),
            paused(S1, t(20, 30)),
            resumed(S1, t(25, 0)),
        ];
        let end = decide(
            given.clone(),
            t(30, 0),
            FocusCommand::Complete { session_id: S1 },
        );
        assert_eq!(
            end,
            FocusEvent::FocusEnded {
                session_id: S1,
                outcome: FocusOutcome::Completed,
                kind: FocusKind::Pomodoro,
                task_id: None,
                planned_minutes: Some(25),
                started_at: t(0, 0),
                ended_at: t(30, 0),
                focused_seconds: 1230,
                focused_minutes: 20.5,
                interruptions: 0,
                reason: None,
            }
        );

        // ended while paused: the pause up to the end does not count
        let given = [given, vec![paused(S1, t(27, 0))]].concat();
        let end = decide(given, t(40, 0), FocusCommand::Complete { session_id: S1 });
        assert!(
            matches!(
                end,
                FocusEvent::FocusEnded {
                    focused_seconds: 1050,
                    ..
                }
            ),
            "10 + 5.5 + 2 = 17.5 minutes: {end:?}"
        );
    }

    #[test]
    fn sub_second_stretches_add_up_before_truncation() {
        let ms = |m: u32, s: u32, milli: i64| t(m, s) + chrono::Duration::milliseconds(milli);
        let given = vec![
            started(S1, FocusKind::Flowtime, t(0, 0)),
            paused(S1, ms(0, 1, 600)),
            resumed(S1, t(1, 0)),
        ];
        let end = decide(
            given,
            ms(1, 1, 600),
            FocusCommand::Complete { session_id: S1 },
        );
        assert!(
            matches!(
                end,
                FocusEvent::FocusEnded {
                    focused_seconds: 3,
                    ..
                }
            ),
            "1.6 s + 1.6 s = 3.2 s: {end:?}"
        );
    }

    #[test]
    fn abandon_records_outcome_and_reason() {
        let given = vec![started(S1, FocusKind::Pomodoro, t(0, 0))];
        let end = decide(
            given.clone(),
            t(12, 0),
            FocusCommand::Abandon {
                session_id: S1,
                reason: " meeting ".into(),
            },
        );
        assert!(
            matches!(
                &end,
                FocusEvent::FocusEnded {
                    outcome: FocusOutcome::Abandoned,
                    focused_seconds: 720,
                    reason: Some(r),
                    ..
                } if r == "meeting"
            ),
            "{end:?}"
        );
        let end = decide(
            given.clone(),
            t(12, 0),
            FocusCommand::Abandon {
                session_id: S1,
                reason: "  ".into(),
            },
        );
        assert!(matches!(end, FocusEvent::FocusEnded { reason: None, .. }));
        let long = FocusCommand::Abandon {
            session_id: S1,
            reason: "x".repeat(REASON_MAX_CHARS + 1),
        };
        assert_invalid(refused(given, ALICE, long), "reason");
    }

    #[test]
    fn commands_on_other_sessions_are_refused() {
        let done = session_done(0x5e55_0001, FocusKind::Pomodoro, FocusOutcome::Completed);
        let commands = |id| {
            vec![
                FocusCommand::Pause { session_id: id },
                FocusCommand::Resume { session_id: id },
                FocusCommand::RecordInterruption {
                    session_id: id,
                    reason: String::new(),
                },
                FocusCommand::Complete { session_id: id },
                FocusCommand::Abandon {
                    session_id: id,
                    reason: String::new(),
                },
            ]
        };
        for command in commands(S2) {
            // never started
            let err = refused(done.clone(), ALICE, command.clone());
            assert_eq!(
                err,
                DomainError::NotFound {
                    entity: ENTITY,
                    id: S2.to_string()
                }
            );
            let err = refused(vec![], ALICE, command);
            assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        }
        for command in commands(S1) {
            // ended
            let err = refused(done.clone(), ALICE, command);
            assert!(
                matches!(&err, DomainError::Rejected(m) if m.contains("already ended (completed)")),
                "{err:?}"
            );
        }
        let running = vec![started(S1, FocusKind::Pomodoro, t(0, 0))];
        for command in commands(S1) {
            let err = refused(running.clone(), BOB, command);
            assert_eq!(
                err,
                DomainError::NotFound {
                    entity: ENTITY,
                    id: String::new()
                },
                "another user's timer reveals nothing"
            );
        }
        let err = refused(running, BOB, start_cmd(S2, FocusKind::Pomodoro, Some(25)));
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn apply_tracks_the_running_session_and_the_outcomes() {
        let timer = fold(vec![
            started(S1, FocusKind::Pomodoro, t(0, 0)),
            paused(S1, t(10, 0)),
        ]);
        let running = timer.running().expect("running");
        assert!(running.is_paused());
        assert_eq!(running.active_ms_at(t(59, 0)), 600_000, "paused: frozen");

        let timer = fold(session_done(
            0x5e55_0002,
            FocusKind::Pomodoro,
            FocusOutcome::Abandoned,
        ));
        assert_eq!(timer.running(), None);
        assert_eq!(timer.outcome_of(S2), Some(FocusOutcome::Abandoned));
        assert_eq!(
            timer.cycle().pomodoros,
            0,
            "an abandoned pomodoro does not count"
        );
    }

    #[test]
    fn four_pomodoros_suggest_a_long_break() {
        use FocusKind::*;
        use FocusOutcome::*;
        let mut events = Vec::new();
        let mut id = 0x100;
        let mut then = |kind, outcome, events: &mut Vec<FocusEvent>| {
            id += 1;
            events.extend(session_done(id, kind, outcome));
            fold(events.clone())
        };
        assert_eq!(FocusTimer::default().cycle().suggest_next(4), Pomodoro);
        for n in 1..=3 {
            let timer = then(Pomodoro, Completed, &mut events);
            assert_eq!(timer.cycle().pomodoros, n);
            assert_eq!(
                timer.cycle().suggest_next(4),
                ShortBreak,
                "after pomodoro {n}"
            );
            let timer = then(ShortBreak, Completed, &mut events);
            assert_eq!(timer.cycle().suggest_next(4), Pomodoro, "after break {n}");
        }
        let timer = then(Pomodoro, Abandoned, &mut events);
        assert_eq!(
            timer.cycle().suggest_next(4),
            Pomodoro,
            "an abandoned pomodoro is not one"
        );
        let timer = then(Flowtime, Completed, &mut events);
        assert_eq!(timer.cycle().pomodoros, 3, "flowtime is outside the cycle");
        let timer = then(Pomodoro, Completed, &mut events);
        assert_eq!(timer.cycle().pomodoros, 4);
        assert_eq!(timer.cycle().suggest_next(4), LongBreak, "the 4th pomodoro");
        assert_eq!(timer.cycle().suggest_next(5), ShortBreak, "N = 5");
        let timer = then(ShortBreak, Completed, &mut events);
        assert_eq!(
            timer.cycle().suggest_next(4),
            Pomodoro,
            "a short break instead keeps the count"
        );
        let timer = then(Pomodoro, Completed, &mut events);
        assert_eq!(timer.cycle().suggest_next(4), LongBreak, "still due");
        let timer = then(LongBreak, Completed, &mut events);
        assert_eq!(
            timer.cycle().pomodoros,
            0,
            "a long break starts a new cycle"
        );
        assert_eq!(timer.cycle().suggest_next(4), Pomodoro);
        let timer = then(Pomodoro, Completed, &mut events);
        assert_eq!(timer.cycle().suggest_next(4), ShortBreak);
        assert_eq!(timer.cycle().suggest_next(1), LongBreak, "N = 1");
        assert_eq!(timer.cycle().suggest_next(0), LongBreak, "N = 0 reads as 1");
    }

    #[test]
    fn defaults_come_from_the_preferences() {
        let prefs = Preferences {
            pomodoro_work_minutes: 50,
            short_break_minutes: 10,
            long_break_minutes: 30,
            ..Preferences::default()
        };
        let minutes: Vec<Option<u32>> = FocusKind::ALL
            .iter()
            .map(|k| k.default_minutes(&prefs))
            .collect();
        assert_eq!(minutes, [Some(50), Some(10), Some(30), None, None]);
    }

    #[test]
    fn the_timer_round_trips_as_a_snapshot() {
        let mut events = session_done(0x5e55_0001, FocusKind::Pomodoro, FocusOutcome::Completed);
        events.push(started(S2, FocusKind::ShortBreak, t(30, 0)));
        events.push(paused(S2, t(31, 0)));
        let timer = fold(events);
        let json = serde_json::to_value(&timer).unwrap();
        let back: FocusTimer = serde_json::from_value(json).unwrap();
        assert_eq!(back, timer);
        assert_eq!(back.outcome_of(S1), Some(FocusOutcome::Completed));
        assert!(back.running().is_some_and(RunningSession::is_paused));
    }

    #[test]
    fn events_name_their_session_and_type() {
        let e = started(S1, FocusKind::Pomodoro, t(0, 0));
        assert_eq!(e.session_id(), S1);
        assert_eq!(e.event_type(), "FocusStarted");
        assert_eq!(e.event_version(), "1");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["FocusStarted"]["kind"], "pomodoro");
    }
}
