//! The Health pillar aggregate: one user's health samples from one source (aggregate type
//! `health`, pillar `health`).
//!
//! **Consistency boundary.** "A source's external id is recorded once" (dedupe by
//! `(source, external id)`) is an invariant across samples, so the aggregate is not a sample
//! but the user's [`HealthLog`] for one source: aggregate id [`log_id`] = `<user id>:<source>`,
//! where the source is a token checked by [`validate_source`]: `manual` (typed in by the user)
//! or `import:<name>` (e.g. `import:apple_health`, the later Apple Health `export.xml`
//! importer). Each import source gets its own stream, so a large import never contends with
//! manual logging.
//!
//! **Commands.** [`HealthCommand::LogSample`] records one typed [`Measurement`] (canonical units,
//! checked by [`Measurement::validated`]) under a sample id the API draws (UUID v7).
//! A second sample with an external id this source has already recorded is
//! ALREADY_EXISTS naming `external_id` — also after that sample was deleted, so re-running an
//! import never resurrects a sample the user removed. [`HealthCommand::DeleteSample`] removes a
//! wrong entry (NOT_FOUND when the source never recorded it, or it is already deleted); its
//! event carries the sample's metric and attribution time, so rollups find and subtract it.
//!
//! Only the owner acts: another user's log answers NOT_FOUND and reveals nothing. Handling is
//! pure: times come from the [`Issued`] envelope, ids from the command.

pub mod metric;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};
pub use metric::{Measurement, Metric};

/// The longest source token, in characters.
pub const SOURCE_MAX_CHARS: usize = 64;
/// The longest external id, in characters.
pub const EXTERNAL_ID_MAX_CHARS: usize = 256;
/// The source of samples a user types in.
pub const MANUAL: &str = "manual";
/// The prefix of import sources (`import:apple_health`).
pub const IMPORT_PREFIX: &str = "import:";

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "health sample";

/// The aggregate id of `user_id`'s samples from `source`.
///
/// ```
/// let id = aggregates::health::log_id(uuid::Uuid::nil(), "manual");
/// assert_eq!(id, "00000000-0000-0000-0000-000000000000:manual");
/// ```
pub fn log_id(user_id: Uuid, source: &str) -> String {
    format!("{user_id}:{source}")
}

/// Checks a source token: `manual`, or `import:<name>` with a non-empty name, at most
/// [`SOURCE_MAX_CHARS`] characters of `a-z 0-9 _ : -`; an error names `source`.
///
/// ```
/// use aggregates::health::validate_source;
/// assert!(validate_source("manual").is_ok());
/// assert!(validate_source("import:apple_health").is_ok());
/// assert!(validate_source("Apple Health").is_err());
/// ```
pub fn validate_source(source: &str) -> Result<(), DomainError> {
    let len = source.chars().count();
    if len > SOURCE_MAX_CHARS {
        return Err(DomainError::invalid(
            "source",
            format!("must be at most {SOURCE_MAX_CHARS} characters, got {len}"),
        ));
    }
    if !source
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:-".contains(c))
    {
        return Err(DomainError::invalid(
            "source",
            format!("may hold only a-z, 0-9, '_', ':', '-', got {source:?}"),
        ));
    }
    let import_name = source.strip_prefix(IMPORT_PREFIX);
    if source != MANUAL && import_name.is_none_or(str::is_empty) {
        return Err(DomainError::invalid(
            "source",
            format!("must be {MANUAL:?} or \"{IMPORT_PREFIX}<name>\", got {source:?}"),
        ));
    }
    Ok(())
}

/// Checks an external id: 1 to [`EXTERNAL_ID_MAX_CHARS`] characters, no control characters;
/// an error names `external_id`.
fn validate_external_id(id: &str) -> Result<(), DomainError> {
    let len = id.chars().count();
    if len == 0 || len > EXTERNAL_ID_MAX_CHARS {
        return Err(DomainError::invalid(
            "external_id",
            format!("must be 1 to {EXTERNAL_ID_MAX_CHARS} characters, got {len}"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "external_id",
            "must not hold control characters",
        ));
    }
    Ok(())
}

/// A sample to record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSample {
    /// The new sample's id (UUID v7, drawn by the API).
    pub sample_id: Uuid,
    /// The source token ([`validate_source`]); must match the log's.
    pub source: String,
    /// The source's own id of the sample, for dedupe (None for most manual entries).
    pub external_id: Option<String>,
    /// What was measured, in canonical units.
    pub measurement: Measurement,
}

