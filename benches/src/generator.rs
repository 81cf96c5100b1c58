//! A deterministic log of real pillar events: users living a year (or more) of mixed activity.
//!
//! Every event comes out of the real aggregates (`handle` on the pure domain, in memory), so the
//! log is one the engine could have written; only the loading is a bulk INSERT (preparing a
//! million events one command at a time would take longer than the benchmarks). Pillars are
//! [`Activity`]s: adding one (habits, finance, health, journal…) is one more struct in
//! [`activities`].

use std::collections::VecDeque;

use aggregates::Issued;
use aggregates::calendar::{CalendarCommand, CalendarEvent, EventDetails};
use aggregates::focus::{FocusCommand, FocusKind, FocusTimer, StartFocus};
use aggregates::task::{NewTask, Task, TaskChanges, TaskCommand};
use anyhow::anyhow;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use store::{Journal, Position, Store};
use uuid::Uuid;

/// Events per INSERT transaction while loading.
const CHUNK: usize = 5_000;

/// SplitMix64: a tiny, fast, seedable generator (same seed, same log).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A random (version 4) UUID.
    pub fn uuid(&mut self) -> Uuid {
        let bytes = ((self.next_u64() as u128) << 64 | self.next_u64() as u128).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// One event ready to be loaded: the columns the store writes.
pub struct GenEvent {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    event_id: Uuid,
    user_id: Uuid,
    recorded_at: DateTime<Utc>,
}

/// One aggregate instance kept in memory, with its version.
pub struct Stream<A> {
    id: String,
    state: A,
    version: i64,
}

impl<A> Stream<A>
where
    A: Aggregate<Services = ()>,
{
    /// A stream not written yet.
    pub fn new(id: impl ToString) -> Self {
        Stream {
            id: id.to_string(),
            state: A::default(),
            version: 0,
        }
    }

    /// Handles `command` as `user` at `at` (the real rules) and emits its events.
    pub fn exec(
        &mut self,
        command: A::Command,
        user: Uuid,
        at: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let sink = EventSink::default();
        // unconstrained: tokio's cooperative budget must not make the sink's lock yield
        tokio::task::unconstrained(self.state.handle(command, &(), &sink))
            .now_or_never()
            .expect("pure aggregates never wait")
            .map_err(|e| anyhow!("{} refused a generated command: {e}", A::TYPE))?;
        let events = tokio::task::unconstrained(sink.collect())
            .now_or_never()
            .expect("an uncontended lock");
        let command_id = rng.uuid().to_string();
        for event in events {
            self.version += 1;
            let event_id = rng.uuid();
            out.push(GenEvent {
                aggregate_type: A::TYPE,
                aggregate_id: self.id.clone(),
                sequence: self.version,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event)?,
                metadata: json!({
                    "user_id": user.to_string(),
                    "event_id": event_id.to_string(),
                    "recorded_at": at.to_rfc3339(),
                    "command_id": command_id,
                    "correlation_id": command_id,
                    "causation_id": command_id,
                }),
                event_id,
                user_id: user,
                recorded_at: at,
            });
        }
        Ok(())
    }
}

/// One pillar's part of a user's day.
pub trait Activity {
    /// What `user` (number `index`) does on the day starting at `day`.
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()>;
}

/// Every pillar's activity, for `users` users.
pub fn activities(users: usize) -> Vec<Box<dyn Activity>> {
    vec![
        Box::new(Tasks::new(users)),
        Box::new(Focus::new(users)),
        Box::new(Calendar),
    ]
}

/// Tasks: most days a new task; most days one completed; sometimes one re-prioritised.
struct Tasks {
    open: Vec<VecDeque<Stream<Task>>>,
}

impl Tasks {
    /// Open tasks kept per user (the oldest is deleted beyond it).
    const MAX_OPEN: usize = 40;

    fn new(users: usize) -> Self {
        Tasks {
            open: (0..users).map(|_| VecDeque::new()).collect(),
        }
    }
}

impl Activity for Tasks {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let open = &mut self.open[index];
        let at = day + Span::minutes(8 * 60 + rng.below(600) as i64);
        if rng.chance(0.9) {
            let task_id = rng.uuid();
            let mut task = Stream::<Task>::new(task_id);
            let new = NewTask {
                task_id,
                title: format!("task {}", rng.below(10_000)),
                due: Some(at + Span::hours(rng.below(96) as i64)),
                priority: rng.below(5) as u32,
                tags: if rng.chance(0.3) {
                    vec!["home".into()]
                } else {
                    Vec::new()
                },
                ..NewTask::default()
            };
            task.exec(
                Issued::new(user, at, TaskCommand::Create(new)),
                user,
                at,
                rng,
                out,
            )?;
            open.push_back(task);
        }
        let later = at + Span::minutes(30);
        if rng.chance(0.7)
            && let Some(mut task) = open.pop_front()
        {
            task.exec(
                Issued::new(user, later, TaskCommand::Complete),
                user,
                later,
                rng,
                out,
            )?;
        }
        if rng.chance(0.1)
            && let Some(task) = open.back_mut()
        {
            let changes = TaskChanges {
                priority: Some(rng.below(5) as u32),
                ..TaskChanges::default()
            };
            task.exec(
                Issued::new(user, later, TaskCommand::Update(changes)),
                user,
                later,
                rng,
                out,
            )?;
        }
        if open.len() > Self::MAX_OPEN
            && let Some(mut task) = open.pop_front()
        {
            task.exec(
                Issued::new(user, later, TaskCommand::Delete),
                user,
                later,
                rng,
                out,
            )?;
        }
        Ok(())
    }
}

