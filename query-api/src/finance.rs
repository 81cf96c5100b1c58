//! `lifeos.v1.FinanceQueries`: the finance_accounts, finance_monthly and finance_daily read
//! models over gRPC.
//!
//! ListAccounts, GetAccount and ListTransactions read `finance_accounts` (balances are kept by
//! the projection); GetMonthlySpending reads `finance_monthly` and computes the comparison with
//! the budget and the carry-over chain at query time (`FinanceMonthly::report`);
//! GetDailyRollup reads `finance_daily`. Each waits on its own model's consistency.

use aggregates::finance::budget::parse_month;
use aggregates::finance::money::Currency;
use api_common::status::domain_status;
use api_common::time::to_timestamp;
use api_common::{Caller, parse_uuid_field};
use projections::ReadModels;
use projections::finance_accounts::{AccountView, FinanceAccounts, TransactionView};
use projections::finance_daily::{DaySpend, FinanceDaily};
use projections::finance_monthly::{FinanceMonthly, MonthLine};
use proto::v1::finance_queries_server::FinanceQueries;
use proto::v1::{
    CategorySpending, FinanceAccount, FinanceCategoryFlow, FinanceDailyRollup, FinanceDay,
    FinanceTransaction, GetAccountRequest, GetFinanceDailyRollupRequest, GetMonthlySpendingRequest,
    ListAccountsRequest, ListAccountsResponse, ListTransactionsRequest, ListTransactionsResponse,
    Money, MonthlySpending, TransactionSplitPart,
};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;
use crate::fields::{
    bounded, clock_and_days, decode_cursor, encode_cursor, read_error, rollup_range,
};

/// Default page size of ListTransactions.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size of ListTransactions.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The most accounts ListAccounts returns.
pub const MAX_ACCOUNTS: usize = 1000;

/// The Finance query service.
#[derive(Clone)]
pub struct FinanceQueryService {
    models: ReadModels,
    accounts: ReadYourWrites,
    monthly: ReadYourWrites,
    daily: ReadYourWrites,
}

impl FinanceQueryService {
    /// Answers from `models`, waiting on `accounts` (finance_accounts), `monthly`
    /// (finance_monthly) or `daily` (finance_daily) for consistency tokens.
    pub fn new(
        models: ReadModels,
        accounts: ReadYourWrites,
        monthly: ReadYourWrites,
        daily: ReadYourWrites,
    ) -> Self {
        Self {
            models,
            accounts,
            monthly,
            daily,
        }
    }
}

/// The wire form of an amount in `currency`, with exactly its minor units (`0.00` USD).
pub fn money_to_wire(amount: Decimal, currency: Currency) -> Money {
    let mut amount = amount;
    amount.rescale(currency.minor_units());
    Money {
        amount: amount.to_string(),
        currency: currency.code().to_string(),
    }
}

fn account_to_proto(a: AccountView) -> FinanceAccount {
    FinanceAccount {
        account_id: a.account_id.to_string(),
        name: a.name,
        balance: Some(money_to_wire(a.balance, a.currency)),
        opening_balance: Some(money_to_wire(a.opening_balance, a.currency)),
        transaction_count: a.transaction_count,
        opened_at: Some(to_timestamp(a.opened_at)),
    }
}

fn transaction_to_proto(t: TransactionView) -> FinanceTransaction {
    FinanceTransaction {
        transaction_id: t.transaction_id.to_string(),
        account_id: t.account_id.to_string(),
        amount: Some(money_to_wire(t.amount, t.currency)),
        occurred_at: Some(to_timestamp(t.occurred_at)),
        payee: t.payee,
        category: t.category,
        note: t.note,
        receipt_ref: t.receipt.unwrap_or_default(),
        source: t.source,
        external_id: t.external_id.unwrap_or_default(),
        parts: t
            .parts
            .into_iter()
            .map(|p| TransactionSplitPart {
                amount: p.amount.to_string(),
                category: p.category,
                note: p.note,
            })
            .collect(),
        recorded_at: Some(to_timestamp(t.recorded_at)),
    }
}

