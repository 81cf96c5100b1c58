//! The Calendar pillar on NATS: `commands.calendar.*` → `lifeos.v1.CalendarCommands`,
//! `queries.calendar.*` → `lifeos.v1.CalendarQueries`.

use std::sync::Arc;

use proto::v1::calendar_commands_server::CalendarCommands;
use proto::v1::calendar_queries_server::CalendarQueries;

use crate::Route;

/// The Calendar routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: CalendarCommands,
    Q: CalendarQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.CalendarCommands";
    const QUERIES: &str = "lifeos.v1.CalendarQueries";
    vec![
        Route::unary(
            "commands.calendar.create",
            format!("{COMMANDS}/CreateEvent"),
            &c,
            |s, r| s.create_event(r),
        ),
        Route::unary(
            "commands.calendar.update",
            format!("{COMMANDS}/UpdateEvent"),
            &c,
            |s, r| s.update_event(r),
        ),
        Route::unary(
            "commands.calendar.cancel",
            format!("{COMMANDS}/CancelEvent"),
            &c,
            |s, r| s.cancel_event(r),
        ),
        Route::unary(
            "commands.calendar.import_ics",
            format!("{COMMANDS}/ImportIcs"),
            &c,
            |s, r| s.import_ics(r),
        ),
        Route::unary(
            "queries.calendar.events",
            format!("{QUERIES}/ListEvents"),
            &q,
            |s, r| s.list_events(r),
        ),
        Route::unary(
            "queries.calendar.today",
            format!("{QUERIES}/Today"),
            &q,
            |s, r| s.today(r),
        ),
        Route::unary(
            "queries.calendar.free_busy",
            format!("{QUERIES}/FreeBusy"),
            &q,
            |s, r| s.free_busy(r),
        ),
        Route::unary(
            "queries.calendar.daily",
            format!("{QUERIES}/GetMeetingRollup"),
            &q,
            |s, r| s.get_meeting_rollup(r),
        ),
    ]
}
