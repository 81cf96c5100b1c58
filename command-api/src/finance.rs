//! `lifeos.v1.FinanceCommands`: requests of the Finance pillar mapped to commands on the
//! `account` aggregate (which owns its transactions) and the `budget` aggregate (one per user
//! and month, id `<user_id>:<YYYY-MM>`); see `aggregates::finance` for the rules.
//!
//! The service parses the wire (UUIDs, timestamps, decimal strings: money never passes through
//! a float) and fills what the pure aggregates cannot know: new ids, the CSV rows (parsed here
//! with the pure `csv_import::parse`) and the time zone of the file's dates (the request's, else
//! the caller's preferences). Everything else — currencies, minor units, ownership, dedupe — is
//! decided by the aggregates, so a refused command writes nothing.

use aggregates::finance::account::{
    Account, AccountCommand, AccountEvent, CsvImport, NewTransaction, SplitPart,
};
use aggregates::finance::budget::{Budget, BudgetCommand, budget_id, parse_month};
use aggregates::finance::csv_import::{self, AmountColumns, Column, CsvMapping};
use aggregates::finance::money::parse_decimal;
use aggregates::preferences::UserPreferences;
use api_common::status::{command_status, domain_status};
use api_common::time::from_timestamp;
use api_common::{invalid_argument, parse_uuid_field};
use cqrs_es::EventStore;
use cqrs_es::persist::PersistedEventRepository;
use proto::v1::finance_commands_server::FinanceCommands;
use proto::v1::{
    CommandAck, CsvColumn, CsvDuplicateRow, CsvRejectedRow, DeleteTransactionRequest,
    ImportCsvRequest, ImportCsvResponse, Money, OpenAccountRequest, OpenAccountResponse,
    RecategorizeRequest, RecordTransactionRequest, RecordTransactionResponse, SetBudgetRequest,
    SplitTransactionRequest, csv_column,
};
use rust_decimal::Decimal;
use store::{AggregateStore, Store, meta};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{CommandContext, execute};

/// The Finance command service.
#[derive(Clone)]
pub struct FinanceCommandService {
    accounts: AggregateStore<Account, Store>,
    budgets: AggregateStore<Budget, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
}

impl FinanceCommandService {
    /// A service writing accounts and budgets, reading the import's default time zone from
    /// `preferences`.
    pub fn new(
        accounts: AggregateStore<Account, Store>,
        budgets: AggregateStore<Budget, Store>,
        preferences: AggregateStore<UserPreferences, Store>,
    ) -> Self {
        Self {
            accounts,
            budgets,
            preferences,
        }
    }

    async fn run(
        &self,
        context: CommandContext,
        account_id: Uuid,
        command: AccountCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let command = context.issue(command);
        execute(
            &self.accounts,
            &(),
            context,
            &account_id.to_string(),
            command,
        )
        .await
    }

    /// The events a command wrote (its ack's event ids), in order: for answers that report
    /// what the aggregate decided, also for a repeated command id. Reads only the command's
    /// own sequences (the ack's version back by its event count), not the whole account.
    async fn written(&self, ack: &CommandAck) -> Result<Vec<AccountEvent>, Status> {
        let before = (ack.version as usize).saturating_sub(ack.event_ids.len());
        let events = self
            .accounts
            .journal()
            .get_last_events::<Account>(&ack.aggregate_id, before)
            .await
            .map_err(|e| command_status(e.into()))?;
        events
            .into_iter()
            .filter(|e| {
                e.metadata
                    .get(meta::EVENT_ID)
                    .and_then(|id| id.as_str())
                    .is_some_and(|id| ack.event_ids.iter().any(|a| a == id))
            })
            .map(|e| {
                serde_json::from_value(e.payload).map_err(|err| {
                    tracing::error!(error = %err, "unreadable account event");
                    Status::internal("internal error")
                })
            })
            .collect()
    }

    /// The zone of an import's dates: the request's, else the caller's preferences.
    async fn import_zone(
        &self,
        context: &CommandContext,
        given: &str,
    ) -> Result<chrono_tz::Tz, Status> {
        if !given.trim().is_empty() {
            return given.trim().parse().map_err(|_| {
                invalid_argument(
                    "time_zone",
                    format!("{given:?} is not an IANA time zone (e.g. Europe/Paris)"),
                )
            });
        }
        let loaded = self
            .preferences
            .load_aggregate(&context.caller.user_id.to_string())
            .await
            .map_err(command_status)?;
        Ok(loaded
            .aggregate
            .preferences()
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Tz::UTC))
    }
}

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, Status> {
    (!value.is_empty())
        .then(|| parse_uuid_field(field, value))
        .transpose()
}

/// A decimal string of `field` (INVALID_ARGUMENT naming it).
fn decimal(field: &'static str, value: &str) -> Result<Decimal, Status> {
    parse_decimal(field, value).map_err(domain_status)
}

