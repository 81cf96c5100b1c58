//! `finance_monthly`: per user and **local** month, the money per currency and category, and
//! the month's budget lines; [`FinanceMonthly::report`] compares them, carry-over included.
//!
//! Rows (besides the user's clock, see [`crate::daily`]):
//! - one per month with transactions (group [`MONTH`], row id `month:YYYY-MM`, sort key
//!   `YYYY-MM`): [`MonthSpend`], the month being the local month of the transaction's local day
//!   (preferences time zone and day start), folded like `finance_daily` (a transaction stays in
//!   the month it was first put in: [`TransactionDay`]);
//! - one per month with a budget (group [`BUDGET`], row id `budget:YYYY-MM`, sort key
//!   `YYYY-MM`): [`MonthBudget`], the lines of the `budget` aggregate.
//!
//! **Carry-over**, computed at query time (a budget set or a transaction recorded late changes
//! every later month, so nothing derived is stored). For one currency and category, with
//! `spent(m) = outflow - inflow` in month `m`:
//! - `available(m) = budget(m) + carried_in(m)`;
//! - `carried_in(m) = max(0, available(m-1) - spent(m-1))` when month `m`'s line has
//!   `carry_over` and month `m-1` has a line for that category in the same currency, else 0;
//! - so unspent money flows along an unbroken chain of budgeted months (overspending is not
//!   carried as a debt; a month without a line, or a line of zero, ends the chain);
//! - the chain is followed back at most [`CARRY_MONTHS`] months (older months count as not
//!   budgeted).

use std::collections::{BTreeMap, BTreeSet};

use aggregates::finance::account::{Account, AccountEvent};
use aggregates::finance::budget::{Budget, BudgetEvent, BudgetLine, month_id};
use aggregates::finance::money::Currency;
use aggregates::preferences::UserPreferences;
use chrono::{Months, NaiveDate};
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, UserClock};
use crate::finance_daily::occurred_at;
use crate::finance_flows::{CategoryFlows, TransactionDay};
use crate::{Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet};

/// Row group of the monthly spending rows.
pub const MONTH: &str = "month";
/// Row group of the monthly budget rows.
pub const BUDGET: &str = "budget";
/// How many months before the asked one the carry-over chain is followed.
pub const CARRY_MONTHS: u32 = 24;

/// Money per category in one local month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthSpend {
    /// `YYYY-MM`.
    pub month: String,
    /// Per currency and category.
    pub categories: CategoryFlows,
}

/// A month's budget lines by category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthBudget {
    /// `YYYY-MM`.
    pub month: String,
    /// Lines by category.
    pub lines: BTreeMap<String, BudgetLine>,
}

/// One category of a month's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthLine {
    /// The category.
    pub category: String,
    /// The currency.
    pub currency: Currency,
    /// The month's budget line, if any (zero counts as none).
    pub budget: Option<BudgetLine>,
    /// Unspent money carried in from the previous month.
    pub carried_in: Decimal,
    /// Budget plus carried in.
    pub available: Decimal,
    /// Money out (positive).
    pub outflow: Decimal,
    /// Money in (positive).
    pub inflow: Decimal,
    /// `outflow - inflow`.
    pub spent: Decimal,
    /// `available - spent` (negative: over budget).
    pub remaining: Decimal,
}

/// The `finance_monthly` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinanceMonthly;

fn month_key(user: Uuid, group: &str, month: &str) -> RowKey {
    RowKey::new(user, format!("{group}:{month}"))
}

impl FinanceMonthly {
    /// `user_id`'s clock as this model knows it.
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &FinanceMonthly, user_id).await
    }

    /// The month of `first_day` (any day of it) for `user_id`: every category budgeted or with
    /// money that month, by currency then category.
    pub async fn report(
        rows: &impl RowReader,
        user_id: Uuid,
        first_day: NaiveDate,
    ) -> Result<Vec<MonthLine>, ProjectionError> {
        let month = month_id(first_day);
        let start = first_day
            .checked_sub_months(Months::new(CARRY_MONTHS))
            .unwrap_or(first_day);
        let months: Vec<String> = (0..=CARRY_MONTHS)
            .filter_map(|i| start.checked_add_months(Months::new(i)))
            .map(month_id)
            .filter(|m| *m <= month)
            .collect();
        let spends: BTreeMap<String, MonthSpend> =
            Self::window(rows, user_id, MONTH, &months).await?;
        let budgets: BTreeMap<String, MonthBudget> =
            Self::window(rows, user_id, BUDGET, &months).await?;
        Ok(compute_report(&months, &spends, &budgets))
    }

    async fn window<T: serde::de::DeserializeOwned>(
        rows: &impl RowReader,
        user_id: Uuid,
        group: &str,
        months: &[String],
    ) -> Result<BTreeMap<String, T>, ProjectionError> {
        let (Some(first), Some(last)) = (months.first(), months.last()) else {
            return Ok(BTreeMap::new());
        };
        let cursor = RowCursor {
            sort_key: first.clone(),
            row_id: String::new(),
        };
        let page = rows
            .list_rows(
                &FinanceMonthly,
                user_id,
                &[group],
                Some(&cursor),
                months.len(),
            )
            .await?;
        page.into_iter()
            .filter(|r| r.sort_key <= *last)
            .map(|r| Ok((r.sort_key.clone(), r.decode()?)))
            .collect()
    }
}

