//! What a health sample measures, in canonical units, and the rules every value must pass.
//!
//! Canonical units: kilograms (weight), millilitres (water), whole kilocalories, grams (macros),
//! beats per minute, whole steps and minutes, seconds (workout duration). Weight and water
//! arrive with a unit ([`WeightUnit`], [`VolumeUnit`]) and are converted **exactly** with
//! [`Decimal`] arithmetic (1 lb = 0.45359237 kg, 1 US fl oz = 29.5735295625 ml): no float is
//! stored or sent anywhere.
//!
//! Validation errors name the field as the request spells it, as a path:
//! `<metric>.<field>` (e.g. `steps.count`, `sleep.end`, `weight.unit`).

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Most steps one sample may count.
pub const MAX_STEPS: u32 = 200_000;
/// Lightest plausible body weight, kg.
pub const MIN_WEIGHT_KG: Decimal = Decimal::ONE;
/// Heaviest plausible body weight, kg.
pub const MAX_WEIGHT_KG: Decimal = Decimal::from_parts(700, 0, 0, false, 0);
/// Plausible resting heart rates, beats per minute.
pub const BPM_RANGE: std::ops::RangeInclusive<u32> = 20..=250;
/// Most kilocalories one meal (or one workout) may have.
pub const MAX_KCAL: u32 = 20_000;
/// Most grams of one macronutrient in one meal.
pub const MAX_MACRO_G: Decimal = Decimal::from_parts(5_000, 0, 0, false, 0);
/// Most millilitres one water sample may have (20 l).
pub const MAX_WATER_ML: Decimal = Decimal::from_parts(20_000, 0, 0, false, 0);
/// Most minutes of exercise in one sample (a day).
pub const MAX_EXERCISE_MINUTES: u32 = 1_440;
/// Longest workout, in seconds (a day).
pub const MAX_WORKOUT_SECONDS: u32 = 86_400;
/// Mood scores: 1 (worst) to 9 (best).
pub const MOOD_RANGE: std::ops::RangeInclusive<u8> = 1..=9;
/// Longest sleep session and longest steps window: 24 hours.
pub const MAX_SPAN: Duration = Duration::hours(24);
/// How far after the command a sample's time may lie (clock skew between devices).
pub const FUTURE_SLACK: Duration = Duration::hours(1);
/// Longest meal name or workout kind, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 200;

/// Kilograms in one avoirdupois pound (exact, by definition).
pub const KG_PER_LB: Decimal = Decimal::from_parts(45_359_237, 0, 0, false, 8);
/// Millilitres in one US fluid ounce (exact, by definition).
pub const ML_PER_FL_OZ: Decimal = Decimal::from_parts(3_677_519_497, 68, 0, false, 10);

/// The kinds of measurement, as named in events, filters and rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A sleep session.
    Sleep,
    /// Steps walked in a window.
    Steps,
    /// Minutes of exercise.
    Exercise,
    /// A workout.
    Workout,
    /// Body weight.
    Weight,
    /// Resting heart rate.
    RestingHeartRate,
    /// A meal.
    Meal,
    /// Water drunk.
    Water,
    /// Mood score.
    Mood,
}

impl Metric {
    /// Every metric, in wire order.
    pub const ALL: [Metric; 9] = [
        Metric::Sleep,
        Metric::Steps,
        Metric::Exercise,
        Metric::Workout,
        Metric::Weight,
        Metric::RestingHeartRate,
        Metric::Meal,
        Metric::Water,
        Metric::Mood,
    ];

    /// The name used in events and filters, e.g. `resting_heart_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Sleep => "sleep",
            Metric::Steps => "steps",
            Metric::Exercise => "exercise",
            Metric::Workout => "workout",
            Metric::Weight => "weight",
            Metric::RestingHeartRate => "resting_heart_rate",
            Metric::Meal => "meal",
            Metric::Water => "water",
            Metric::Mood => "mood",
        }
    }
}

impl FromStr for Metric {
    type Err = DomainError;

    /// Parses a metric name; anything else is an invalid `metric`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
                DomainError::invalid(
                    "metric",
                    format!("must be one of {}, got {s:?}", known.join(", ")),
                )
            })
    }
}

/// A weight unit accepted on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightUnit {
    /// Kilograms (canonical; the default).
    Kg,
    /// Avoirdupois pounds.
    Lb,
}

