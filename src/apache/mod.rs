//! Everything Cutover says to Apache: input validation, VirtualHost rendering,
//! a private ("managed") Apache instance, and the system Apache's commands.

mod command;
mod ctl;
mod directive_rules;
pub mod directives;
mod errorlog;
pub mod livemap;
mod mainconf;
pub mod managed;
mod process;
mod reach;
mod restart;
pub mod served;
pub mod serving;
pub mod system;
pub mod validate;
pub mod vhost;

#[cfg(test)]
mod tests;

pub use command::{run_command, write_config_file, CommandOutput, COMMAND_TIMEOUT};
pub use ctl::ApacheCtl;
pub use managed::ManagedApache;
pub use process::running;
pub use reach::WORKER_USER;
pub use system::SystemApache;
pub use vhost::{render, VhostSpec};
