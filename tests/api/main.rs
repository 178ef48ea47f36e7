//! Integration tests: one binary (see helpers.rs for how the console is started).

mod helpers;

mod audit_chain;
mod cli;
mod csrf;
mod routes;
mod sessions;
mod tokens;
