//! The Tasks pillar on NATS: `commands.tasks.*` → `lifeos.v1.TaskCommands`,
//! `queries.tasks.*` → `lifeos.v1.TaskQueries` (`commands.tasks.skip` is SkipOccurrence,
//! `queries.tasks.daily` is GetDailyRollup).

use std::sync::Arc;

use proto::v1::task_commands_server::TaskCommands;
use proto::v1::task_queries_server::TaskQueries;

use crate::Route;

/// The Tasks routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: TaskCommands,
    Q: TaskQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.TaskCommands";
    const QUERIES: &str = "lifeos.v1.TaskQueries";
    vec![
        Route::unary(
            "commands.tasks.create",
            format!("{COMMANDS}/CreateTask"),
            &c,
            |s, r| s.create_task(r),
        ),
        Route::unary(
            "commands.tasks.update",
            format!("{COMMANDS}/UpdateTask"),
            &c,
            |s, r| s.update_task(r),
        ),
        Route::unary(
            "commands.tasks.complete",
            format!("{COMMANDS}/CompleteTask"),
            &c,
            |s, r| s.complete_task(r),
        ),
        Route::unary(
            "commands.tasks.reopen",
            format!("{COMMANDS}/ReopenTask"),
            &c,
            |s, r| s.reopen_task(r),
        ),
        Route::unary(
            "commands.tasks.delete",
            format!("{COMMANDS}/DeleteTask"),
            &c,
            |s, r| s.delete_task(r),
        ),
        Route::unary(
            "commands.tasks.skip",
            format!("{COMMANDS}/SkipOccurrence"),
            &c,
            |s, r| s.skip_occurrence(r),
        ),
        Route::unary(
            "queries.tasks.get",
            format!("{QUERIES}/GetTask"),
            &q,
            |s, r| s.get_task(r),
        ),
        Route::unary(
            "queries.tasks.list",
            format!("{QUERIES}/ListTasks"),
            &q,
            |s, r| s.list_tasks(r),
        ),
        Route::unary(
            "queries.tasks.daily",
            format!("{QUERIES}/GetDailyRollup"),
            &q,
            |s, r| s.get_daily_rollup(r),
        ),
    ]
}
