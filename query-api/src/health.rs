//! `lifeos.v1.HealthQueries`: the health_samples and health_daily read models over gRPC.
//!
//! ListSamples reads `health_samples` (and waits on its consistency); GetDailyRollup and
//! GetAverages read `health_daily`, whose rows are per local day of the user's clock
//! (preferences time zone and day start hour) as that model knows it. The 7/30-day averages are
//! computed at query time over the days ending at the caller's local today
//! ([`projections::health_daily::averages`]: over the days that have data).

use aggregates::health::metric::SleepStageKind;
use aggregates::health::{Measurement, Metric};
use api_common::Caller;
use api_common::time::to_timestamp;
use chrono::{Duration, NaiveDate, Utc};
use projections::ReadModels;
use projections::daily::{UserClock, day_id};
use projections::health_daily::{DayHealth, HealthDaily, Stat, averages, hours};
use projections::health_samples::{HealthSamples, SampleView};
use proto::v1::health_queries_server::HealthQueries;
use proto::v1::health_sample::Measurement as Wire;
use proto::v1::{
    GetHealthAveragesRequest, GetHealthDailyRollupRequest, HealthAverageWindow, HealthAverages,
    HealthDailyRollup, HealthDay, HealthExercise, HealthMeal, HealthMetricAverage, HealthMood,
    HealthRestingHeartRate, HealthSample, HealthSleep, HealthSleepStage, HealthSleepStageSpan,
    HealthStat, HealthSteps, HealthWater, HealthWeight, HealthWorkout, ListHealthSamplesRequest,
    ListHealthSamplesResponse,
};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::ReadYourWrites;
use crate::fields::{
    bounded, clock_and_days, decode_cursor, encode_cursor, read_error, rollup_range,
};

/// Default page size of ListSamples.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size of ListSamples.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The averaging windows of GetAverages, in days ending today.
pub const AVERAGE_WINDOWS: [u32; 2] = [7, 30];

/// The Health query service.
#[derive(Clone)]
pub struct HealthQueryService {
    models: ReadModels,
    samples: ReadYourWrites,
    daily: ReadYourWrites,
}

impl HealthQueryService {
    /// Answers from `models`, waiting on `samples` (health_samples) or `daily` (health_daily)
    /// for consistency tokens.
    pub fn new(models: ReadModels, samples: ReadYourWrites, daily: ReadYourWrites) -> Self {
        Self {
            models,
            samples,
            daily,
        }
    }

    /// The caller's clock as health_daily knows it, and its local today.
    async fn today(&self, user: Uuid) -> Result<(UserClock, NaiveDate), Status> {
        let clock = HealthDaily::clock(&self.models, user)
            .await
            .map_err(read_error)?;
        let today = clock.day_of(Utc::now());
        Ok((clock, today))
    }
}

fn sample_to_proto(v: SampleView) -> HealthSample {
    let measurement = match v.measurement {
        Measurement::Sleep { start, end, stages } => Wire::Sleep(HealthSleep {
            start: Some(to_timestamp(start)),
            end: Some(to_timestamp(end)),
            stages: stages
                .into_iter()
                .map(|s| HealthSleepStageSpan {
                    stage: match s.stage {
                        SleepStageKind::Awake => HealthSleepStage::Awake,
                        SleepStageKind::Light => HealthSleepStage::Light,
                        SleepStageKind::Deep => HealthSleepStage::Deep,
                        SleepStageKind::Rem => HealthSleepStage::Rem,
                    } as i32,
                    start: Some(to_timestamp(s.start)),
                    end: Some(to_timestamp(s.end)),
                })
                .collect(),
        }),
        Measurement::Steps { count, start, end } => Wire::Steps(HealthSteps {
            count: i64::from(count),
            start: Some(to_timestamp(start)),
            end: Some(to_timestamp(end)),
        }),
        Measurement::Exercise { minutes, at } => Wire::Exercise(HealthExercise {
            minutes: i64::from(minutes),
            at: Some(to_timestamp(at)),
        }),
        Measurement::Workout {
            kind,
            start,
            duration_seconds,
            energy_kcal,
        } => Wire::Workout(HealthWorkout {
            kind,
            start: Some(to_timestamp(start)),
            duration_seconds: i64::from(duration_seconds),
            energy_kcal: energy_kcal.map(i64::from),
        }),
        Measurement::Weight { kg, at } => Wire::Weight(HealthWeight {
            value: kg.to_string(),
            unit: "kg".to_string(),
            at: Some(to_timestamp(at)),
        }),
        Measurement::RestingHeartRate { bpm, at } => {
            Wire::RestingHeartRate(HealthRestingHeartRate {
                bpm: i64::from(bpm),
                at: Some(to_timestamp(at)),
            })
        }
        Measurement::Meal {
            name,
            calories,
            protein_g,
            carbs_g,
            fat_g,
            at,
        } => Wire::Meal(HealthMeal {
            name,
            calories: i64::from(calories),
            protein_g: optional(protein_g),
            carbs_g: optional(carbs_g),
            fat_g: optional(fat_g),
            at: Some(to_timestamp(at)),
        }),
        Measurement::Water { ml, at } => Wire::Water(HealthWater {
            value: ml.to_string(),
            unit: "ml".to_string(),
            at: Some(to_timestamp(at)),
        }),
        Measurement::Mood { score, at } => Wire::Mood(HealthMood {
            score: i64::from(score),
            at: Some(to_timestamp(at)),
        }),
    };
    HealthSample {
        sample_id: v.sample_id.to_string(),
        source: v.source,
        external_id: v.external_id.unwrap_or_default(),
        metric: v.metric.as_str().to_string(),
        time: Some(to_timestamp(v.time)),
        logged_at: Some(to_timestamp(v.logged_at)),
        measurement: Some(measurement),
    }
}

