//! The account aggregate: one money account of a user with its transactions inside.
//!
//! **Consistency boundary.** Deduplicating an import (by external id, and by amount + date +
//! payee) is an invariant *across* the transactions of an account, so the aggregate is the
//! [`Account`] (aggregate type `account`, id = the account id), and each transaction is an id
//! inside it, carried by every transaction event — like the focus sessions inside the
//! `FocusTimer`. This is the long-lived "hot" aggregate of the benchmarks; snapshots
//! (`--snapshots account=N`) keep its loads short.
//!
//! Rules:
//! - an account has one [`Currency`]; a transaction in another currency is INVALID_ARGUMENT on
//!   `currency`, and amounts may not have more decimals than the currency's minor units
//!   (INVALID_ARGUMENT on `amount`: "USD has 2 decimals, got 3");
//! - sign convention: negative = money out (spending), positive = money in;
//! - a category is free text (trimmed, at most [`CATEGORY_MAX_CHARS`]); blank is
//!   [`UNCATEGORIZED`];
//! - a split replaces the transaction's category by at least two parts, each with a non-zero
//!   amount and a category, summing exactly to the transaction's amount; recategorizing a split
//!   transaction is refused (split it again instead);
//! - deleted transactions stay known: commands on them are FAILED_PRECONDITION, and their
//!   external ids still count as imported (a deleted bank row is not re-imported);
//! - only the owner may act: any other user gets NOT_FOUND, as for an account that does not
//!   exist.
//!
//! Every transaction event carries the transaction's time, currency and its category
//! allocations before and after ([`Allocation`]), so the rollups move money between categories
//! without reading anything else.
//!
//! **ImportCsv** is one command (one append: every added row or none). The API parses the file
//! ([`super::csv_import::parse`]) and passes the rows, the rejected records and one new id per
//! row; the aggregate rejects rows whose amount or fields are invalid (with their line and
//! field), drops duplicates ([`super::dedupe`]) and records one `AccountTransactionRecorded` per
//! added row, then one `AccountCsvImported` with the report (added, duplicates with the matched
//! transaction, rejected). Importing the same file twice adds nothing the second time.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::csv_import::{CsvRow, RejectedRow};
use super::dedupe::{similar_payees, within_window};
use super::money::{Currency, in_minor_units};
use crate::{DomainError, Issued};

/// The category of a transaction recorded without one.
pub const UNCATEGORIZED: &str = "uncategorized";
/// Most characters of an account name.
pub const NAME_MAX_CHARS: usize = 100;
/// Most characters of a payee.
pub const PAYEE_MAX_CHARS: usize = 200;
/// Most characters of a category.
pub const CATEGORY_MAX_CHARS: usize = 64;
/// Most characters of a note.
pub const NOTE_MAX_CHARS: usize = 1000;
/// Most characters of a receipt reference.
pub const RECEIPT_MAX_CHARS: usize = 500;
/// Most characters of an external id.
pub const EXTERNAL_ID_MAX_CHARS: usize = 200;
/// Most characters of a source name.
pub const SOURCE_MAX_CHARS: usize = 64;
/// Most parts of a split.
pub const MAX_SPLIT_PARTS: usize = 50;
/// The source of a transaction recorded without one.
pub const MANUAL_SOURCE: &str = "manual";
/// The source of a CSV import that names none.
pub const CSV_SOURCE: &str = "csv";

const ACCOUNT: &str = "account";
const TRANSACTION: &str = "transaction";

/// Money of a transaction assigned to one category (a whole transaction, or a split part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The category.
    pub category: String,
    /// The signed amount.
    pub amount: Decimal,
}

/// One part of a split transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPart {
    /// Signed amount (non-zero, at most the currency's minor units).
    pub amount: Decimal,
    /// Category (required).
    pub category: String,
    /// Optional note.
    pub note: String,
}

/// A transaction to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    /// Its id (UUID v7; the API assigns one when the client gives none).
    pub transaction_id: Uuid,
    /// Signed amount: negative = money out.
    pub amount: Decimal,
    /// ISO 4217 code; must be the account's.
    pub currency: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Counterparty (required).
    pub payee: String,
    /// Category (blank: [`UNCATEGORIZED`]).
    pub category: String,
    /// Free note.
    pub note: String,
    /// Reference to a stored receipt (e.g. a blob key).
    pub receipt: Option<String>,
    /// Where it came from (blank: [`MANUAL_SOURCE`]).
    pub source: String,
    /// The source's own id, unique per source within the account.
    pub external_id: Option<String>,
}

/// A parsed CSV import (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct CsvImport {
    /// The source the rows' external ids belong to (blank: [`CSV_SOURCE`]).
    pub source: String,
    /// The records that parsed, in file order.
    pub rows: Vec<CsvRow>,
    /// The records that did not parse.
    pub rejected: Vec<RejectedRow>,
    /// One new transaction id per row.
    pub transaction_ids: Vec<Uuid>,
    /// The zone whose calendar dates the fuzzy dedupe compares.
    pub time_zone: Tz,
}

/// What a user can ask of an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Open the account.
    Open {
        /// Its id.
        account_id: Uuid,
        /// Display name (required).
        name: String,
        /// ISO 4217 code of every amount of the account.
        currency: String,
        /// The balance before the first transaction.
        opening_balance: Decimal,
    },
    /// Record one transaction.
    Record(NewTransaction),
    /// Give a transaction another category.
    Recategorize {
        /// The transaction.
        transaction_id: Uuid,
        /// The new category (blank: [`UNCATEGORIZED`]).
        category: String,
    },
    /// Split a transaction into categorized parts.
    Split {
        /// The transaction.
        transaction_id: Uuid,
        /// At least two parts summing to its amount.
        parts: Vec<SplitPart>,
    },
    /// Delete a transaction.
    Delete {
        /// The transaction.
        transaction_id: Uuid,
    },
    /// Import the rows of a bank CSV.
    ImportCsv(CsvImport),
}

