//! The Finance pillar: money accounts with their transactions, and monthly budgets.
//!
//! - [`money`]: `Decimal` amounts in ISO 4217 currencies, checked against minor units; never a
//!   float (events carry amounts as decimal strings).
//! - [`account`]: the `account` aggregate, which owns its transactions (the dedupe of imports is
//!   an invariant across them) — open, record, recategorize, split, delete, import a CSV.
//! - [`budget`]: the `budget` aggregate, one per user and month (`<user_id>:<YYYY-MM>`).
//! - [`csv_import`]: pure parsing of a bank CSV with a column mapping.
//! - [`dedupe`]: payee similarity and the date window of the import's fuzzy dedupe.
//!
//! Both aggregate types belong to the pillar `finance` (`crate::pillar_of`).

pub mod account;
pub mod budget;
pub mod csv_import;
pub mod dedupe;
pub mod money;
