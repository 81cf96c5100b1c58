//! Focus: a pomodoro on about a third of the days (one timer per user, a long stream).

use aggregates::Issued;
use aggregates::focus::{FocusCommand, FocusKind, FocusTimer, StartFocus};
use chrono::{DateTime, Duration as Span, Utc};
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who run focus sessions.
const SHARE: f64 = 0.3;

/// The focus timers of the users who use one (aggregate id = user id).
pub(super) struct Focus {
    timers: Adopters<Stream<FocusTimer>>,
}

impl Focus {
    /// No timer yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Focus {
            timers: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Focus {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(timer) = self.timers.of(index, rng, |_| Ok(Stream::new(user)))? else {
            return Ok(());
        };
        if !rng.chance(0.35) {
            return Ok(());
        }
        let session_id = rng.uuid();
        let start = day + Span::minutes(10 * 60 + rng.below(300) as i64);
        let focus = StartFocus {
            session_id,
            kind: FocusKind::Pomodoro,
            planned_minutes: Some(25),
            task_id: None,
        };
        timer.exec(
            Issued::new(user, start, FocusCommand::Start(focus)),
            user,
            start,
            rng,
            out,
        )?;
        let end = start + Span::minutes(25);
        timer.exec(
            Issued::new(user, end, FocusCommand::Complete { session_id }),
            user,
            end,
            rng,
            out,
        )
    }
}
