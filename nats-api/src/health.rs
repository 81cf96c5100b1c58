//! The Health pillar on NATS: `commands.health.*` → `lifeos.v1.HealthCommands`,
//! `queries.health.*` → `lifeos.v1.HealthQueries`.

use std::sync::Arc;

use proto::v1::health_commands_server::HealthCommands;
use proto::v1::health_queries_server::HealthQueries;

use crate::Route;

/// The Health routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: HealthCommands,
    Q: HealthQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.HealthCommands";
    const QUERIES: &str = "lifeos.v1.HealthQueries";
    vec![
        Route::unary(
            "commands.health.log",
            format!("{COMMANDS}/LogSample"),
            &c,
            |s, r| s.log_sample(r),
        ),
        Route::unary(
            "commands.health.delete",
            format!("{COMMANDS}/DeleteSample"),
            &c,
            |s, r| s.delete_sample(r),
        ),
        Route::unary(
            "queries.health.samples",
            format!("{QUERIES}/ListSamples"),
            &q,
            |s, r| s.list_samples(r),
        ),
        Route::unary(
            "queries.health.daily",
            format!("{QUERIES}/GetDailyRollup"),
            &q,
            |s, r| s.get_daily_rollup(r),
        ),
        Route::unary(
            "queries.health.averages",
            format!("{QUERIES}/GetAverages"),
            &q,
            |s, r| s.get_averages(r),
        ),
    ]
}
