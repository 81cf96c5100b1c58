//! Calendar: a one-hour meeting on some days (one aggregate per event).

use aggregates::Issued;
use aggregates::calendar::{CalendarCommand, CalendarEvent, EventDetails};
use chrono::{DateTime, Duration as Span, Utc};
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who keep a calendar.
const SHARE: f64 = 0.5;

/// Who keeps a calendar (each event is its own stream: nothing else to remember).
pub(super) struct Calendar {
    users: Adopters<()>,
}

impl Calendar {
    /// Nobody's calendar yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Calendar {
            users: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Calendar {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        if self.users.of(index, rng, |_| Ok(()))?.is_none() || !rng.chance(0.15) {
            return Ok(());
        }
        let event_id = rng.uuid();
        let start = day + Span::hours(9 + rng.below(8) as i64);
        let details = EventDetails {
            title: "meeting".into(),
            start,
            end: start + Span::hours(1),
            all_day: false,
            time_zone: "UTC".into(),
            location: None,
            description: None,
            recurrence: None,
        };
        let at = day + Span::hours(8);
        Stream::<CalendarEvent>::new(event_id).exec(
            Issued::new(
                user,
                at,
                CalendarCommand::CreateEvent {
                    event_id,
                    details,
                    external: None,
                },
            ),
            user,
            at,
            rng,
            out,
        )
    }
}
