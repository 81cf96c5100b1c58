//! The Habits pillar on NATS: `commands.habits.*` → `lifeos.v1.HabitCommands`,
//! `queries.habits.*` → `lifeos.v1.HabitQueries`.

use std::sync::Arc;

use proto::v1::habit_commands_server::HabitCommands;
use proto::v1::habit_queries_server::HabitQueries;

use crate::Route;

/// The Habits routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: HabitCommands,
    Q: HabitQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.HabitCommands";
    const QUERIES: &str = "lifeos.v1.HabitQueries";
    vec![
        Route::unary(
            "commands.habits.create",
            format!("{COMMANDS}/CreateHabit"),
            &c,
            |s, r| s.create_habit(r),
        ),
        Route::unary(
            "commands.habits.update",
            format!("{COMMANDS}/UpdateHabit"),
            &c,
            |s, r| s.update_habit(r),
        ),
        Route::unary(
            "commands.habits.archive",
            format!("{COMMANDS}/ArchiveHabit"),
            &c,
            |s, r| s.archive_habit(r),
        ),
        Route::unary(
            "commands.habits.unarchive",
            format!("{COMMANDS}/UnarchiveHabit"),
            &c,
            |s, r| s.unarchive_habit(r),
        ),
        Route::unary(
            "commands.habits.check",
            format!("{COMMANDS}/CheckHabit"),
            &c,
            |s, r| s.check_habit(r),
        ),
        Route::unary(
            "queries.habits.list",
            format!("{QUERIES}/ListHabits"),
            &q,
            |s, r| s.list_habits(r),
        ),
        Route::unary(
            "queries.habits.get",
            format!("{QUERIES}/GetHabit"),
            &q,
            |s, r| s.get_habit(r),
        ),
        Route::unary(
            "queries.habits.progress",
            format!("{QUERIES}/GetHabitProgress"),
            &q,
            |s, r| s.get_habit_progress(r),
        ),
        Route::unary(
            "queries.habits.daily",
            format!("{QUERIES}/GetHabitDailyRollup"),
            &q,
            |s, r| s.get_habit_daily_rollup(r),
        ),
    ]
}
