//! `finance_accounts`: each user's accounts with their balance, and each account's
//! transactions, newest first.
//!
//! Rows:
//! - one per account (group [`ACCOUNT`], row id = account id, sort key = the name in lower case):
//!   [`AccountView`], whose balance is the opening balance plus the amounts of the live
//!   transactions, kept as events arrive;
//! - one per live transaction (group `tx:<account id>`, row id = transaction id, sort key =
//!   [`newest_first_key`] of its time): [`TransactionView`]. A deleted transaction's row is
//!   removed.

use aggregates::finance::account::{Account, AccountEvent, SplitPart};
use aggregates::finance::money::Currency;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::focus_sessions::time_key;
use crate::{
    Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet, payload_field,
};

/// Row group of the accounts.
pub const ACCOUNT: &str = "account";

/// The row group of `account_id`'s transactions.
pub fn transactions_group(account_id: Uuid) -> String {
    format!("tx:{account_id}")
}

/// A sort key that lists later times first: [`time_key`] with every digit `d` as `9 - d`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use projections::finance_accounts::newest_first_key;
/// let early = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
/// let late = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
/// assert!(newest_first_key(late) < newest_first_key(early));
/// ```
pub fn newest_first_key(at: DateTime<Utc>) -> String {
    time_key(at)
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_digit(9 - d, 10).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// An account as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    /// Its id.
    pub account_id: Uuid,
    /// Display name.
    pub name: String,
    /// Its currency.
    pub currency: Currency,
    /// Balance before any transaction.
    pub opening_balance: Decimal,
    /// Opening balance plus every live transaction.
    pub balance: Decimal,
    /// Live transactions.
    pub transaction_count: u64,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
}

/// A live transaction as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionView {
    /// Its id.
    pub transaction_id: Uuid,
    /// Its account.
    pub account_id: Uuid,
    /// Signed amount.
    pub amount: Decimal,
    /// Currency (the account's).
    pub currency: Currency,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Counterparty.
    pub payee: String,
    /// Category (of the whole; see `parts` when split).
    pub category: String,
    /// Note.
    pub note: String,
    /// Receipt reference.
    pub receipt: Option<String>,
    /// Where it came from.
    pub source: String,
    /// The source's id.
    pub external_id: Option<String>,
    /// The split parts (empty when not split).
    pub parts: Vec<SplitPart>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// The `finance_accounts` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinanceAccounts;

impl FinanceAccounts {
    /// `user_id`'s accounts, by name (at most `limit`).
    pub async fn accounts(
        rows: &impl RowReader,
        user_id: Uuid,
        limit: usize,
    ) -> Result<Vec<AccountView>, ProjectionError> {
        let page = rows
            .list_rows(&FinanceAccounts, user_id, &[ACCOUNT], None, limit)
            .await?;
        page.iter().map(Row::decode).collect()
    }

    /// One account of `user_id` (None when absent or someone else's).
    pub async fn account(
        rows: &impl RowReader,
        user_id: Uuid,
        account_id: Uuid,
    ) -> Result<Option<AccountView>, ProjectionError> {
        let row = rows
            .get_row(
                &FinanceAccounts,
                &RowKey::new(user_id, account_id.to_string()),
            )
            .await?;
        row.filter(|r| r.grp == ACCOUNT)
            .map(|r| r.decode())
            .transpose()
    }

    /// A page of `account_id`'s live transactions, newest first, after `cursor`; with the
    /// cursor of the next page.
    pub async fn transactions(
        rows: &impl RowReader,
        user_id: Uuid,
        account_id: Uuid,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<TransactionView>, Option<RowCursor>), ProjectionError> {
        let group = transactions_group(account_id);
        let page = rows
            .list_rows(
                &FinanceAccounts,
                user_id,
                &[group.as_str()],
                cursor,
                page_size + 1,
            )
            .await?;
        RowCursor::page(page, page_size)
    }
}

fn transaction_of(payload: &serde_json::Value) -> Option<Uuid> {
    payload_field(payload, "transaction_id")
}

impl Projection for FinanceAccounts {
    fn name(&self) -> &'static str {
        "finance_accounts"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Account::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        match (event.aggregate_type.as_str(), event.user_id) {
            (Account::TYPE, Some(user)) if event.event_type != "AccountCsvImported" => {
                let mut keys = vec![RowKey::new(user, event.aggregate_id.clone())];
                if let Some(tx) = transaction_of(&event.payload) {
                    keys.push(RowKey::new(user, tx.to_string()));
                }
                keys
            }
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        if event.aggregate_type != Account::TYPE {
            return Ok(()); // the runner applies every event; other pillars' are not ours
        }
        let model = self.model();
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: AccountEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let user = event
            .user_id
            .ok_or_else(|| poison("account event without a user id".to_string()))?;
        let account_key = RowKey::new(user, event.aggregate_id.clone());
        if let AccountEvent::AccountOpened {
            account_id,
            name,
            currency,
            opening_balance,
            opened_at,
            ..
        } = &payload
        {
            let view = AccountView {
                account_id: *account_id,
                name: name.clone(),
                currency: *currency,
                opening_balance: *opening_balance,
                balance: *opening_balance,
                transaction_count: 0,
                opened_at: *opened_at,
            };
            rows.put(Row::new(account_key, ACCOUNT, name.to_lowercase(), &view)?);
            return Ok(());
        }
        let Some(tx) = payload.transaction_id() else {
            return Ok(()); // the import report changes no row
        };
        let mut account: AccountView = rows
            .get(&account_key)
            .ok_or_else(|| poison(format!("account {} was never opened", event.aggregate_id)))?
            .decode()?;
        let tx_key = RowKey::new(user, tx.to_string());
        let current: Option<TransactionView> = rows.get(&tx_key).map(Row::decode).transpose()?;
        let view = match (payload, current) {
            (
                AccountEvent::AccountTransactionRecorded {
                    transaction_id,
                    amount,
                    currency,
                    occurred_at,
                    payee,
                    category,
                    note,
                    receipt,
                    source,
                    external_id,
                    recorded_at,
                    ..
                },
                None,
            ) => {
                account.balance += amount;
                account.transaction_count += 1;
                Some(TransactionView {
                    transaction_id,
                    account_id: account.account_id,
                    amount,
                    currency,
                    occurred_at,
                    payee,
                    category,
                    note,
                    receipt,
                    source,
                    external_id,
                    parts: Vec::new(),
                    recorded_at,
                })
            }
            (AccountEvent::AccountTransactionRecategorized { category, .. }, Some(mut v)) => {
                v.category = category;
                v.parts.clear();
                Some(v)
            }
            (AccountEvent::AccountTransactionSplit { parts, .. }, Some(mut v)) => {
                v.parts = parts;
                Some(v)
            }
            (AccountEvent::AccountTransactionDeleted { .. }, Some(v)) => {
                account.balance -= v.amount;
                account.transaction_count = account.transaction_count.saturating_sub(1);
                None
            }
            (payload, current) => {
                return Err(poison(format!(
                    "{} does not follow transaction {tx} ({})",
                    cqrs_es::DomainEvent::event_type(&payload),
                    if current.is_some() { "live" } else { "absent" }
                )));
            }
        };
        match view {
            Some(v) => rows.put(Row::new(
                tx_key,
                transactions_group(account.account_id),
                newest_first_key(v.occurred_at),
                &v,
            )?),
            None => rows.delete(&tx_key),
        }
        let sort = account.name.to_lowercase();
        rows.put(Row::new(account_key, ACCOUNT, sort, &account)?);
        Ok(())
    }
}
