//! The CLI's one error type and its exit codes.
//!
//! | exit code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal error, or an I/O failure while writing results (e.g. disk full) |
//! | 2 | bad input: arguments, configuration, data files, checkpoints, output directory |
//! | 3 | the run diverged (NaN or infinite loss); its metrics and last finite checkpoint are kept |
//! | 130 | interrupted (Ctrl-C, SIGTERM): the runs stopped after a step with their resume state written |

use std::fmt;

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a diverged run.
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code for internal errors.
pub const EXIT_INTERNAL: u8 = 1;

/// An error with the exit code it maps to. Its message is printed as one line.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// What went wrong, naming the file, line or flag.
    pub message: String,
}

impl Failure {
    /// Bad input (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }

    /// Internal error or failure to write results (exit code 1).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_INTERNAL,
            message: message.into(),
        }
    }

    /// Adds context in front of the message.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<crate::data::DataError> for Failure {
    fn from(e: crate::data::DataError) -> Self {
        Failure::input(e.to_string())
    }
}

/// Result with a [`Failure`].
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Maps a core error in a computation to an internal failure with context.
pub fn core_err(what: &str) -> impl Fn(edgewise_core::Error) -> Failure + '_ {
    move |e| Failure::internal(format!("{what}: {e}"))
}