fn line_to_proto(l: MonthLine) -> CategorySpending {
    let m = |amount| Some(money_to_wire(amount, l.currency));
    CategorySpending {
        category: l.category.clone(),
        budget: l
            .budget
            .as_ref()
            .map(|b| money_to_wire(b.amount, b.currency)),
        carry_over: l.budget.as_ref().is_some_and(|b| b.carry_over),
        carried_in: m(l.carried_in),
        available: m(l.available),
        outflow: m(l.outflow),
        inflow: m(l.inflow),
        spent: m(l.spent),
        remaining: m(l.remaining),
    }
}

fn day_to_proto(d: DaySpend) -> FinanceDay {
    FinanceDay {
        day: projections::daily::day_id(d.day),
        categories: d
            .categories
            .0
            .into_values()
            .map(|f| FinanceCategoryFlow {
                category: f.category,
                outflow: Some(money_to_wire(f.outflow, f.currency)),
                inflow: Some(money_to_wire(f.inflow, f.currency)),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl FinanceQueries for FinanceQueryService {
    async fn list_accounts(
        &self,
        request: Request<ListAccountsRequest>,
    ) -> Result<Response<ListAccountsResponse>, Status> {
        let caller = Caller::of(&request)?;
        self.accounts
            .wait(&request.get_ref().consistency_token)
            .await?;
        let accounts = FinanceAccounts::accounts(&self.models, caller.user_id, MAX_ACCOUNTS)
            .await
            .map_err(read_error)?;
        Ok(Response::new(ListAccountsResponse {
            accounts: accounts.into_iter().map(account_to_proto).collect(),
        }))
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<FinanceAccount>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        self.accounts.wait(&r.consistency_token).await?;
        FinanceAccounts::account(&self.models, caller.user_id, account_id)
            .await
            .map_err(read_error)?
            .map(|a| Response::new(account_to_proto(a)))
            .ok_or_else(|| Status::not_found(format!("account {account_id} not found")))
    }

    async fn list_transactions(
        &self,
        request: Request<ListTransactionsRequest>,
    ) -> Result<Response<ListTransactionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let page_size = bounded("page_size", r.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = decode_cursor(&r.page_token, "ListTransactions")?;
        self.accounts.wait(&r.consistency_token).await?;
        let user = caller.user_id;
        if FinanceAccounts::account(&self.models, user, account_id)
            .await
            .map_err(read_error)?
            .is_none()
        {
            return Err(Status::not_found(format!("account {account_id} not found")));
        }
        let (transactions, next) = FinanceAccounts::transactions(
            &self.models,
            user,
            account_id,
            cursor.as_ref(),
            page_size,
        )
        .await
        .map_err(read_error)?;
        Ok(Response::new(ListTransactionsResponse {
            transactions: transactions.into_iter().map(transaction_to_proto).collect(),
            next_page_token: next.as_ref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn get_monthly_spending(
        &self,
        request: Request<GetMonthlySpendingRequest>,
    ) -> Result<Response<MonthlySpending>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let first_day = parse_month("month", &r.month).map_err(domain_status)?;
        self.monthly.wait(&r.consistency_token).await?;
        let clock = FinanceMonthly::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let lines = FinanceMonthly::report(&self.models, caller.user_id, first_day)
            .await
            .map_err(read_error)?;
        Ok(Response::new(MonthlySpending {
            month: r.month,
            categories: lines.into_iter().map(line_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }

    async fn get_daily_rollup(
        &self,
        request: Request<GetFinanceDailyRollupRequest>,
    ) -> Result<Response<FinanceDailyRollup>, Status> {
        let (caller, from, to) = rollup_range(&request, &self.daily).await?;
        let user = caller.user_id;
        let (clock, days) = clock_and_days(
            FinanceDaily::clock(&self.models, user),
            FinanceDaily::days(&self.models, user, from, to),
        )
        .await?;
        Ok(Response::new(FinanceDailyRollup {
            days: days.into_iter().map(day_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}