impl WeightUnit {
    /// `kg` (or empty: the default) or `lb`; anything else is an invalid `weight.unit`.
    pub fn parse(unit: &str) -> Result<Self, DomainError> {
        match unit {
            "" | "kg" => Ok(WeightUnit::Kg),
            "lb" => Ok(WeightUnit::Lb),
            other => Err(DomainError::invalid(
                "weight.unit",
                format!("must be kg or lb, got {other:?}"),
            )),
        }
    }

    /// `value` in this unit as exact kilograms.
    ///
    /// ```
    /// use aggregates::health::metric::WeightUnit;
    /// let kg = WeightUnit::Lb.to_kg("180".parse().unwrap()).unwrap();
    /// assert_eq!(kg.to_string(), "81.6466266");
    /// ```
    pub fn to_kg(self, value: Decimal) -> Result<Decimal, DomainError> {
        convert(value, self.factor(), "weight.value")
    }

    fn factor(self) -> Decimal {
        match self {
            WeightUnit::Kg => Decimal::ONE,
            WeightUnit::Lb => KG_PER_LB,
        }
    }
}

/// A volume unit accepted on the wire (water).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeUnit {
    /// Millilitres (canonical; the default).
    Ml,
    /// Litres.
    L,
    /// US fluid ounces.
    FlOz,
}

impl VolumeUnit {
    /// `ml` (or empty: the default), `l` or `fl_oz`; anything else is an invalid `water.unit`.
    pub fn parse(unit: &str) -> Result<Self, DomainError> {
        match unit {
            "" | "ml" => Ok(VolumeUnit::Ml),
            "l" => Ok(VolumeUnit::L),
            "fl_oz" => Ok(VolumeUnit::FlOz),
            other => Err(DomainError::invalid(
                "water.unit",
                format!("must be ml, l or fl_oz, got {other:?}"),
            )),
        }
    }

    /// `value` in this unit as exact millilitres.
    ///
    /// ```
    /// use aggregates::health::metric::VolumeUnit;
    /// let ml = VolumeUnit::FlOz.to_ml("8".parse().unwrap()).unwrap();
    /// assert_eq!(ml.to_string(), "236.5882365");
    /// ```
    pub fn to_ml(self, value: Decimal) -> Result<Decimal, DomainError> {
        convert(value, self.factor(), "water.value")
    }

    fn factor(self) -> Decimal {
        match self {
            VolumeUnit::Ml => Decimal::ONE,
            VolumeUnit::L => Decimal::ONE_THOUSAND,
            VolumeUnit::FlOz => ML_PER_FL_OZ,
        }
    }
}

fn convert(value: Decimal, factor: Decimal, field: &'static str) -> Result<Decimal, DomainError> {
    value
        .checked_mul(factor)
        .map(|v| v.normalize())
        .ok_or_else(|| DomainError::invalid(field, "is out of range"))
}

/// Parses a decimal number written on the wire (`80.5`, `-3`; no exponent, no rounding);
/// an error names `field`.
///
/// ```
/// use aggregates::health::metric::parse_decimal;
/// assert_eq!(parse_decimal("weight.value", "80.50").unwrap().to_string(), "80.50");
/// assert!(parse_decimal("weight.value", "eighty").is_err());
/// ```
pub fn parse_decimal(field: &'static str, text: &str) -> Result<Decimal, DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::invalid(
            field,
            "is required (a decimal number)",
        ));
    }
    Decimal::from_str_exact(text.trim())
        .map_err(|_| DomainError::invalid(field, format!("must be a decimal number, got {text:?}")))
}

/// A sleep stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SleepStageKind {
    /// Awake in bed (not counted as asleep).
    Awake,
    /// Light (core) sleep.
    Light,
    /// Deep sleep.
    Deep,
    /// REM sleep.
    Rem,
}

/// One stage of a sleep session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepStage {
    /// Which stage.
    pub stage: SleepStageKind,
    /// When it began.
    pub start: DateTime<Utc>,
    /// When it ended (after `start`).
    pub end: DateTime<Utc>,
}

