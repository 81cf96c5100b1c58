//! gRPC command services: authenticate, validate, execute against the aggregate, and answer with
//! the committed version, event ids and a consistency token.
//!
//! The glue every pillar shares (caller, command id, metadata, execution, ack) is
//! [`CommandContext`] + [`execute`]; a pillar's service only maps its requests to commands.

mod calendar;
mod context;
mod finance;
mod focus;
mod habits;
mod health;
mod journal;
mod preferences;
mod tasks;

pub use calendar::{CalendarCommandService, details_from_wire};
pub use context::{CommandContext, MAX_COMMAND_ID_LEN, execute};
pub use finance::{FinanceCommandService, mapping_from_wire};
pub use focus::{FocusCommandService, kind_from_wire};
pub use habits::HabitCommandService;
pub use health::{HealthCommandService, measurement_from_wire};
pub use journal::{JournalCommandService, sentiment_to_wire};
pub use preferences::PreferencesService;
pub use tasks::TaskCommandService;