/// Focus: a pomodoro on about a third of the days (one timer per user, a long stream).
struct Focus {
    timers: Vec<Option<Stream<FocusTimer>>>,
}

impl Focus {
    fn new(users: usize) -> Self {
        Focus {
            timers: (0..users).map(|_| None).collect(),
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
        if !rng.chance(0.35) {
            return Ok(());
        }
        let timer = self.timers[index].get_or_insert_with(|| Stream::new(user));
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

/// Calendar: a one-hour meeting on some days.
struct Calendar;

impl Activity for Calendar {
    fn day(
        &mut self,
        _index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        if !rng.chance(0.15) {
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

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct LogSpec {
    /// Users living in parallel.
    pub users: usize,
    /// Events to write (exactly).
    pub events: u64,
    /// Seed.
    pub seed: u64,
}

/// Generates and loads the log `spec` describes into `store` (empty), with a progress bar on a
/// terminal. Returns the users.
pub async fn load(store: &Store, spec: LogSpec, label: &str) -> anyhow::Result<Vec<Uuid>> {
    let mut rng = Rng::new(spec.seed);
    let users: Vec<Uuid> = (0..spec.users).map(|_| rng.uuid()).collect();
    let mut activities = activities(spec.users);
    let bar = ProgressBar::new(spec.events).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    let mut loader = Loader::new(store).await?;
    let mut buf = Vec::with_capacity(CHUNK * 2);
    let mut written = 0u64;
    let first = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("a date");
    'days: for day in 0.. {
        let day = first + Span::days(day);
        for (index, &user) in users.iter().enumerate() {
            for activity in activities.iter_mut() {
                activity.day(index, user, day, &mut rng, &mut buf)?;
            }
            let left = spec.events - written;
            if buf.len() as u64 >= left {
                buf.truncate(left as usize);
                loader.insert(&buf).await?;
                bar.inc(buf.len() as u64);
                break 'days;
            }
            if buf.len() >= CHUNK {
                loader.insert(&buf).await?;
                written += buf.len() as u64;
                bar.inc(buf.len() as u64);
                buf.clear();
            }
        }
    }
    bar.finish_and_clear();
    // On PostgreSQL committed events stay invisible to the log reader while any older
    // transaction of the cluster runs (that is what keeps it from skipping one): start
    // measuring only once it sees them all.
    let expected = loader.next_position - 1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while store.count_after(Position::START).await? < expected as u64 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the log reader does not see the generated events after 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(users)
}

/// Bulk INSERTs of generated events, the same columns the store writes.
struct Loader {
    store: Store,
    next_position: i64,
}

impl Loader {
    async fn new(store: &Store) -> anyhow::Result<Self> {
        Ok(Loader {
            store: store.clone(),
            next_position: store.head().await?.pos + 1,
        })
    }

    async fn insert(&mut self, events: &[GenEvent]) -> anyhow::Result<()> {
        match &self.store {
            Store::Postgres(pg) => {
                let col = |f: fn(&GenEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                        event_version, payload, metadata, event_id, user_id, recorded_at) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], \
                        $5::text[], $6::jsonb[], $7::jsonb[], $8::uuid[], $9::uuid[], \
                        $10::timestamptz[])",
                )
                .bind(col(|e| e.aggregate_type.to_string()))
                .bind(col(|e| e.aggregate_id.clone()))
                .bind(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
                .bind(col(|e| e.event_type.clone()))
                .bind(col(|e| e.event_version.clone()))
                .bind(events.iter().map(|e| &e.payload).collect::<Vec<_>>())
                .bind(events.iter().map(|e| &e.metadata).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.user_id).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
                .execute(pg.pool())
                .await?;
                self.next_position += events.len() as i64;
            }
            Store::Sqlite(lite) => {
                let mut tx = lite.writer().begin().await?;
                for e in events {
                    sqlx::query(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                            event_version, payload, metadata, global_position, event_id, user_id, \
                            recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(e.aggregate_type)
                    .bind(&e.aggregate_id)
                    .bind(e.sequence)
                    .bind(&e.event_type)
                    .bind(&e.event_version)
                    .bind(e.payload.to_string())
                    .bind(e.metadata.to_string())
                    .bind(self.next_position)
                    .bind(e.event_id.to_string())
                    .bind(e.user_id.to_string())
                    .bind(
                        e.recorded_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    )
                    .execute(&mut *tx)
                    .await?;
                    self.next_position += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(43).next_u64(), xs[0]);
    }

    #[test]
    fn a_day_of_every_pillar_is_accepted_by_the_real_aggregates() {
        let mut rng = Rng::new(1);
        let user = rng.uuid();
        let mut out = Vec::new();
        let mut all = activities(1);
        let first = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        for day in 0..60 {
            for activity in all.iter_mut() {
                activity
                    .day(0, user, first + Span::days(day), &mut rng, &mut out)
                    .unwrap();
            }
        }
        let types: std::collections::BTreeSet<&str> =
            out.iter().map(|e| e.aggregate_type).collect();
        assert_eq!(
            types.into_iter().collect::<Vec<_>>(),
            ["calendar_event", "focus", "task"]
        );
        // sequences are 1.. per stream, in order
        let mut last = std::collections::HashMap::new();
        for e in &out {
            let prev = last.insert(e.aggregate_id.clone(), e.sequence).unwrap_or(0);
            assert_eq!(
                e.sequence,
                prev + 1,
                "{} {}",
                e.aggregate_type,
                e.event_type
            );
        }
    }
}
