//! `health_daily`: one row per user per **local** day holding every live health sample counted
//! on that day, from which the day's figures ([`DayHealth`]) and the 7/30-day averages
//! ([`averages`]) are computed.
//!
//! Attribution: a sample counts on the local day (preferences time zone and day start hour,
//! kept in this model's clock row, see [`crate::daily`]) of [`Measurement::time`]: a sleep
//! session on the day of its wake-up (so a night from 23:00 to 07:00 is the morning's), steps on
//! the day their window ends, a workout on the day it starts, anything else on the day of its
//! time.
//!
//! The row keeps each sample's contribution ([`Contribution`]) by sample id rather than running
//! totals, so a deleted sample is subtracted exactly — including "last weight of the day" when
//! the last one is deleted. A delete finds its row among the candidate days of the sample's time
//! (the day it was counted on is one of them whatever the user's clock was then).
//!
//! Figures of a day:
//! - sums: steps, exercise minutes, workouts (count, seconds, active kcal), sleep (sessions,
//!   seconds asleep = session minus awake stages), meals (count, kcal, protein/carbs/fat grams),
//!   water (ml);
//! - last (by sample time; ties by sample id) and mean: weight (kg), resting heart rate (bpm),
//!   mood (1–9). Means are exact decimals rounded half away from zero to 2 places.
//!
//! Averages over the last N days ending today (the user's local today): for each metric, the
//! mean of its daily figure over the days **that have data for it** (a day without a weigh-in
//! does not pull the average weight to zero); weight, heart rate and mood average the daily
//! means. Rounded to 2 places.

use std::collections::BTreeMap;

use aggregates::health::{HealthEvent, HealthLog, Measurement, Metric};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet};

/// Decimal places of means, hours and averages.
pub const ROUND_DP: u32 = 2;

/// What one sample adds to its day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum Contribution {
    /// A sleep session: seconds asleep.
    Sleep {
        /// Seconds asleep.
        seconds: u64,
    },
    /// Steps.
    Steps {
        /// How many.
        count: u64,
    },
    /// Exercise minutes.
    Exercise {
        /// How many.
        minutes: u64,
    },
    /// A workout.
    Workout {
        /// Its length.
        seconds: u64,
        /// Active kcal, if known.
        energy_kcal: Option<u64>,
    },
    /// A weigh-in.
    Weight {
        /// Kilograms.
        kg: Decimal,
        /// When.
        at: DateTime<Utc>,
    },
    /// A resting heart rate.
    RestingHeartRate {
        /// Beats per minute.
        bpm: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A meal.
    Meal {
        /// Kilocalories.
        calories: u64,
        /// Protein grams.
        protein_g: Option<Decimal>,
        /// Carbohydrate grams.
        carbs_g: Option<Decimal>,
        /// Fat grams.
        fat_g: Option<Decimal>,
    },
    /// Water.
    Water {
        /// Millilitres.
        ml: Decimal,
    },
    /// A mood score.
    Mood {
        /// 1 to 9.
        score: u8,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Contribution {
    /// What `m` adds to its day.
    pub fn of(m: &Measurement) -> Self {
        match m {
            Measurement::Sleep { .. } => Contribution::Sleep {
                seconds: m.asleep_seconds(),
            },
            Measurement::Steps { count, .. } => Contribution::Steps {
                count: u64::from(*count),
            },
            Measurement::Exercise { minutes, .. } => Contribution::Exercise {
                minutes: u64::from(*minutes),
            },
            Measurement::Workout {
                duration_seconds,
                energy_kcal,
                ..
            } => Contribution::Workout {
                seconds: u64::from(*duration_seconds),
                energy_kcal: energy_kcal.map(u64::from),
            },
            Measurement::Weight { kg, at } => Contribution::Weight { kg: *kg, at: *at },
            Measurement::RestingHeartRate { bpm, at } => {
                Contribution::RestingHeartRate { bpm: *bpm, at: *at }
            }
            Measurement::Meal {
                calories,
                protein_g,
                carbs_g,
                fat_g,
                ..
            } => Contribution::Meal {
                calories: u64::from(*calories),
                protein_g: *protein_g,
                carbs_g: *carbs_g,
                fat_g: *fat_g,
            },
            Measurement::Water { ml, .. } => Contribution::Water { ml: *ml },
            Measurement::Mood { score, at } => Contribution::Mood {
                score: *score,
                at: *at,
            },
        }
    }

    /// Its metric.
    pub fn metric(&self) -> Metric {
        match self {
            Contribution::Sleep { .. } => Metric::Sleep,
            Contribution::Steps { .. } => Metric::Steps,
            Contribution::Exercise { .. } => Metric::Exercise,
            Contribution::Workout { .. } => Metric::Workout,
            Contribution::Weight { .. } => Metric::Weight,
            Contribution::RestingHeartRate { .. } => Metric::RestingHeartRate,
            Contribution::Meal { .. } => Metric::Meal,
            Contribution::Water { .. } => Metric::Water,
            Contribution::Mood { .. } => Metric::Mood,
        }
    }
}

/// The stored row of one local day: every live sample counted on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySamples {
    /// The local day.
    pub day: NaiveDate,
    /// Each live sample's contribution, by sample id.
    pub samples: BTreeMap<Uuid, Contribution>,
}

impl DaySamples {
    /// A day without samples.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            samples: BTreeMap::new(),
        }
    }
}