/// What a user can ask of their health log for one source.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCommand {
    /// Record a sample.
    LogSample(LogSample),
    /// Remove a sample recorded by this source.
    DeleteSample {
        /// The sample.
        sample_id: Uuid,
    },
}

/// What the log remembers of a live sample: enough to delete it and to tell rollups where it
/// was counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRef {
    /// Its metric.
    pub metric: Metric,
    /// The instant it is attributed to ([`Measurement::time`]).
    pub time: DateTime<Utc>,
    /// The source's id of it.
    pub external_id: Option<String>,
}

/// The aggregate: one user's samples from one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthLog {
    owner: Option<Uuid>,
    source: Option<String>,
    /// Live samples by id.
    samples: BTreeMap<Uuid, SampleRef>,
    /// Every external id ever recorded, with its sample (kept after a delete).
    external_ids: BTreeMap<String, Uuid>,
    /// Deleted sample ids (an id is used once).
    deleted: std::collections::BTreeSet<Uuid>,
}

impl HealthLog {
    /// The live sample `sample_id`, if any.
    pub fn sample(&self, sample_id: Uuid) -> Option<&SampleRef> {
        self.samples.get(&sample_id)
    }

    /// The sample recorded under `external_id` (live or deleted).
    pub fn by_external_id(&self, external_id: &str) -> Option<Uuid> {
        self.external_ids.get(external_id).copied()
    }

