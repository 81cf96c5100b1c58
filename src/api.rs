//! The `api` role: every gRPC service of the engine, built once, added to the server.

use std::time::Duration;

use aggregates::calendar::CalendarEvent;
use aggregates::calendar_source::CalendarSource;
use aggregates::focus::FocusTimer;
use aggregates::health::HealthLog;
use aggregates::preferences::UserPreferences;
use aggregates::task::Task;
use api_common::Auth;
use command_api::{
    CalendarCommandService, FocusCommandService, HealthCommandService, PreferencesService,
    TaskCommandService,
};
use cqrs_es::Aggregate;
use projections::{Freshness, ReadModels};
use proto::v1::admin_server::AdminServer;
use proto::v1::calendar_commands_server::CalendarCommandsServer;
use proto::v1::calendar_queries_server::CalendarQueriesServer;
use proto::v1::event_stream_server::EventStreamServer;
use proto::v1::focus_commands_server::FocusCommandsServer;
use proto::v1::focus_queries_server::FocusQueriesServer;
use proto::v1::health_commands_server::HealthCommandsServer;
use proto::v1::health_queries_server::HealthQueriesServer;
use proto::v1::history_server::HistoryServer;
use proto::v1::preferences_server::PreferencesServer;
use proto::v1::task_commands_server::TaskCommandsServer;
use proto::v1::task_queries_server::TaskQueriesServer;
use query_api::{
    AdminService, CalendarQueryService, FocusQueryService, HealthQueryService, HistoryService,
    ReadYourWrites, TaskQueryService,
};
use std::collections::HashMap;
use store::{AggregateStore, SnapshotPolicy, Store};
use tonic::transport::server::Router;
use tonic_health::server::HealthReporter;

/// The engine's gRPC services (commands, queries, history, admin).
#[derive(Clone)]
pub struct ApiServices {
    /// Tasks pillar commands.
    pub task_commands: TaskCommandService,
    /// Tasks pillar queries.
    pub task_queries: TaskQueryService,
    /// The user's preferences.
    pub preferences: PreferencesService,
    /// Focus pillar commands.
    pub focus_commands: FocusCommandService,
    /// Focus pillar queries.
    pub focus_queries: FocusQueryService,
    /// Calendar pillar commands.
    pub calendar_commands: CalendarCommandService,
    /// Calendar pillar queries.
    pub calendar_queries: CalendarQueryService,
    /// Health pillar commands.
    pub health_commands: HealthCommandService,
    /// Health pillar queries.
    pub health_queries: HealthQueryService,
    /// History and EventStream (the log itself).
    pub history: HistoryService,
    /// Projection status and rebuilds.
    pub admin: AdminService,
}

