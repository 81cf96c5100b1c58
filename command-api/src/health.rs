//! `lifeos.v1.HealthCommands`: requests of the Health pillar mapped to [`HealthCommand`]s on the
//! caller's [`HealthLog`] of the request's source (aggregate id `<user id>:<source>`, see
//! `aggregates::health` for why).
//!
//! The service checks the wire shapes — timestamps, integer signs, decimal strings, units
//! (converted exactly to kg and ml by `aggregates::health::metric`) — naming each field as a
//! path (`steps.count`, `weight.unit`); the ranges and windows are the aggregate's rules. It
//! draws the sample id (UUID v7).

use aggregates::health::metric::{
    SleepStage, SleepStageKind, VolumeUnit, WeightUnit, parse_decimal,
};
use aggregates::health::{
    HealthCommand, HealthEvent, HealthLog, LogSample, MANUAL, Measurement, log_id, validate_source,
};
use api_common::status::domain_status;
use api_common::time::from_timestamp;
use api_common::{invalid_argument, parse_uuid_field};
use chrono::{DateTime, Utc};
use proto::v1::health_commands_server::HealthCommands;
use proto::v1::log_health_sample_request::Measurement as Wire;
use proto::v1::{
    CommandAck, DeleteHealthSampleRequest, HealthSleepStage, LogHealthSampleRequest,
    LogHealthSampleResponse,
};
use rust_decimal::Decimal;
use store::{AggregateStore, Store};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::context::first_acked_event;
use crate::{CommandContext, execute};

/// The Health command service.
#[derive(Clone)]
pub struct HealthCommandService {
    logs: AggregateStore<HealthLog, Store>,
}

impl HealthCommandService {
    /// A service writing health logs through `logs`.
    pub fn new(logs: AggregateStore<HealthLog, Store>) -> Self {
        Self { logs }
    }

    /// For a repeated command id: the sample of the `HealthSampleLogged` event the first
    /// execution wrote.
    async fn first_sample(&self, user_id: Uuid, ack: &CommandAck) -> Result<Uuid, Status> {
        let reused = || {
            Status::failed_precondition(
                "command_id was already used by another command than LogSample",
            )
        };
        if !ack.aggregate_id.starts_with(&format!("{user_id}:")) {
            return Err(reused());
        }
        first_acked_event(&self.logs, ack)
            .await?
            .and_then(|event| match event {
                HealthEvent::HealthSampleLogged { sample_id, .. } => Some(sample_id),
                HealthEvent::HealthSampleDeleted { .. } => None,
            })
            .ok_or_else(reused)
    }
}

/// The request's source: `manual` when empty, else checked (an error names `source`).
fn source_of(source: &str) -> Result<String, Status> {
    let source = if source.is_empty() { MANUAL } else { source };
    validate_source(source).map_err(domain_status)?;
    Ok(source.to_string())
}

