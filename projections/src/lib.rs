//! Read models folded from the central log, and the runner that keeps them.
//!
//! A [`Projection`] says which rows an event touches and how it changes them; the
//! [`ProjectionRunner`] owns everything else: reading the log from the checkpoint in batches,
//! loading the touched rows, and writing the changed rows **and** the new checkpoint in one
//! transaction (exactly-once, restartable anywhere). Rows of every projection share one table
//! shape ([`Row`]), stored by [`ReadModels`] on PostgreSQL or SQLite.

mod error;
mod freshness;
mod projection;
mod read_models;
mod row;
mod runner;
pub mod task_list;

pub use error::{PoisonEvent, ProjectionError};
pub use freshness::Freshness;
pub use projection::Projection;
pub use read_models::{ReadModels, RowCursor};
pub use row::{Row, RowKey, RowSet};
pub use runner::{ProjectionRunner, RunnerHandle};