/// Last and mean of a discrete metric on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// The value of the latest sample (by its time; ties by sample id).
    pub last: Decimal,
    /// The mean of the day's samples, rounded to [`ROUND_DP`] places.
    pub mean: Decimal,
    /// How many samples.
    pub count: u32,
}

impl Stat {
    /// The stat of `(time, sample id, value)` samples; None when empty.
    fn of(mut values: Vec<(DateTime<Utc>, Uuid, Decimal)>) -> Option<Self> {
        values.sort();
        let (_, _, last) = *values.last()?;
        let count = values.len() as u32;
        let sum: Decimal = values.iter().map(|(_, _, v)| *v).sum();
        Some(Self {
            last,
            mean: mean(sum, count),
            count,
        })
    }
}

/// `sum / count` rounded to [`ROUND_DP`] places (half away from zero), trailing zeros dropped.
fn mean(sum: Decimal, count: u32) -> Decimal {
    round(sum / Decimal::from(count.max(1)))
}

fn round(value: Decimal) -> Decimal {
    value
        .round_dp_with_strategy(ROUND_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Hours in `seconds`, rounded to [`ROUND_DP`] places.
pub fn hours(seconds: u64) -> Decimal {
    round(Decimal::from(seconds) / Decimal::from(3600u32))
}

/// One user's health on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayHealth {
    /// The local day.
    pub day: NaiveDate,
    /// Samples per metric (a metric absent here has no data that day).
    pub samples: BTreeMap<Metric, u32>,
    /// Steps.
    pub steps: u64,
    /// Exercise minutes.
    pub exercise_minutes: u64,
    /// Workouts.
    pub workouts: u32,
    /// Seconds of workouts.
    pub workout_seconds: u64,
    /// Active kcal of workouts.
    pub workout_energy_kcal: u64,
    /// Sleep sessions that ended this day.
    pub sleep_sessions: u32,
    /// Seconds asleep in them.
    pub sleep_seconds: u64,
    /// Weight, kg.
    pub weight_kg: Option<Stat>,
    /// Resting heart rate, bpm.
    pub resting_heart_rate_bpm: Option<Stat>,
    /// Mood, 1–9.
    pub mood: Option<Stat>,
    /// Meals.
    pub meals: u32,
    /// Kilocalories eaten.
    pub calories: u64,
    /// Protein grams (of the meals that gave them).
    pub protein_g: Decimal,
    /// Carbohydrate grams.
    pub carbs_g: Decimal,
    /// Fat grams.
    pub fat_g: Decimal,
    /// Water, ml.
    pub water_ml: Decimal,
}

impl DayHealth {
    /// The figures of `day` from its samples.
    pub fn of(day: NaiveDate, samples: &BTreeMap<Uuid, Contribution>) -> Self {
        let mut d = DayHealth {
            day,
            samples: BTreeMap::new(),
            steps: 0,
            exercise_minutes: 0,
            workouts: 0,
            workout_seconds: 0,
            workout_energy_kcal: 0,
            sleep_sessions: 0,
            sleep_seconds: 0,
            weight_kg: None,
            resting_heart_rate_bpm: None,
            mood: None,
            meals: 0,
            calories: 0,
            protein_g: Decimal::ZERO,
            carbs_g: Decimal::ZERO,
            fat_g: Decimal::ZERO,
            water_ml: Decimal::ZERO,
        };
        let (mut weights, mut rates, mut moods) = (Vec::new(), Vec::new(), Vec::new());
        for (id, c) in samples {
            *d.samples.entry(c.metric()).or_default() += 1;
            match c {
                Contribution::Sleep { seconds } => {
                    d.sleep_sessions += 1;
                    d.sleep_seconds += seconds;
                }
                Contribution::Steps { count } => d.steps += count,
                Contribution::Exercise { minutes } => d.exercise_minutes += minutes,
                Contribution::Workout {
                    seconds,
                    energy_kcal,
                } => {
                    d.workouts += 1;
                    d.workout_seconds += seconds;
                    d.workout_energy_kcal += energy_kcal.unwrap_or(0);
                }
                Contribution::Weight { kg, at } => weights.push((*at, *id, *kg)),
                Contribution::RestingHeartRate { bpm, at } => {
                    rates.push((*at, *id, Decimal::from(*bpm)))
                }
                Contribution::Mood { score, at } => moods.push((*at, *id, Decimal::from(*score))),
                Contribution::Meal {
                    calories,
                    protein_g,
                    carbs_g,
                    fat_g,
                } => {
                    d.meals += 1;
                    d.calories += calories;
                    d.protein_g += protein_g.unwrap_or_default();
                    d.carbs_g += carbs_g.unwrap_or_default();
                    d.fat_g += fat_g.unwrap_or_default();
                }
                Contribution::Water { ml } => d.water_ml += ml,
            }
        }
        d.weight_kg = Stat::of(weights);
        d.resting_heart_rate_bpm = Stat::of(rates);
        d.mood = Stat::of(moods);
        for v in [
            &mut d.protein_g,
            &mut d.carbs_g,
            &mut d.fat_g,
            &mut d.water_ml,
        ] {
            *v = v.normalize();
        }
        d
    }

    /// A day with nothing in it.
    pub fn empty(day: NaiveDate) -> Self {
        Self::of(day, &BTreeMap::new())
    }

    /// Whether `metric` has data this day.
    pub fn has(&self, metric: Metric) -> bool {
        self.samples.get(&metric).is_some_and(|n| *n > 0)
    }
}

/// One metric's average over a window of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricAverage {
    /// What is averaged, e.g. `sleep_hours`.
    pub name: &'static str,
    /// Its unit, e.g. `h`.
    pub unit: &'static str,
    /// The mean daily figure over the days with data (None when no day has any).
    pub average: Option<Decimal>,
    /// Days of the window with data for it.
    pub days_with_data: u32,
}

