//! The `edgewise` host library: everything the command-line tool does, over `edgewise-core`.
//!
//! This is the only crate that touches files, threads, clocks and terminals.

/// `eprintln!` that ignores a failed write: a closed pipe or a full disk behind standard error
/// must not abort a run (std's macro panics), and there is nowhere left to report it. Shadows
/// std's macro in every module of this crate.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod analyze;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod fnv;
pub mod fsio;
pub mod interrupt;
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
