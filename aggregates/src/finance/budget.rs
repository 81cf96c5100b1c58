//! The budget aggregate: one user's budget for one month, a line per category.
//!
//! Aggregate type `budget`, id `<user_id>:<YYYY-MM>` ([`budget_id`]): one short stream per user
//! and month, so setting March's budget never conflicts with recording transactions. A line
//! says how much a category may spend that month, in which currency, and whether the unspent
//! amount of the previous month is carried over into it (`carry_over`, see the
//! `finance_monthly` read model for the chain). Setting a line again replaces it; an amount of
//! zero leaves the category unbudgeted. Only the owner may act (others: NOT_FOUND).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::account::CATEGORY_MAX_CHARS;
use super::money::{Currency, in_minor_units};
use crate::{DomainError, Issued};

/// The aggregate id of `user_id`'s budget for `month` (`YYYY-MM`).
///
/// ```
/// let id = aggregates::finance::budget::budget_id(uuid::Uuid::nil(), "2026-03");
/// assert_eq!(id, "00000000-0000-0000-0000-000000000000:2026-03");
/// ```
pub fn budget_id(user_id: Uuid, month: &str) -> String {
    format!("{user_id}:{month}")
}

/// Parses a `YYYY-MM` month of request field `field` into its first day.
///
/// ```
/// use aggregates::finance::budget::parse_month;
/// assert!(parse_month("month", "2026-03").is_ok());
/// assert!(parse_month("month", "2026-3").is_err());
/// assert!(parse_month("month", "2026-13").is_err());
/// ```
pub fn parse_month(field: &'static str, text: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .ok()
        .filter(|d| month_id(*d) == text)
        .ok_or_else(|| {
            DomainError::invalid(field, format!("must be a month as YYYY-MM, got {text:?}"))
        })
}

/// `YYYY-MM` of the month `day` is in.
pub fn month_id(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

/// One category's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    /// How much may be spent (≥ 0, the currency's minor units).
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// Whether last month's unspent amount adds to this month's.
    pub carry_over: bool,
}

/// What a user can ask of a month's budget.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetCommand {
    /// Set (or replace) one category's line.
    Set {
        /// `YYYY-MM` (must match the aggregate's month).
        month: String,
        /// The category (required).
        category: String,
        /// The amount (≥ 0).
        amount: Decimal,
        /// ISO 4217 code.
        currency: String,
        /// Carry last month's unspent amount over.
        carry_over: bool,
    },
}

/// What happened to a month's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BudgetEvent {
    /// A category's line was set.
    BudgetSet {
        /// The owner.
        user_id: Uuid,
        /// `YYYY-MM`.
        month: String,
        /// The category.
        category: String,
        /// The line.
        line: BudgetLine,
        /// When.
        set_at: DateTime<Utc>,
    },
}

