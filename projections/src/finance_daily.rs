//! `finance_daily`: one row per user per **local** day — money out and in per currency and
//! category, of the transactions that happened that day.
//!
//! The day is the local day of the transaction's time (`occurred_at`, not when it was
//! recorded) in the user's clock ([`UserClock`]: preferences time zone and day start), kept from
//! the `preferences` events like `focus_daily` (see [`crate::daily`]). Recategorizing,
//! splitting and deleting move the money of that same day ([`CategoryFlows`]), found with the
//! clock as it is when they are folded: like every rollup here, a zone changed in between does
//! not re-bucket (the moved money then leaves the day the new clock names).

use std::collections::BTreeMap;

use aggregates::finance::account::{Account, AccountEvent};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::finance_flows::CategoryFlows;
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet};

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
        let mut stored: BTreeMap<NaiveDate, DaySpend> = BTreeMap::new();
        for row in daily::list_days(rows, &FinanceDaily, user_id, from, to).await? {
            let day: DaySpend = row.decode()?;
            stored.insert(day.day, day);
        }
        Ok(from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| stored.remove(&d).unwrap_or_else(|| DaySpend::empty(d)))
            .collect())
    }
}

/// The time a transaction event counts at (None for other events).
pub(crate) fn occurred_at(event: &LoggedEvent) -> Option<DateTime<Utc>> {
    let (_, fields) = event.payload.as_object()?.iter().next()?;
    serde_json::from_value(fields.get("occurred_at")?.clone()).ok()
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
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        match (
            event.aggregate_type.as_str(),
            event.user_id,
            occurred_at(event),
        ) {
            (Account::TYPE, Some(user), Some(at)) => {
                let mut keys = vec![UserClock::key(user)];
                keys.extend(
                    daily::candidate_days(at)
                        .into_iter()
                        .map(|d| daily::day_key(user, d)),
                );
                keys
            }
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if UserClock::fold(&model, event, rows)? {
            return Ok(());
        }
        if event.aggregate_type != Account::TYPE {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: AccountEvent =
            serde_json::from_value(event.payload.clone()).map_err(|e| poison(e.to_string()))?;
        let Some(change) = payload.allocation_change() else {
            return Ok(());
        };
        let user = event
            .user_id
            .ok_or_else(|| poison("account event without a user id".to_string()))?;
        let clock = UserClock::get(rows, user)?;
        let day = clock.day_of(change.occurred_at);
        if !daily::candidate_days(change.occurred_at).contains(&day) {
            return Err(poison(format!(
                "local day {day} of {} in {} is outside the loaded days",
                change.occurred_at, clock.timezone
            )));
        }
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
