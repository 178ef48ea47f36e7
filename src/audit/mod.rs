//! The audit log: one way to record an event, append-only and chained by SHA-256.
//!
//! Each row's `hash` is SHA-256(previous row's hash ‖ this row's canonical bytes), and
//! `audit_head` keeps the newest id and hash, so an edited, deleted, reordered or cut-off
//! row shows up in [`verify`]. Rows are written inside the caller's transaction: the event
//! and the change it describes commit together or not at all.

pub mod caps;
mod chain;
pub mod checkpoint;
mod event;
pub mod flood;
pub mod integrity;
pub mod query;
mod verify;

pub use chain::GENESIS;
pub use event::{now_text, record, record_alone, Event, Outcome, Source};
pub use verify::{verify, verify_against, Verification};
