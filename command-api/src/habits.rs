//! `lifeos.v1.HabitCommands`: requests of the Habits pillar mapped to [`HabitCommand`]s on one
//! [`Habit`] aggregate each (aggregate id = habit id).
//!
//! The service parses the wire formats (UUIDs, days, `HH:MM` times, decimal strings, enums),
//! naming the field at fault; the aggregate checks the rules. A habit id is assigned when the
//! client gives none.

use std::str::FromStr;

use aggregates::habit::{
    CreateHabit, Decimal, EntryValue, Frequency, Goal, Habit, HabitChanges, HabitCommand,
    HabitEvent, HabitKind,
};
use api_common::{invalid_argument, parse_uuid_field, status::command_status};
use chrono::NaiveTime;
use cqrs_es::EventStore;
use proto::v1::habit_commands_server::HabitCommands;
use proto::v1::{
    ArchiveHabitRequest, CheckHabitRequest, CheckHabitResponse, CommandAck, CreateHabitRequest,
    CreateHabitResponse, HabitEntryValue, HabitGoal, HabitKind as WireKind, UnarchiveHabitRequest,
    UpdateHabitRequest,
};
use store::{AggregateStore, Store, meta};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{CommandContext, execute};

/// The Habits command service.
#[derive(Clone)]
pub struct HabitCommandService {
    habits: AggregateStore<Habit, Store>,
}

impl HabitCommandService {
    /// A service writing habits through `habits`.
    pub fn new(habits: AggregateStore<Habit, Store>) -> Self {
        Self { habits }
    }

    async fn run(
        &self,
        context: CommandContext,
        habit_id: Uuid,
        command: HabitCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let command = context.issue(command);
        execute(&self.habits, &(), context, &habit_id.to_string(), command).await
    }

    /// The events `ack` names, read back from the habit's stream (also for a repeated command).
    async fn events_of(&self, ack: &CommandAck) -> Result<Vec<HabitEvent>, Status> {
        let events = self
            .habits
            .load_events(&ack.aggregate_id)
            .await
            .map_err(command_status)?;
        Ok(events
            .into_iter()
            .filter(|e| {
                e.metadata
                    .get(meta::EVENT_ID)
                    .is_some_and(|id| ack.event_ids.contains(id))
            })
            .map(|e| e.payload)
            .collect())
    }
}

/// A decimal string field (`"8"`, `"2.5"`).
pub fn decimal_field(field: &str, value: &str) -> Result<Decimal, Status> {
    Decimal::from_str(value.trim()).map_err(|_| {
        invalid_argument(
            field,
            format!("must be a decimal number like \"2.5\", got {value:?}"),
        )
    })
}

/// An optional `HH:MM` reminder time (None when empty).
pub fn reminder_field(value: &str) -> Result<Option<NaiveTime>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    NaiveTime::parse_from_str(value, "%H:%M")
        .map(Some)
        .map_err(|_| {
            invalid_argument(
                "reminder_time",
                format!("must be a local time HH:MM, got {value:?}"),
            )
        })
}

/// The kind of a CreateHabit request: yes/no takes no unit or target; numeric needs both.
fn kind_from_request(r: &CreateHabitRequest) -> Result<HabitKind, Status> {
    match WireKind::try_from(r.kind) {
        Ok(WireKind::YesNo) => {
            if !r.unit.is_empty() {
                return Err(invalid_argument("unit", "a yes/no habit has no unit"));
            }
            if !r.target.is_empty() {
                return Err(invalid_argument("target", "a yes/no habit has no target"));
            }
            Ok(HabitKind::YesNo)
        }
        Ok(WireKind::Numeric) => {
            if r.target.is_empty() {
                return Err(invalid_argument("target", "a numeric habit needs a target"));
            }
            let goal = match HabitGoal::try_from(r.goal) {
                Ok(HabitGoal::AtMost) => Goal::AtMost,
                Ok(HabitGoal::AtLeast | HabitGoal::Unspecified) => Goal::AtLeast,
                Err(_) => {
                    return Err(invalid_argument(
                        "goal",
                        format!("{} is not a known goal", r.goal),
                    ));
                }
            };
            Ok(HabitKind::Numeric {
                unit: r.unit.clone(),
                target: decimal_field("target", &r.target)?,
                goal,
            })
        }
        Ok(WireKind::Unspecified) => Err(invalid_argument(
            "kind",
            "is required: HABIT_KIND_YES_NO or HABIT_KIND_NUMERIC",
        )),
        Err(_) => Err(invalid_argument(
            "kind",
            format!("{} is not a known habit kind", r.kind),
        )),
    }
}

/// The entry of a CheckHabit request.
fn entry_from_request(r: &CheckHabitRequest) -> Result<EntryValue, Status> {
    let value = match HabitEntryValue::try_from(r.value) {
        Ok(HabitEntryValue::Yes) => EntryValue::Yes,
        Ok(HabitEntryValue::No) => EntryValue::No,
        Ok(HabitEntryValue::Skip) => EntryValue::Skip,
        Ok(HabitEntryValue::Amount) => {
            if r.amount.is_empty() {
                return Err(invalid_argument("amount", "is required with AMOUNT"));
            }
            return decimal_field("amount", &r.amount).map(EntryValue::Amount);
        }
        Ok(HabitEntryValue::Unspecified) => {
            return Err(invalid_argument(
                "value",
                "is required: YES, NO, SKIP or AMOUNT",
            ));
        }
        Err(_) => {
            return Err(invalid_argument(
                "value",
                format!("{} is not a known entry value", r.value),
            ));
        }
    };
    if !r.amount.is_empty() {
        return Err(invalid_argument("amount", "is only for the AMOUNT value"));
    }
    Ok(value)
}