/// A row of an import that was a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRow {
    /// The line of the record.
    pub line: u64,
    /// Why it is a duplicate.
    pub reason: String,
    /// The transaction it duplicates (already in the account, or added from an earlier row).
    pub transaction_id: Uuid,
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened.
    AccountOpened {
        /// The account (also the aggregate id).
        account_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// Display name.
        name: String,
        /// Its currency.
        currency: Currency,
        /// Balance before the first transaction.
        opening_balance: Decimal,
        /// When.
        opened_at: DateTime<Utc>,
    },
    /// A transaction was recorded (by hand, or from an import row).
    AccountTransactionRecorded {
        /// The transaction.
        transaction_id: Uuid,
        /// Signed amount, with exactly the currency's minor units.
        amount: Decimal,
        /// The account's currency.
        currency: Currency,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// Counterparty.
        payee: String,
        /// Category.
        category: String,
        /// Note.
        note: String,
        /// Receipt reference.
        receipt: Option<String>,
        /// Where it came from.
        source: String,
        /// The source's id.
        external_id: Option<String>,
        /// The CSV line it was imported from.
        import_line: Option<u64>,
        /// When it was recorded.
        recorded_at: DateTime<Utc>,
    },
    /// A transaction got another category.
    AccountTransactionRecategorized {
        /// The transaction.
        transaction_id: Uuid,
        /// Its currency.
        currency: Currency,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// The new category.
        category: String,
        /// The allocations before.
        before: Vec<Allocation>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A transaction was split.
    AccountTransactionSplit {
        /// The transaction.
        transaction_id: Uuid,
        /// Its currency.
        currency: Currency,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// The parts (summing to the amount).
        parts: Vec<SplitPart>,
        /// The allocations before.
        before: Vec<Allocation>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A transaction was deleted.
    AccountTransactionDeleted {
        /// The transaction.
        transaction_id: Uuid,
        /// Its currency.
        currency: Currency,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// Its amount.
        amount: Decimal,
        /// The allocations it had.
        before: Vec<Allocation>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A CSV import ended: its report (the added rows are the `AccountTransactionRecorded`
    /// events before it).
    AccountCsvImported {
        /// The source of the rows' external ids.
        source: String,
        /// Rows added.
        added: u32,
        /// Rows skipped as duplicates.
        duplicates: Vec<DuplicateRow>,
        /// Rows rejected.
        rejected: Vec<RejectedRow>,
        /// When.
        imported_at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {
    /// The variant name, e.g. `AccountTransactionRecorded` (on the bus:
    /// `finance.transaction_recorded`).
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::AccountTransactionRecorded { .. } => "AccountTransactionRecorded",
            AccountEvent::AccountTransactionRecategorized { .. } => {
                "AccountTransactionRecategorized"
            }
            AccountEvent::AccountTransactionSplit { .. } => "AccountTransactionSplit",
            AccountEvent::AccountTransactionDeleted { .. } => "AccountTransactionDeleted",
            AccountEvent::AccountCsvImported { .. } => "AccountCsvImported",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl AccountEvent {
    /// The transaction the event is about (none for the account's own events).
    pub fn transaction_id(&self) -> Option<Uuid> {
        match self {
            AccountEvent::AccountTransactionRecorded { transaction_id, .. }
            | AccountEvent::AccountTransactionRecategorized { transaction_id, .. }
            | AccountEvent::AccountTransactionSplit { transaction_id, .. }
            | AccountEvent::AccountTransactionDeleted { transaction_id, .. } => {
                Some(*transaction_id)
            }
            AccountEvent::AccountOpened { .. } | AccountEvent::AccountCsvImported { .. } => None,
        }
    }
}

/// How a transaction event moves money between categories: the allocations it removes and
/// the ones it adds, on the transaction's time and in its currency. Rollups fold exactly this.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationChange {
    /// When the transaction happened (the day and month it counts in).
    pub occurred_at: DateTime<Utc>,
    /// Its currency.
    pub currency: Currency,
    /// Allocations taken away.
    pub before: Vec<Allocation>,
    /// Allocations added.
    pub after: Vec<Allocation>,
}

impl AccountEvent {
    /// The category change of a transaction event (None for the account's own events).
    pub fn allocation_change(&self) -> Option<AllocationChange> {
        let change =
            |occurred_at: &DateTime<Utc>, currency: &Currency, before: &[Allocation], after| {
                Some(AllocationChange {
                    occurred_at: *occurred_at,
                    currency: *currency,
                    before: before.to_vec(),
                    after,
                })
            };
        match self {
            AccountEvent::AccountTransactionRecorded {
                amount,
                currency,
                occurred_at,
                category,
                ..
            } => change(
                occurred_at,
                currency,
                &[],
                vec![Allocation {
                    category: category.clone(),
                    amount: *amount,
                }],
            ),
            AccountEvent::AccountTransactionRecategorized {
                currency,
                occurred_at,
                category,
                before,
                ..
            } => change(
                occurred_at,
                currency,
                before,
                vec![Allocation {
                    category: category.clone(),
                    amount: before.iter().map(|a| a.amount).sum(),
                }],
            ),
            AccountEvent::AccountTransactionSplit {
                currency,
                occurred_at,
                parts,
                before,
                ..
            } => change(
                occurred_at,
                currency,
                before,
                parts
                    .iter()
                    .map(|p| Allocation {
                        category: p.category.clone(),
                        amount: p.amount,
                    })
                    .collect(),
            ),
            AccountEvent::AccountTransactionDeleted {
                currency,
                occurred_at,
                before,
                ..
            } => change(occurred_at, currency, before, vec![]),
            AccountEvent::AccountOpened { .. } | AccountEvent::AccountCsvImported { .. } => None,
        }
    }
}

/// A transaction as the aggregate keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionState {
    /// Signed amount.
    pub amount: Decimal,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Counterparty.
    pub payee: String,
    /// Category (of the whole, when not split).
    pub category: String,
    /// The split parts, when split.
    pub parts: Option<Vec<SplitPart>>,
    /// The source and its id.
    pub external: Option<(String, String)>,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl TransactionState {
    /// Money per category: the parts when split, else the whole amount.
    pub fn allocations(&self) -> Vec<Allocation> {
        match &self.parts {
            Some(parts) => parts
                .iter()
                .map(|p| Allocation {
                    category: p.category.clone(),
                    amount: p.amount,
                })
                .collect(),
            None => vec![Allocation {
                category: self.category.clone(),
                amount: self.amount,
            }],
        }
    }
}

/// The account's identity once opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Opened {
    owner: Uuid,
    currency: Currency,
}

/// The aggregate: one per account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    opened: Option<Opened>,
    transactions: BTreeMap<Uuid, TransactionState>,
    /// `<source>\n<external id>` → transaction (sources have no newline).
    external_ids: BTreeMap<String, Uuid>,
}

fn external_key(source: &str, external_id: &str) -> String {
    format!("{source}\n{external_id}")
}

crate::pillar_aggregate!(Account, "account", AccountCommand, AccountEvent);

impl Account {
    /// The account's currency, once opened.
    pub fn currency(&self) -> Option<Currency> {
        self.opened.as_ref().map(|o| o.currency)
    }

    /// A transaction of the account (deleted ones included).
    pub fn transaction(&self, id: Uuid) -> Option<&TransactionState> {
        self.transactions.get(&id)
    }

    fn evolve(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                user_id, currency, ..
            } => {
                self.opened = Some(Opened {
                    owner: user_id,
                    currency,
                })
            }
            AccountEvent::AccountTransactionRecorded {
                transaction_id,
                amount,
                occurred_at,
                payee,
                category,
                source,
                external_id,
                ..
            } => {
                let external = external_id.map(|id| (source, id));
                if let Some((source, id)) = &external {
                    self.external_ids
                        .insert(external_key(source, id), transaction_id);
                }
                self.transactions.insert(
                    transaction_id,
                    TransactionState {
                        amount,
                        occurred_at,
                        payee,
                        category,
                        parts: None,
                        external,
                        deleted: false,
                    },
                );
            }
            AccountEvent::AccountTransactionRecategorized {
                transaction_id,
                category,
                ..
            } => {
                if let Some(t) = self.transactions.get_mut(&transaction_id) {
                    t.category = category;
                    t.parts = None;
                }
            }
            AccountEvent::AccountTransactionSplit {
                transaction_id,
                parts,
                ..
            } => {
                if let Some(t) = self.transactions.get_mut(&transaction_id) {
                    t.parts = Some(parts);
                }
            }
            AccountEvent::AccountTransactionDeleted { transaction_id, .. } => {
                if let Some(t) = self.transactions.get_mut(&transaction_id) {
                    t.deleted = true;
                }
            }
            AccountEvent::AccountCsvImported { .. } => {}
        }
    }

    fn decide(&self, command: Issued<AccountCommand>) -> Result<Vec<AccountEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        match command {
            AccountCommand::Open {
                account_id,
                name,
                currency,
                opening_balance,
            } => {
                if account_id.is_nil() {
                    return Err(DomainError::invalid(
                        "account_id",
                        "must not be the nil UUID",
                    ));
                }
                let name = text("name", &name, NAME_MAX_CHARS)?;
                if name.is_empty() {
                    return Err(DomainError::invalid("name", "is required"));
                }
                let currency = Currency::parse_field("currency", &currency)?;
                let opening_balance = in_minor_units("opening_balance", opening_balance, currency)?;
                match &self.opened {
                    Some(o) if o.owner != actor => return Err(not_found(ACCOUNT, "")),
                    Some(_) => {
                        return Err(DomainError::AlreadyExists {
                            entity: ACCOUNT,
                            id: account_id.to_string(),
                        });
                    }
                    None => {}
                }
                Ok(vec![AccountEvent::AccountOpened {
                    account_id,
                    user_id: actor,
                    name,
                    currency,
                    opening_balance,
                    opened_at: at,
                }])
            }
            AccountCommand::Record(new) => self.record(actor, at, new),
            AccountCommand::Recategorize {
                transaction_id,
                category,
            } => {
                let category = category_of(&category)?;
                let (currency, t) = self.live(actor, transaction_id)?;
                if let Some(parts) = &t.parts {
                    return Err(DomainError::Rejected(format!(
                        "{TRANSACTION} {transaction_id} is split into {} parts; split it again to change their categories",
                        parts.len()
                    )));
                }
                if t.category == category {
                    return Ok(vec![]);
                }
                Ok(vec![AccountEvent::AccountTransactionRecategorized {
                    transaction_id,
                    currency,
                    occurred_at: t.occurred_at,
                    category,
                    before: t.allocations(),
                    at,
                }])
            }
            AccountCommand::Split {
                transaction_id,
                parts,
            } => {
                let (currency, t) = self.live(actor, transaction_id)?;
                let parts = split_parts(parts, currency, t.amount)?;
                Ok(vec![AccountEvent::AccountTransactionSplit {
                    transaction_id,
                    currency,
                    occurred_at: t.occurred_at,
                    parts,
                    before: t.allocations(),
                    at,
                }])
            }
            AccountCommand::Delete { transaction_id } => {
                let (currency, t) = self.live(actor, transaction_id)?;
                Ok(vec![AccountEvent::AccountTransactionDeleted {
                    transaction_id,
                    currency,
                    occurred_at: t.occurred_at,
                    amount: t.amount,
                    before: t.allocations(),
                    at,
                }])
            }
            AccountCommand::ImportCsv(import) => self.import(actor, at, import),
        }
    }

    /// The opened account of `actor` (NOT_FOUND otherwise).
    fn owned(&self, actor: Uuid) -> Result<&Opened, DomainError> {
        match &self.opened {
            Some(o) if o.owner == actor => Ok(o),
            _ => Err(not_found(ACCOUNT, "")),
        }
    }

    /// A live transaction of `actor`'s account: NOT_FOUND when unknown, FAILED_PRECONDITION
    /// when deleted.
    fn live(
        &self,
        actor: Uuid,
        transaction_id: Uuid,
    ) -> Result<(Currency, &TransactionState), DomainError> {
        let currency = self.owned(actor)?.currency;
        match self.transactions.get(&transaction_id) {
            None => Err(not_found(TRANSACTION, &transaction_id.to_string())),
            Some(t) if t.deleted => Err(DomainError::Rejected(format!(
                "{TRANSACTION} {transaction_id} has been deleted"
            ))),
            Some(t) => Ok((currency, t)),
        }
    }

    fn record(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        new: NewTransaction,
    ) -> Result<Vec<AccountEvent>, DomainError> {
        if new.transaction_id.is_nil() {
            return Err(DomainError::invalid(
                "transaction_id",
                "must not be the nil UUID",
            ));
        }
        let currency = Currency::parse_field("currency", &new.currency)?;
        let amount = in_minor_units("amount", new.amount, currency)?;
        let fields = Fields::check(
            &new.payee,
            &new.category,
            &new.note,
            new.external_id.as_deref(),
        )?;
        let receipt = new
            .receipt
            .map(|r| text("receipt", &r, RECEIPT_MAX_CHARS))
            .transpose()?
            .filter(|r| !r.is_empty());
        let source = source_of(&new.source, MANUAL_SOURCE)?;
        let opened = self.owned(actor)?;
        if currency != opened.currency {
            return Err(DomainError::invalid(
                "currency",
                format!(
                    "the account is in {}, the transaction in {currency}",
                    opened.currency
                ),
            ));
        }
        if self.transactions.contains_key(&new.transaction_id) {
            return Err(DomainError::AlreadyExists {
                entity: TRANSACTION,
                id: new.transaction_id.to_string(),
            });
        }
        if let Some(ext) = &fields.external_id
            && let Some(existing) = self.external_ids.get(&external_key(&source, ext))
        {
            return Err(DomainError::AlreadyExists {
                entity: TRANSACTION,
                id: existing.to_string(),
            });
        }
        Ok(vec![AccountEvent::AccountTransactionRecorded {
            transaction_id: new.transaction_id,
            amount,
            currency,
            occurred_at: new.occurred_at,
            payee: fields.payee,
            category: fields.category,
            note: fields.note,
            receipt,
            source,
            external_id: fields.external_id,
            import_line: None,
            recorded_at: at,
        }])
    }

    fn import(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        import: CsvImport,
    ) -> Result<Vec<AccountEvent>, DomainError> {
        let source = source_of(&import.source, CSV_SOURCE)?;
        let currency = self.owned(actor)?.currency;
        if import.transaction_ids.len() != import.rows.len() {
            return Err(DomainError::Rejected(format!(
                "an import needs one transaction id per row ({} ids for {} rows)",
                import.transaction_ids.len(),
                import.rows.len()
            )));
        }
        let tz = import.time_zone;
        let date = |t: DateTime<Utc>| -> NaiveDate { t.with_timezone(&tz).date_naive() };
        // fuzzy candidates: the live transactions before the import, by amount
        let mut by_amount: HashMap<Decimal, Vec<(Uuid, &TransactionState)>> = HashMap::new();
        for (id, t) in self.transactions.iter().filter(|(_, t)| !t.deleted) {
            by_amount.entry(t.amount).or_default().push((*id, t));
        }
        let mut consumed: HashSet<Uuid> = HashSet::new();
        let mut file_ids: HashMap<String, Uuid> = HashMap::new();
        let mut events = Vec::new();
        let mut duplicates = Vec::new();
        let mut rejected = import.rejected;
        for (row, transaction_id) in import.rows.into_iter().zip(import.transaction_ids) {
            let line = row.line;
            let reject = |e: DomainError| match e {
                DomainError::Invalid { field, reason } => RejectedRow {
                    line,
                    field: field.to_string(),
                    reason,
                },
                other => RejectedRow {
                    line,
                    field: "record".to_string(),
                    reason: other.to_string(),
                },
            };
            let checked = in_minor_units("amount", row.amount, currency).and_then(|amount| {
                Fields::check(
                    &row.payee,
                    &row.category,
                    &row.note,
                    row.external_id.as_deref(),
                )
                .map(|f| (amount, f))
            });
            let (amount, fields) = match checked {
                Ok(ok) => ok,
                Err(e) => {
                    rejected.push(reject(e));
                    continue;
                }
            };
            if let Some(ext) = &fields.external_id {
                let key = external_key(&source, ext);
                let seen = self
                    .external_ids
                    .get(&key)
                    .map(|id| (*id, "already imported"))
                    .or_else(|| file_ids.get(&key).map(|id| (*id, "on an earlier line")));
                if let Some((matched, where_)) = seen {
                    duplicates.push(DuplicateRow {
                        line,
                        reason: format!("external id {ext:?} {where_}"),
                        transaction_id: matched,
                    });
                    continue;
                }
            }
            // two rows with distinct ids of the same source are two transactions
            let bank_says_distinct = |t: &TransactionState| {
                fields.external_id.is_some()
                    && t.external.as_ref().is_some_and(|(s, _)| *s == source)
            };
            let fuzzy = by_amount.get(&amount).and_then(|candidates| {
                candidates.iter().find(|(id, t)| {
                    !consumed.contains(id)
                        && !bank_says_distinct(t)
                        && within_window(date(t.occurred_at), date(row.occurred_at))
                        && similar_payees(&t.payee, &fields.payee)
                })
            });
            if let Some((matched, t)) = fuzzy {
                consumed.insert(*matched);
                duplicates.push(DuplicateRow {
                    line,
                    reason: format!(
                        "same amount, date within 2 days and similar payee as {:?} on {}",
                        t.payee,
                        date(t.occurred_at)
                    ),
                    transaction_id: *matched,
                });
                continue;
            }
            if let Some(ext) = &fields.external_id {
                file_ids.insert(external_key(&source, ext), transaction_id);
            }
            events.push(AccountEvent::AccountTransactionRecorded {
                transaction_id,
                amount,
                currency,
                occurred_at: row.occurred_at,
                payee: fields.payee,
                category: fields.category,
                note: fields.note,
                receipt: None,
                source: source.clone(),
                external_id: fields.external_id,
                import_line: Some(line),
                recorded_at: at,
            });
        }
        rejected.sort_by_key(|r| r.line);
        events.push(AccountEvent::AccountCsvImported {
            source,
            added: events.len() as u32,
            duplicates,
            rejected,
            imported_at: at,
        });
        Ok(events)
    }
}

