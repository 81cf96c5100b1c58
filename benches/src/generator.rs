//! A deterministic log of real pillar events: users living a year (or more) of mixed activity.
//!
//! Every event comes out of the real aggregates (`handle` on the pure domain, in memory), so the
//! log is one the engine could have written; only the loading is a bulk INSERT (preparing a
//! million events one command at a time would take longer than the benchmarks). Pillars are
//! [`Activity`]s, one module each: adding one is one more struct in [`activities`].
//!
//! **A year per thousand events.** The log is generated day by day (every user's day, then the
//! next day) until it holds the events asked for, so how many days it spans is
//! `events ÷ (users × events per user-day)`. The activities are tuned to about 1 000 events per
//! user and year: not every user uses every pillar ([`Adopters`]; the first user uses them all),
//! and those who do, do it at a plausible daily pace. `--events 1000000 --users 1000` is about
//! a year; the per-pillar counts and the days covered are printed after generation.

mod calendar;
mod finance;
mod focus;
mod habits;
mod health;
mod journal;
mod tasks;

use std::collections::BTreeMap;

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

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
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
        Box::new(tasks::Tasks::new(users)),
        Box::new(focus::Focus::new(users)),
        Box::new(calendar::Calendar::new(users)),
        Box::new(habits::Habits::new(users)),
        Box::new(finance::Finance::new(users)),
        Box::new(health::Health::new(users)),
        Box::new(journal::Journal::new(users)),
    ]
}

/// One pillar's per-user state, for the users who take the pillar up: each user decides on
/// their first day, with probability `share` (the first user always does, so a one-user log,
/// the replay workload's, has every pillar), and the state is started then.
pub struct Adopters<S> {
    share: f64,
    users: Vec<Adoption<S>>,
}

/// Whether a user uses a pillar.
enum Adoption<S> {
    /// Not decided yet (their first day has not come).
    Undecided,
    /// Never.
    Never,
    /// Yes, with this state.
    Uses(S),
}

impl<S> Adopters<S> {
    /// Nobody decided yet, among `users` users.
    pub fn new(users: usize, share: f64) -> Self {
        Adopters {
            share,
            users: (0..users).map(|_| Adoption::Undecided).collect(),
        }
    }

    /// The state of user `index`, or `None` when they do not use the pillar. On the user's
    /// first call the choice is drawn, and `start` makes the state of a user who adopts it.
    pub fn of(
        &mut self,
        index: usize,
        rng: &mut Rng,
        start: impl FnOnce(&mut Rng) -> anyhow::Result<S>,
    ) -> anyhow::Result<Option<&mut S>> {
        let slot = &mut self.users[index];
        if let Adoption::Undecided = slot {
            *slot = if index == 0 || rng.chance(self.share) {
                Adoption::Uses(start(rng)?)
            } else {
                Adoption::Never
            };
        }
        Ok(match slot {
            Adoption::Uses(state) => Some(state),
            Adoption::Undecided | Adoption::Never => None,
        })
    }
}

/// The log being generated: every user's day, then the next day, from 2025-01-01.
pub struct Log {
    rng: Rng,
    users: Vec<Uuid>,
    activities: Vec<Box<dyn Activity>>,
    first: DateTime<Utc>,
    day: i64,
    next_user: usize,
}

impl Log {
    /// The log of `users` users drawn from `seed`.
    pub fn new(users: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let users: Vec<Uuid> = (0..users).map(|_| rng.uuid()).collect();
        Log {
            rng,
            activities: activities(users.len()),
            users,
            first: Utc
                .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                .single()
                .expect("a date"),
            day: 0,
            next_user: 0,
        }
    }

    /// The users.
    pub fn users(&self) -> &[Uuid] {
        &self.users
    }

    /// Days begun so far (the last one may be partly generated).
    pub fn days(&self) -> i64 {
        self.day + i64::from(self.next_user > 0)
    }

    /// Appends the next user's next day (every pillar) to `out`.
    pub fn next_user_day(&mut self, out: &mut Vec<GenEvent>) -> anyhow::Result<()> {
        let (index, user) = (self.next_user, self.users[self.next_user]);
        let day = self.first + Span::days(self.day);
        for activity in self.activities.iter_mut() {
            activity.day(index, user, day, &mut self.rng, out)?;
        }
        self.next_user += 1;
        if self.next_user == self.users.len() {
            self.next_user = 0;
            self.day += 1;
        }
        Ok(())
    }
}

