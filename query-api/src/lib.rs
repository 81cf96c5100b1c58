//! gRPC query services over the read models, with optional read-your-writes: a query carrying a
//! command's consistency token waits (bounded) until the read model has applied that command.

mod admin;
mod calendar;
mod consistency;
mod fields;
mod finance;
mod focus;
mod habits;
mod health;
mod history;
mod journal;
mod tasks;

pub use admin::AdminService;
pub use calendar::CalendarQueryService;
pub use consistency::ReadYourWrites;
pub use finance::{FinanceQueryService, money_to_wire};
pub use focus::{FocusQueryService, kind_to_wire};
pub use habits::HabitQueryService;
pub use health::HealthQueryService;
pub use history::HistoryService;
pub use journal::JournalQueryService;
pub use tasks::TaskQueryService;