/// The checked text fields of a transaction.
struct Fields {
    payee: String,
    category: String,
    note: String,
    external_id: Option<String>,
}

impl Fields {
    fn check(
        payee: &str,
        category: &str,
        note: &str,
        external_id: Option<&str>,
    ) -> Result<Self, DomainError> {
        let payee = text("payee", payee, PAYEE_MAX_CHARS)?;
        if payee.is_empty() {
            return Err(DomainError::invalid("payee", "is required"));
        }
        Ok(Self {
            payee,
            category: category_of(category)?,
            note: text("note", note, NOTE_MAX_CHARS)?,
            external_id: external_id
                .map(|e| text("external_id", e, EXTERNAL_ID_MAX_CHARS))
                .transpose()?
                .filter(|e| !e.is_empty()),
        })
    }
}

fn not_found(entity: &'static str, id: &str) -> DomainError {
    DomainError::NotFound {
        entity,
        id: id.to_string(),
    }
}

/// `value` trimmed, at most `max` characters (INVALID_ARGUMENT on `field`).
fn text(field: &'static str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    let len = value.chars().count();
    if len > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters, got {len}"),
        ));
    }
    Ok(value.to_string())
}

/// A category as stored: trimmed, blank = [`UNCATEGORIZED`].
pub fn category_of(category: &str) -> Result<String, DomainError> {
    let category = text("category", category, CATEGORY_MAX_CHARS)?;
    Ok(if category.is_empty() {
        UNCATEGORIZED.to_string()
    } else {
        category
    })
}