/// One measurement, in canonical units. Serialized with a `metric` tag
/// (`{"metric": "steps", "count": 1200, ...}`); decimals as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum Measurement {
    /// A night (or a nap): hours asleep count on the local day of `end` (the wake-up).
    Sleep {
        /// Into bed / asleep.
        start: DateTime<Utc>,
        /// Woke up (after `start`, at most 24 h later).
        end: DateTime<Utc>,
        /// Stages, if the source knows them (inside the window, not overlapping); awake
        /// stages are not counted as asleep.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stages: Vec<SleepStage>,
    },
    /// Steps walked from `start` to `end` (counted on the local day of `end`).
    Steps {
        /// 0 to [`MAX_STEPS`].
        count: u32,
        /// Window start.
        start: DateTime<Utc>,
        /// Window end (not before `start`, at most 24 h later).
        end: DateTime<Utc>,
    },
    /// Minutes of exercise.
    Exercise {
        /// 0 to [`MAX_EXERCISE_MINUTES`].
        minutes: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A workout (counted on the local day of its start).
    Workout {
        /// What kind, free text (e.g. `running`), trimmed, 1 to [`MAX_NAME_CHARS`].
        kind: String,
        /// When it began.
        start: DateTime<Utc>,
        /// How long, 1 to [`MAX_WORKOUT_SECONDS`] seconds.
        duration_seconds: u32,
        /// Active energy, 0 to [`MAX_KCAL`] kcal, if known.
        energy_kcal: Option<u32>,
    },
    /// Body weight.
    Weight {
        /// Kilograms, [`MIN_WEIGHT_KG`] to [`MAX_WEIGHT_KG`].
        kg: Decimal,
        /// When weighed.
        at: DateTime<Utc>,
    },
    /// Resting heart rate.
    RestingHeartRate {
        /// Beats per minute, in [`BPM_RANGE`].
        bpm: u32,
        /// When measured.
        at: DateTime<Utc>,
    },
    /// A meal.
    Meal {
        /// What, trimmed, 1 to [`MAX_NAME_CHARS`].
        name: String,
        /// 0 to [`MAX_KCAL`] kcal.
        calories: u32,
        /// Protein grams, 0 to [`MAX_MACRO_G`], if known.
        protein_g: Option<Decimal>,
        /// Carbohydrate grams, if known.
        carbs_g: Option<Decimal>,
        /// Fat grams, if known.
        fat_g: Option<Decimal>,
        /// When eaten.
        at: DateTime<Utc>,
    },
    /// Water drunk.
    Water {
        /// Millilitres, more than 0 and at most [`MAX_WATER_ML`].
        ml: Decimal,
        /// When.
        at: DateTime<Utc>,
    },
    /// Mood.
    Mood {
        /// 1 (worst) to 9 (best).
        score: u8,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Measurement {
    /// Which metric it is.
    pub fn metric(&self) -> Metric {
        match self {
            Measurement::Sleep { .. } => Metric::Sleep,
            Measurement::Steps { .. } => Metric::Steps,
            Measurement::Exercise { .. } => Metric::Exercise,
            Measurement::Workout { .. } => Metric::Workout,
            Measurement::Weight { .. } => Metric::Weight,
            Measurement::RestingHeartRate { .. } => Metric::RestingHeartRate,
            Measurement::Meal { .. } => Metric::Meal,
            Measurement::Water { .. } => Metric::Water,
            Measurement::Mood { .. } => Metric::Mood,
        }
    }

    /// The instant the sample is attributed to (its local day is where rollups count it): the
    /// wake-up for sleep, the window end for steps, the start of a workout, else its time.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Measurement::Sleep { end, .. } | Measurement::Steps { end, .. } => *end,
            Measurement::Workout { start, .. } => *start,
            Measurement::Exercise { at, .. }
            | Measurement::Weight { at, .. }
            | Measurement::RestingHeartRate { at, .. }
            | Measurement::Meal { at, .. }
            | Measurement::Water { at, .. }
            | Measurement::Mood { at, .. } => *at,
        }
    }

    /// Seconds asleep of a sleep session: `end − start` minus its awake stages (0 for other
    /// metrics).
    ///
    /// ```
    /// use aggregates::health::metric::{Measurement, SleepStage, SleepStageKind};
    /// use chrono::{Duration, TimeZone, Utc};
    /// let start = Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap();
    /// let end = start + Duration::hours(8);
    /// let awake = SleepStage { stage: SleepStageKind::Awake, start: start + Duration::hours(3),
    ///     end: start + Duration::hours(3) + Duration::minutes(30) };
    /// let sleep = Measurement::Sleep { start, end, stages: vec![awake] };
    /// assert_eq!(sleep.asleep_seconds(), 7 * 3600 + 1800);
    /// ```
    pub fn asleep_seconds(&self) -> u64 {
        let Measurement::Sleep { start, end, stages } = self else {
            return 0;
        };
        let awake: i64 = stages
            .iter()
            .filter(|s| s.stage == SleepStageKind::Awake)
            .map(|s| (s.end - s.start).num_seconds())
            .sum();
        ((*end - *start).num_seconds() - awake).max(0) as u64
    }

    /// Checks every rule of the measurement (ranges, windows, names), trims names, and
    /// returns it ready to record. `now` is the command's time: no sample may lie more than
    /// [`FUTURE_SLACK`] after it.
    pub fn validated(self, now: DateTime<Utc>) -> Result<Self, DomainError> {
        let not_future = |field: &'static str, t: DateTime<Utc>| {
            if t > now + FUTURE_SLACK {
                Err(DomainError::invalid(field, format!("{t} is in the future")))
            } else {
                Ok(())
            }
        };
        match self {
            Measurement::Sleep { start, end, stages } => {
                if end <= start {
                    return Err(DomainError::invalid(
                        "sleep.end",
                        "must be after sleep.start",
                    ));
                }
                if end - start > MAX_SPAN {
                    return Err(DomainError::invalid(
                        "sleep.end",
                        "a sleep session lasts at most 24 hours",
                    ));
                }
                not_future("sleep.end", end)?;
                let mut sorted = stages.clone();
                sorted.sort_by_key(|s| s.start);
                for s in &sorted {
                    if s.end <= s.start {
                        return Err(DomainError::invalid(
                            "sleep.stages",
                            format!(
                                "a stage must end after it starts ({} .. {})",
                                s.start, s.end
                            ),
                        ));
                    }
                    if s.start < start || s.end > end {
                        return Err(DomainError::invalid(
                            "sleep.stages",
                            "every stage must lie inside the sleep session",
                        ));
                    }
                }
                if sorted.windows(2).any(|w| w[1].start < w[0].end) {
                    return Err(DomainError::invalid(
                        "sleep.stages",
                        "stages must not overlap",
                    ));
                }
                Ok(Measurement::Sleep {
                    start,
                    end,
                    stages: sorted,
                })
            }
            Measurement::Steps { count, start, end } => {
                if count > MAX_STEPS {
                    return Err(DomainError::invalid(
                        "steps.count",
                        format!("must be 0 to {MAX_STEPS} per sample, got {count}"),
                    ));
                }
                if end < start {
                    return Err(DomainError::invalid(
                        "steps.end",
                        "must not be before steps.start",
                    ));
                }
                if end - start > MAX_SPAN {
                    return Err(DomainError::invalid(
                        "steps.end",
                        "a steps window lasts at most 24 hours",
                    ));
                }
                not_future("steps.end", end)?;
                Ok(Measurement::Steps { count, start, end })
            }
            Measurement::Exercise { minutes, at } => {
                if minutes > MAX_EXERCISE_MINUTES {
                    return Err(DomainError::invalid(
                        "exercise.minutes",
                        format!("must be 0 to {MAX_EXERCISE_MINUTES}, got {minutes}"),
                    ));
                }
                not_future("exercise.at", at)?;
                Ok(Measurement::Exercise { minutes, at })
            }
            Measurement::Workout {
                kind,
                start,
                duration_seconds,
                energy_kcal,
            } => {
                let kind = name("workout.kind", &kind)?;
                if !(1..=MAX_WORKOUT_SECONDS).contains(&duration_seconds) {
                    return Err(DomainError::invalid(
                        "workout.duration_seconds",
                        format!("must be 1 to {MAX_WORKOUT_SECONDS}, got {duration_seconds}"),
                    ));
                }
                if let Some(kcal) = energy_kcal
                    && kcal > MAX_KCAL
                {
                    return Err(DomainError::invalid(
                        "workout.energy_kcal",
                        format!("must be 0 to {MAX_KCAL}, got {kcal}"),
                    ));
                }
                not_future("workout.start", start)?;
                Ok(Measurement::Workout {
                    kind,
                    start,
                    duration_seconds,
                    energy_kcal,
                })
            }
            Measurement::Weight { kg, at } => {
                if kg < MIN_WEIGHT_KG || kg > MAX_WEIGHT_KG {
                    return Err(DomainError::invalid(
                        "weight.value",
                        format!("must be {MIN_WEIGHT_KG} to {MAX_WEIGHT_KG} kg, got {kg} kg"),
                    ));
                }
                not_future("weight.at", at)?;
                Ok(Measurement::Weight {
                    kg: kg.normalize(),
                    at,
                })
            }
            Measurement::RestingHeartRate { bpm, at } => {
                if !BPM_RANGE.contains(&bpm) {
                    return Err(DomainError::invalid(
                        "resting_heart_rate.bpm",
                        format!(
                            "must be {} to {} bpm, got {bpm}",
                            BPM_RANGE.start(),
                            BPM_RANGE.end()
                        ),
                    ));
                }
                not_future("resting_heart_rate.at", at)?;
                Ok(Measurement::RestingHeartRate { bpm, at })
            }
            Measurement::Meal {
                name: meal,
                calories,
                protein_g,
                carbs_g,
                fat_g,
                at,
            } => {
                let meal = name("meal.name", &meal)?;
                if calories > MAX_KCAL {
                    return Err(DomainError::invalid(
                        "meal.calories",
                        format!("must be 0 to {MAX_KCAL} kcal, got {calories}"),
                    ));
                }
                let protein_g = grams("meal.protein_g", protein_g)?;
                let carbs_g = grams("meal.carbs_g", carbs_g)?;
                let fat_g = grams("meal.fat_g", fat_g)?;
                not_future("meal.at", at)?;
                Ok(Measurement::Meal {
                    name: meal,
                    calories,
                    protein_g,
                    carbs_g,
                    fat_g,
                    at,
                })
            }
            Measurement::Water { ml, at } => {
                if ml <= Decimal::ZERO || ml > MAX_WATER_ML {
                    return Err(DomainError::invalid(
                        "water.value",
                        format!("must be more than 0 and at most {MAX_WATER_ML} ml, got {ml} ml"),
                    ));
                }
                not_future("water.at", at)?;
                Ok(Measurement::Water {
                    ml: ml.normalize(),
                    at,
                })
            }
            Measurement::Mood { score, at } => {
                if !MOOD_RANGE.contains(&score) {
                    return Err(DomainError::invalid(
                        "mood.score",
                        format!("must be 1 to 9, got {score}"),
                    ));
                }
                not_future("mood.at", at)?;
                Ok(Measurement::Mood { score, at })
            }
        }
    }
}

