//! The `edgewise` host library: everything the command-line tool does, over `edgewise-core`.
//!
//! This is the only crate that touches files, threads, clocks and terminals.

pub mod data;
