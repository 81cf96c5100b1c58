//! The Finance pillar on NATS: `commands.finance.*` → `lifeos.v1.FinanceCommands`,
//! `queries.finance.*` → `lifeos.v1.FinanceQueries`.

use std::sync::Arc;

use proto::v1::finance_commands_server::FinanceCommands;
use proto::v1::finance_queries_server::FinanceQueries;

use crate::Route;

/// The Finance routes, served by `commands` and `queries` (the same services gRPC serves).
pub fn routes<C, Q>(commands: C, queries: Q) -> Vec<Route>
where
    C: FinanceCommands,
    Q: FinanceQueries,
{
    let c = Arc::new(commands);
    let q = Arc::new(queries);
    const COMMANDS: &str = "lifeos.v1.FinanceCommands";
    const QUERIES: &str = "lifeos.v1.FinanceQueries";
    vec![
        Route::unary(
            "commands.finance.open_account",
            format!("{COMMANDS}/OpenAccount"),
            &c,
            |s, r| s.open_account(r),
        ),
        Route::unary(
            "commands.finance.record",
            format!("{COMMANDS}/RecordTransaction"),
            &c,
            |s, r| s.record_transaction(r),
        ),
        Route::unary(
            "commands.finance.recategorize",
            format!("{COMMANDS}/Recategorize"),
            &c,
            |s, r| s.recategorize(r),
        ),
        Route::unary(
            "commands.finance.split",
            format!("{COMMANDS}/SplitTransaction"),
            &c,
            |s, r| s.split_transaction(r),
        ),
        Route::unary(
            "commands.finance.delete",
            format!("{COMMANDS}/DeleteTransaction"),
            &c,
            |s, r| s.delete_transaction(r),
        ),
        Route::unary(
            "commands.finance.set_budget",
            format!("{COMMANDS}/SetBudget"),
            &c,
            |s, r| s.set_budget(r),
        ),
        Route::unary(
            "commands.finance.import_csv",
            format!("{COMMANDS}/ImportCsv"),
            &c,
            |s, r| s.import_csv(r),
        ),
        Route::unary(
            "queries.finance.accounts",
            format!("{QUERIES}/ListAccounts"),
            &q,
            |s, r| s.list_accounts(r),
        ),
        Route::unary(
            "queries.finance.account",
            format!("{QUERIES}/GetAccount"),
            &q,
            |s, r| s.get_account(r),
        ),
        Route::unary(
            "queries.finance.transactions",
            format!("{QUERIES}/ListTransactions"),
            &q,
            |s, r| s.list_transactions(r),
        ),
        Route::unary(
            "queries.finance.monthly",
            format!("{QUERIES}/GetMonthlySpending"),
            &q,
            |s, r| s.get_monthly_spending(r),
        ),
        Route::unary(
            "queries.finance.daily",
            format!("{QUERIES}/GetDailyRollup"),
            &q,
            |s, r| s.get_daily_rollup(r),
        ),
    ]
}