/// Events per pillar (`aggregates::pillar_of`).
#[derive(Debug, Default)]
pub struct Mix(BTreeMap<&'static str, u64>);

impl Mix {
    /// Counts `events`.
    pub fn add(&mut self, events: &[GenEvent]) {
        for e in events {
            *self
                .0
                .entry(aggregates::pillar_of(e.aggregate_type))
                .or_default() += 1;
        }
    }
}

impl std::fmt::Display for Mix {
    /// `tasks 1200 (35.1%), focus …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.0.values().sum::<u64>().max(1) as f64;
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(pillar, n)| format!("{pillar} {n} ({:.1}%)", *n as f64 * 100.0 / total))
            .collect();
        f.write_str(&parts.join(", "))
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
    anyhow::ensure!(spec.users > 0, "a generated log needs at least one user");
    let mut log = Log::new(spec.users, spec.seed);
    let bar = ProgressBar::new(spec.events).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    let mut loader = Loader::new(store).await?;
    let mut buf = Vec::with_capacity(CHUNK * 2);
    let mut written = 0u64;
    let mut mix = Mix::default();
    loop {
        log.next_user_day(&mut buf)?;
        let left = spec.events - written;
        let last = buf.len() as u64 >= left;
        if last {
            buf.truncate(left as usize);
        }
        if last || buf.len() >= CHUNK {
            loader.insert(&buf).await?;
            mix.add(&buf);
            written += buf.len() as u64;
            bar.inc(buf.len() as u64);
            buf.clear();
        }
        if last {
            break;
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "{label}: {written} events over {} days of {} users: {mix}",
        log.days(),
        spec.users
    );
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
    Ok(log.users().to_vec())
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

    /// `days` days of a log of `users` users (seed 1).
    fn generate(users: usize, days: usize) -> (Log, Vec<GenEvent>) {
        let mut log = Log::new(users, 1);
        let mut out = Vec::new();
        for _ in 0..users * days {
            log.next_user_day(&mut out).unwrap();
        }
        (log, out)
    }

    #[test]
    fn the_real_aggregates_accept_every_pillar_of_a_season() {
        // the first user uses every pillar; 100 days cross months (budgets) and streaks
        let (log, out) = generate(1, 100);
        assert_eq!(log.days(), 100);
        let types: std::collections::BTreeSet<&str> =
            out.iter().map(|e| e.aggregate_type).collect();
        assert_eq!(
            types.into_iter().collect::<Vec<_>>(),
            [
                "account",
                "budget",
                "calendar_event",
                "focus",
                "habit",
                "health",
                "journal_entry",
                "task"
            ]
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

    #[test]
    fn aggregate_ids_are_the_ones_the_command_api_writes() {
        let (log, out) = generate(1, 40);
        let user = log.users()[0];
        let ids = |t: &str| -> std::collections::BTreeSet<String> {
            out.iter()
                .filter(|e| e.aggregate_type == t)
                .map(|e| e.aggregate_id.clone())
                .collect()
        };
        assert_eq!(
            ids("health"),
            [
                aggregates::health::log_id(user, "import:apple_health"),
                aggregates::health::log_id(user, "manual"),
            ]
            .into()
        );
        assert_eq!(
            ids("budget"),
            ["2025-01", "2025-02"]
                .map(|m| aggregates::finance::budget::budget_id(user, m))
                .into()
        );
        for t in [
            "account",
            "habit",
            "journal_entry",
            "task",
            "calendar_event",
        ] {
            assert!(ids(t).iter().all(|id| id.parse::<Uuid>().is_ok()), "{t}");
        }
        assert_eq!(ids("focus"), [user.to_string()].into());
    }

    #[test]
    fn a_thousand_events_are_about_a_user_year() {
        // enough users for the pillars' shares to show; the pace of a year from 40 days
        let (users, days) = (1_000, 40);
        let (_, out) = generate(users, days);
        let per_user_year = out.len() * 365 / (users * days);
        let mut mix = Mix::default();
        mix.add(&out);
        assert!(
            (900..=1_100).contains(&per_user_year),
            "{per_user_year} events per user and year: {mix}"
        );
        for pillar in [
            "tasks", "focus", "calendar", "habits", "finance", "health", "journal",
        ] {
            assert!(
                mix.0.get(pillar).is_some_and(|n| *n > 0),
                "no {pillar} in {mix}"
            );
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_log() {
        let key = |e: &GenEvent| {
            (
                e.aggregate_id.clone(),
                e.sequence,
                e.event_id,
                e.payload.clone(),
            )
        };
        let (_, a) = generate(3, 30);
        let (_, b) = generate(3, 30);
        assert_eq!(
            a.iter().map(key).collect::<Vec<_>>(),
            b.iter().map(key).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn every_read_model_folds_the_generated_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::testing::sqlite_store(dir.path()).await;
        let spec = LogSpec {
            users: 1,
            events: 3_000,
            seed: 7,
        };
        let user = load(&store, spec, "one user").await.unwrap()[0];
        let all = projections::all();
        let replay = projections::replay::replay_user(&store, &all, user, None, |_| {})
            .await
            .unwrap();
        assert_eq!(replay.events, 3_000);
        assert_eq!(replay.models.len(), all.len());
        for (name, rows) in &replay.models {
            assert!(!rows.rows().is_empty(), "{name} has no row");
        }
    }
}
