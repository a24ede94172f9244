//! [`DataError`]: every way loading or splitting a data set can fail.
//!
//! Messages name what the user has to fix: the data file and, for text files, the 1-based line;
//! the directory; the dataset spec; or the split parameter (by its [`SplitSpec`] field name).
//!
//! [`SplitSpec`]: super::SplitSpec

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error while loading, parsing or splitting a data set.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// The dataset spec names no known data set.
    UnknownDataset {
        /// The spec as given.
        spec: String,
    },
    /// The dataset spec is malformed (an empty path, a bad `synthetic:` parameter, ...).
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A file could not be opened or read (missing, unreadable, corrupt gzip stream, ...).
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A text file has bad content on one line.
    Line {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// A file as a whole is malformed: bad magic number, truncated, wrong size, no samples, ...
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A data directory is missing or lacks a required file.
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The requested train/test split cannot be made from the data.
    Split {
        /// What is wrong, naming the [`SplitSpec`](super::SplitSpec) field.
        msg: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn line(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        DataError::Line {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }

    pub(crate) fn format(path: &Path, msg: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    pub(crate) fn dir(path: &Path, msg: impl Into<String>) -> Self {
        DataError::Dir {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    pub(crate) fn bad_spec(spec: &str, msg: impl Into<String>) -> Self {
        DataError::BadSpec {
            spec: spec.to_string(),
            msg: msg.into(),
        }
    }

    pub(crate) fn split(msg: impl Into<String>) -> Self {
        DataError::Split { msg: msg.into() }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::UnknownDataset { spec } => {
                write!(f, "unknown data set `{spec}`; valid data sets: ")?;
                for (i, kind) in super::DATASETS.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(kind.syntax)?;
                }
                Ok(())
            }
            DataError::BadSpec { spec, msg } => write!(f, "data set `{spec}`: {msg}"),
            DataError::Io { path, source } => write!(f, "data file {}: {source}", path.display()),
            DataError::Line { path, line, msg } => {
                write!(f, "data file {}, line {line}: {msg}", path.display())
            }
            DataError::Format { path, msg } => write!(f, "data file {}: {msg}", path.display()),
            DataError::Dir { path, msg } => write!(f, "data directory {}: {msg}", path.display()),
            DataError::Split { msg } => write!(f, "train/test split: {msg}"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
