//! `finance_daily`: one row per user per **local** day — money out and in per currency and
//! category, of the transactions that happened that day.
//!
//! The day is the local day of the transaction's time (`occurred_at`, not when it was
//! recorded) in the user's clock ([`UserClock`]: preferences time zone and day start), kept from
//! the `preferences` events like `focus_daily` (see [`crate::daily`]). Recategorizing,
//! splitting and deleting move the money of the day the transaction was first put in
//! ([`CategoryFlows`], [`TransactionDay`]).

use aggregates::finance::account::{Account, AccountEvent};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::finance_flows::{CategoryFlows, TransactionDay};
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet, payload_field};

/// One user's money on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpend {
    /// The local day.
    pub day: NaiveDate,
    /// Per currency and category.
    pub categories: CategoryFlows,
}

impl DaySpend {
    /// A day with nothing in it.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            categories: CategoryFlows::default(),
        }
    }
}

/// The `finance_daily` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinanceDaily;

impl FinanceDaily {
    /// `user_id`'s clock as this model knows it.
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &FinanceDaily, user_id).await
    }

    /// Every day from `from` to `to` (both included), empty days filled in.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DaySpend>, ProjectionError> {
        let day_of = |d: &DaySpend| d.day;
        daily::filled_days(
            rows,
            &FinanceDaily,
            user_id,
            (from, to),
            day_of,
            DaySpend::empty,
        )
        .await
    }
}

/// The time a transaction event counts at (None for other events).
pub(crate) fn occurred_at(event: &LoggedEvent) -> Option<DateTime<Utc>> {
    payload_field(&event.payload, "occurred_at")
}

impl Projection for FinanceDaily {
    fn name(&self) -> &'static str {
        "finance_daily"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Account::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        daily::rollup_keys(event, Account::TYPE, occurred_at, |user, at| {
            let mut keys = vec![UserClock::key(user)];
            keys.extend(TransactionDay::key_of(event));
            keys.extend(daily::day_keys(user, at));
            keys
        })
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, Account::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: AccountEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let Some(change) = payload.allocation_change() else {
            return Ok(());
        };
        let user = event
            .user_id
            .ok_or_else(|| poison("account event without a user id".to_string()))?;
        let clock = UserClock::get(rows, user)?;
        let tx_key = TransactionDay::key_of(event)
            .ok_or_else(|| poison("transaction event without a transaction id".to_string()))?;
        let day = TransactionDay::settle(rows, tx_key, &clock, &change)?;
        daily::loaded_day(day, change.occurred_at, &clock).map_err(poison)?;
        let key = daily::day_key(user, day);
        let mut spend: DaySpend = match rows.get(&key) {
            Some(row) => row.decode()?,
            None => DaySpend::empty(day),
        };
        spend.categories.apply(&change);
        rows.put(Row::new(key, DAY_GROUP, daily::day_id(day), &spend)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::finance::account::Allocation;
    use aggregates::preferences::{PreferencesEvent, PreferencesPatch};
    use chrono::TimeZone;
    use cqrs_es::DomainEvent;
    use rust_decimal::Decimal;
    use store::Position;

    const USER: Uuid = Uuid::from_u128(0xa11ce);
    const TX: Uuid = Uuid::from_u128(0x7001);

    fn logged<E: DomainEvent>(aggregate_type: &str, event: &E) -> LoggedEvent {
        LoggedEvent {
            position: Position::default(),
            event_id: Uuid::now_v7(),
            user_id: Some(USER),
            recorded_at: Utc::now(),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: "x".to_string(),
            sequence: 1,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(event).unwrap(),
            metadata: serde_json::json!({}),
        }
    }

    /// Folds `events` in order into one in-memory row set (all rows stay loaded).
    fn fold(events: &[LoggedEvent]) -> RowSet {
        let mut rows = RowSet::default();
        for e in events {
            FinanceDaily.apply(e, &mut rows).unwrap();
        }
        rows
    }

    fn day_outflow(rows: &RowSet, day: NaiveDate, category: &str) -> Option<Decimal> {
        let spend: DaySpend = rows.get(&daily::day_key(USER, day))?.decode().unwrap();
        let usd = "USD".parse().unwrap();
        spend.categories.get(usd, category).map(|f| f.outflow)
    }

    #[test]
    fn later_changes_move_money_of_the_day_first_used() {
        let usd = "USD".parse().unwrap();
        // 2026-03-10 02:00 UTC: the 10th in UTC, the 10th 16:00 in Kiritimati (+14) too, but
        // the 9th in New York
        let at = Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).unwrap();
        let zone = |tz: &str| {
            logged(
                "preferences",
                &PreferencesEvent::PreferencesSet {
                    user_id: USER,
                    changes: PreferencesPatch {
                        timezone: Some(tz.to_string()),
                        ..Default::default()
                    },
                    at,
                },
            )
        };
        let recorded = AccountEvent::AccountTransactionRecorded {
            transaction_id: TX,
            amount: Decimal::new(-725, 2),
            currency: usd,
            occurred_at: at,
            payee: "Dinner".into(),
            category: "food".into(),
            note: String::new(),
            receipt: None,
            source: "manual".into(),
            external_id: None,
            import_line: None,
            recorded_at: at,
        };
        let moved = AccountEvent::AccountTransactionRecategorized {
            transaction_id: TX,
            currency: usd,
            occurred_at: at,
            category: "treats".into(),
            before: vec![Allocation {
                category: "food".into(),
                amount: Decimal::new(-725, 2),
            }],
            at,
        };
        let rows = fold(&[
            zone("America/New_York"),
            logged("account", &recorded),
            zone("UTC"),
            logged("account", &moved),
        ]);
        let ninth = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        let tenth = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        assert_eq!(
            day_outflow(&rows, ninth, "treats"),
            Some(Decimal::new(725, 2))
        );
        assert_eq!(day_outflow(&rows, ninth, "food"), None, "moved away");
        assert_eq!(day_outflow(&rows, tenth, "food"), None, "never on the 10th");
        assert_eq!(day_outflow(&rows, tenth, "treats"), None);
    }
}
