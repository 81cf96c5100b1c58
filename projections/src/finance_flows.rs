//! Money per category, as the finance rollups (`finance_daily`, `finance_monthly`) keep it.
//!
//! A flow is keyed by currency and category (a user may have accounts in several currencies;
//! sums never mix them). Money out and money in are kept apart as positive amounts; "spent" is
//! their difference (`outflow - inflow`), so a refund in a category lowers its spending.
//! Transaction events are folded through their `AllocationChange` (the allocations removed and
//! added), so recategorizing, splitting and deleting move money between categories exactly.
//!
//! Each rollup also remembers the local day it put a transaction in ([`TransactionDay`], one
//! small row per live transaction), so a later recategorize, split or delete moves the money of
//! that same day even when the user's time zone or day start changed in between.

use std::collections::BTreeMap;

use aggregates::finance::account::{Allocation, AllocationChange};
use aggregates::finance::money::Currency;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::UserClock;
use crate::{ProjectionError, Row, RowKey, RowSet, payload_field};

/// Row group of the per-transaction day rows.
pub const TRANSACTION_DAY: &str = "tx";

/// The local day a rollup put a transaction in (row id `tx:<transaction id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionDay {
    /// The local day.
    pub day: NaiveDate,
}

impl TransactionDay {
    /// The row key of `transaction_id`'s day.
    pub fn key(user_id: Uuid, transaction_id: Uuid) -> RowKey {
        RowKey::new(user_id, format!("tx:{transaction_id}"))
    }

    /// The key a transaction event touches (for a projection's `keys`).
    pub fn key_of(event: &LoggedEvent) -> Option<RowKey> {
        let tx: Uuid = payload_field(&event.payload, "transaction_id")?;
        Some(Self::key(event.user_id?, tx))
    }

    /// The day of `change`'s transaction: the remembered one, else its local day on `clock`
    /// (a first event). Remembers it, or forgets it when `change` removes the transaction.
    pub fn settle(
        rows: &mut RowSet,
        key: RowKey,
        clock: &UserClock,
        change: &AllocationChange,
    ) -> Result<NaiveDate, ProjectionError> {
        let day = match rows.get(&key) {
            Some(row) => row.decode::<Self>()?.day,
            None => clock.day_of(change.occurred_at),
        };
        if change.after.is_empty() {
            rows.delete(&key);
        } else if rows.get(&key).is_none() {
            rows.put(Row::new(key, TRANSACTION_DAY, "", &Self { day })?);
        }
        Ok(day)
    }
}

/// Money of one currency and category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The currency.
    pub currency: Currency,
    /// The category.
    pub category: String,
    /// Money out, as a positive amount.
    pub outflow: Decimal,
    /// Money in, as a positive amount.
    pub inflow: Decimal,
}

impl Flow {
    /// Net spending: `outflow - inflow` (negative when more came in).
    pub fn spent(&self) -> Decimal {
        self.outflow - self.inflow
    }
}

/// Flows by `<currency>:<category>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryFlows(pub BTreeMap<String, Flow>);

impl CategoryFlows {
    /// Applies `change`: its `before` allocations taken away, its `after` ones added.
    pub fn apply(&mut self, change: &AllocationChange) {
        for a in &change.before {
            self.add(change.currency, a, -Decimal::ONE);
        }
        for a in &change.after {
            self.add(change.currency, a, Decimal::ONE);
        }
    }

    fn add(&mut self, currency: Currency, allocation: &Allocation, sign: Decimal) {
        let key = format!("{currency}:{}", allocation.category);
        let flow = self.0.entry(key.clone()).or_insert_with(|| Flow {
            currency,
            category: allocation.category.clone(),
            outflow: Decimal::ZERO,
            inflow: Decimal::ZERO,
        });
        if allocation.amount.is_sign_negative() {
            flow.outflow -= allocation.amount * sign;
        } else {
            flow.inflow += allocation.amount * sign;
        }
        if flow.outflow.is_zero() && flow.inflow.is_zero() {
            self.0.remove(&key);
        }
    }

    /// The flow of `category` in `currency`, if any.
    pub fn get(&self, currency: Currency, category: &str) -> Option<&Flow> {
        self.0.get(&format!("{currency}:{category}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn alloc(category: &str, amount: &str) -> Allocation {
        Allocation {
            category: category.into(),
            amount: amount.parse().unwrap(),
        }
    }

    #[test]
    fn changes_move_money_between_categories() {
        let usd: Currency = "USD".parse().unwrap();
        let change = |before, after| AllocationChange {
            occurred_at: Utc::now(),
            currency: usd,
            before,
            after,
        };
        let mut flows = CategoryFlows::default();
        flows.apply(&change(vec![], vec![alloc("food", "-10.00")]));
        flows.apply(&change(vec![], vec![alloc("food", "2.50")]));
        let food = flows.get(usd, "food").unwrap();
        assert_eq!(
            (food.outflow.to_string(), food.spent().to_string()),
            ("10.00".into(), "7.50".into())
        );
        // split the 10.00 into food 6 + home 4
        flows.apply(&change(
            vec![alloc("food", "-10.00")],
            vec![alloc("food", "-6.00"), alloc("home", "-4.00")],
        ));
        assert_eq!(flows.get(usd, "food").unwrap().outflow.to_string(), "6.00");
        assert_eq!(flows.get(usd, "home").unwrap().outflow.to_string(), "4.00");
        // delete the home part's transaction entirely: the empty flow disappears
        flows.apply(&change(vec![alloc("home", "-4.00")], vec![]));
        assert!(flows.get(usd, "home").is_none());
    }
}
