//! The `api` role: every gRPC service of the engine, built once, added to the server.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::time::Duration;

use api_common::Auth;
use command_api::{
    CalendarCommandService, FinanceCommandService, FocusCommandService, HabitCommandService,
    HealthCommandService, JournalCommandService, PreferencesService, TaskCommandService,
};
use cqrs_es::Aggregate;
use projections::{Freshness, ReadModels};
use proto::v1::admin_server::AdminServer;
use proto::v1::calendar_commands_server::CalendarCommandsServer;
use proto::v1::calendar_queries_server::CalendarQueriesServer;
use proto::v1::event_stream_server::EventStreamServer;
use proto::v1::finance_commands_server::FinanceCommandsServer;
use proto::v1::finance_queries_server::FinanceQueriesServer;
use proto::v1::focus_commands_server::FocusCommandsServer;
use proto::v1::focus_queries_server::FocusQueriesServer;
use proto::v1::habit_commands_server::HabitCommandsServer;
use proto::v1::habit_queries_server::HabitQueriesServer;
use proto::v1::health_commands_server::HealthCommandsServer;
use proto::v1::health_queries_server::HealthQueriesServer;
use proto::v1::history_server::HistoryServer;
use proto::v1::journal_commands_server::JournalCommandsServer;
use proto::v1::journal_queries_server::JournalQueriesServer;
use proto::v1::preferences_server::PreferencesServer;
use proto::v1::task_commands_server::TaskCommandsServer;
use proto::v1::task_queries_server::TaskQueriesServer;
use query_api::{
    AdminService, CalendarQueryService, FinanceQueryService, FocusQueryService, HabitQueryService,
    HealthQueryService, HistoryService, JournalQueryService, ReadYourWrites, TaskQueryService,
};
use std::collections::HashMap;
use store::{AggregateStore, SnapshotPolicy, Store};
use tonic::server::NamedService;
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
    /// Habits pillar commands.
    pub habit_commands: HabitCommandService,
    /// Habits pillar queries.
    pub habit_queries: HabitQueryService,
    /// Journal pillar commands.
    pub journal_commands: JournalCommandService,
    /// Journal pillar queries.
    pub journal_queries: JournalQueryService,
    /// Finance pillar commands.
    pub finance_commands: FinanceCommandService,
    /// Finance pillar queries.
    pub finance_queries: FinanceQueryService,
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
        aggregate_cache: usize,
        consistency_wait: Duration,
        freshness_of: impl Fn(&str) -> Freshness,
    ) -> Self {
        let models = ReadModels::new(store.clone());
        let aggregates = Aggregates {
            store,
            snapshots,
            cache: aggregate_cache,
            made: RefCell::default(),
        };
        let ryw =
            |projection: &str| ReadYourWrites::new(freshness_of(projection), consistency_wait);
        Self {
            task_commands: TaskCommandService::new(aggregates.of())
                .with_freshness(freshness_of("task_list"), consistency_wait),
            task_queries: TaskQueryService::new(models.clone(), ryw("task_list"))
                .with_daily(ryw("task_daily")),
            preferences: PreferencesService::new(aggregates.of()),
            focus_commands: FocusCommandService::new(
                aggregates.of(),
                aggregates.of(),
                aggregates.of(),
            ),
            focus_queries: FocusQueryService::new(
                models.clone(),
                ryw("focus_sessions"),
                ryw("focus_daily"),
            ),
            calendar_commands: CalendarCommandService::new(aggregates.of(), aggregates.of()),
            calendar_queries: CalendarQueryService::new(models.clone(), ryw("calendar_events")),
            habit_commands: HabitCommandService::new(aggregates.of()),
            habit_queries: HabitQueryService::new(models.clone(), ryw("habits")),
            journal_commands: JournalCommandService::new(aggregates.of()),
            journal_queries: JournalQueryService::new(
                models.clone(),
                ryw("journal_entries"),
                ryw("journal_daily"),
            ),
            finance_commands: FinanceCommandService::new(
                aggregates.of(),
                aggregates.of(),
                aggregates.of(),
            ),
            finance_queries: FinanceQueryService::new(
                models.clone(),
                ryw("finance_accounts"),
                ryw("finance_monthly"),
                ryw("finance_daily"),
            ),
            health_commands: HealthCommandService::new(aggregates.of()),
            health_queries: HealthQueryService::new(
                models.clone(),
                ryw("health_samples"),
                ryw("health_daily"),
            ),
            history: HistoryService::new(store.clone()),
            admin: AdminService::new(models),
        }
    }

    /// Adds every service, each behind the bearer-token check, and marks them serving.
    pub async fn mount(self, router: Router, auth: &Auth, health: &HealthReporter) -> Router {
        /// Marks each `Server<Service>` serving and adds it, behind `auth`, to the router.
        macro_rules! mount {
            ($router:expr; $($server:ident($service:expr),)+) => {{
                let router = $router;
                $(
                    let service = $server::with_interceptor($service, auth.clone());
                    serving(health, &service).await;
                    let router = router.add_service(service);
                )+
                router
            }};
        }
        mount!(router;
            TaskCommandsServer(self.task_commands),
            TaskQueriesServer(self.task_queries),
            PreferencesServer(self.preferences),
            FocusCommandsServer(self.focus_commands),
            FocusQueriesServer(self.focus_queries),
            CalendarCommandsServer(self.calendar_commands),
            CalendarQueriesServer(self.calendar_queries),
            HabitCommandsServer(self.habit_commands),
            HabitQueriesServer(self.habit_queries),
            JournalCommandsServer(self.journal_commands),
            JournalQueriesServer(self.journal_queries),
            FinanceCommandsServer(self.finance_commands),
            FinanceQueriesServer(self.finance_queries),
            HealthCommandsServer(self.health_commands),
            HealthQueriesServer(self.health_queries),
            HistoryServer(self.history.clone()),
            EventStreamServer(self.history),
            AdminServer(self.admin),
        )
    }
}

/// Builds the aggregate store of any pillar over one store, with the snapshot policy the
/// server was given for that aggregate type (`--snapshots <type>=<every>`).
struct Aggregates<'a> {
    store: &'a Store,
    snapshots: &'a HashMap<String, u64>,
    cache: usize,
    /// One store per aggregate type, so every service commanding a type shares its cache.
    made: RefCell<HashMap<TypeId, Box<dyn Any>>>,
}

impl Aggregates<'_> {
    /// The store of aggregate `A` (the same one, with the same cache, on every call).
    fn of<A: Aggregate + 'static>(&self) -> AggregateStore<A, Store> {
        let mut made = self.made.borrow_mut();
        let store = made.entry(TypeId::of::<A>()).or_insert_with(|| {
            let every = self.snapshots.get(A::TYPE).copied().unwrap_or(0);
            Box::new(
                AggregateStore::<A, Store>::new(self.store.clone())
                    .with_snapshots(SnapshotPolicy::every(every))
                    .with_cache(self.cache),
            )
        });
        store
            .downcast_ref::<AggregateStore<A, Store>>()
            .expect("stores are keyed by their aggregate type")
            .clone()
    }
}

/// Marks `service` serving in the health service, under its gRPC name.
async fn serving<S: NamedService>(health: &HealthReporter, _service: &S) {
    health.set_serving::<S>().await;
}