impl DomainEvent for BudgetEvent {
    /// `BudgetSet` (on the bus: `finance.set`).
    fn event_type(&self) -> String {
        match self {
            BudgetEvent::BudgetSet { .. } => "BudgetSet",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The aggregate: one user's budget for one month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    owner: Option<Uuid>,
    month: Option<String>,
    lines: BTreeMap<String, BudgetLine>,
}

crate::pillar_aggregate!(Budget, "budget", BudgetCommand, BudgetEvent);

impl Budget {
    /// The line of `category`, if set.
    pub fn line(&self, category: &str) -> Option<&BudgetLine> {
        self.lines.get(category)
    }

    fn evolve(&mut self, event: BudgetEvent) {
        let BudgetEvent::BudgetSet {
            user_id,
            month,
            category,
            line,
            ..
        } = event;
        self.owner.get_or_insert(user_id);
        self.month.get_or_insert(month);
        self.lines.insert(category, line);
    }

    fn decide(&self, command: Issued<BudgetCommand>) -> Result<Vec<BudgetEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        let BudgetCommand::Set {
            month,
            category,
            amount,
            currency,
            carry_over,
        } = command;
        parse_month("month", &month)?;
        let category = category.trim().to_string();
        if category.is_empty() {
            return Err(DomainError::invalid("category", "is required"));
        }
        let len = category.chars().count();
        if len > CATEGORY_MAX_CHARS {
            return Err(DomainError::invalid(
                "category",
                format!("must be at most {CATEGORY_MAX_CHARS} characters, got {len}"),
            ));
        }
        let currency = Currency::parse_field("currency", &currency)?;
        let amount = in_minor_units("amount", amount, currency)?;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(DomainError::invalid(
                "amount",
                format!("a budget is not negative, got {amount}"),
            ));
        }
        if self.owner.is_some_and(|o| o != actor) {
            return Err(DomainError::NotFound {
                entity: "budget",
                id: String::new(),
            });
        }
        if self.month.as_ref().is_some_and(|m| *m != month) {
            return Err(DomainError::Rejected(format!(
                "this budget is for {}, not {month}",
                self.month.as_deref().unwrap_or_default()
            )));
        }
        let line = BudgetLine {
            amount,
            currency,
            carry_over,
        };
        if self.lines.get(&category) == Some(&line) {
            return Ok(vec![]);
        }
        Ok(vec![BudgetEvent::BudgetSet {
            user_id: actor,
            month,
            category,
            line,
            set_at: at,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn set(category: &str, amount: Decimal, currency: &str, carry_over: bool) -> BudgetCommand {
        BudgetCommand::Set {
            month: "2026-03".into(),
            category: category.into(),
            amount,
            currency: currency.into(),
            carry_over,
        }
    }

    fn set_event(category: &str, amount: Decimal) -> BudgetEvent {
        BudgetEvent::BudgetSet {
            user_id: ALICE,
            month: "2026-03".into(),
            category: category.into(),
            line: BudgetLine {
                amount,
                currency: "USD".parse().unwrap(),
                carry_over: true,
            },
            set_at: at(),
        }
    }

    fn refused(given: Vec<BudgetEvent>, actor: Uuid, command: BudgetCommand) -> DomainError {
        TestFramework::<Budget>::with(())
            .given(given)
            .when(Issued::new(actor, at(), command))
            .inspect_result()
            .expect_err("refused")
    }

    fn field(err: DomainError) -> &'static str {
        match err {
            DomainError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_line_is_set_in_minor_units() {
        TestFramework::<Budget>::with(())
            .given_no_previous_events()
            .when(Issued::new(
                ALICE,
                at(),
                set("groceries", Decimal::new(4005, 1), "USD", true),
            ))
            .then_expect_events(vec![set_event("groceries", Decimal::new(40050, 2))]);
    }

    #[test]
    fn setting_the_same_line_again_records_nothing() {
        TestFramework::<Budget>::with(())
            .given(vec![set_event("groceries", Decimal::new(400, 0))])
            .when(Issued::new(
                ALICE,
                at(),
                set("groceries", Decimal::new(400, 0), "USD", true),
            ))
            .then_expect_events(vec![]);
    }

    #[test]
    fn bad_lines_name_their_field() {
        let cases = [
            (set("", Decimal::ONE, "USD", false), "category"),
            (set("x", Decimal::new(1001, 3), "USD", false), "amount"),
            (set("x", Decimal::NEGATIVE_ONE, "USD", false), "amount"),
            (set("x", Decimal::ONE, "ZZZ", false), "currency"),
            (
                BudgetCommand::Set {
                    month: "2026-3".into(),
                    category: "x".into(),
                    amount: Decimal::ONE,
                    currency: "USD".into(),
                    carry_over: false,
                },
                "month",
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(field(refused(vec![], ALICE, command)), expected);
        }
    }

    #[test]
    fn another_users_budget_is_not_found() {
        let err = refused(
            vec![set_event("groceries", Decimal::ONE)],
            BOB,
            set("groceries", Decimal::TWO, "USD", false),
        );
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
    }
}