/// The report of the last of `months` (consecutive, oldest first), following the carry-over
/// chain through the earlier ones (see the module docs).
pub fn compute_report(
    months: &[String],
    spends: &BTreeMap<String, MonthSpend>,
    budgets: &BTreeMap<String, MonthBudget>,
) -> Vec<MonthLine> {
    let Some(month) = months.last() else {
        return Vec::new();
    };
    let line_of = |m: &str, currency: Currency, category: &str| {
        budgets
            .get(m)
            .and_then(|b| b.lines.get(category))
            .filter(|l| l.currency == currency && !l.amount.is_zero())
            .cloned()
    };
    let flows_of = |m: &str, currency: Currency, category: &str| {
        spends
            .get(m)
            .and_then(|s| s.categories.get(currency, category))
            .map_or((Decimal::ZERO, Decimal::ZERO), |f| (f.outflow, f.inflow))
    };
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    if let Some(b) = budgets.get(month) {
        for (category, line) in &b.lines {
            if !line.amount.is_zero() {
                keys.insert((line.currency.code().to_string(), category.clone()));
            }
        }
    }
    if let Some(s) = spends.get(month) {
        for flow in s.categories.0.values() {
            keys.insert((flow.currency.code().to_string(), flow.category.clone()));
        }
    }
    keys.into_iter()
        .filter_map(|(code, category)| {
            let currency: Currency = code.parse().ok()?;
            let mut left: Option<Decimal> = None;
            let mut carried_in = Decimal::ZERO;
            let mut available = Decimal::ZERO;
            for m in months {
                let (outflow, inflow) = flows_of(m, currency, &category);
                match line_of(m, currency, &category) {
                    Some(line) => {
                        carried_in = if line.carry_over {
                            left.unwrap_or_default().max(Decimal::ZERO)
                        } else {
                            Decimal::ZERO
                        };
                        available = line.amount + carried_in;
                        left = Some(available - (outflow - inflow));
                    }
                    None => {
                        carried_in = Decimal::ZERO;
                        available = Decimal::ZERO;
                        left = None;
                    }
                }
            }
            let (outflow, inflow) = flows_of(month, currency, &category);
            let spent = outflow - inflow;
            Some(MonthLine {
                budget: line_of(month, currency, &category),
                category,
                currency,
                carried_in,
                available,
                outflow,
                inflow,
                spent,
                remaining: available - spent,
            })
        })
        .collect()
}