/// A trimmed name of 1 to [`MAX_NAME_CHARS`] characters.
fn name(field: &'static str, text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    let len = text.chars().count();
    if len == 0 || len > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, got {len}"),
        ));
    }
    Ok(text.to_string())
}

/// Optional grams of a macronutrient, 0 to [`MAX_MACRO_G`].
fn grams(field: &'static str, value: Option<Decimal>) -> Result<Option<Decimal>, DomainError> {
    match value {
        Some(g) if g < Decimal::ZERO || g > MAX_MACRO_G => Err(DomainError::invalid(
            field,
            format!("must be 0 to {MAX_MACRO_G} g, got {g}"),
        )),
        other => Ok(other.map(|g| g.normalize())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn weight_units_convert_exactly() {
        assert_eq!(WeightUnit::parse("").unwrap(), WeightUnit::Kg);
        assert_eq!(WeightUnit::Kg.to_kg(dec("80.50")).unwrap(), dec("80.5"));
        assert_eq!(WeightUnit::Lb.to_kg(dec("1")).unwrap(), dec("0.45359237"));
        assert_eq!(WeightUnit::Lb.to_kg(dec("180")).unwrap(), dec("81.6466266"));
        assert_eq!(
            WeightUnit::Lb.to_kg(dec("154.5")).unwrap().to_string(),
            "70.080021165"
        );
        let err = WeightUnit::parse("stone").unwrap_err();
        assert!(
            matches!(
                err,
                DomainError::Invalid {
                    field: "weight.unit",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(WeightUnit::parse("KG").is_err(), "units are lowercase");
    }

    #[test]
    fn volume_units_convert_exactly() {
        assert_eq!(VolumeUnit::L.to_ml(dec("1.5")).unwrap(), dec("1500"));
        assert_eq!(VolumeUnit::Ml.to_ml(dec("250")).unwrap(), dec("250"));
        assert_eq!(
            VolumeUnit::FlOz.to_ml(dec("1")).unwrap(),
            dec("29.5735295625")
        );
        assert_eq!(
            VolumeUnit::FlOz.to_ml(dec("16")).unwrap().to_string(),
            "473.176473"
        );
        let err = VolumeUnit::parse("cup").unwrap_err();
        assert!(
            matches!(
                err,
                DomainError::Invalid {
                    field: "water.unit",
                    ..
                }
            ),
            "{err:?}"
        );
        let huge = Decimal::MAX;
        assert!(matches!(
            VolumeUnit::L.to_ml(huge),
            Err(DomainError::Invalid {
                field: "water.value",
                ..
            })
        ));
    }

    #[test]
    fn decimals_parse_exactly_or_name_the_field() {
        assert_eq!(parse_decimal("water.value", " 250 ").unwrap(), dec("250"));
        for bad in ["", "1e3", "NaN", "1,5", "0x10"] {
            let err = parse_decimal("water.value", bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    DomainError::Invalid {
                        field: "water.value",
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), m);
        }
        assert!("blood_sugar".parse::<Metric>().is_err());
    }
}
