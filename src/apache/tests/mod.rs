//! Tests of the Apache module; those that need Apache run a private one on 127.0.0.1.

mod attacks;
mod harness;
mod lifecycle;
mod livemap;
mod serving;
#[path = "../../../tests/support/mod.rs"]
mod support;
mod validation;