/// The amount and currency code of a required Money `field` (the currency is checked by the
/// aggregate, against the account's).
fn money(field: &'static str, value: Option<Money>) -> Result<(Decimal, String), Status> {
    let value = value.ok_or_else(|| {
        invalid_argument(field, "is required (a decimal string and a currency code)")
    })?;
    Ok((decimal(field, &value.amount)?, value.currency))
}

fn column(field: &'static str, value: Option<CsvColumn>) -> Result<Option<Column>, Status> {
    match value.and_then(|c| c.column) {
        None => Ok(None),
        Some(csv_column::Column::Index(i)) => Ok(Some(Column::Index(i as usize))),
        Some(csv_column::Column::Name(n)) if n.trim().is_empty() => {
            Err(invalid_argument(field, "a column name must not be blank"))
        }
        Some(csv_column::Column::Name(n)) => Ok(Some(Column::Name(n))),
    }
}

fn required_column(field: &'static str, value: Option<CsvColumn>) -> Result<Column, Status> {
    column(field, value)?.ok_or_else(|| invalid_argument(field, "is required (a name or an index)"))
}

/// The domain mapping of a wire mapping; bad parts are INVALID_ARGUMENT on `mapping.<field>`.
pub fn mapping_from_wire(wire: Option<proto::v1::CsvMapping>) -> Result<CsvMapping, Status> {
    let m = wire.ok_or_else(|| invalid_argument("mapping", "is required"))?;
    let amount = match (
        column("mapping.amount", m.amount)?,
        column("mapping.inflow", m.inflow)?,
        column("mapping.outflow", m.outflow)?,
    ) {
        (Some(signed), None, None) => AmountColumns::Signed(signed),
        (None, Some(inflow), Some(outflow)) => AmountColumns::InOut { inflow, outflow },
        _ => {
            return Err(invalid_argument(
                "mapping.amount",
                "give either an amount column, or both an inflow and an outflow column",
            ));
        }
    };
    let delimiter = match m.delimiter.as_bytes() {
        [] => b',',
        [b] if b.is_ascii() => *b,
        _ => {
            return Err(invalid_argument(
                "mapping.delimiter",
                "must be one ASCII character",
            ));
        }
    };
    Ok(CsvMapping {
        date: required_column("mapping.date", m.date)?,
        date_format: m.date_format,
        amount,
        payee: required_column("mapping.payee", m.payee)?,
        category: column("mapping.category", m.category)?,
        note: column("mapping.note", m.note)?,
        external_id: column("mapping.external_id", m.external_id)?,
        delimiter,
        has_header: m.has_header,
        flip_sign: m.flip_sign,
        decimal_comma: m.decimal_comma,
    })
}