/// A required timestamp field.
fn time(field: &str, ts: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, Status> {
    match ts {
        Some(ts) => from_timestamp(field, ts),
        None => Err(invalid_argument(field, "is required")),
    }
}

/// A non-negative integer field that fits `T` (the aggregate checks the range).
fn count<T: TryFrom<i64>>(field: &str, value: i64) -> Result<T, Status> {
    if value < 0 {
        return Err(invalid_argument(
            field,
            format!("must not be negative, got {value}"),
        ));
    }
    T::try_from(value).map_err(|_| invalid_argument(field, format!("is too large, got {value}")))
}

/// A decimal string field (`field` names it).
fn decimal(field: &'static str, text: &str) -> Result<Decimal, Status> {
    parse_decimal(field, text).map_err(domain_status)
}

/// An optional decimal string field (empty: absent).
fn optional_decimal(field: &'static str, text: &str) -> Result<Option<Decimal>, Status> {
    (!text.trim().is_empty())
        .then(|| decimal(field, text))
        .transpose()
}

/// The domain measurement of a request's oneof, in canonical units.
pub fn measurement_from_wire(wire: Option<Wire>) -> Result<Measurement, Status> {
    let Some(wire) = wire else {
        return Err(invalid_argument(
            "measurement",
            "is required: one of sleep, steps, exercise, workout, weight, resting_heart_rate, \
             meal, water, mood",
        ));
    };
    Ok(match wire {
        Wire::Sleep(s) => Measurement::Sleep {
            start: time("sleep.start", s.start.as_ref())?,
            end: time("sleep.end", s.end.as_ref())?,
            stages: s
                .stages
                .iter()
                .map(|span| {
                    let stage = match HealthSleepStage::try_from(span.stage) {
                        Ok(HealthSleepStage::Awake) => SleepStageKind::Awake,
                        Ok(HealthSleepStage::Light) => SleepStageKind::Light,
                        Ok(HealthSleepStage::Deep) => SleepStageKind::Deep,
                        Ok(HealthSleepStage::Rem) => SleepStageKind::Rem,
                        _ => {
                            return Err(invalid_argument(
                                "sleep.stages",
                                "every stage needs a kind: awake, light, deep or rem",
                            ));
                        }
                    };
                    Ok(SleepStage {
                        stage,
                        start: time("sleep.stages", span.start.as_ref())?,
                        end: time("sleep.stages", span.end.as_ref())?,
                    })
                })
                .collect::<Result<_, Status>>()?,
        },
        Wire::Steps(s) => Measurement::Steps {
            count: count("steps.count", s.count)?,
            start: time("steps.start", s.start.as_ref())?,
            end: time("steps.end", s.end.as_ref())?,
        },
        Wire::Exercise(e) => Measurement::Exercise {
            minutes: count("exercise.minutes", e.minutes)?,
            at: time("exercise.at", e.at.as_ref())?,
        },
        Wire::Workout(w) => Measurement::Workout {
            kind: w.kind,
            start: time("workout.start", w.start.as_ref())?,
            duration_seconds: count("workout.duration_seconds", w.duration_seconds)?,
            energy_kcal: w
                .energy_kcal
                .map(|k| count("workout.energy_kcal", k))
                .transpose()?,
        },
        Wire::Weight(w) => {
            let unit = WeightUnit::parse(&w.unit).map_err(domain_status)?;
            let value = decimal("weight.value", &w.value)?;
            Measurement::Weight {
                kg: unit.to_kg(value).map_err(domain_status)?,
                at: time("weight.at", w.at.as_ref())?,
            }
        }
        Wire::RestingHeartRate(r) => Measurement::RestingHeartRate {
            bpm: count("resting_heart_rate.bpm", r.bpm)?,
            at: time("resting_heart_rate.at", r.at.as_ref())?,
        },
        Wire::Meal(m) => Measurement::Meal {
            name: m.name,
            calories: count("meal.calories", m.calories)?,
            protein_g: optional_decimal("meal.protein_g", &m.protein_g)?,
            carbs_g: optional_decimal("meal.carbs_g", &m.carbs_g)?,
            fat_g: optional_decimal("meal.fat_g", &m.fat_g)?,
            at: time("meal.at", m.at.as_ref())?,
        },
        Wire::Water(w) => {
            let unit = VolumeUnit::parse(&w.unit).map_err(domain_status)?;
            let value = decimal("water.value", &w.value)?;
            Measurement::Water {
                ml: unit.to_ml(value).map_err(domain_status)?,
                at: time("water.at", w.at.as_ref())?,
            }
        }
        Wire::Mood(m) => Measurement::Mood {
            score: u8::try_from(m.score).map_err(|_| {
                invalid_argument("mood.score", format!("must be 1 to 9, got {}", m.score))
            })?,
            at: time("mood.at", m.at.as_ref())?,
        },
    })
}

#[tonic::async_trait]
impl HealthCommands for HealthCommandService {
    async fn log_sample(
        &self,
        request: Request<LogHealthSampleRequest>,
    ) -> Result<Response<LogHealthSampleResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let source = source_of(&r.source)?;
        let measurement = measurement_from_wire(r.measurement)?;
        let external_id = (!r.external_id.is_empty()).then_some(r.external_id);
        let user_id = context.caller.user_id;
        let sample_id = Uuid::now_v7();
        let log = log_id(user_id, &source);
        let command = context.issue(HealthCommand::LogSample(LogSample {
            sample_id,
            source,
            external_id,
            measurement,
        }));
        let ack = execute(&self.logs, &(), context, &log, command)
            .await?
            .into_inner();
        let sample_id = if ack.duplicate {
            self.first_sample(user_id, &ack).await?
        } else {
            sample_id
        };
        Ok(Response::new(LogHealthSampleResponse {
            sample_id: sample_id.to_string(),
            ack: Some(ack),
        }))
    }

    async fn delete_sample(
        &self,
        request: Request<DeleteHealthSampleRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let sample_id = parse_uuid_field("sample_id", &r.sample_id)?;
        let source = source_of(&r.source)?;
        let log = log_id(context.caller.user_id, &source);
        let command = context.issue(HealthCommand::DeleteSample { sample_id });
        execute(&self.logs, &(), context, &log, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::{HealthMood, HealthSteps, HealthWater, HealthWeight};
    use tonic::Code;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn field_of(status: Status) -> String {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status
            .message()
            .strip_prefix("invalid ")
            .and_then(|m| m.split(':').next())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn wire_shapes_name_their_field() {
        let steps = |count, end| {
            Some(Wire::Steps(HealthSteps {
                count,
                start: ts(1_000),
                end,
            }))
        };
        assert_eq!(
            field_of(measurement_from_wire(steps(-5, ts(2_000))).unwrap_err()),
            "steps.count"
        );
        assert_eq!(
            field_of(measurement_from_wire(steps(5, None)).unwrap_err()),
            "steps.end"
        );
        assert_eq!(
            field_of(measurement_from_wire(None).unwrap_err()),
            "measurement"
        );
        let weight = |value: &str, unit: &str| {
            Some(Wire::Weight(HealthWeight {
                value: value.into(),
                unit: unit.into(),
                at: ts(1_000),
            }))
        };
        assert_eq!(
            field_of(measurement_from_wire(weight("80", "st")).unwrap_err()),
            "weight.unit"
        );
        assert_eq!(
            field_of(measurement_from_wire(weight("8o", "kg")).unwrap_err()),
            "weight.value"
        );
        let water = Some(Wire::Water(HealthWater {
            value: "2".into(),
            unit: "l".into(),
            at: ts(1_000),
        }));
        assert!(matches!(
            measurement_from_wire(water).unwrap(),
            Measurement::Water { ml, .. } if ml == Decimal::from(2000)
        ));
        let mood = Some(Wire::Mood(HealthMood {
            score: 300,
            at: ts(1_000),
        }));
        assert_eq!(
            field_of(measurement_from_wire(mood).unwrap_err()),
            "mood.score"
        );
    }

    #[test]
    fn sources_default_to_manual() {
        assert_eq!(source_of("").unwrap(), "manual");
        assert_eq!(
            source_of("import:apple_health").unwrap(),
            "import:apple_health"
        );
        assert_eq!(field_of(source_of("Apple").unwrap_err()), "source");
    }
}
