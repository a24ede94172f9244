//! The `edgewise` host library: everything the command-line tool does, over `edgewise-core`.
//!
//! This is the only crate that touches files, threads, clocks and terminals.

pub mod data;
pub mod engine;
pub mod fsio;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod error;
pub mod metrics;
pub mod plot;
pub mod plots;
pub mod track;
pub mod train;
pub mod analyze;
pub mod bench;
pub mod sweep;
pub mod report;
pub mod repro;
