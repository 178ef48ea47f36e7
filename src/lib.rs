//! Cutover: a self-hosted console for releasing websites that Apache serves.
#![deny(unsafe_code)]

pub mod apache;
pub mod app;
pub mod audit;
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod fault;
pub mod golive;
pub mod hosts;
pub mod php;
pub mod releases;
pub mod sites;
pub mod steps;
pub mod units;
pub mod vocab;
pub mod web;