/// The averaged figures: name, unit, the metric whose data counts, the daily figure.
type Figure = (
    &'static str,
    &'static str,
    Metric,
    fn(&DayHealth) -> Decimal,
);

const FIGURES: [Figure; 10] = [
    ("steps", "steps", Metric::Steps, |d| Decimal::from(d.steps)),
    ("exercise_minutes", "min", Metric::Exercise, |d| {
        Decimal::from(d.exercise_minutes)
    }),
    ("workout_minutes", "min", Metric::Workout, |d| {
        Decimal::from(d.workout_seconds) / Decimal::from(60u32)
    }),
    ("workout_energy_kcal", "kcal", Metric::Workout, |d| {
        Decimal::from(d.workout_energy_kcal)
    }),
    ("sleep_hours", "h", Metric::Sleep, |d| {
        Decimal::from(d.sleep_seconds) / Decimal::from(3600u32)
    }),
    ("weight_kg", "kg", Metric::Weight, |d| {
        d.weight_kg.as_ref().map_or(Decimal::ZERO, |s| s.mean)
    }),
    (
        "resting_heart_rate_bpm",
        "bpm",
        Metric::RestingHeartRate,
        |d| {
            d.resting_heart_rate_bpm
                .as_ref()
                .map_or(Decimal::ZERO, |s| s.mean)
        },
    ),
    ("mood", "score", Metric::Mood, |d| {
        d.mood.as_ref().map_or(Decimal::ZERO, |s| s.mean)
    }),
    ("calories", "kcal", Metric::Meal, |d| {
        Decimal::from(d.calories)
    }),
    ("water_ml", "ml", Metric::Water, |d| d.water_ml),
];