/// A source name: 1 to [`SOURCE_MAX_CHARS`] ASCII letters, digits, `-`, `_` or `.`; blank is
/// `default`.
fn source_of(source: &str, default: &str) -> Result<String, DomainError> {
    let source = source.trim();
    if source.is_empty() {
        return Ok(default.to_string());
    }
    if source.len() > SOURCE_MAX_CHARS
        || !source
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(DomainError::invalid(
            "source",
            format!(
                "must be at most {SOURCE_MAX_CHARS} ASCII letters, digits, '-', '_' or '.', got {source:?}"
            ),
        ));
    }
    Ok(source.to_string())
}

fn split_parts(
    parts: Vec<SplitPart>,
    currency: Currency,
    total: Decimal,
) -> Result<Vec<SplitPart>, DomainError> {
    if parts.len() < 2 || parts.len() > MAX_SPLIT_PARTS {
        return Err(DomainError::invalid(
            "parts",
            format!(
                "a split has 2 to {MAX_SPLIT_PARTS} parts, got {}",
                parts.len()
            ),
        ));
    }
    let mut checked = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let amount =
            in_minor_units("parts.amount", part.amount, currency).map_err(|e| prefix(e, i))?;
        if amount.is_zero() {
            return Err(DomainError::invalid(
                "parts.amount",
                format!("part {i}: must not be zero"),
            ));
        }
        let category =
            text("parts.category", &part.category, CATEGORY_MAX_CHARS).map_err(|e| prefix(e, i))?;
        if category.is_empty() {
            return Err(DomainError::invalid(
                "parts.category",
                format!("part {i}: is required"),
            ));
        }
        let note = text("parts.note", &part.note, NOTE_MAX_CHARS).map_err(|e| prefix(e, i))?;
        checked.push(SplitPart {
            amount,
            category,
            note,
        });
    }
    let sum: Decimal = checked.iter().map(|p| p.amount).sum();
    if sum != total {
        return Err(DomainError::invalid(
            "parts",
            format!("the parts sum to {sum}, the transaction is {total}"),
        ));
    }
    Ok(checked)
}

