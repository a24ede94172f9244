//! The `edgewise` binary: parse, run, map the outcome to an exit code (see `edgewise::error`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = edgewise::cli::Cli::parse();
    match edgewise::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Not `eprintln!`, which panics when standard error cannot be written.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "edgewise: error: {e}");
            ExitCode::from(e.code)
        }
    }
}