#[tonic::async_trait]
impl HabitCommands for HabitCommandService {
    async fn create_habit(
        &self,
        request: Request<CreateHabitRequest>,
    ) -> Result<Response<CreateHabitResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let habit_id = if r.habit_id.is_empty() {
            Uuid::now_v7()
        } else {
            parse_uuid_field("habit_id", &r.habit_id)?
        };
        let command = HabitCommand::Create(CreateHabit {
            habit_id,
            name: r.name.clone(),
            kind: kind_from_request(&r)?,
            frequency: Frequency {
                times: r.frequency_times,
                days: r.frequency_days,
            },
            reminder: reminder_field(&r.reminder_time)?,
        });
        let ack = self.run(context, habit_id, command).await?.into_inner();
        Ok(Response::new(CreateHabitResponse {
            // a repeated command_id answers with the first habit's id
            habit_id: ack.aggregate_id.clone(),
            ack: Some(ack),
        }))
    }

    async fn update_habit(
        &self,
        request: Request<UpdateHabitRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let habit_id = parse_uuid_field("habit_id", &r.habit_id)?;
        let changes = HabitChanges {
            name: r.name,
            frequency_times: r.frequency_times,
            frequency_days: r.frequency_days,
            target: r
                .target
                .as_deref()
                .map(|t| decimal_field("target", t))
                .transpose()?,
            reminder: r.reminder_time.as_deref().map(reminder_field).transpose()?,
        };
        self.run(context, habit_id, HabitCommand::Update(changes))
            .await
    }

    async fn archive_habit(
        &self,
        request: Request<ArchiveHabitRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let habit_id = parse_uuid_field("habit_id", &request.get_ref().habit_id)?;
        self.run(context, habit_id, HabitCommand::Archive).await
    }

    async fn unarchive_habit(
        &self,
        request: Request<UnarchiveHabitRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let habit_id = parse_uuid_field("habit_id", &request.get_ref().habit_id)?;
        self.run(context, habit_id, HabitCommand::Unarchive).await
    }

    async fn check_habit(
        &self,
        request: Request<CheckHabitRequest>,
    ) -> Result<Response<CheckHabitResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let habit_id = parse_uuid_field("habit_id", &r.habit_id)?;
        let day = projections::daily::parse_day(&r.day).ok_or_else(|| {
            invalid_argument(
                "day",
                format!("must be a day as YYYY-MM-DD, got {:?}", r.day),
            )
        })?;
        let value = entry_from_request(&r)?;
        let ack = self
            .run(context, habit_id, HabitCommand::Check { day, value })
            .await?
            .into_inner();
        let mut response = CheckHabitResponse::default();
        for event in self.events_of(&ack).await? {
            match event {
                HabitEvent::HabitChecked { xp, streak, .. } => {
                    response.xp = xp;
                    response.streak = streak;
                }
                HabitEvent::HabitBadgeEarned { badge, .. } => {
                    response.badges.push(badge.as_str().to_string())
                }
                _ => {}
            }
        }
        response.ack = Some(ack);
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn field_of(status: &Status) -> String {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status.message().to_string()
    }

    #[test]
    fn wire_fields_are_parsed_and_named() {
        assert_eq!(
            decimal_field("target", " 2.50 ").unwrap(),
            Decimal::new(25, 1)
        );
        assert!(field_of(&decimal_field("target", "two").unwrap_err()).contains("target"));
        assert_eq!(
            reminder_field("07:30").unwrap(),
            NaiveTime::from_hms_opt(7, 30, 0)
        );
        assert_eq!(reminder_field("").unwrap(), None);
        assert!(field_of(&reminder_field("7pm").unwrap_err()).contains("reminder_time"));
    }

    #[test]
    fn kinds_and_values_check_their_companion_fields() {
        let yes_no = CreateHabitRequest {
            kind: WireKind::YesNo as i32,
            target: "3".into(),
            ..Default::default()
        };
        assert!(field_of(&kind_from_request(&yes_no).unwrap_err()).contains("target"));
        let numeric = CreateHabitRequest {
            kind: WireKind::Numeric as i32,
            unit: "km".into(),
            ..Default::default()
        };
        assert!(field_of(&kind_from_request(&numeric).unwrap_err()).contains("target"));
        let none = CreateHabitRequest::default();
        assert!(field_of(&kind_from_request(&none).unwrap_err()).contains("kind"));

        let check = |value: HabitEntryValue, amount: &str| CheckHabitRequest {
            value: value as i32,
            amount: amount.into(),
            ..Default::default()
        };
        assert_eq!(
            entry_from_request(&check(HabitEntryValue::Amount, "1.5")).unwrap(),
            EntryValue::Amount(Decimal::new(15, 1))
        );
        for (request, field) in [
            (check(HabitEntryValue::Amount, ""), "amount"),
            (check(HabitEntryValue::Yes, "2"), "amount"),
            (check(HabitEntryValue::Unspecified, ""), "value"),
        ] {
            assert!(field_of(&entry_from_request(&request).unwrap_err()).contains(field));
        }
    }
}
