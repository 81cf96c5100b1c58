//! Read models folded from the central log, and the runner that keeps them.
//!
//! A [`Projection`] says which rows an event touches and how it changes them; the
//! [`ProjectionRunner`] owns everything else: reading the log from the checkpoint in batches,
//! loading the touched rows, and writing the changed rows **and** the new checkpoint in one
//! transaction (exactly-once, restartable anywhere). Rows of every projection share one table
//! shape ([`Row`]), stored by [`ReadModels`] on PostgreSQL or SQLite.

mod build_pace;
mod build_rows;
pub mod calendar_daily;
pub mod calendar_events;
pub mod daily;
mod error;
pub mod finance_accounts;
pub mod finance_daily;
pub mod finance_flows;
pub mod finance_monthly;
pub mod focus_daily;
pub mod focus_sessions;
mod freshness;
pub mod habits;
pub mod health_daily;
pub mod health_samples;
pub mod journal_daily;
pub mod journal_entries;
pub mod journal_search;
mod projection;
mod read_models;
mod reader;
pub mod replay;
mod row;
mod runner;
pub mod status;
pub mod task_daily;
pub mod task_list;

use std::sync::Arc;

/// Every projection of the engine (the server runs one runner for each).
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(task_list::TaskList),
        Arc::new(focus_sessions::FocusSessions),
        Arc::new(focus_daily::FocusDaily),
        Arc::new(task_daily::TaskDaily),
        Arc::new(calendar_events::CalendarEvents),
        Arc::new(habits::Habits),
        Arc::new(journal_entries::JournalEntries),
        Arc::new(journal_daily::JournalDaily),
        Arc::new(finance_accounts::FinanceAccounts),
        Arc::new(finance_monthly::FinanceMonthly),
        Arc::new(finance_daily::FinanceDaily),
        Arc::new(health_samples::HealthSamples),
        Arc::new(health_daily::HealthDaily),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

pub use error::{PoisonEvent, ProjectionError};
pub use freshness::Freshness;
pub use projection::{Projection, decode_payload, payload_field};
pub use read_models::{DocFilter, ReadModels, RowCursor};
pub use reader::{MemoryRows, RowReader};
pub use row::{Doc, Row, RowKey, RowSet};
pub use runner::{ProjectionRunner, RunnerHandle};
