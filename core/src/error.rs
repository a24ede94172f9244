//! The one error type of the crate: small, `Copy`, and printable without allocation.

use core::fmt;

/// Everything that can go wrong in `edgewise-core`. No function of the crate panics on bad
/// input: it returns one of these instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The architecture is not usable (fewer than two widths, a zero width, too many layers).
    InvalidArch(&'static str),
    /// A buffer's length does not match what the shape requires.
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A caller-provided buffer is shorter than needed.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// The length it needs at least.
        need: usize,
        /// The length it has.
        got: usize,
    },
    /// A class label is not below the number of outputs.
    LabelOutOfRange {
        /// Position of the sample in the data view.
        sample: usize,
        /// The offending label.
        label: u16,
        /// The number of classes (the output width).
        classes: usize,
    },
    /// The loss and targets do not fit (cross-entropy needs class labels).
    TargetsMismatch(&'static str),
    /// A setting is out of its valid range.
    InvalidConfig(&'static str),
    /// The data view holds no sample.
    EmptyData,
    /// A vector that must be non-zero (a start vector, a probe) is zero.
    ZeroVector,
    /// A NaN or infinity appeared where a finite number is required.
    NonFinite(&'static str),
    /// An iterative method stopped at its iteration limit before meeting its own convergence
    /// test (the results would not be trustworthy).
    NotConverged(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidArch(why) => write!(f, "invalid architecture: {why}"),
            Error::LengthMismatch {
                what,
                expected,
                got,
            } => {
                write!(f, "{what} has length {got}, expected {expected}")
            }
            Error::BufferTooSmall { what, need, got } => {
                write!(f, "{what} has length {got}, needs at least {need}")
            }
            Error::LabelOutOfRange {
                sample,
                label,
                classes,
            } => write!(
                f,
                "sample {sample} has label {label}, but the network has {classes} outputs"
            ),
            Error::TargetsMismatch(why) => write!(f, "targets do not fit the loss: {why}"),
            Error::InvalidConfig(why) => write!(f, "invalid setting: {why}"),
            Error::EmptyData => write!(f, "the data holds no sample"),
            Error::ZeroVector => write!(f, "a vector that must be non-zero is zero"),
            Error::NonFinite(what) => write!(f, "non-finite value in {what}"),
            Error::NotConverged(what) => {
                write!(f, "{what} did not converge within its iteration limit")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Checks that `buf` has exactly `expected` elements.
pub(crate) fn check_len<T>(what: &'static str, buf: &[T], expected: usize) -> Result<(), Error> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got: buf.len(),
        })
    }
}

/// Checks that `buf` has at least `need` elements.
pub(crate) fn check_min<T>(what: &'static str, buf: &[T], need: usize) -> Result<(), Error> {
    if buf.len() >= need {
        Ok(())
    } else {
        Err(Error::BufferTooSmall {
            what,
            need,
            got: buf.len(),
        })
    }
}
