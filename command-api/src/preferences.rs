//! `lifeos.v1.Preferences`: set (a command) and get (the aggregate's own state).

use aggregates::preferences::{PreferencesCommand, PreferencesPatch, UserPreferences};
use api_common::Caller;
use api_common::status::command_status;
use api_common::time::to_timestamp;
use cqrs_es::EventStore;
use proto::v1::preferences_server::Preferences;
use proto::v1::{
    CommandAck, GetPreferencesRequest, SetPreferencesRequest, UserPreferences as Wire,
};
use store::{AggregateStore, Store};
use tonic::{Request, Response, Status};

use crate::{CommandContext, execute};

/// The Preferences service. The aggregate id is the caller's user id.
#[derive(Clone)]
pub struct PreferencesService {
    preferences: AggregateStore<UserPreferences, Store>,
}

impl PreferencesService {
    /// A service over `preferences`.
    pub fn new(preferences: AggregateStore<UserPreferences, Store>) -> Self {
        Self { preferences }
    }
}

#[tonic::async_trait]
impl Preferences for PreferencesService {
    async fn set_preferences(
        &self,
        request: Request<SetPreferencesRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let patch = PreferencesPatch {
            timezone: r.timezone,
            day_start_hour: r.day_start_hour,
            theme: r.theme,
            pomodoro_work_minutes: r.pomodoro_work_minutes,
            short_break_minutes: r.short_break_minutes,
            long_break_minutes: r.long_break_minutes,
            cycles_before_long_break: r.cycles_before_long_break,
            ai_features_enabled: r.ai_features_enabled,
            correlation_enabled: r.correlation_enabled,
        };
        let id = context.caller.user_id.to_string();
        let command = context.issue(PreferencesCommand::Set(patch));
        execute(&self.preferences, &(), context, &id, command).await
    }

    async fn get_preferences(
        &self,
        request: Request<GetPreferencesRequest>,
    ) -> Result<Response<Wire>, Status> {
        let caller = Caller::of(&request)?;
        let loaded = self
            .preferences
            .load_aggregate(&caller.user_id.to_string())
            .await
            .map_err(command_status)?;
        let p = loaded.aggregate.preferences().clone();
        Ok(Response::new(Wire {
            timezone: p.timezone,
            day_start_hour: p.day_start_hour,
            theme: p.theme,
            pomodoro_work_minutes: p.pomodoro_work_minutes,
            short_break_minutes: p.short_break_minutes,
            long_break_minutes: p.long_break_minutes,
            cycles_before_long_break: p.cycles_before_long_break,
            ai_features_enabled: p.ai_features_enabled,
            correlation_enabled: p.correlation_enabled,
            updated_at: loaded.aggregate.updated_at().map(to_timestamp),
        }))
    }
}