#[tonic::async_trait]
impl FinanceCommands for FinanceCommandService {
    async fn open_account(
        &self,
        request: Request<OpenAccountRequest>,
    ) -> Result<Response<OpenAccountResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = optional_uuid("account_id", &r.account_id)?.unwrap_or_else(Uuid::now_v7);
        let opening_balance = if r.opening_balance.is_empty() {
            Decimal::ZERO
        } else {
            decimal("opening_balance", &r.opening_balance)?
        };
        let command = AccountCommand::Open {
            account_id,
            name: r.name,
            currency: r.currency,
            opening_balance,
        };
        let ack = self.run(context, account_id, command).await?.into_inner();
        Ok(Response::new(OpenAccountResponse {
            // on a repeated command id, the account the first execution opened
            account_id: ack.aggregate_id.clone(),
            ack: Some(ack),
        }))
    }

    async fn record_transaction(
        &self,
        request: Request<RecordTransactionRequest>,
    ) -> Result<Response<RecordTransactionResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let transaction_id =
            optional_uuid("transaction_id", &r.transaction_id)?.unwrap_or_else(Uuid::now_v7);
        let (amount, currency) = money("amount", r.amount)?;
        let occurred_at = r
            .occurred_at
            .as_ref()
            .map(|t| from_timestamp("occurred_at", t))
            .transpose()?
            .unwrap_or(context.at);
        let command = AccountCommand::Record(NewTransaction {
            transaction_id,
            amount,
            currency,
            occurred_at,
            payee: r.payee,
            category: r.category,
            note: r.note,
            receipt: (!r.receipt_ref.is_empty()).then_some(r.receipt_ref),
            source: r.source,
            external_id: (!r.external_id.is_empty()).then_some(r.external_id),
        });
        let ack = self.run(context, account_id, command).await?.into_inner();
        let transaction_id = if ack.duplicate {
            self.written(&ack)
                .await?
                .first()
                .and_then(AccountEvent::transaction_id)
                .ok_or_else(|| {
                    Status::failed_precondition(
                        "command_id was already used by another command than RecordTransaction",
                    )
                })?
        } else {
            transaction_id
        };
        Ok(Response::new(RecordTransactionResponse {
            transaction_id: transaction_id.to_string(),
            ack: Some(ack),
        }))
    }

    async fn recategorize(
        &self,
        request: Request<RecategorizeRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let transaction_id = parse_uuid_field("transaction_id", &r.transaction_id)?;
        let command = AccountCommand::Recategorize {
            transaction_id,
            category: r.category,
        };
        self.run(context, account_id, command).await
    }

    async fn split_transaction(
        &self,
        request: Request<SplitTransactionRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let transaction_id = parse_uuid_field("transaction_id", &r.transaction_id)?;
        let parts = r
            .parts
            .into_iter()
            .map(|p| {
                Ok(SplitPart {
                    amount: decimal("parts.amount", &p.amount)?,
                    category: p.category,
                    note: p.note,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let command = AccountCommand::Split {
            transaction_id,
            parts,
        };
        self.run(context, account_id, command).await
    }

    async fn delete_transaction(
        &self,
        request: Request<DeleteTransactionRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let transaction_id = parse_uuid_field("transaction_id", &r.transaction_id)?;
        self.run(
            context,
            account_id,
            AccountCommand::Delete { transaction_id },
        )
        .await
    }

    async fn set_budget(
        &self,
        request: Request<SetBudgetRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        parse_month("month", &r.month).map_err(domain_status)?;
        let (amount, currency) = money("amount", r.amount)?;
        let id = budget_id(context.caller.user_id, &r.month);
        let command = context.issue(BudgetCommand::Set {
            month: r.month,
            category: r.category,
            amount,
            currency,
            carry_over: r.carry_over,
        });
        execute(&self.budgets, &(), context, &id, command).await
    }

    async fn import_csv(
        &self,
        request: Request<ImportCsvRequest>,
    ) -> Result<Response<ImportCsvResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let account_id = parse_uuid_field("account_id", &r.account_id)?;
        let mapping = mapping_from_wire(r.mapping)?;
        let time_zone = self.import_zone(&context, &r.time_zone).await?;
        let parsed = csv_import::parse(&r.csv, &mapping, time_zone).map_err(domain_status)?;
        let command = AccountCommand::ImportCsv(CsvImport {
            source: r.source,
            transaction_ids: parsed.rows.iter().map(|_| Uuid::now_v7()).collect(),
            rows: parsed.rows,
            rejected: parsed.rejected,
            time_zone,
        });
        let ack = self.run(context, account_id, command).await?.into_inner();
        let written = self.written(&ack).await?;
        let Some(AccountEvent::AccountCsvImported {
            added,
            duplicates,
            rejected,
            ..
        }) = written.last().cloned()
        else {
            return Err(Status::failed_precondition(
                "command_id was already used by another command than ImportCsv",
            ));
        };
        Ok(Response::new(ImportCsvResponse {
            added,
            duplicates: duplicates
                .into_iter()
                .map(|d| CsvDuplicateRow {
                    line: d.line,
                    reason: d.reason,
                    transaction_id: d.transaction_id.to_string(),
                })
                .collect(),
            rejected: rejected
                .into_iter()
                .map(|r| CsvRejectedRow {
                    line: r.line,
                    field: r.field,
                    reason: r.reason,
                })
                .collect(),
            transaction_ids: written
                .iter()
                .filter_map(AccountEvent::transaction_id)
                .map(|t| t.to_string())
                .collect(),
            ack: Some(ack),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn name(n: &str) -> Option<CsvColumn> {
        Some(CsvColumn {
            column: Some(csv_column::Column::Name(n.into())),
        })
    }

    #[test]
    fn mappings_need_one_amount_layout() {
        let base = proto::v1::CsvMapping {
            date: name("Date"),
            payee: name("Payee"),
            date_format: "%Y-%m-%d".into(),
            ..Default::default()
        };
        let none = mapping_from_wire(Some(base.clone())).unwrap_err();
        assert_eq!(none.code(), Code::InvalidArgument);
        assert!(none.message().contains("mapping.amount"), "{none:?}");
        let both = proto::v1::CsvMapping {
            amount: name("Amount"),
            inflow: name("In"),
            ..base.clone()
        };
        assert!(mapping_from_wire(Some(both)).is_err());
        let in_out = proto::v1::CsvMapping {
            inflow: name("In"),
            outflow: name("Out"),
            delimiter: ";".into(),
            ..base
        };
        let m = mapping_from_wire(Some(in_out)).unwrap();
        assert!(matches!(m.amount, AmountColumns::InOut { .. }));
        assert_eq!(m.delimiter, b';');
    }

    #[test]
    fn money_fields_are_decimal_strings() {
        let err = money("amount", None).unwrap_err();
        assert!(err.message().contains("amount"), "{err:?}");
        let err = money(
            "amount",
            Some(Money {
                amount: "1e3".into(),
                currency: "USD".into(),
            }),
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let (amount, currency) = money(
            "amount",
            Some(Money {
                amount: "-12.30".into(),
                currency: "USD".into(),
            }),
        )
        .unwrap();
        assert_eq!(
            (amount.to_string(), currency.as_str()),
            ("-12.30".into(), "USD")
        );
    }
}
