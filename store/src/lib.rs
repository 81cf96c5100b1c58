//! The central event store of LifeOS: one append-only log for every pillar.
//!
//! Two backends with one behaviour: PostgreSQL (built on `postgres-es`'s table and loader) and an
//! embedded SQLite file. Both implement cqrs-es's [`PersistedEventRepository`] and our
//! [`Journal`]: atomic appends that return their global position, idempotent command receipts,
//! and a log reader in global order that never skips an event. [`AggregateStore`] is the
//! cqrs-es `EventStore` the command path uses, with snapshots taken once, from the post-command
//! state.
//!
//! [`PersistedEventRepository`]: cqrs_es::persist::PersistedEventRepository

mod aggregate_cache;
mod aggregate_store;
mod backend;
mod checkpoint;
mod commit_queue;
mod error;
mod feed;
mod journal;
mod lease;
mod logged;
mod migrations;
mod position;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use aggregate_cache::{AggregateCache, Cached};
pub use aggregate_store::{AggregateStore, CommandOutcome, SnapshotPolicy};
pub use backend::Store;
pub use checkpoint::upsert_checkpoint_sql;
pub use error::StoreError;
pub use feed::{LogBatch, LogFeed, TAIL_FRESH};
pub use journal::{AppendBatch, AppendOutcome, CommandKey, Journal, Receipt, StreamLoad};
pub use lease::Lease;
pub use logged::{LoggedEvent, meta};
pub use migrations::migrate;
pub use position::Position;