fn prefix(err: DomainError, part: usize) -> DomainError {
    match err {
        DomainError::Invalid { field, reason } => DomainError::Invalid {
            field,
            reason: format!("part {part}: {reason}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    use crate::finance::csv_import::{AmountColumns, Column, CsvMapping, parse};

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const ACC: Uuid = Uuid::from_u128(0xacc);
    const T1: Uuid = Uuid::from_u128(0x7001);
    const T2: Uuid = Uuid::from_u128(0x7002);

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn usd() -> Currency {
        "USD".parse().unwrap()
    }

    fn opened() -> AccountEvent {
        AccountEvent::AccountOpened {
            account_id: ACC,
            user_id: ALICE,
            name: "Checking".into(),
            currency: usd(),
            opening_balance: dec("100.00"),
            opened_at: day(1),
        }
    }

    fn new_tx(id: Uuid, amount: &str, payee: &str, at: DateTime<Utc>) -> NewTransaction {
        NewTransaction {
            transaction_id: id,
            amount: dec(amount),
            currency: "USD".into(),
            occurred_at: at,
            payee: payee.into(),
            category: "food".into(),
            note: String::new(),
            receipt: None,
            source: String::new(),
            external_id: None,
        }
    }

    fn recorded(id: Uuid, amount: &str, payee: &str, at: DateTime<Utc>) -> AccountEvent {
        AccountEvent::AccountTransactionRecorded {
            transaction_id: id,
            amount: dec(amount),
            currency: usd(),
            occurred_at: at,
            payee: payee.into(),
            category: "food".into(),
            note: String::new(),
            receipt: None,
            source: MANUAL_SOURCE.into(),
            external_id: None,
            import_line: None,
            recorded_at: day(20),
        }
    }

    fn run(
        given: Vec<AccountEvent>,
        actor: Uuid,
        command: AccountCommand,
    ) -> Result<Vec<AccountEvent>, DomainError> {
        TestFramework::<Account>::with(())
            .given(given)
            .when(Issued::new(actor, day(20), command))
            .inspect_result()
    }

    fn refused(given: Vec<AccountEvent>, actor: Uuid, command: AccountCommand) -> DomainError {
        run(given, actor, command).expect_err("refused")
    }

    fn field(err: DomainError) -> &'static str {
        match err {
            DomainError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn fold(events: Vec<AccountEvent>) -> Account {
        let mut account = Account::default();
        for e in events {
            account.apply(e);
        }
        account
    }

    #[test]
    fn open_records_the_currency_and_opening_balance() {
        TestFramework::<Account>::with(())
            .given_no_previous_events()
            .when(Issued::new(
                ALICE,
                day(1),
                AccountCommand::Open {
                    account_id: ACC,
                    name: " Checking ".into(),
                    currency: "USD".into(),
                    opening_balance: dec("100"),
                },
            ))
            .then_expect_events(vec![opened()]);
        let again = AccountCommand::Open {
            account_id: ACC,
            name: "x".into(),
            currency: "USD".into(),
            opening_balance: Decimal::ZERO,
        };
        assert!(matches!(
            refused(vec![opened()], ALICE, again.clone()),
            DomainError::AlreadyExists { .. }
        ));
        assert!(matches!(
            refused(vec![opened()], BOB, again),
            DomainError::NotFound { .. }
        ));
    }

    #[test]
    fn open_checks_currency_name_and_minor_units() {
        let open = |name: &str, currency: &str, balance: &str| AccountCommand::Open {
            account_id: ACC,
            name: name.into(),
            currency: currency.into(),
            opening_balance: dec(balance),
        };
        assert_eq!(
            field(refused(vec![], ALICE, open("a", "XYZ", "0"))),
            "currency"
        );
        assert_eq!(
            field(refused(vec![], ALICE, open("a", "", "0"))),
            "currency"
        );
        assert_eq!(
            field(refused(vec![], ALICE, open("a", "JPY", "1.5"))),
            "opening_balance"
        );
        assert_eq!(field(refused(vec![], ALICE, open(" ", "USD", "0"))), "name");
        assert!(run(vec![], ALICE, open("Dinar", "BHD", "1.234")).is_ok());
    }

    #[test]
    fn record_checks_currency_and_minor_units() {
        let given = vec![opened()];
        let ok = run(
            given.clone(),
            ALICE,
            AccountCommand::Record(new_tx(T1, "-3.5", "Coffee", day(2))),
        )
        .unwrap();
        assert_eq!(ok, [recorded(T1, "-3.50", "Coffee", day(2))]);
        assert!(
            matches!(&ok[0], AccountEvent::AccountTransactionRecorded { amount, .. } if amount.to_string() == "-3.50")
        );
        let err = refused(
            given.clone(),
            ALICE,
            AccountCommand::Record(new_tx(T1, "-3.505", "Coffee", day(2))),
        );
        assert!(
            err.to_string().contains("USD has 2 decimals, got 3"),
            "{err}"
        );
        assert_eq!(field(err), "amount");
        let foreign = NewTransaction {
            currency: "EUR".into(),
            ..new_tx(T1, "-3.50", "Coffee", day(2))
        };
        let err = refused(given.clone(), ALICE, AccountCommand::Record(foreign));
        assert!(err.to_string().contains("the account is in USD"), "{err}");
        assert_eq!(field(err), "currency");
        let unknown = NewTransaction {
            currency: "ABC".into(),
            ..new_tx(T1, "-3.50", "Coffee", day(2))
        };
        assert_eq!(
            field(refused(
                given.clone(),
                ALICE,
                AccountCommand::Record(unknown)
            )),
            "currency"
        );
        let no_payee = new_tx(T1, "-1", " ", day(2));
        assert_eq!(
            field(refused(given, ALICE, AccountCommand::Record(no_payee))),
            "payee"
        );
    }

    #[test]
    fn record_refuses_taken_ids_and_external_ids_and_strangers() {
        let given = vec![opened(), recorded(T1, "-1.00", "A", day(2))];
        let err = refused(
            given.clone(),
            ALICE,
            AccountCommand::Record(new_tx(T1, "-1", "A", day(2))),
        );
        assert!(matches!(err, DomainError::AlreadyExists { .. }), "{err:?}");
        let with_ext = |id| NewTransaction {
            source: "bank".into(),
            external_id: Some("X1".into()),
            ..new_tx(id, "-1", "A", day(2))
        };
        let events = run(given.clone(), ALICE, AccountCommand::Record(with_ext(T2))).unwrap();
        let given = [given, events].concat();
        let err = refused(
            given.clone(),
            ALICE,
            AccountCommand::Record(with_ext(Uuid::from_u128(9))),
        );
        assert_eq!(
            err,
            DomainError::AlreadyExists {
                entity: TRANSACTION,
                id: T2.to_string()
            }
        );
        let err = refused(
            given,
            BOB,
            AccountCommand::Record(new_tx(T2, "-1", "A", day(2))),
        );
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let err = refused(
            vec![],
            ALICE,
            AccountCommand::Record(new_tx(T2, "-1", "A", day(2))),
        );
        assert!(
            matches!(err, DomainError::NotFound { .. }),
            "not opened: {err:?}"
        );
    }

    #[test]
    fn recategorize_moves_the_allocation() {
        let given = vec![opened(), recorded(T1, "-9.00", "Lidl", day(3))];
        let events = run(
            given.clone(),
            ALICE,
            AccountCommand::Recategorize {
                transaction_id: T1,
                category: "groceries".into(),
            },
        )
        .unwrap();
        assert_eq!(
            events,
            [AccountEvent::AccountTransactionRecategorized {
                transaction_id: T1,
                currency: usd(),
                occurred_at: day(3),
                category: "groceries".into(),
                before: vec![Allocation {
                    category: "food".into(),
                    amount: dec("-9.00")
                }],
                at: day(20),
            }]
        );
        let same = AccountCommand::Recategorize {
            transaction_id: T1,
            category: "food".into(),
        };
        assert_eq!(
            run(given, ALICE, same).unwrap(),
            [],
            "unchanged: nothing recorded"
        );
    }

    #[test]
    fn unknown_and_deleted_transactions_are_refused() {
        let deleted = AccountEvent::AccountTransactionDeleted {
            transaction_id: T1,
            currency: usd(),
            occurred_at: day(3),
            amount: dec("-9.00"),
            before: vec![],
            at: day(4),
        };
        let given = vec![opened(), recorded(T1, "-9.00", "Lidl", day(3)), deleted];
        let commands = |id| {
            vec![
                AccountCommand::Recategorize {
                    transaction_id: id,
                    category: "x".into(),
                },
                AccountCommand::Split {
                    transaction_id: id,
                    parts: vec![],
                },
                AccountCommand::Delete { transaction_id: id },
            ]
        };
        for command in commands(T1) {
            let err = refused(given.clone(), ALICE, command);
            assert!(
                matches!(&err, DomainError::Rejected(m) if m.contains("deleted")),
                "{err:?}"
            );
        }
        for command in commands(T2) {
            let err = refused(given.clone(), ALICE, command);
            assert_eq!(
                err,
                DomainError::NotFound {
                    entity: TRANSACTION,
                    id: T2.to_string()
                }
            );
        }
        for command in commands(T1) {
            let err = refused(given.clone(), BOB, command);
            assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        }
        assert!(fold(given).transaction(T1).unwrap().deleted);
    }

    #[test]
    fn split_parts_must_sum_exactly() {
        let given = vec![opened(), recorded(T1, "-10.00", "Target", day(3))];
        let part = |amount: &str, category: &str| SplitPart {
            amount: dec(amount),
            category: category.into(),
            note: String::new(),
        };
        let split = |parts| AccountCommand::Split {
            transaction_id: T1,
            parts,
        };
        let events = run(
            given.clone(),
            ALICE,
            split(vec![part("-6", "home"), part("-4.00", "food")]),
        )
        .unwrap();
        assert!(matches!(
            &events[..],
            [AccountEvent::AccountTransactionSplit { parts, .. }] if parts[0].amount.to_string() == "-6.00"
        ));
        let cases = [
            (vec![part("-10", "home")], "parts"),
            (vec![part("-6", "home"), part("-3.99", "food")], "parts"),
            (
                vec![part("-6", "home"), part("-4.001", "food")],
                "parts.amount",
            ),
            (vec![part("-10", "home"), part("0", "food")], "parts.amount"),
            (vec![part("-6", "home"), part("-4", " ")], "parts.category"),
        ];
        for (parts, expected) in cases {
            assert_eq!(field(refused(given.clone(), ALICE, split(parts))), expected);
        }
        // a split transaction cannot be recategorized, only split again
        let given = [given, events].concat();
        let err = refused(
            given.clone(),
            ALICE,
            AccountCommand::Recategorize {
                transaction_id: T1,
                category: "x".into(),
            },
        );
        assert!(
            matches!(&err, DomainError::Rejected(m) if m.contains("split")),
            "{err:?}"
        );
        let account = fold(given);
        let allocations = account.transaction(T1).unwrap().allocations();
        assert_eq!(allocations.len(), 2);
        assert_eq!(allocations[1].category, "food");
    }

    fn csv_mapping() -> CsvMapping {
        CsvMapping {
            date: Column::Name("date".into()),
            date_format: "%Y-%m-%d".into(),
            amount: AmountColumns::Signed(Column::Name("amount".into())),
            payee: Column::Name("payee".into()),
            category: None,
            note: None,
            external_id: Some(Column::Name("id".into())),
            delimiter: b',',
            has_header: true,
            flip_sign: false,
            decimal_comma: false,
        }
    }

    fn import(given: Vec<AccountEvent>, text: &str) -> Vec<AccountEvent> {
        let parsed = parse(text, &csv_mapping(), Tz::UTC).unwrap();
        let ids = (0..parsed.rows.len())
            .map(|i| Uuid::from_u128(0x1_0000 + i as u128 + given.len() as u128 * 100))
            .collect();
        run(
            given,
            ALICE,
            AccountCommand::ImportCsv(CsvImport {
                source: "bank".into(),
                rows: parsed.rows,
                rejected: parsed.rejected,
                transaction_ids: ids,
                time_zone: Tz::UTC,
            }),
        )
        .unwrap()
    }

    /// Added, duplicates (line, matched transaction), rejected (line, field).
    type Report = (u32, Vec<(u64, Uuid)>, Vec<(u64, String)>);

    fn report(events: &[AccountEvent]) -> Report {
        match events.last() {
            Some(AccountEvent::AccountCsvImported {
                added,
                duplicates,
                rejected,
                ..
            }) => (
                *added,
                duplicates
                    .iter()
                    .map(|d| (d.line, d.transaction_id))
                    .collect(),
                rejected.iter().map(|r| (r.line, r.field.clone())).collect(),
            ),
            other => panic!("no report: {other:?}"),
        }
    }

    const FILE: &str = "date,payee,amount,id\n\
        2026-03-02,Coffee Bar,-3.50,b1\n\
        2026-03-02,Coffee Bar,-3.50,b2\n\
        2026-03-03,Salary,2500,b3\n\
        2026-03-04,Bad,-1.234,b4\n\
        2026-03-05,Dup in file,-2,b1\n";

    #[test]
    fn import_twice_adds_nothing_the_second_time() {
        let first = import(vec![opened()], FILE);
        let (added, dups, rejected) = report(&first);
        assert_eq!(added, 3, "two identical coffees in one file are both kept");
        assert_eq!(first.len(), 4);
        let first_id = first[0].transaction_id().unwrap();
        assert_eq!(dups, [(6, first_id)], "b1 again on line 6");
        assert_eq!(rejected, [(5, "amount".to_string())]);
        let given = [vec![opened()], first.clone()].concat();
        let second = import(given, FILE);
        let (added, dups, rejected) = report(&second);
        assert_eq!(added, 0);
        assert_eq!(second.len(), 1, "only the report");
        let lines: Vec<u64> = dups.iter().map(|d| d.0).collect();
        assert_eq!(lines, [2, 3, 4, 6]);
        assert_eq!(dups[0].1, first_id);
        assert_eq!(rejected.len(), 1);
    }

    #[test]
    fn fuzzy_dedupe_needs_amount_window_and_similar_payee() {
        let given = vec![opened(), recorded(T1, "-3.50", "STARBUCKS #1234", day(10))];
        let row = |date: &str, payee: &str, amount: &str| {
            format!("date,payee,amount,id\n{date},{payee},{amount},\n")
        };
        let is_dup = |text: String| !report(&import(given.clone(), &text)).1.is_empty();
        assert!(is_dup(row("2026-03-10", "Starbucks Seattle", "-3.50")));
        assert!(
            is_dup(row("2026-03-12", "Starbucks", "-3.5")),
            "2 days after"
        );
        assert!(
            is_dup(row("2026-03-08", "Starbucks", "-3.50")),
            "2 days before"
        );
        assert!(
            !is_dup(row("2026-03-13", "Starbucks", "-3.50")),
            "3 days after"
        );
        assert!(
            !is_dup(row("2026-03-07", "Starbucks", "-3.50")),
            "3 days before"
        );
        assert!(
            !is_dup(row("2026-03-10", "Starbucks", "-3.51")),
            "another amount"
        );
        assert!(
            !is_dup(row("2026-03-10", "Shell", "-3.50")),
            "another payee"
        );
        // one existing transaction absorbs one row: the second coffee is new
        let two =
            "date,payee,amount,id\n2026-03-10,Starbucks,-3.50,\n2026-03-10,Starbucks,-3.50,\n";
        let (added, dups, _) = report(&import(given.clone(), two));
        assert_eq!((added, dups.len()), (1, 1));
        // a deleted transaction is not a fuzzy match
        let deleted = AccountEvent::AccountTransactionDeleted {
            transaction_id: T1,
            currency: usd(),
            occurred_at: day(10),
            amount: dec("-3.50"),
            before: vec![],
            at: day(11),
        };
        let given = [given, vec![deleted]].concat();
        let (added, _, _) = report(&import(given, &row("2026-03-10", "Starbucks", "-3.50")));
        assert_eq!(added, 1);
    }

    #[test]
    fn imports_need_the_owner() {
        let err = refused(
            vec![opened()],
            BOB,
            AccountCommand::ImportCsv(CsvImport {
                source: String::new(),
                rows: vec![],
                rejected: vec![],
                transaction_ids: vec![],
                time_zone: Tz::UTC,
            }),
        );
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let bad_source = AccountCommand::ImportCsv(CsvImport {
            source: "my bank".into(),
            rows: vec![],
            rejected: vec![],
            transaction_ids: vec![],
            time_zone: Tz::UTC,
        });
        assert_eq!(field(refused(vec![opened()], ALICE, bad_source)), "source");
    }

    #[test]
    fn the_account_round_trips_as_a_snapshot_and_events_are_named() {
        let events = [vec![opened()], import(vec![opened()], FILE)].concat();
        let account = fold(events.clone());
        let json = serde_json::to_value(&account).unwrap();
        let back: Account = serde_json::from_value(json).unwrap();
        assert_eq!(back, account);
        assert_eq!(back.currency(), Some(usd()));
        assert_eq!(events[1].event_type(), "AccountTransactionRecorded");
        assert_eq!(events[1].event_version(), "1");
        let json = serde_json::to_value(&events[1]).unwrap();
        assert_eq!(
            json["AccountTransactionRecorded"]["amount"], "-3.50",
            "amounts are strings"
        );
    }
}
