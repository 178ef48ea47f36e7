//! Integration tests: one binary (see helpers.rs for how the console is started).

mod aliases;
mod archives;
mod helpers;

mod audit_chain;
mod audit_checkpoint;
mod audit_review;
mod cli;
mod csrf;
mod downtime;
mod files;
mod flood;
mod golive;
mod lockout;
mod memory;
mod releases;
mod routes;
mod sessions;
mod sites;
mod tokens;
mod ui;
mod units;
mod upload_limits;
mod zip_index_bomb;
