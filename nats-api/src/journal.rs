//! The Journal pillar on NATS: `commands.journal.*` → `lifeos.v1.JournalCommands`,
//! `queries.journal.*` → `lifeos.v1.JournalQueries`.

use std::sync::Arc;

use proto::v1::journal_commands_server::JournalCommands;
use proto::v1::journal_queries_server::JournalQueries;

use crate::Route;

/// The Journal routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: JournalCommands,
    Q: JournalQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.JournalCommands";
    const QUERIES: &str = "lifeos.v1.JournalQueries";
    vec![
        Route::unary(
            "commands.journal.write",
            format!("{COMMANDS}/WriteEntry"),
            &c,
            |s, r| s.write_entry(r),
        ),
        Route::unary(
            "commands.journal.edit",
            format!("{COMMANDS}/EditEntry"),
            &c,
            |s, r| s.edit_entry(r),
        ),
        Route::unary(
            "commands.journal.delete",
            format!("{COMMANDS}/DeleteEntry"),
            &c,
            |s, r| s.delete_entry(r),
        ),
        Route::unary(
            "queries.journal.entries",
            format!("{QUERIES}/ListEntries"),
            &q,
            |s, r| s.list_entries(r),
        ),
        Route::unary(
            "queries.journal.entry",
            format!("{QUERIES}/GetEntry"),
            &q,
            |s, r| s.get_entry(r),
        ),
        Route::unary(
            "queries.journal.search",
            format!("{QUERIES}/SearchEntries"),
            &q,
            |s, r| s.search_entries(r),
        ),
        Route::unary(
            "queries.journal.daily",
            format!("{QUERIES}/GetDailyRollup"),
            &q,
            |s, r| s.get_daily_rollup(r),
        ),
    ]
}
