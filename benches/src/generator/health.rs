//! Health: a wearable's import (`<user>:import:apple_health`, with external ids) brings last
//! night's sleep and the day's steps; by hand (`<user>:manual`) the user weighs in a couple of
//! times a week (now and then a typo, deleted and logged again) and notes a mood most evenings.

use aggregates::Issued;
use aggregates::health::metric::{SleepStage, SleepStageKind};
use aggregates::health::{HealthCommand, HealthLog, LogSample, MANUAL, Measurement, log_id};
use chrono::{DateTime, Duration as Span, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who log their health.
const SHARE: f64 = 0.1;
/// The wearable's import source.
const WEARABLE: &str = "import:apple_health";
/// Mood scores, the middle ones more often.
const MOODS: [u8; 9] = [3, 4, 5, 5, 6, 6, 7, 7, 8];

/// One user's health logs, one per source.
struct Body {
    wearable: Stream<HealthLog>,
    manual: Stream<HealthLog>,
    /// The current weight, in tenths of a kilogram.
    tenths_kg: i64,
}

/// Logs `measurement` into `log` (of `source`) at `at`; returns the sample id.
fn log(
    log: &mut Stream<HealthLog>,
    source: &str,
    external_id: Option<String>,
    measurement: Measurement,
    (user, at): (Uuid, DateTime<Utc>),
    rng: &mut Rng,
    out: &mut Vec<GenEvent>,
) -> anyhow::Result<Uuid> {
    let sample_id = rng.uuid();
    let command = HealthCommand::LogSample(LogSample {
        sample_id,
        source: source.into(),
        external_id,
        measurement,
    });
    log.exec(Issued::new(user, at, command), user, at, rng, out)?;
    Ok(sample_id)
}

/// The health logs of the users who keep one.
pub(super) struct Health {
    bodies: Adopters<Body>,
}

impl Health {
    /// No health log yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Health {
            bodies: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Health {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(body) = self.bodies.of(index, rng, |rng| {
            Ok(Body {
                wearable: Stream::new(log_id(user, WEARABLE)),
                manual: Stream::new(log_id(user, MANUAL)),
                tenths_kg: 550 + rng.below(400) as i64,
            })
        })?
        else {
            return Ok(());
        };
        let date = day.date_naive();
        if rng.chance(0.95) {
            let start = day - Span::minutes(90 - rng.below(120) as i64);
            let end = start + Span::minutes(6 * 60 + rng.below(180) as i64);
            let mut stages = Vec::new();
            if rng.chance(0.5) {
                let awake = start + Span::minutes(120 + rng.below(60) as i64);
                stages.push(SleepStage {
                    stage: SleepStageKind::Awake,
                    start: awake,
                    end: awake + Span::minutes(10 + rng.below(20) as i64),
                });
            }
            let sleep = Measurement::Sleep { start, end, stages };
            let at = (user, end + Span::minutes(15));
            let id = Some(format!("sleep-{date}"));
            log(&mut body.wearable, WEARABLE, id, sleep, at, rng, out)?;
        }
        if rng.chance(2.0 / 7.0) {
            let at = day + Span::minutes(7 * 60 + rng.below(60) as i64);
            body.tenths_kg += rng.below(7) as i64 - 3;
            let weight = |tenths| Measurement::Weight {
                kg: Decimal::new(tenths, 1),
                at,
            };
            if rng.chance(0.03) {
                let typo = weight(body.tenths_kg + 100);
                let sample_id = log(&mut body.manual, MANUAL, None, typo, (user, at), rng, out)?;
                let delete = HealthCommand::DeleteSample { sample_id };
                body.manual
                    .exec(Issued::new(user, at, delete), user, at, rng, out)?;
            }
            let real = weight(body.tenths_kg);
            log(&mut body.manual, MANUAL, None, real, (user, at), rng, out)?;
        }
        if rng.chance(0.8) {
            let at = day + Span::minutes(21 * 60 + rng.below(60) as i64);
            let mood = Measurement::Mood {
                score: *rng.pick(&MOODS),
                at,
            };
            log(&mut body.manual, MANUAL, None, mood, (user, at), rng, out)?;
        }
        if rng.chance(0.97) {
            let end = day + Span::minutes(23 * 60 + rng.below(59) as i64);
            let steps = Measurement::Steps {
                count: 1_500 + rng.below(14_500) as u32,
                start: day,
                end,
            };
            let at = (user, end + Span::minutes(1));
            let id = Some(format!("steps-{date}"));
            log(&mut body.wearable, WEARABLE, id, steps, at, rng, out)?;
        }
        Ok(())
    }
}
