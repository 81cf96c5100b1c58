//! Black-box tests of the Finance API (FinanceCommands, FinanceQueries) through the generated
//! gRPC clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field, ts};
use projections::daily::day_id;
use proto::v1::finance_commands_client::FinanceCommandsClient;
use proto::v1::finance_queries_client::FinanceQueriesClient;
use proto::v1::{
    CategorySpending, CsvColumn, CsvMapping, DeleteTransactionRequest, FinanceAccount,
    GetAccountRequest, GetFinanceDailyRollupRequest, GetMonthlySpendingRequest, ImportCsvRequest,
    ImportCsvResponse, ListAccountsRequest, ListTransactionsRequest, ListTransactionsResponse,
    Money, OpenAccountRequest, RecategorizeRequest, RecordTransactionRequest,
    RecordTransactionResponse, SetBudgetRequest, SetPreferencesRequest, SplitTransactionRequest,
    TransactionSplitPart, csv_column,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(FinanceCommandsClient, FinanceQueriesClient);

on_both_backends! {
    sqlite_open_record_and_balance, postgres_open_record_and_balance => open_record_and_balance;
    sqlite_bad_money_names_the_field_and_writes_nothing,
        postgres_bad_money_names_the_field_and_writes_nothing
        => bad_money_names_the_field_and_writes_nothing;
    sqlite_import_twice_adds_nothing_the_second_time,
        postgres_import_twice_adds_nothing_the_second_time
        => import_twice_adds_nothing_the_second_time;
    sqlite_monthly_spending_against_budget_with_carry_over,
        postgres_monthly_spending_against_budget_with_carry_over
        => monthly_spending_against_budget_with_carry_over;
    sqlite_daily_rollup_in_the_users_zone, postgres_daily_rollup_in_the_users_zone
        => daily_rollup_in_the_users_zone;
    sqlite_other_users_account_is_not_found, postgres_other_users_account_is_not_found
        => other_users_account_is_not_found;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const BANK_CSV: &str = include_str!("data/bank.csv");

fn money(amount: &str, currency: &str) -> Option<Money> {
    Some(Money {
        amount: amount.to_string(),
        currency: currency.to_string(),
    })
}

fn amount_of(m: &Option<Money>) -> &str {
    &m.as_ref().expect("an amount").amount
}

async fn open(c: &mut Commands, currency: &str, opening: &str) -> String {
    c.open_account(OpenAccountRequest {
        name: "Checking".into(),
        currency: currency.into(),
        opening_balance: opening.into(),
        ..Default::default()
    })
    .await
    .expect("OpenAccount succeeds")
    .into_inner()
    .account_id
}

fn spend(account: &str, amount: &str, payee: &str, at: DateTime<Utc>) -> RecordTransactionRequest {
    RecordTransactionRequest {
        account_id: account.to_string(),
        amount: money(amount, "USD"),
        occurred_at: ts(at),
        payee: payee.to_string(),
        category: "food".into(),
        ..Default::default()
    }
}

async fn record(c: &mut Commands, request: RecordTransactionRequest) -> RecordTransactionResponse {
    c.record_transaction(request)
        .await
        .expect("RecordTransaction succeeds")
        .into_inner()
}

fn token(r: &RecordTransactionResponse) -> String {
    r.ack.as_ref().expect("ack").consistency_token.clone()
}

async fn account(q: &mut Queries, account_id: &str, token: &str) -> FinanceAccount {
    q.get_account(GetAccountRequest {
        account_id: account_id.to_string(),
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetAccount succeeds")
    .into_inner()
}

async fn transactions(q: &mut Queries, account_id: &str, token: &str) -> ListTransactionsResponse {
    q.list_transactions(ListTransactionsRequest {
        account_id: account_id.to_string(),
        consistency_token: token.to_string(),
        ..Default::default()
    })
    .await
    .expect("ListTransactions succeeds")
    .into_inner()
}

fn name(n: &str) -> Option<CsvColumn> {
    Some(CsvColumn {
        column: Some(csv_column::Column::Name(n.to_string())),
    })
}

fn bank_mapping() -> Option<CsvMapping> {
    Some(CsvMapping {
        date: name("Date"),
        date_format: "%Y-%m-%d".into(),
        amount: name("Amount"),
        payee: name("Description"),
        category: name("Category"),
        external_id: name("Transaction ID"),
        has_header: true,
        ..Default::default()
    })
}

async fn import(c: &mut Commands, account_id: &str, csv: &str) -> ImportCsvResponse {
    c.import_csv(ImportCsvRequest {
        account_id: account_id.to_string(),
        csv: csv.to_string(),
        mapping: bank_mapping(),
        source: "mybank".into(),
        ..Default::default()
    })
    .await
    .expect("ImportCsv succeeds")
    .into_inner()
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Open an account, record, recategorize, split and delete: the balance and the transaction
/// list (paged) follow; a repeated command id answers with the first transaction. Runs with
/// `--snapshots account=2`, so commands load the account from snapshots along the way.
async fn open_record_and_balance(backend: Backend) {
    let snapshots = |config: &mut lifeos::ServerConfig| {
        config.snapshots.insert("account".to_string(), 2);
    };
    let Some(server) = TestServer::start_with(backend, snapshots).await else {
        return;
    };
    let user = Uuid::now_v7();
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));
    let acc = open(&mut c, "USD", "100").await;

    let coffee = record(&mut c, spend(&acc, "-12.3", "Coffee", utc(2026, 3, 2, 9))).await;
    let pay = RecordTransactionRequest {
        command_id: "pay-1".into(),
        category: "salary".into(),
        ..spend(&acc, "50.00", "Employer", utc(2026, 3, 3, 9))
    };
    let salary = record(&mut c, pay.clone()).await;
    let again = record(&mut c, pay).await;
    assert!(again.ack.as_ref().unwrap().duplicate);
    assert_eq!(
        again.transaction_id, salary.transaction_id,
        "the first answer"
    );

    let a = account(&mut q, &acc, &token(&salary)).await;
    assert_eq!(amount_of(&a.balance), "137.70");
    assert_eq!(a.balance.as_ref().unwrap().currency, "USD");
    assert_eq!(amount_of(&a.opening_balance), "100.00");
    assert_eq!(a.transaction_count, 2);
    let listed = transactions(&mut q, &acc, &token(&salary)).await;
    let ids: Vec<&str> = listed
        .transactions
        .iter()
        .map(|t| t.transaction_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            salary.transaction_id.as_str(),
            coffee.transaction_id.as_str()
        ],
        "newest first"
    );
    assert_eq!(amount_of(&listed.transactions[1].amount), "-12.30");
    let first_page = q
        .list_transactions(ListTransactionsRequest {
            account_id: acc.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(
        first_page.transactions[0].transaction_id,
        salary.transaction_id
    );
    assert!(!first_page.next_page_token.is_empty());
    let second_page = q
        .list_transactions(ListTransactionsRequest {
            account_id: acc.clone(),
            page_size: 1,
            page_token: first_page.next_page_token,
            ..Default::default()
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(
        second_page.transactions[0].transaction_id,
        coffee.transaction_id
    );
    assert!(second_page.next_page_token.is_empty(), "the last page");

    let ack = c
        .recategorize(RecategorizeRequest {
            account_id: acc.clone(),
            transaction_id: coffee.transaction_id.clone(),
            category: "treats".into(),
            ..Default::default()
        })
        .await
        .expect("Recategorize")
        .into_inner();
    let listed = transactions(&mut q, &acc, &ack.consistency_token).await;
    assert_eq!(listed.transactions[1].category, "treats");

    let part = |amount: &str, category: &str| TransactionSplitPart {
        amount: amount.into(),
        category: category.into(),
        note: String::new(),
    };
    let err = c
        .split_transaction(SplitTransactionRequest {
            account_id: acc.clone(),
            transaction_id: coffee.transaction_id.clone(),
            parts: vec![part("-10", "treats"), part("-2.29", "tips")],
            ..Default::default()
        })
        .await
        .expect_err("parts must sum");
    assert_invalid_field(&err, "parts");
    let ack = c
        .split_transaction(SplitTransactionRequest {
            account_id: acc.clone(),
            transaction_id: coffee.transaction_id.clone(),
            parts: vec![part("-10", "treats"), part("-2.30", "tips")],
            ..Default::default()
        })
        .await
        .expect("SplitTransaction")
        .into_inner();
    let listed = transactions(&mut q, &acc, &ack.consistency_token).await;
    assert_eq!(listed.transactions[1].parts.len(), 2);
    assert_eq!(listed.transactions[1].parts[1].amount, "-2.30");

    let deleted = c
        .delete_transaction(DeleteTransactionRequest {
            account_id: acc.clone(),
            transaction_id: coffee.transaction_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteTransaction")
        .into_inner();
    let a = account(&mut q, &acc, &deleted.consistency_token).await;
    assert_eq!(amount_of(&a.balance), "150.00");
    assert_eq!(a.transaction_count, 1);
    let err = c
        .delete_transaction(DeleteTransactionRequest {
            account_id: acc.clone(),
            transaction_id: coffee.transaction_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("already deleted");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let listed = q
        .list_accounts(ListAccountsRequest {
            consistency_token: deleted.consistency_token.clone(),
        })
        .await
        .expect("ListAccounts")
        .into_inner();
    assert_eq!(listed.accounts.len(), 1);
    assert_eq!(listed.accounts[0].account_id, acc);
    server.stop().await;
}

/// Three decimals for USD, an unknown currency, a foreign currency: INVALID_ARGUMENT naming the
/// field, and nothing is written.
async fn bad_money_names_the_field_and_writes_nothing(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let err = c
        .open_account(OpenAccountRequest {
            name: "Nope".into(),
            currency: "ABC".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown currency");
    assert_invalid_field(&err, "currency");
    let err = c
        .open_account(OpenAccountRequest {
            name: "Yen".into(),
            currency: "JPY".into(),
            opening_balance: "10.5".into(),
            ..Default::default()
        })
        .await
        .expect_err("JPY has no decimals");
    assert_invalid_field(&err, "opening_balance");

    let acc = open(&mut c, "USD", "0").await;
    let first = record(&mut c, spend(&acc, "-1.00", "Kiosk", utc(2026, 3, 2, 9))).await;
    let cases = [
        (
            spend(&acc, "-12.345", "Coffee", utc(2026, 3, 2, 9)),
            "amount",
            "USD has 2 decimals, got 3",
        ),
        (
            RecordTransactionRequest {
                amount: money("-12.34", "XYZ"),
                ..spend(&acc, "0", "Coffee", utc(2026, 3, 2, 9))
            },
            "currency",
            "ISO 4217",
        ),
        (
            RecordTransactionRequest {
                amount: money("-12.34", "EUR"),
                ..spend(&acc, "0", "Coffee", utc(2026, 3, 2, 9))
            },
            "currency",
            "the account is in USD",
        ),
        (
            spend(&acc, "12,34", "Coffee", utc(2026, 3, 2, 9)),
            "amount",
            "decimal",
        ),
        (
            spend(&acc, "1e3", "Coffee", utc(2026, 3, 2, 9)),
            "amount",
            "decimal",
        ),
        (
            RecordTransactionRequest {
                amount: None,
                ..spend(&acc, "0", "Coffee", utc(2026, 3, 2, 9))
            },
            "amount",
            "required",
        ),
        (
            spend(&acc, "-1", " ", utc(2026, 3, 2, 9)),
            "payee",
            "required",
        ),
    ];
    for (request, field, needle) in cases {
        let err = c.record_transaction(request).await.expect_err("refused");
        assert_invalid_field(&err, field);
        assert!(err.message().contains(needle), "{needle}: {err:?}");
    }
    let err = c
        .set_budget(SetBudgetRequest {
            month: "2026-03".into(),
            category: "food".into(),
            amount: money("10.001", "USD"),
            ..Default::default()
        })
        .await
        .expect_err("budget decimals");
    assert_invalid_field(&err, "amount");

    // nothing was written: one account, one transaction, its balance
    let last = record(&mut c, spend(&acc, "-2.00", "Kiosk", utc(2026, 3, 2, 10))).await;
    let a = account(&mut q, &acc, &token(&last)).await;
    assert_eq!((a.transaction_count, amount_of(&a.balance)), (2, "-3.00"));
    let listed = q
        .list_accounts(ListAccountsRequest {
            consistency_token: token(&first),
        })
        .await
        .expect("ListAccounts")
        .into_inner();
    assert_eq!(listed.accounts.len(), 1, "the refused opens wrote nothing");
    let versions = last.ack.as_ref().unwrap().version;
    assert_eq!(
        versions, 3,
        "opened + two transactions: refused commands appended nothing"
    );
    server.stop().await;
}

/// ImportCsv of tests/data/bank.csv: rows added, a bad row rejected with its line, a manual
/// transaction matched by amount + date + payee; importing again adds nothing and reports every
/// row as a duplicate with its line.
async fn import_twice_adds_nothing_the_second_time(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let acc = open(&mut c, "USD", "0").await;
    let manual = record(
        &mut c,
        spend(&acc, "-84.20", "GROCERY STORE #12", utc(2026, 3, 5, 18)),
    )
    .await;

    let request = ImportCsvRequest {
        command_id: "import-march".into(),
        account_id: acc.clone(),
        csv: BANK_CSV.into(),
        mapping: bank_mapping(),
        source: "mybank".into(),
        ..Default::default()
    };
    let first = c
        .import_csv(request.clone())
        .await
        .expect("ImportCsv")
        .into_inner();
    let repeated = c
        .import_csv(request)
        .await
        .expect("repeated ImportCsv")
        .into_inner();
    assert!(repeated.ack.as_ref().unwrap().duplicate);
    assert_eq!(
        (
            repeated.added,
            &repeated.transaction_ids,
            &repeated.duplicates
        ),
        (first.added, &first.transaction_ids, &first.duplicates),
        "a repeated command id answers with the first report"
    );
    assert_eq!(first.added, 4, "{first:?}");
    assert_eq!(first.transaction_ids.len(), 4);
    let dups: Vec<(u64, &str)> = first
        .duplicates
        .iter()
        .map(|d| (d.line, d.transaction_id.as_str()))
        .collect();
    assert_eq!(dups, [(5, manual.transaction_id.as_str())], "fuzzy match");
    let rejected: Vec<(u64, &str)> = first
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_str()))
        .collect();
    assert_eq!(rejected, [(6, "amount"), (7, "amount")]);
    assert!(
        first.rejected[0]
            .reason
            .contains("USD has 2 decimals, got 3"),
        "{:?}",
        first.rejected[0]
    );
    let token_first = first.ack.as_ref().unwrap().consistency_token.clone();
    let a = account(&mut q, &acc, &token_first).await;
    // -84.20 manual, then -3.50 -3.50 +2500 -950 imported
    assert_eq!(amount_of(&a.balance), "1458.80");
    assert_eq!(a.transaction_count, 5);

    let second = import(&mut c, &acc, BANK_CSV).await;
    assert_eq!(second.added, 0);
    assert!(second.transaction_ids.is_empty());
    let lines: Vec<u64> = second.duplicates.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 8]);
    assert_eq!(
        second.duplicates[0].transaction_id,
        first.transaction_ids[0]
    );
    assert!(
        second.duplicates[0].reason.contains("TX-1001"),
        "{:?}",
        second.duplicates[0]
    );
    assert_eq!(second.rejected.len(), 2);
    let a = account(
        &mut q,
        &acc,
        &second.ack.as_ref().unwrap().consistency_token,
    )
    .await;
    assert_eq!((a.transaction_count, amount_of(&a.balance)), (5, "1458.80"));

    // a file-level problem is one INVALID_ARGUMENT naming the mapping field
    let err = c
        .import_csv(ImportCsvRequest {
            account_id: acc.clone(),
            csv: "When,What,How much\n2026-03-02,X,-1\n".into(),
            mapping: bank_mapping(),
            ..Default::default()
        })
        .await
        .expect_err("no Date column");
    assert_invalid_field(&err, "mapping.date");
    server.stop().await;
}

fn category<'a>(lines: &'a [CategorySpending], name: &str) -> &'a CategorySpending {
    lines
        .iter()
        .find(|l| l.category == name)
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

/// Budgets for January and February (carry-over), spending in both: February's report carries
/// January's unspent amount.
async fn monthly_spending_against_budget_with_carry_over(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let acc = open(&mut c, "USD", "0").await;
    for (month, carry_over) in [("2026-01", false), ("2026-02", true)] {
        c.set_budget(SetBudgetRequest {
            month: month.into(),
            category: "food".into(),
            amount: money("100", "USD"),
            carry_over,
            ..Default::default()
        })
        .await
        .expect("SetBudget");
    }
    record(
        &mut c,
        spend(&acc, "-30.00", "Market", utc(2026, 1, 15, 12)),
    )
    .await;
    record(
        &mut c,
        spend(&acc, "5.00", "Market refund", utc(2026, 1, 20, 12)),
    )
    .await;
    record(
        &mut c,
        spend(&acc, "-50.00", "Market", utc(2026, 2, 10, 12)),
    )
    .await;
    let fun = RecordTransactionRequest {
        category: "fun".into(),
        ..spend(&acc, "-20.00", "Cinema", utc(2026, 2, 11, 12))
    };
    let fun = record(&mut c, fun).await;

    let feb = q
        .get_monthly_spending(GetMonthlySpendingRequest {
            month: "2026-02".into(),
            consistency_token: token(&fun),
        })
        .await
        .expect("GetMonthlySpending")
        .into_inner();
    assert_eq!(feb.month, "2026-02");
    assert_eq!(feb.timezone, "UTC");
    let food = category(&feb.categories, "food");
    assert_eq!(amount_of(&food.budget), "100.00");
    assert!(food.carry_over);
    // January: 100 budget, 30 out, 5 back: 75 unspent
    assert_eq!(amount_of(&food.carried_in), "75.00");
    assert_eq!(amount_of(&food.available), "175.00");
    assert_eq!(amount_of(&food.spent), "50.00");
    assert_eq!(amount_of(&food.remaining), "125.00");
    let fun = category(&feb.categories, "fun");
    assert!(fun.budget.is_none());
    assert_eq!(
        amount_of(&fun.remaining),
        "-20.00",
        "no budget: over by the spending"
    );

    let jan = q
        .get_monthly_spending(GetMonthlySpendingRequest {
            month: "2026-01".into(),
            ..Default::default()
        })
        .await
        .expect("GetMonthlySpending")
        .into_inner();
    let food = category(&jan.categories, "food");
    assert_eq!(
        (
            amount_of(&food.outflow),
            amount_of(&food.inflow),
            amount_of(&food.spent)
        ),
        ("30.00", "5.00", "25.00")
    );
    assert_eq!(
        amount_of(&food.carried_in),
        "0.00",
        "no carry_over in January"
    );
    let err = q
        .get_monthly_spending(GetMonthlySpendingRequest {
            month: "2026-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad month");
    assert_invalid_field(&err, "month");
    server.stop().await;
}

/// A transaction at 02:00 UTC belongs to the previous local day in New York.
async fn daily_rollup_in_the_users_zone(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    server
        .set_preferences(
            user,
            SetPreferencesRequest {
                timezone: Some("America/New_York".into()),
                ..Default::default()
            },
        )
        .await;
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));
    let acc = open(&mut c, "USD", "0").await;
    // 2026-03-10 02:00 UTC = 2026-03-09 22:00 EDT
    record(
        &mut c,
        spend(&acc, "-7.25", "Late dinner", utc(2026, 3, 10, 2)),
    )
    .await;
    let noon = record(&mut c, spend(&acc, "-2.75", "Coffee", utc(2026, 3, 10, 16))).await;
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let rollup = q
        .get_daily_rollup(GetFinanceDailyRollupRequest {
            from_day: day_id(day(8)),
            to_day: day_id(day(10)),
            consistency_token: token(&noon),
        })
        .await
        .expect("GetDailyRollup")
        .into_inner();
    assert_eq!(rollup.timezone, "America/New_York");
    let days: Vec<(&str, Vec<(&str, &str)>)> = rollup
        .days
        .iter()
        .map(|d| {
            (
                d.day.as_str(),
                d.categories
                    .iter()
                    .map(|f| (f.category.as_str(), amount_of(&f.outflow)))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-03-08", vec![]),
            ("2026-03-09", vec![("food", "7.25")]),
            ("2026-03-10", vec![("food", "2.75")]),
        ]
    );
    let err = q
        .get_daily_rollup(GetFinanceDailyRollupRequest {
            from_day: "2026-03-10".into(),
            to_day: "2026-03-01".into(),
            ..Default::default()
        })
        .await
        .expect_err("backwards range");
    assert_invalid_field(&err, "to_day");
    server.stop().await;
}

/// Another user's account is NOT_FOUND for every command and query, and stays untouched.
async fn other_users_account_is_not_found(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut a, mut aq) = (commands(&server, alice), queries(&server, alice));
    let (mut b, mut bq) = (commands(&server, bob), queries(&server, bob));
    let acc = open(&mut a, "USD", "10").await;
    let tx = record(&mut a, spend(&acc, "-1.00", "Kiosk", utc(2026, 3, 2, 9))).await;
    let results = [
        b.record_transaction(spend(&acc, "-1.00", "Kiosk", utc(2026, 3, 2, 9)))
            .await
            .map(|_| ()),
        b.recategorize(RecategorizeRequest {
            account_id: acc.clone(),
            transaction_id: tx.transaction_id.clone(),
            category: "x".into(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.delete_transaction(DeleteTransactionRequest {
            account_id: acc.clone(),
            transaction_id: tx.transaction_id.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.import_csv(ImportCsvRequest {
            account_id: acc.clone(),
            csv: BANK_CSV.into(),
            mapping: bank_mapping(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        bq.get_account(GetAccountRequest {
            account_id: acc.clone(),
            consistency_token: token(&tx),
        })
        .await
        .map(|_| ()),
        bq.list_transactions(ListTransactionsRequest {
            account_id: acc.clone(),
            consistency_token: token(&tx),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        a.delete_transaction(DeleteTransactionRequest {
            account_id: acc.clone(),
            transaction_id: Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
    ];
    for result in results {
        let err = result.expect_err("not found");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    let listed = bq
        .list_accounts(ListAccountsRequest {
            consistency_token: token(&tx),
        })
        .await
        .expect("ListAccounts")
        .into_inner();
    assert!(listed.accounts.is_empty());
    let mine = account(&mut aq, &acc, &token(&tx)).await;
    assert_eq!(
        (mine.transaction_count, amount_of(&mine.balance)),
        (1, "9.00")
    );
    server.stop().await;
}

/// `commands.finance.*` and `queries.finance.*` answer over NATS with the gRPC handlers.
async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let jwt = server.token(user);

    let (code, opened) = nats
        .call(
            "commands.finance.open_account",
            &jwt,
            json!({"name": "Wallet", "currency": "EUR", "openingBalance": "20"}),
        )
        .await;
    assert_eq!(code, None, "{opened}");
    let acc = opened["accountId"].as_str().expect("accountId").to_string();

    let (code, bad) = nats
        .call(
            "commands.finance.record",
            &jwt,
            json!({"accountId": acc, "amount": {"amount": "-1.005", "currency": "EUR"}, "payee": "X"}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(bad["field_violations"][0]["field"], "amount", "{bad}");

    let recorded = record(
        &mut commands(server, user),
        RecordTransactionRequest {
            amount: money("-4.50", "EUR"),
            ..spend(&acc, "0", "Bakery", utc(2026, 3, 2, 9))
        },
    )
    .await;
    let (code, account) = nats
        .call(
            "queries.finance.account",
            &jwt,
            json!({"accountId": acc, "consistencyToken": token(&recorded)}),
        )
        .await;
    assert_eq!(code, None, "{account}");
    assert_eq!(account["balance"]["amount"], "15.50", "{account}");
    assert_eq!(account["balance"]["currency"], "EUR", "{account}");
    nats.stop().await;
}