impl Projection for FinanceMonthly {
    fn name(&self) -> &'static str {
        "finance_monthly"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Account::TYPE, Budget::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        let Some(user) = event.user_id else {
            return Vec::new();
        };
        match event.aggregate_type.as_str() {
            Account::TYPE => match occurred_at(event) {
                Some(at) => {
                    let months: BTreeSet<String> = daily::candidate_days(at)
                        .into_iter()
                        .map(month_id)
                        .collect();
                    let mut keys = vec![UserClock::key(user)];
                    keys.extend(TransactionDay::key_of(event));
                    keys.extend(months.iter().map(|m| month_key(user, MONTH, m)));
                    keys
                }
                None => Vec::new(),
            },
            Budget::TYPE => event
                .payload
                .pointer("/BudgetSet/month")
                .and_then(|m| m.as_str())
                .map(|m| vec![month_key(user, BUDGET, m)])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if UserClock::fold(&model, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let is_account = event.aggregate_type == Account::TYPE;
        if !is_account && event.aggregate_type != Budget::TYPE {
            return Ok(());
        }
        let user = event
            .user_id
            .ok_or_else(|| poison(format!("{} event without a user id", event.aggregate_type)))?;
        if !is_account {
            let BudgetEvent::BudgetSet {
                month,
                category,
                line,
                ..
            } = crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
            let key = month_key(user, BUDGET, &month);
            let mut budget: MonthBudget = match rows.get(&key) {
                Some(row) => row.decode()?,
                None => MonthBudget {
                    month: month.clone(),
                    lines: BTreeMap::new(),
                },
            };
            budget.lines.insert(category, line);
            rows.put(Row::new(key, BUDGET, month, &budget)?);
            return Ok(());
        }
        let payload: AccountEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let Some(change) = payload.allocation_change() else {
            return Ok(());
        };
        let clock = UserClock::get(rows, user)?;
        let tx_key = TransactionDay::key_of(event)
            .ok_or_else(|| poison("transaction event without a transaction id".to_string()))?;
        let day = TransactionDay::settle(rows, tx_key, &clock, &change)?;
        daily::loaded_day(day, change.occurred_at, &clock).map_err(poison)?;
        let month = month_id(day);
        let key = month_key(user, MONTH, &month);
        let mut spend: MonthSpend = match rows.get(&key) {
            Some(row) => row.decode()?,
            None => MonthSpend {
                month: month.clone(),
                categories: CategoryFlows::default(),
            },
        };
        spend.categories.apply(&change);
        rows.put(Row::new(key, MONTH, month, &spend)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finance_flows::Flow;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn usd() -> Currency {
        "USD".parse().unwrap()
    }

    fn budget(month: &str, amount: &str, carry_over: bool) -> (String, MonthBudget) {
        let mut lines = BTreeMap::new();
        lines.insert(
            "food".to_string(),
            BudgetLine {
                amount: dec(amount),
                currency: usd(),
                carry_over,
            },
        );
        (
            month.to_string(),
            MonthBudget {
                month: month.to_string(),
                lines,
            },
        )
    }

    fn spend(month: &str, outflow: &str) -> (String, MonthSpend) {
        let mut categories = CategoryFlows::default();
        categories.0.insert(
            "USD:food".into(),
            Flow {
                currency: usd(),
                category: "food".into(),
                outflow: dec(outflow),
                inflow: Decimal::ZERO,
            },
        );
        (
            month.to_string(),
            MonthSpend {
                month: month.to_string(),
                categories,
            },
        )
    }

    fn months(list: &[&str]) -> Vec<String> {
        list.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn unspent_money_carries_along_a_chain_of_budgeted_months() {
        let ms = months(&["2026-01", "2026-02", "2026-03"]);
        let budgets = BTreeMap::from([
            budget("2026-01", "100", false),
            budget("2026-02", "100", true),
            budget("2026-03", "100", true),
        ]);
        let spends = BTreeMap::from([
            spend("2026-01", "70"),
            spend("2026-02", "90"),
            spend("2026-03", "20"),
        ]);
        let report = compute_report(&ms, &spends, &budgets);
        assert_eq!(report.len(), 1);
        let food = &report[0];
        // January leaves 30; February has 130, spends 90, leaves 40; March has 140
        assert_eq!(food.carried_in, dec("40"));
        assert_eq!(food.available, dec("140"));
        assert_eq!(food.spent, dec("20"));
        assert_eq!(food.remaining, dec("120"));
    }

    #[test]
    fn overspending_and_gaps_carry_nothing() {
        let ms = months(&["2026-01", "2026-02", "2026-03"]);
        let budgets = BTreeMap::from([
            budget("2026-01", "100", false),
            budget("2026-03", "100", true),
        ]);
        let spends = BTreeMap::from([spend("2026-01", "10")]);
        let report = compute_report(&ms, &spends, &budgets);
        assert_eq!(
            report[0].carried_in,
            Decimal::ZERO,
            "February had no budget"
        );

        let budgets = BTreeMap::from([
            budget("2026-02", "100", false),
            budget("2026-03", "100", true),
        ]);
        let spends = BTreeMap::from([spend("2026-02", "150"), spend("2026-03", "5")]);
        let report = compute_report(&ms, &spends, &budgets);
        assert_eq!(report[0].carried_in, Decimal::ZERO, "no debt is carried");
        assert_eq!(report[0].remaining, dec("95"));
    }

    #[test]
    fn spending_without_a_budget_is_listed() {
        let ms = months(&["2026-03"]);
        let spends = BTreeMap::from([spend("2026-03", "12.50")]);
        let report = compute_report(&ms, &spends, &BTreeMap::new());
        assert_eq!(report[0].budget, None);
        assert_eq!(report[0].remaining, dec("-12.50"));
    }
}
