//! The `edgewise` host library: everything the command-line tool does, over `edgewise-core`.
//!
//! This is the only crate that touches files, threads, clocks and terminals.

pub mod analyze;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod fsio;
pub mod mem;
pub mod metrics;
pub mod plot;
pub mod plots;
pub mod pool;
pub mod report;
pub mod repro;
pub mod sweep;
pub mod track;
pub mod train;