fn optional(value: Option<Decimal>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn stat_to_proto(s: Option<Stat>) -> Option<HealthStat> {
    s.map(|s| HealthStat {
        last: s.last.to_string(),
        mean: s.mean.to_string(),
        count: s.count,
    })
}

fn day_to_proto(d: DayHealth) -> HealthDay {
    HealthDay {
        day: day_id(d.day),
        steps: d.steps,
        exercise_minutes: d.exercise_minutes,
        workouts: d.workouts,
        workout_seconds: d.workout_seconds,
        workout_energy_kcal: d.workout_energy_kcal,
        sleep_sessions: d.sleep_sessions,
        sleep_seconds: d.sleep_seconds,
        sleep_hours: hours(d.sleep_seconds).to_string(),
        weight_kg: stat_to_proto(d.weight_kg),
        resting_heart_rate_bpm: stat_to_proto(d.resting_heart_rate_bpm),
        mood: stat_to_proto(d.mood),
        meals: d.meals,
        calories: d.calories,
        protein_g: d.protein_g.to_string(),
        carbs_g: d.carbs_g.to_string(),
        fat_g: d.fat_g.to_string(),
        water_ml: d.water_ml.to_string(),
    }
}

#[tonic::async_trait]
impl HealthQueries for HealthQueryService {
    async fn list_samples(
        &self,
        request: Request<ListHealthSamplesRequest>,
    ) -> Result<Response<ListHealthSamplesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let metric = (!r.metric.is_empty())
            .then(|| r.metric.parse::<Metric>())
            .transpose()
            .map_err(api_common::status::domain_status)?;
        let page_size = bounded("page_size", r.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = decode_cursor(&r.page_token, "ListSamples")?;
        self.samples.wait(&r.consistency_token).await?;
        let (samples, next) = HealthSamples::list(
            &self.models,
            caller.user_id,
            metric,
            cursor.as_ref(),
            page_size,
        )
        .await
        .map_err(read_error)?;
        Ok(Response::new(ListHealthSamplesResponse {
            samples: samples.into_iter().map(sample_to_proto).collect(),
            next_page_token: next.as_ref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn get_daily_rollup(
        &self,
        request: Request<GetHealthDailyRollupRequest>,
    ) -> Result<Response<HealthDailyRollup>, Status> {
        let (caller, from, to) = rollup_range(&request, &self.daily).await?;
        let user = caller.user_id;
        let (clock, days) = clock_and_days(
            HealthDaily::clock(&self.models, user),
            HealthDaily::days(&self.models, user, from, to),
        )
        .await?;
        Ok(Response::new(HealthDailyRollup {
            days: days.into_iter().map(day_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }

    async fn get_averages(
        &self,
        request: Request<GetHealthAveragesRequest>,
    ) -> Result<Response<HealthAverages>, Status> {
        let caller = Caller::of(&request)?;
        self.daily
            .wait(&request.get_ref().consistency_token)
            .await?;
        let (clock, today) = self.today(caller.user_id).await?;
        let longest = AVERAGE_WINDOWS.iter().copied().max().unwrap_or(1);
        let first = today - Duration::days(i64::from(longest) - 1);
        let days = HealthDaily::days(&self.models, caller.user_id, first, today)
            .await
            .map_err(read_error)?;
        let window = |n: u32| {
            let from = today - Duration::days(i64::from(n) - 1);
            let in_window: Vec<DayHealth> =
                days.iter().filter(|d| d.day >= from).cloned().collect();
            HealthAverageWindow {
                days: n,
                from_day: day_id(from),
                to_day: day_id(today),
                metrics: averages(&in_window)
                    .into_iter()
                    .map(|a| HealthMetricAverage {
                        name: a.name.to_string(),
                        unit: a.unit.to_string(),
                        average: a.average.map(|v| v.to_string()).unwrap_or_default(),
                        days_with_data: a.days_with_data,
                    })
                    .collect(),
            }
        };
        Ok(Response::new(HealthAverages {
            today: day_id(today),
            timezone: clock.timezone.clone(),
            day_start_hour: clock.day_start_hour,
            last_7_days: Some(window(AVERAGE_WINDOWS[0])),
            last_30_days: Some(window(AVERAGE_WINDOWS[1])),
        }))
    }
}
