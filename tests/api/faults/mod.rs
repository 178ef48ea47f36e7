//! Crash safety and fault injection: the real binary is SIGKILLed at named points
//! (`CUTOVER_FAULT=<point>:pause` makes it stop there), restarted, and checked; plus a full
//! disk, an Apache that dies on reload, and 20 clients at once.

mod crash;
mod env;
pub(crate) mod other;
mod steps;
