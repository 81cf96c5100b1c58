//! Finance: a checking account opened on a user's first day, with a few card payments most
//! days, salary and rent on the first of the month, and now and then a payment recategorized,
//! split or deleted; a budget for two or three categories set at the start of every month
//! (one `budget` stream per user and month, `<user>:<YYYY-MM>`). Money is `Decimal` in cents.

use aggregates::Issued;
use aggregates::finance::account::{Account, AccountCommand, NewTransaction, SplitPart};
use aggregates::finance::budget::{Budget, BudgetCommand, budget_id, month_id};
use chrono::{DateTime, Datelike, Duration as Span, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who track their money.
const SHARE: f64 = 0.25;
/// The most card payments in a day.
const MAX_PAYMENTS: u64 = 3;

/// Where money goes: payee, category, and the range of a payment in cents.
const PAYMENTS: [(&str, &str, i64, i64); 8] = [
    ("Green Grocer", "groceries", 800, 12_000),
    ("Corner Cafe", "dining", 250, 1_500),
    ("Trattoria", "dining", 1_800, 9_000),
    ("City Transit", "transport", 200, 500),
    ("Fuel Stop", "transport", 3_000, 7_000),
    ("Pharmacy", "health", 500, 4_000),
    ("Bookshop", "shopping", 900, 4_500),
    ("Online Store", "shopping", 1_000, 15_000),
];

/// The categories a budget may cover, with their monthly amount in cents.
const BUDGETED: [(&str, i64); 3] = [
    ("groceries", 45_000),
    ("dining", 20_000),
    ("transport", 15_000),
];

/// One user's money: the account and what the monthly budget covers.
struct Household {
    account: Stream<Account>,
    currency: &'static str,
    /// How many of [`BUDGETED`] the budget covers.
    budgeted: usize,
    /// The last month budgeted (`YYYY-MM`).
    budget_month: String,
}

impl Household {
    /// Records a transaction of `cents` (negative = money out) at `at`; returns its id.
    fn record(
        &mut self,
        user: Uuid,
        at: DateTime<Utc>,
        cents: i64,
        (payee, category): (&str, &str),
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<Uuid> {
        let transaction_id = rng.uuid();
        let new = NewTransaction {
            transaction_id,
            amount: Decimal::new(cents, 2),
            currency: self.currency.into(),
            occurred_at: at,
            payee: payee.into(),
            category: category.into(),
            note: String::new(),
            receipt: None,
            source: String::new(),
            external_id: None,
        };
        let recorded = at + Span::minutes(2);
        let command = AccountCommand::Record(new);
        self.account.exec(
            Issued::new(user, recorded, command),
            user,
            recorded,
            rng,
            out,
        )?;
        Ok(transaction_id)
    }

    /// Sets this month's budget lines when the month changed.
    fn budget(
        &mut self,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let month = month_id(day.date_naive());
        if month == self.budget_month {
            return Ok(());
        }
        let at = day + Span::hours(7);
        let mut budget = Stream::<Budget>::new(budget_id(user, &month));
        for (category, cents) in &BUDGETED[..self.budgeted] {
            let set = BudgetCommand::Set {
                month: month.clone(),
                category: (*category).into(),
                amount: Decimal::new(cents + 1_000 * rng.below(5) as i64, 2),
                currency: self.currency.into(),
                carry_over: *category == "groceries",
            };
            budget.exec(Issued::new(user, at, set), user, at, rng, out)?;
        }
        self.budget_month = month;
        Ok(())
    }
}

/// The accounts and budgets of the users who track their money.
pub(super) struct Finance {
    households: Adopters<Household>,
}

impl Finance {
    /// No account yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Finance {
            households: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Finance {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(home) = self.households.of(index, rng, |rng| {
            let account_id = rng.uuid();
            let currency = if rng.chance(0.7) { "USD" } else { "EUR" };
            let mut account = Stream::new(account_id);
            let open = AccountCommand::Open {
                account_id,
                name: "Checking".into(),
                currency: currency.into(),
                opening_balance: Decimal::new(150_000 + rng.below(350_000) as i64, 2),
            };
            let at = day + Span::hours(7);
            account.exec(Issued::new(user, at, open), user, at, rng, out)?;
            Ok(Household {
                account,
                currency,
                budgeted: 2 + rng.below(2) as usize,
                budget_month: String::new(),
            })
        })?
        else {
            return Ok(());
        };
        home.budget(user, day, rng, out)?;
        if day.day() == 1 {
            let at = day + Span::hours(6);
            let salary = 320_000 + 10_000 * rng.below(16) as i64;
            home.record(user, at, salary, ("Employer", "income"), rng, out)?;
            home.record(user, at, -120_000, ("Landlord", "housing"), rng, out)?;
        }
        let mut last = None;
        for _ in 0..rng.below(MAX_PAYMENTS + 1) {
            let (payee, category, low, high) = *rng.pick(&PAYMENTS);
            let cents = -(low + rng.below((high - low + 1) as u64) as i64);
            let at = day + Span::minutes(8 * 60 + rng.below(14 * 60) as i64);
            let id = home.record(user, at, cents, (payee, category), rng, out)?;
            last = Some((id, cents, at));
        }
        let Some((transaction_id, cents, at)) = last else {
            return Ok(());
        };
        let fix = at + Span::hours(1);
        let command = match rng.below(200) {
            0..=7 => AccountCommand::Recategorize {
                transaction_id,
                category: "household".into(),
            },
            8..=9 if cents <= -2 => {
                let half = cents / 2;
                let part = |cents, category: &str| SplitPart {
                    amount: Decimal::new(cents, 2),
                    category: category.into(),
                    note: String::new(),
                };
                AccountCommand::Split {
                    transaction_id,
                    parts: vec![part(half, "household"), part(cents - half, "gifts")],
                }
            }
            10 => AccountCommand::Delete { transaction_id },
            _ => return Ok(()),
        };
        home.account
            .exec(Issued::new(user, fix, command), user, fix, rng, out)
    }
}
