//! The `lifeos` binary as a library: its configuration and the server it runs, so black-box
//! tests can start the very same server in process on an ephemeral port.

pub mod api;
pub mod config;
mod memory;
pub mod server;
pub mod status;

pub use config::{ServerConfig, StoreConfig};
pub use server::{RunningServer, start};
pub mod commands;
