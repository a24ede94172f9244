//! Project automation behind `cargo xtask` (see `src/main.rs` for the command line).
//!
//! [`firmware`] is usable as a library, e.g. from a conformance test that builds the firmware in
//! conformance mode, runs it under QEMU on every target and compares the decoded lines with the
//! host's results:
//!
//! ```no_run
//! use xtask::firmware::{self, Options, Target};
//! let run = firmware::build_and_run(&Options {
//!     features: vec!["conformance".into()],
//!     release: true,
//!     ..Options::new(Target::Thumbv7m)
//! })?;
//! assert!(run.success(), "{}", run.describe());
//! for line in &run.lines {
//!     // println! lines have no level: e.g. "conf <scenario> <step> <label> <bits>"
//!     if let Some(rest) = line.message.strip_prefix("conf ") { /* ... */ }
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```
pub mod board;
pub mod ci;
pub mod demo;
pub mod digits;
pub mod firmware;
