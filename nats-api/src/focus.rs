//! The Focus pillar on NATS: `commands.focus.*` → `lifeos.v1.FocusCommands`,
//! `queries.focus.*` → `lifeos.v1.FocusQueries`.

use std::sync::Arc;

use proto::v1::focus_commands_server::FocusCommands;
use proto::v1::focus_queries_server::FocusQueries;

use crate::Route;

/// The Focus routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: FocusCommands,
    Q: FocusQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.FocusCommands";
    const QUERIES: &str = "lifeos.v1.FocusQueries";
    vec![
        Route::unary(
            "commands.focus.start",
            format!("{COMMANDS}/StartFocus"),
            &c,
            |s, r| s.start_focus(r),
        ),
        Route::unary(
            "commands.focus.pause",
            format!("{COMMANDS}/PauseFocus"),
            &c,
            |s, r| s.pause_focus(r),
        ),
        Route::unary(
            "commands.focus.resume",
            format!("{COMMANDS}/ResumeFocus"),
            &c,
            |s, r| s.resume_focus(r),
        ),
        Route::unary(
            "commands.focus.interrupt",
            format!("{COMMANDS}/RecordInterruption"),
            &c,
            |s, r| s.record_interruption(r),
        ),
        Route::unary(
            "commands.focus.complete",
            format!("{COMMANDS}/CompleteFocus"),
            &c,
            |s, r| s.complete_focus(r),
        ),
        Route::unary(
            "commands.focus.abandon",
            format!("{COMMANDS}/AbandonFocus"),
            &c,
            |s, r| s.abandon_focus(r),
        ),
        Route::unary(
            "queries.focus.state",
            format!("{QUERIES}/GetFocusState"),
            &q,
            |s, r| s.get_focus_state(r),
        ),
        Route::unary(
            "queries.focus.sessions",
            format!("{QUERIES}/ListSessions"),
            &q,
            |s, r| s.list_sessions(r),
        ),
        Route::unary(
            "queries.focus.today",
            format!("{QUERIES}/GetTodaySummary"),
            &q,
            |s, r| s.get_today_summary(r),
        ),
        Route::unary(
            "queries.focus.daily",
            format!("{QUERIES}/GetDailyRollup"),
            &q,
            |s, r| s.get_daily_rollup(r),
        ),
    ]
}