    /// How many samples are live.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is live.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// What happened to a health log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthEvent {
    /// A sample was recorded.
    HealthSampleLogged {
        /// The sample.
        sample_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// The source token.
        source: String,
        /// The source's id of it.
        external_id: Option<String>,
        /// What was measured (canonical units).
        measurement: Measurement,
        /// When it was recorded (the command's time).
        logged_at: DateTime<Utc>,
    },
    /// A sample was removed. Carries what a rollup needs to subtract it.
    HealthSampleDeleted {
        /// The sample.
        sample_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// The source token.
        source: String,
        /// The source's id of it.
        external_id: Option<String>,
        /// Its metric.
        metric: Metric,
        /// The instant it was attributed to.
        time: DateTime<Utc>,
        /// When it was deleted.
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for HealthEvent {
    /// The variant name, e.g. `HealthSampleLogged` (on the bus: `health.sample_logged`).
    fn event_type(&self) -> String {
        match self {
            HealthEvent::HealthSampleLogged { .. } => "HealthSampleLogged",
            HealthEvent::HealthSampleDeleted { .. } => "HealthSampleDeleted",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl HealthEvent {
    /// The sample the event is about.
    pub fn sample_id(&self) -> Uuid {
        match self {
            HealthEvent::HealthSampleLogged { sample_id, .. }
            | HealthEvent::HealthSampleDeleted { sample_id, .. } => *sample_id,
        }
    }
}

crate::pillar_aggregate!(HealthLog, "health", HealthCommand, HealthEvent);

impl HealthLog {
    /// Folds `event` into the log.
    fn evolve(&mut self, event: HealthEvent) {
        match event {
            HealthEvent::HealthSampleLogged {
                sample_id,
                user_id,
                source,
                external_id,
                measurement,
                ..
            } => {
                self.owner.get_or_insert(user_id);
                self.source.get_or_insert(source);
                if let Some(ext) = &external_id {
                    self.external_ids.insert(ext.clone(), sample_id);
                }
                self.samples.insert(
                    sample_id,
                    SampleRef {
                        metric: measurement.metric(),
                        time: measurement.time(),
                        external_id,
                    },
                );
            }
            HealthEvent::HealthSampleDeleted { sample_id, .. } => {
                self.samples.remove(&sample_id);
                self.deleted.insert(sample_id);
            }
        }
    }

    /// The pure decision: the events `command` produces against the current log.
    fn decide(&self, command: Issued<HealthCommand>) -> Result<Vec<HealthEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        if self.owner.is_some_and(|o| o != actor) {
            return Err(DomainError::NotFound {
                entity: ENTITY,
                id: String::new(),
            });
        }
        match command {
            HealthCommand::LogSample(log) => self.log(actor, at, log),
            HealthCommand::DeleteSample { sample_id } => {
                let Some(sample) = self.samples.get(&sample_id) else {
                    return Err(DomainError::NotFound {
                        entity: ENTITY,
                        id: sample_id.to_string(),
                    });
                };
                Ok(vec![HealthEvent::HealthSampleDeleted {
                    sample_id,
                    user_id: actor,
                    source: self.source.clone().unwrap_or_default(),
                    external_id: sample.external_id.clone(),
                    metric: sample.metric,
                    time: sample.time,
                    deleted_at: at,
                }])
            }
        }
    }

    fn log(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        log: LogSample,
    ) -> Result<Vec<HealthEvent>, DomainError> {
        validate_source(&log.source)?;
        if self.source.as_ref().is_some_and(|s| *s != log.source) {
            return Err(DomainError::invalid(
                "source",
                "does not match this health log",
            ));
        }
        if log.sample_id.is_nil() {
            return Err(DomainError::invalid(
                "sample_id",
                "must not be the nil UUID",
            ));
        }
        if let Some(ext) = &log.external_id {
            validate_external_id(ext)?;
        }
        let measurement = log.measurement.validated(at)?;
        if let Some(ext) = &log.external_id
            && self.external_ids.contains_key(ext)
        {
            return Err(DomainError::AlreadyExists {
                entity: "health sample with external_id",
                id: format!("{ext:?} from source {}", log.source),
            });
        }
        if self.samples.contains_key(&log.sample_id) || self.deleted.contains(&log.sample_id) {
            return Err(DomainError::AlreadyExists {
                entity: ENTITY,
                id: log.sample_id.to_string(),
            });
        }
        Ok(vec![HealthEvent::HealthSampleLogged {
            sample_id: log.sample_id,
            user_id: actor,
            source: log.source,
            external_id: log.external_id,
            measurement,
            logged_at: at,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::metric::{
        FUTURE_SLACK, MAX_KCAL, MAX_STEPS, MAX_WORKOUT_SECONDS, SleepStage, SleepStageKind,
    };
    use super::*;
    use chrono::{Duration, TimeZone};
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;
    use rust_decimal::Decimal;

    type Fw = TestFramework<HealthLog>;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const S1: Uuid = Uuid::from_u128(0x5a_0001);
    const S2: Uuid = Uuid::from_u128(0x5a_0002);

    /// 2026-03-02 hh:mm UTC.
    fn t(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0).unwrap()
    }

    /// The command time of every test: the evening of 2026-03-02.
    fn now() -> DateTime<Utc> {
        t(22, 0)
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn fw() -> Fw {
        TestFramework::<HealthLog>::with(())
    }

    fn log_cmd(sample_id: Uuid, external_id: Option<&str>, m: Measurement) -> HealthCommand {
        HealthCommand::LogSample(LogSample {
            sample_id,
            source: MANUAL.to_string(),
            external_id: external_id.map(str::to_string),
            measurement: m,
        })
    }

    fn steps(count: u32) -> Measurement {
        Measurement::Steps {
            count,
            start: t(8, 0),
            end: t(9, 0),
        }
    }

    fn logged(sample_id: Uuid, external_id: Option<&str>, m: Measurement) -> HealthEvent {
        HealthEvent::HealthSampleLogged {
            sample_id,
            user_id: ALICE,
            source: MANUAL.to_string(),
            external_id: external_id.map(str::to_string),
            measurement: m,
            logged_at: now(),
        }
    }

    fn refused(given: Vec<HealthEvent>, actor: Uuid, command: HealthCommand) -> DomainError {
        fw().given(given)
            .when(Issued::new(actor, now(), command))
            .inspect_result()
            .expect_err("command refused")
    }

    fn accepted(given: Vec<HealthEvent>, command: HealthCommand) -> Vec<HealthEvent> {
        fw().given(given)
            .when(Issued::new(ALICE, now(), command))
            .inspect_result()
            .expect("command accepted")
    }

    fn assert_invalid(err: DomainError, field: &str) {
        match &err {
            DomainError::Invalid { field: f, .. } => assert_eq!(*f, field, "{err:?}"),
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
    }

    /// The field a measurement is refused on (logged as Alice on an empty log).
    fn refused_on(m: Measurement) -> &'static str {
        match refused(vec![], ALICE, log_cmd(S1, None, m)) {
            DomainError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn accepts(m: Measurement) {
        accepted(vec![], log_cmd(S1, None, m));
    }

    #[test]
    fn log_records_the_sample_with_its_source() {
        fw().given_no_previous_events()
            .when(Issued::new(
                ALICE,
                now(),
                log_cmd(S1, Some("hk-1"), steps(4200)),
            ))
            .then_expect_events(vec![logged(S1, Some("hk-1"), steps(4200))]);
    }

    #[test]
    fn sources_are_manual_or_named_imports() {
        for good in ["manual", "import:apple_health", "import:a-b_c:2"] {
            assert!(validate_source(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Manual",
            "import:",
            "import",
            "fitbit",
            "import:Apple",
            "import:a b",
            &format!("import:{}", "a".repeat(SOURCE_MAX_CHARS)),
        ] {
            assert_invalid(validate_source(bad).unwrap_err(), "source");
        }
        let cmd = HealthCommand::LogSample(LogSample {
            sample_id: S1,
            source: "import:".into(),
            external_id: None,
            measurement: steps(1),
        });
        assert_invalid(refused(vec![], ALICE, cmd), "source");
        // a log keeps its source
        let other = HealthCommand::LogSample(LogSample {
            sample_id: S2,
            source: "import:apple_health".into(),
            external_id: None,
            measurement: steps(1),
        });
        assert_invalid(
            refused(vec![logged(S1, None, steps(1))], ALICE, other),
            "source",
        );
    }

    #[test]
    fn a_repeated_external_id_already_exists() {
        let given = vec![logged(S1, Some("hk-1"), steps(100))];
        let err = refused(given.clone(), ALICE, log_cmd(S2, Some("hk-1"), steps(100)));
        match &err {
            DomainError::AlreadyExists { entity, id } => {
                assert!(entity.contains("external_id"), "{err}");
                assert!(id.contains("hk-1"), "{err}");
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        // another external id, or none, is a new sample
        let events = accepted(given.clone(), log_cmd(S2, Some("hk-2"), steps(100)));
        assert_eq!(events, vec![logged(S2, Some("hk-2"), steps(100))]);
        accepted(given.clone(), log_cmd(S2, None, steps(100)));
        // still taken after the sample is deleted: a re-import does not resurrect it
        let deleted = [
            given,
            accepted(
                vec![logged(S1, Some("hk-1"), steps(100))],
                HealthCommand::DeleteSample { sample_id: S1 },
            ),
        ]
        .concat();
        let err = refused(deleted, ALICE, log_cmd(S2, Some("hk-1"), steps(100)));
        assert!(matches!(err, DomainError::AlreadyExists { .. }), "{err:?}");
    }

    #[test]
    fn external_ids_and_sample_ids_are_checked() {
        for bad in [
            String::new(),
            "x".repeat(EXTERNAL_ID_MAX_CHARS + 1),
            "a\nb".into(),
        ] {
            assert_invalid(
                refused(vec![], ALICE, log_cmd(S1, Some(&bad), steps(1))),
                "external_id",
            );
        }
        assert_invalid(
            refused(vec![], ALICE, log_cmd(Uuid::nil(), None, steps(1))),
            "sample_id",
        );
        let err = refused(
            vec![logged(S1, None, steps(1))],
            ALICE,
            log_cmd(S1, None, steps(2)),
        );
        assert_eq!(
            err,
            DomainError::AlreadyExists {
                entity: ENTITY,
                id: S1.to_string()
            }
        );
    }

    #[test]
    fn delete_records_what_the_rollups_subtract() {
        let sleep = Measurement::Sleep {
            start: t(0, 0) - Duration::hours(1),
            end: t(7, 0),
            stages: vec![],
        };
        let given = vec![logged(S1, Some("hk-9"), sleep)];
        let events = accepted(given.clone(), HealthCommand::DeleteSample { sample_id: S1 });
        assert_eq!(
            events,
            vec![HealthEvent::HealthSampleDeleted {
                sample_id: S1,
                user_id: ALICE,
                source: MANUAL.into(),
                external_id: Some("hk-9".into()),
                metric: Metric::Sleep,
                time: t(7, 0),
                deleted_at: now(),
            }]
        );
        let log = fold([given, events].concat());
        assert!(log.is_empty());
        assert_eq!(log.by_external_id("hk-9"), Some(S1));
    }

    #[test]
    fn deleting_an_unknown_or_deleted_sample_is_not_found() {
        let err = refused(vec![], ALICE, HealthCommand::DeleteSample { sample_id: S1 });
        assert_eq!(
            err,
            DomainError::NotFound {
                entity: ENTITY,
                id: S1.to_string()
            }
        );
        let given = vec![logged(S1, None, steps(5))];
        let err = refused(
            given.clone(),
            ALICE,
            HealthCommand::DeleteSample { sample_id: S2 },
        );
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let deleted = [
            given.clone(),
            accepted(given, HealthCommand::DeleteSample { sample_id: S1 }),
        ]
        .concat();
        let err = refused(
            deleted.clone(),
            ALICE,
            HealthCommand::DeleteSample { sample_id: S1 },
        );
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        // and a deleted id is not reused
        let err = refused(deleted, ALICE, log_cmd(S1, None, steps(1)));
        assert!(matches!(err, DomainError::AlreadyExists { .. }), "{err:?}");
    }

    #[test]
    fn another_users_log_reveals_nothing() {
        let given = vec![logged(S1, None, steps(5))];
        for command in [
            log_cmd(S2, None, steps(1)),
            HealthCommand::DeleteSample { sample_id: S1 },
        ] {
            let err = refused(given.clone(), BOB, command);
            assert_eq!(
                err,
                DomainError::NotFound {
                    entity: ENTITY,
                    id: String::new()
                }
            );
        }
    }

    #[test]
    fn steps_are_0_to_200000_in_a_window_of_at_most_24_hours() {
        accepts(steps(0));
        accepts(steps(MAX_STEPS));
        assert_eq!(refused_on(steps(MAX_STEPS + 1)), "steps.count");
        let backwards = Measurement::Steps {
            count: 10,
            start: t(9, 0),
            end: t(8, 0),
        };
        assert_eq!(refused_on(backwards), "steps.end");
        let long = Measurement::Steps {
            count: 10,
            start: t(8, 0) - Duration::hours(25),
            end: t(8, 0),
        };
        assert_eq!(refused_on(long), "steps.end");
        let future = Measurement::Steps {
            count: 10,
            start: now(),
            end: now() + Duration::hours(2),
        };
        assert_eq!(refused_on(future), "steps.end");
    }

    #[test]
    fn sleep_ends_after_it_starts_within_24_hours() {
        let sleep = |start, end| Measurement::Sleep {
            start,
            end,
            stages: vec![],
        };
        accepts(sleep(t(0, 0), t(7, 30)));
        assert_eq!(refused_on(sleep(t(7, 0), t(6, 0))), "sleep.end");
        assert_eq!(refused_on(sleep(t(7, 0), t(7, 0))), "sleep.end");
        assert_eq!(
            refused_on(sleep(t(7, 0) - Duration::hours(25), t(7, 0))),
            "sleep.end"
        );
    }

    #[test]
    fn sleep_stages_lie_inside_the_session_without_overlap() {
        let stage = |stage, start, end| SleepStage { stage, start, end };
        let sleep = |stages| Measurement::Sleep {
            start: t(0, 0),
            end: t(8, 0),
            stages,
        };
        // given out of order, recorded sorted
        let events = accepted(
            vec![],
            log_cmd(
                S1,
                None,
                sleep(vec![
                    stage(SleepStageKind::Rem, t(5, 0), t(6, 0)),
                    stage(SleepStageKind::Deep, t(1, 0), t(2, 0)),
                ]),
            ),
        );
        let HealthEvent::HealthSampleLogged { measurement, .. } = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(
            measurement,
            &sleep(vec![
                stage(SleepStageKind::Deep, t(1, 0), t(2, 0)),
                stage(SleepStageKind::Rem, t(5, 0), t(6, 0)),
            ])
        );
        for bad in [
            vec![stage(
                SleepStageKind::Light,
                t(0, 0) - Duration::minutes(1),
                t(1, 0),
            )],
            vec![stage(SleepStageKind::Light, t(7, 0), t(8, 1))],
            vec![stage(SleepStageKind::Light, t(2, 0), t(2, 0))],
            vec![
                stage(SleepStageKind::Light, t(1, 0), t(3, 0)),
                stage(SleepStageKind::Awake, t(2, 0), t(4, 0)),
            ],
        ] {
            assert_eq!(refused_on(sleep(bad)), "sleep.stages");
        }
    }

    #[test]
    fn hours_asleep_exclude_awake_stages() {
        let sleep = Measurement::Sleep {
            start: t(0, 0),
            end: t(8, 0),
            stages: vec![
                SleepStage {
                    stage: SleepStageKind::Awake,
                    start: t(0, 0),
                    end: t(0, 20),
                },
                SleepStage {
                    stage: SleepStageKind::Deep,
                    start: t(0, 20),
                    end: t(3, 0),
                },
                SleepStage {
                    stage: SleepStageKind::Awake,
                    start: t(3, 0),
                    end: t(3, 10),
                },
            ],
        };
        assert_eq!(sleep.asleep_seconds(), 8 * 3600 - 30 * 60);
        assert_eq!(sleep.time(), t(8, 0), "attributed to the wake-up");
        assert_eq!(steps(1).asleep_seconds(), 0);
    }

    #[test]
    fn weight_is_1_to_700_kg() {
        let weight = |kg: &str| Measurement::Weight {
            kg: dec(kg),
            at: t(7, 0),
        };
        accepts(weight("1"));
        accepts(weight("700"));
        for bad in ["0.99", "700.01", "-80", "0"] {
            assert_eq!(refused_on(weight(bad)), "weight.value", "{bad}");
        }
        let events = accepted(vec![], log_cmd(S1, None, weight("80.500")));
        assert!(
            matches!(&events[0], HealthEvent::HealthSampleLogged { measurement: Measurement::Weight { kg, .. }, .. } if kg.to_string() == "80.5"),
            "normalized: {events:?}"
        );
    }

    #[test]
    fn resting_heart_rate_is_20_to_250_bpm() {
        let hr = |bpm| Measurement::RestingHeartRate { bpm, at: t(7, 0) };
        accepts(hr(20));
        accepts(hr(250));
        assert_eq!(refused_on(hr(19)), "resting_heart_rate.bpm");
        assert_eq!(refused_on(hr(251)), "resting_heart_rate.bpm");
    }

    #[test]
    fn mood_is_1_to_9() {
        let mood = |score| Measurement::Mood { score, at: t(7, 0) };
        accepts(mood(1));
        accepts(mood(9));
        assert_eq!(refused_on(mood(0)), "mood.score");
        assert_eq!(refused_on(mood(10)), "mood.score");
    }

    #[test]
    fn meals_have_a_name_calories_and_optional_macros() {
        let meal = |name: &str, calories, protein: Option<&str>| Measurement::Meal {
            name: name.into(),
            calories,
            protein_g: protein.map(dec),
            carbs_g: None,
            fat_g: None,
            at: t(12, 0),
        };
        let events = accepted(
            vec![],
            log_cmd(S1, None, meal("  lunch ", 650, Some("30.0"))),
        );
        assert!(
            matches!(&events[0], HealthEvent::HealthSampleLogged { measurement: Measurement::Meal { name, protein_g: Some(p), .. }, .. } if name == "lunch" && p.to_string() == "30"),
            "{events:?}"
        );
        accepts(meal("fast", 0, None));
        accepts(meal("feast", MAX_KCAL, None));
        assert_eq!(
            refused_on(meal("feast", MAX_KCAL + 1, None)),
            "meal.calories"
        );
        assert_eq!(refused_on(meal("  ", 100, None)), "meal.name");
        assert_eq!(refused_on(meal("x", 100, Some("-1"))), "meal.protein_g");
        assert_eq!(refused_on(meal("x", 100, Some("5000.1"))), "meal.protein_g");
    }

    #[test]
    fn water_is_positive_and_at_most_20_litres() {
        let water = |ml: &str| Measurement::Water {
            ml: dec(ml),
            at: t(9, 0),
        };
        accepts(water("250"));
        accepts(water("20000"));
        for bad in ["0", "-250", "20000.5"] {
            assert_eq!(refused_on(water(bad)), "water.value", "{bad}");
        }
    }

    #[test]
    fn exercise_and_workouts_have_plausible_lengths() {
        let exercise = |minutes| Measurement::Exercise {
            minutes,
            at: t(9, 0),
        };
        accepts(exercise(30));
        assert_eq!(refused_on(exercise(1441)), "exercise.minutes");
        let workout = |kind: &str, secs, kcal| Measurement::Workout {
            kind: kind.into(),
            start: t(18, 0),
            duration_seconds: secs,
            energy_kcal: kcal,
        };
        accepts(workout("running", 1800, Some(350)));
        accepts(workout("yoga", 3600, None));
        assert_eq!(refused_on(workout("", 1800, None)), "workout.kind");
        assert_eq!(
            refused_on(workout("run", 0, None)),
            "workout.duration_seconds"
        );
        assert_eq!(
            refused_on(workout("run", MAX_WORKOUT_SECONDS + 1, None)),
            "workout.duration_seconds"
        );
        assert_eq!(
            refused_on(workout("run", 60, Some(MAX_KCAL + 1))),
            "workout.energy_kcal"
        );
        assert_eq!(
            workout("run", 60, None).time(),
            t(18, 0),
            "counted at its start"
        );
    }

    #[test]
    fn samples_in_the_future_are_refused() {
        let later = now() + FUTURE_SLACK + Duration::minutes(1);
        assert_eq!(
            refused_on(Measurement::Mood {
                score: 5,
                at: later
            }),
            "mood.at"
        );
        accepts(Measurement::Mood {
            score: 5,
            at: now() + FUTURE_SLACK,
        });
    }

    #[test]
    fn the_log_round_trips_as_a_snapshot() {
        let log = fold(vec![
            logged(S1, Some("a"), steps(3)),
            logged(
                S2,
                None,
                Measurement::Mood {
                    score: 7,
                    at: t(9, 0),
                },
            ),
        ]);
        let json = serde_json::to_value(&log).unwrap();
        let back: HealthLog = serde_json::from_value(json).unwrap();
        assert_eq!(back, log);
        assert_eq!(back.len(), 2);
        assert_eq!(back.sample(S2).map(|s| s.metric), Some(Metric::Mood));
    }

    #[test]
    fn events_have_their_type_version_and_no_floats() {
        let e = logged(
            S1,
            None,
            Measurement::Weight {
                kg: dec("81.6466266"),
                at: t(7, 0),
            },
        );
        assert_eq!(e.event_type(), "HealthSampleLogged");
        assert_eq!(e.event_version(), "1");
        assert_eq!(e.sample_id(), S1);
        let json = serde_json::to_value(&e).unwrap();
        let m = &json["HealthSampleLogged"]["measurement"];
        assert_eq!(m["metric"], "weight");
        assert_eq!(m["kg"], "81.6466266", "decimals travel as strings");
        let back: HealthEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    fn fold(events: Vec<HealthEvent>) -> HealthLog {
        let mut log = HealthLog::default();
        for e in events {
            log.apply(e);
        }
        log
    }
}