/// Every metric's average over `days`: the mean of its daily figure over the days that have
/// data for it, rounded to [`ROUND_DP`] places.
///
/// ```
/// use std::collections::BTreeMap;
/// use chrono::NaiveDate;
/// use projections::health_daily::{averages, Contribution, DayHealth};
/// let day = |d, steps| {
///     let samples = BTreeMap::from([(uuid::Uuid::now_v7(), Contribution::Steps { count: steps })]);
///     DayHealth::of(NaiveDate::from_ymd_opt(2026, 3, d).unwrap(), &samples)
/// };
/// let empty = DayHealth::empty(NaiveDate::from_ymd_opt(2026, 3, 3).unwrap());
/// let avg = averages(&[day(1, 1000), day(2, 2001), empty]);
/// assert_eq!(avg[0].name, "steps");
/// assert_eq!(avg[0].average.unwrap().to_string(), "1500.5", "over the 2 days with data");
/// assert_eq!(avg[0].days_with_data, 2);
/// assert_eq!(avg[1].average, None);
/// ```
pub fn averages(days: &[DayHealth]) -> Vec<MetricAverage> {
    FIGURES
        .iter()
        .map(|(name, unit, metric, figure)| {
            let values: Vec<Decimal> = days.iter().filter(|d| d.has(*metric)).map(figure).collect();
            let count = values.len() as u32;
            MetricAverage {
                name,
                unit,
                average: (count > 0).then(|| mean(values.into_iter().sum(), count)),
                days_with_data: count,
            }
        })
        .collect()
}

/// The `health_daily` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthDaily;

impl HealthDaily {
    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &HealthDaily, user_id).await
    }

    /// Every day from `from` to `to` (both included), empty days filled in.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayHealth>, ProjectionError> {
        let day_of = |d: &DaySamples| d.day;
        let days = daily::filled_days(rows, &HealthDaily, user_id, (from, to), day_of, |day| {
            DaySamples::empty(day)
        })
        .await?;
        Ok(days
            .iter()
            .map(|d| DayHealth::of(d.day, &d.samples))
            .collect())
    }
}

/// The sample id and attribution instant of a health event.
fn sample_and_time(event: &HealthEvent) -> (Uuid, DateTime<Utc>) {
    match event {
        HealthEvent::HealthSampleLogged {
            sample_id,
            measurement,
            ..
        } => (*sample_id, measurement.time()),
        HealthEvent::HealthSampleDeleted {
            sample_id, time, ..
        } => (*sample_id, *time),
    }
}

