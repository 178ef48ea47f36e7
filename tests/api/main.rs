//! Integration tests: one binary (see helpers.rs for how the console is started), with the
//! browser tests (`browser/`) and the crash-safety suite (`faults/`) as modules of it.

#[path = "../support/mod.rs"]
mod support;
use support::archives;

mod aliases;
mod helpers;

mod audit_chain;
mod audit_checkpoint;
mod audit_review;
mod browser;
mod cli;
mod csrf;
mod downtime;
mod faults;
mod files;
mod flood;
mod golive;
mod hosts;
mod hosts_faults;
mod hosts_php;
mod https;
mod lockout;
mod memory;
mod php;
mod releases;
mod routes;
mod served_elsewhere;
mod sessions;
mod site_settings;
mod sites;
mod steps;
mod stream_bomb;
mod structure;
mod system_mode;
mod tokens;
mod ui;
mod units;
mod upload_limits;
mod zip_index_bomb;