impl ApiServices {
    /// Builds the services over `store`; `freshness_of(projection)` says how queries wait for
    /// a projection's consistency tokens.
    pub fn new(
        store: &Store,
        snapshots: &HashMap<String, u64>,
        consistency_wait: Duration,
        freshness_of: impl Fn(&str) -> Freshness,
    ) -> Self {
        let models = ReadModels::new(store.clone());
        let snapshot =
            |kind: &str| SnapshotPolicy::every(snapshots.get(kind).copied().unwrap_or(0));
        Self {
            task_commands: TaskCommandService::new(
                AggregateStore::<Task, _>::new(store.clone()).with_snapshots(snapshot(Task::TYPE)),
            )
            .with_freshness(freshness_of("task_list"), consistency_wait),
            task_queries: TaskQueryService::new(
                models.clone(),
                ReadYourWrites::new(freshness_of("task_list"), consistency_wait),
            )
            .with_daily(ReadYourWrites::new(
                freshness_of("task_daily"),
                consistency_wait,
            )),
            preferences: PreferencesService::new(
                AggregateStore::<UserPreferences, _>::new(store.clone())
                    .with_snapshots(snapshot(UserPreferences::TYPE)),
            ),
            focus_commands: FocusCommandService::new(
                AggregateStore::<FocusTimer, _>::new(store.clone())
                    .with_snapshots(snapshot(FocusTimer::TYPE)),
                AggregateStore::<UserPreferences, _>::new(store.clone())
                    .with_snapshots(snapshot(UserPreferences::TYPE)),
                AggregateStore::<Task, _>::new(store.clone()).with_snapshots(snapshot(Task::TYPE)),
            ),
            focus_queries: FocusQueryService::new(
                models.clone(),
                ReadYourWrites::new(freshness_of("focus_sessions"), consistency_wait),
                ReadYourWrites::new(freshness_of("focus_daily"), consistency_wait),
            ),
            calendar_commands: CalendarCommandService::new(
                AggregateStore::<CalendarEvent, _>::new(store.clone())
                    .with_snapshots(snapshot(CalendarEvent::TYPE)),
                AggregateStore::<CalendarSource, _>::new(store.clone())
                    .with_snapshots(snapshot(CalendarSource::TYPE)),
            ),
            calendar_queries: CalendarQueryService::new(
                models.clone(),
                ReadYourWrites::new(freshness_of("calendar_events"), consistency_wait),
            ),
            health_commands: HealthCommandService::new(
                AggregateStore::<HealthLog, _>::new(store.clone())
                    .with_snapshots(snapshot(HealthLog::TYPE)),
            ),
            health_queries: HealthQueryService::new(
                models.clone(),
                ReadYourWrites::new(freshness_of("health_samples"), consistency_wait),
                ReadYourWrites::new(freshness_of("health_daily"), consistency_wait),
            ),
            history: HistoryService::new(store.clone()),
            admin: AdminService::new(models),
        }
    }

    /// Adds every service, each behind the bearer-token check, and marks them serving.
    pub async fn mount(self, router: Router, auth: &Auth, health: &HealthReporter) -> Router {
        health
            .set_serving::<TaskCommandsServer<TaskCommandService>>()
            .await;
        health
            .set_serving::<TaskQueriesServer<TaskQueryService>>()
            .await;
        health
            .set_serving::<PreferencesServer<PreferencesService>>()
            .await;
        health
            .set_serving::<FocusCommandsServer<FocusCommandService>>()
            .await;
        health
            .set_serving::<FocusQueriesServer<FocusQueryService>>()
            .await;
        health
            .set_serving::<CalendarCommandsServer<CalendarCommandService>>()
            .await;
        health
            .set_serving::<CalendarQueriesServer<CalendarQueryService>>()
            .await;
        health
            .set_serving::<HealthCommandsServer<HealthCommandService>>()
            .await;
        health
            .set_serving::<HealthQueriesServer<HealthQueryService>>()
            .await;
        health.set_serving::<HistoryServer<HistoryService>>().await;
        health
            .set_serving::<EventStreamServer<HistoryService>>()
            .await;
        health.set_serving::<AdminServer<AdminService>>().await;
        router
            .add_service(TaskCommandsServer::with_interceptor(
                self.task_commands,
                auth.clone(),
            ))
            .add_service(TaskQueriesServer::with_interceptor(
                self.task_queries,
                auth.clone(),
            ))
            .add_service(PreferencesServer::with_interceptor(
                self.preferences,
                auth.clone(),
            ))
            .add_service(FocusCommandsServer::with_interceptor(
                self.focus_commands,
                auth.clone(),
            ))
            .add_service(FocusQueriesServer::with_interceptor(
                self.focus_queries,
                auth.clone(),
            ))
            .add_service(CalendarCommandsServer::with_interceptor(
                self.calendar_commands,
                auth.clone(),
            ))
            .add_service(CalendarQueriesServer::with_interceptor(
                self.calendar_queries,
                auth.clone(),
            ))
            .add_service(HealthCommandsServer::with_interceptor(
                self.health_commands,
                auth.clone(),
            ))
            .add_service(HealthQueriesServer::with_interceptor(
                self.health_queries,
                auth.clone(),
            ))
            .add_service(HistoryServer::with_interceptor(
                self.history.clone(),
                auth.clone(),
            ))
            .add_service(EventStreamServer::with_interceptor(
                self.history,
                auth.clone(),
            ))
            .add_service(AdminServer::with_interceptor(self.admin, auth.clone()))
    }
}