impl Projection for HealthDaily {
    fn name(&self) -> &'static str {
        "health_daily"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[HealthLog::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        // an unreadable payload has no keys: apply() reports it
        let at_of = |event: &LoggedEvent| {
            let payload = crate::decode_payload::<HealthEvent>(event).ok()?;
            Some(sample_and_time(&payload).1)
        };
        daily::rollup_keys(event, HealthLog::TYPE, at_of, daily::instant_keys)
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, HealthLog::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let user = event
            .user_id
            .ok_or_else(|| poison("health event without a user id".to_string()))?;
        let payload: HealthEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let (sample_id, at) = sample_and_time(&payload);
        let load = |day: NaiveDate| -> Result<DaySamples, ProjectionError> {
            Ok(rows
                .get(&daily::day_key(user, day))
                .map(Row::decode)
                .transpose()?
                .unwrap_or_else(|| DaySamples::empty(day)))
        };
        let (day, samples) = match payload {
            HealthEvent::HealthSampleLogged { measurement, .. } => {
                let clock = UserClock::get(rows, user)?;
                let day = clock.loaded_day_of(at).map_err(poison)?;
                let mut samples = load(day)?;
                samples
                    .samples
                    .insert(sample_id, Contribution::of(&measurement));
                (day, samples)
            }
            HealthEvent::HealthSampleDeleted { .. } => {
                // the day it was counted on, whatever the clock was then
                let mut found = None;
                for day in daily::candidate_days(at) {
                    let samples = load(day)?;
                    if samples.samples.contains_key(&sample_id) {
                        found = Some((day, samples));
                        break;
                    }
                }
                let Some((day, mut samples)) = found else {
                    return Err(poison(format!(
                        "deleted sample {sample_id} is on none of the days around {at}"
                    )));
                };
                samples.samples.remove(&sample_id);
                (day, samples)
            }
        };
        let key = daily::day_key(user, day);
        if samples.samples.is_empty() {
            rows.delete(&key);
        } else {
            rows.put(Row::new(key, DAY_GROUP, daily::day_id(day), &samples)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::health::metric::{SleepStage, SleepStageKind};
    use aggregates::preferences::{PreferencesEvent, PreferencesPatch};
    use chrono::TimeZone;
    use cqrs_es::DomainEvent;
    use store::Position;

    const USER: Uuid = Uuid::from_u128(0xa11ce);

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A folding fixture: events go through keys() and apply() like in the runner.
    #[derive(Default)]
    struct Fold {
        rows: BTreeMap<RowKey, Row>,
        pos: i64,
    }

    impl Fold {
        fn push(&mut self, aggregate_type: &str, payload: serde_json::Value, event_type: String) {
            self.pos += 1;
            let event = LoggedEvent {
                position: Position {
                    tx: 0,
                    pos: self.pos,
                },
                event_id: Uuid::now_v7(),
                user_id: Some(USER),
                recorded_at: utc(1, 0, 0),
                aggregate_type: aggregate_type.to_string(),
                aggregate_id: format!("{USER}:manual"),
                sequence: self.pos,
                event_type,
                event_version: "1".into(),
                payload,
                metadata: serde_json::json!({}),
            };
            let keys = HealthDaily.keys(&event);
            let loaded = keys
                .iter()
                .filter_map(|k| self.rows.get(k).cloned())
                .collect();
            let mut set = RowSet::new(loaded);
            HealthDaily.apply(&event, &mut set).expect("applies");
            for (key, row) in set.into_changes() {
                assert!(keys.contains(&key), "wrote a row keys() did not name");
                match row {
                    Some(row) => self.rows.insert(key, row),
                    None => self.rows.remove(&key),
                };
            }
        }

        fn health(&mut self, event: HealthEvent) {
            let event_type = event.event_type();
            self.push(
                HealthLog::TYPE,
                serde_json::to_value(event).unwrap(),
                event_type,
            );
        }

        fn zone(&mut self, tz: &str, hour: u32) {
            let event = PreferencesEvent::PreferencesSet {
                user_id: USER,
                changes: PreferencesPatch {
                    timezone: Some(tz.into()),
                    day_start_hour: Some(hour),
                    ..PreferencesPatch::default()
                },
                at: utc(1, 0, 0),
            };
            let event_type = event.event_type();
            self.push(
                UserPreferences::TYPE,
                serde_json::to_value(event).unwrap(),
                event_type,
            );
        }

        fn log(&mut self, id: u128, m: Measurement) -> Uuid {
            let sample_id = Uuid::from_u128(id);
            self.health(HealthEvent::HealthSampleLogged {
                sample_id,
                user_id: USER,
                source: "manual".into(),
                external_id: None,
                measurement: m,
                logged_at: utc(20, 0, 0),
            });
            sample_id
        }

        fn delete(&mut self, id: u128, metric: Metric, time: DateTime<Utc>) {
            self.health(HealthEvent::HealthSampleDeleted {
                sample_id: Uuid::from_u128(id),
                user_id: USER,
                source: "manual".into(),
                external_id: None,
                metric,
                time,
                deleted_at: utc(20, 0, 0),
            });
        }

        fn day(&self, day: NaiveDate) -> DayHealth {
            match self.rows.get(&daily::day_key(USER, day)) {
                Some(row) => DayHealth::of(day, &row.decode::<DaySamples>().unwrap().samples),
                None => DayHealth::empty(day),
            }
        }
    }

    #[test]
    fn a_night_counts_on_the_local_wake_up_day() {
        let mut f = Fold::default();
        f.zone("America/New_York", 0);
        // 22:30 EST on the 1st to 06:45 EST on the 2nd, with 15 minutes awake
        let (start, end) = (utc(2, 3, 30), utc(2, 11, 45));
        f.log(
            1,
            Measurement::Sleep {
                start,
                end,
                stages: vec![SleepStage {
                    stage: SleepStageKind::Awake,
                    start: utc(2, 6, 0),
                    end: utc(2, 6, 15),
                }],
            },
        );
        let d = f.day(date(2));
        assert_eq!((d.sleep_sessions, d.sleep_seconds), (1, 8 * 3600));
        assert_eq!(hours(d.sleep_seconds).to_string(), "8");
        assert_eq!(f.day(date(1)).sleep_sessions, 0);
    }

    #[test]
    fn sums_last_and_mean_and_exact_deletes() {
        let mut f = Fold::default();
        f.log(
            1,
            Measurement::Steps {
                count: 4000,
                start: utc(3, 8, 0),
                end: utc(3, 9, 0),
            },
        );
        f.log(
            2,
            Measurement::Steps {
                count: 2500,
                start: utc(3, 17, 0),
                end: utc(3, 18, 0),
            },
        );
        f.log(
            3,
            Measurement::Weight {
                kg: dec("80.4"),
                at: utc(3, 7, 0),
            },
        );
        f.log(
            4,
            Measurement::Weight {
                kg: dec("81.1"),
                at: utc(3, 21, 0),
            },
        );
        f.log(
            5,
            Measurement::Weight {
                kg: dec("80.9"),
                at: utc(3, 12, 0),
            },
        );
        f.log(
            6,
            Measurement::Water {
                ml: dec("473.176473"),
                at: utc(3, 10, 0),
            },
        );
        let d = f.day(date(3));
        assert_eq!(d.steps, 6500);
        let w = d.weight_kg.clone().unwrap();
        assert_eq!((w.last, w.mean, w.count), (dec("81.1"), dec("80.8"), 3));
        assert_eq!(d.water_ml, dec("473.176473"));

        // deleting the last weigh-in and a steps sample subtracts them exactly
        f.delete(4, Metric::Weight, utc(3, 21, 0));
        f.delete(1, Metric::Steps, utc(3, 9, 0));
        let d = f.day(date(3));
        assert_eq!(d.steps, 2500);
        let w = d.weight_kg.unwrap();
        assert_eq!((w.last, w.mean, w.count), (dec("80.9"), dec("80.65"), 2));
        // the last sample of a day removes its row
        for (id, metric, at) in [
            (2, Metric::Steps, utc(3, 18, 0)),
            (3, Metric::Weight, utc(3, 7, 0)),
            (5, Metric::Weight, utc(3, 12, 0)),
            (6, Metric::Water, utc(3, 10, 0)),
        ] {
            f.delete(id, metric, at);
        }
        assert!(
            f.rows.is_empty(),
            "no clock row was set, no day is left: {:?}",
            f.rows
        );
        assert_eq!(f.day(date(3)), DayHealth::empty(date(3)));
    }

    #[test]
    fn a_delete_finds_its_day_after_the_zone_changed() {
        let mut f = Fold::default();
        f.zone("Pacific/Kiritimati", 0); // UTC+14: 2026-03-03 20:00 UTC is the 4th there
        f.log(
            1,
            Measurement::Mood {
                score: 7,
                at: utc(3, 20, 0),
            },
        );
        assert!(f.day(date(4)).has(Metric::Mood));
        f.zone("UTC", 0);
        f.delete(1, Metric::Mood, utc(3, 20, 0));
        assert!(!f.day(date(4)).has(Metric::Mood));
        assert!(!f.day(date(3)).has(Metric::Mood));
    }

    #[test]
    fn meals_workouts_and_averages() {
        let mut f = Fold::default();
        f.log(
            1,
            Measurement::Meal {
                name: "lunch".into(),
                calories: 650,
                protein_g: Some(dec("30.5")),
                carbs_g: None,
                fat_g: Some(dec("20")),
                at: utc(5, 12, 0),
            },
        );
        f.log(
            2,
            Measurement::Workout {
                kind: "run".into(),
                start: utc(5, 18, 0),
                duration_seconds: 1800,
                energy_kcal: Some(300),
            },
        );
        f.log(
            3,
            Measurement::Mood {
                score: 6,
                at: utc(5, 9, 0),
            },
        );
        f.log(
            4,
            Measurement::Mood {
                score: 9,
                at: utc(6, 9, 0),
            },
        );
        let days = [f.day(date(5)), f.day(date(6)), f.day(date(7))];
        assert_eq!((days[0].meals, days[0].calories), (1, 650));
        assert_eq!((days[0].protein_g, days[0].fat_g), (dec("30.5"), dec("20")));
        assert_eq!((days[0].workouts, days[0].workout_seconds), (1, 1800));
        let avg = averages(&days);
        let of = |name: &str| avg.iter().find(|a| a.name == name).unwrap().clone();
        assert_eq!(of("mood").average, Some(dec("7.5")));
        assert_eq!(of("mood").days_with_data, 2);
        assert_eq!(of("workout_minutes").average, Some(dec("30")));
        assert_eq!(of("calories").average, Some(dec("650")));
        assert_eq!(of("weight_kg").average, None);
        assert_eq!(of("weight_kg").days_with_data, 0);
    }
}
