//! The CLI end to end: the real `kamstrup` binary against simulated meters over real
//! pseudo-terminals and TCP, real brokers and HTTP servers — one test binary, one harness.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod harness;

mod addon;
mod backfill;
mod daemon;
mod demo;
mod doctor;
mod domoticz;
mod log;
mod log_module;
mod mc66c;
mod mc66c_program;
mod read;
mod setup;
mod verdicts;
