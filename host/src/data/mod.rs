//! Data sets: the bundled real data (embedded in the binary) and readers for user files.
//!
//! # Dataset specs
//!
//! [`load`] takes one of these specs (see also [`DATASETS`]):
//!
//! | spec | what | test file | scaling of the inputs |
//! | --- | --- | --- | --- |
//! | `digits` | bundled UCI digits, 1797 × 64 (8×8 images, integers 0..16) | no | `/16`, into `[0, 1]` |
//! | `mnist5k` | bundled first 5000 MNIST training images, 5000 × 784 | no | `/255`, into `[0, 1]` |
//! | `mnist1d` | bundled MNIST-1D, 4000 train + 1000 test, × 40 floats | yes | none (already standardised) |
//! | `csv:PATH` | a CSV file, see [`read_csv`]; gzip'd if `PATH` ends in `.gz` | no | none |
//! | `fashion-mnist:DIR` | the four IDX files of Fashion-MNIST, see [`read_fashion_mnist`] | yes | `/255`, into `[0, 1]` |
//! | `cifar10:DIR` | the CIFAR-10 binary batches, see [`read_cifar10`] | yes | `/255`, then per channel `(x - mean) / std` |
//! | `synthetic:teacher[?k=v&...]` | regression data from a random teacher network, see [`teacher`] | no | inputs standard normal |
//!
//! A data set is a *pool* (and, where the distribution has one, a separate *test pool*); the
//! train and test sets of a run are drawn from them by [`split`](fn@split), under the seeded
//! rule documented in [`mod@split`].
//!
//! # Layout
//!
//! [`Dataset::x`] is row-major, `n` rows of `dim` values. Images keep the order of their file:
//! row by row for the MNIST-like sets, and channel-major (all red, then green, then blue, each
//! 32×32 row by row) for CIFAR-10. Classification data has `labels` in `0..n_classes` and no
//! `targets`; regression data has `targets` (`n` rows of [`Dataset::target_dim`] values),
//! all-zero `labels` and `n_classes == 0`.
//!
//! Everything here is deterministic and platform-independent: parsing is exact (decimal to
//! nearest f32), scaling is a fixed sequence of correctly rounded f32 operations, and the random
//! parts (splits, synthetic data) use integer SplitMix64 and f32 sums in a fixed order.

pub mod bundled;
pub mod cifar;
pub mod csv;
mod error;
pub mod idx;
mod rng;
pub mod split;
pub mod synthetic;

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub use bundled::{bundled, BundledInfo, BUNDLED};
pub use cifar::{read_cifar10, CIFAR10_MEAN, CIFAR10_STD};
pub use csv::read_csv;
pub use error::DataError;
pub use idx::read_fashion_mnist;
pub use split::{split, SplitSpec};
pub use synthetic::{teacher, TeacherSpec};

/// A data set held in memory.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    /// Inputs, row-major: `n` rows of `dim` values.
    pub x: Vec<f32>,
    /// Class labels in `0..n_classes`, one per sample (all zero for regression data).
    pub labels: Vec<u16>,
    /// Regression targets, row-major (`n` rows of [`Dataset::target_dim`] values), or `None`
    /// for classification data.
    pub targets: Option<Vec<f32>>,
    /// Number of samples.
    pub n: usize,
    /// Number of input features per sample.
    pub dim: usize,
    /// Number of classes (`0` for regression data).
    pub n_classes: usize,
    /// Short name of the data set (e.g. `digits`, `csv:/path/file.csv`).
    pub name: String,
}

impl Dataset {
    /// The inputs of sample `i`.
    ///
    /// # Panics
    /// If `i >= n`.
    #[must_use]
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(i < self.n, "row {i} out of range for {} samples", self.n);
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// The regression targets of sample `i`, if this is regression data.
    ///
    /// # Panics
    /// If `i >= n`.
    #[must_use]
    pub fn target_row(&self, i: usize) -> Option<&[f32]> {
        assert!(i < self.n, "row {i} out of range for {} samples", self.n);
        let d = self.target_dim();
        self.targets.as_ref().map(|t| &t[i * d..(i + 1) * d])
    }

    /// Width of one regression target row (`0` for classification data).
    #[must_use]
    pub fn target_dim(&self) -> usize {
        match &self.targets {
            Some(t) if self.n > 0 => t.len() / self.n,
            _ => 0,
        }
    }

    /// Whether this is regression data (it has `targets`).
    #[must_use]
    pub fn is_regression(&self) -> bool {
        self.targets.is_some()
    }

    /// A new data set with the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is `>= n`.
    #[must_use]
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.dim);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(self.row(i));
            labels.push(self.labels[i]);
        }
        let targets = self.targets.as_ref().map(|_| {
            let mut t = Vec::with_capacity(indices.len() * self.target_dim());
            for &i in indices {
                t.extend_from_slice(self.target_row(i).unwrap_or(&[]));
            }
            t
        });
        Dataset {
            x,
            labels,
            targets,
            n: indices.len(),
            dim: self.dim,
            n_classes: self.n_classes,
            name: self.name.clone(),
        }
    }

    /// The number of samples of each class, indexed by label (`n_classes` entries; empty for
    /// regression data).
    #[must_use]
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

impl fmt::Debug for Dataset {
    /// A summary (name and shapes), not the values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("n", &self.n)
            .field("dim", &self.dim)
            .field("n_classes", &self.n_classes)
            .field("target_dim", &self.target_dim())
            .finish_non_exhaustive()
    }
}

/// A loaded data set: the pool to draw the training set (and, without a test file, the test
/// set) from, and the distribution's own test file if it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// All training samples of the data set.
    pub train_pool: Dataset,
    /// The official test samples, for data sets distributed with a separate test file.
    pub test_pool: Option<Dataset>,
}

/// One accepted form of dataset spec, for help texts and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetKind {
    /// The spec syntax, e.g. `csv:PATH`.
    pub syntax: &'static str,
    /// What it loads.
    pub description: &'static str,
    /// How the inputs are scaled.
    pub scaling: &'static str,
}

/// Every accepted dataset spec form, in the order [`load`]'s documentation lists them.
pub const DATASETS: &[DatasetKind] = &[
    DatasetKind {
        syntax: "digits",
        description: "bundled UCI handwritten digits, 1797 samples x 64 (8x8), 10 classes",
        scaling: bundled::DIGITS_SCALING,
    },
    DatasetKind {
        syntax: "mnist1d",
        description: "bundled MNIST-1D, 4000 train + 1000 test samples x 40, 10 classes",
        scaling: bundled::MNIST1D_SCALING,
    },
    DatasetKind {
        syntax: "mnist5k",
        description: "bundled first 5000 MNIST training images x 784 (28x28), 10 classes",
        scaling: bundled::MNIST5K_SCALING,
    },
    DatasetKind {
        syntax: "csv:PATH",
        description: "CSV file (.gz allowed): features then an integer label on each line",
        scaling: csv::SCALING,
    },
    DatasetKind {
        syntax: "fashion-mnist:DIR",
        description: "Fashion-MNIST IDX files (train-*/t10k-*, optionally .gz) in DIR",
        scaling: idx::SCALING,
    },
    DatasetKind {
        syntax: "cifar10:DIR",
        description: "CIFAR-10 binary batches (data_batch_N.bin, test_batch.bin) in DIR",
        scaling: cifar::SCALING,
    },
    DatasetKind {
        syntax: "synthetic:teacher[?n=N&dim=D&hidden=H&out=O&seed=S]",
        description: "regression data from a random tanh teacher network",
        scaling: synthetic::SCALING,
    },
];

/// `spec` with the path of a file-based data set (`csv:`, `fashion-mnist:`, `cifar10:`) made
/// absolute against the working directory, so that a run's `config.toml` names its data from
/// anywhere (`--resume`, `spectrum` and `report` may run in another directory). Other specs,
/// absolute paths, and a working directory that cannot be read are left as they are.
pub fn absolute_spec(spec: &str) -> String {
    let Some((kind, path)) = spec.split_once(':') else {
        return spec.to_string();
    };
    let p = std::path::Path::new(path);
    if !matches!(kind, "csv" | "fashion-mnist" | "cifar10") || path.is_empty() || p.is_absolute() {
        return spec.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{kind}:{}", cwd.join(p).display()),
        Err(_) => spec.to_string(),
    }
}

/// Loads the data set named by `spec` (see the [module documentation](self) and [`DATASETS`]).
///
/// `seed` is used only by generated data (`synthetic:teacher`, unless the spec sets its own
/// `seed=`); files and bundled data do not depend on it. Shuffling and splitting happen
/// later, in [`split`](fn@split).
///
/// # Errors
/// [`DataError::UnknownDataset`] (listing the valid specs) for an unknown name,
/// [`DataError::BadSpec`] for a malformed spec, and the errors of the reader it calls.
pub fn load(spec: &str, seed: u64) -> Result<Loaded, DataError> {
    let (kind, arg) = match spec.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (spec, None),
    };
    let need_path = |what: &str| -> Result<&Path, DataError> {
        match arg {
            Some(a) if !a.is_empty() => Ok(Path::new(a)),
            _ => Err(DataError::bad_spec(
                spec,
                format!("expected `{kind}:{what}` with a non-empty {what}"),
            )),
        }
    };
    let (train_pool, test_pool) = match kind {
        "digits" | "mnist5k" | "mnist1d" => {
            if arg.is_some() {
                return Err(DataError::bad_spec(
                    spec,
                    format!("the bundled data set `{kind}` takes no argument"),
                ));
            }
            bundled(kind)?
        }
        "csv" => (read_csv(need_path("PATH")?)?, None),
        "fashion-mnist" => {
            let (train, test) = read_fashion_mnist(need_path("DIR")?)?;
            (train, Some(test))
        }
        "cifar10" => {
            let (train, test) = read_cifar10(need_path("DIR")?)?;
            (train, Some(test))
        }
        "synthetic" => {
            let rest = arg.unwrap_or("");
            let (model, params) = match rest.split_once('?') {
                Some((model, params)) => (model, params),
                None => (rest, ""),
            };
            if model != "teacher" {
                return Err(DataError::bad_spec(
                    spec,
                    "the only synthetic data set is `synthetic:teacher`",
                ));
            }
            let teacher_spec =
                TeacherSpec::parse(params, seed).map_err(|msg| DataError::bad_spec(spec, msg))?;
            (teacher(&teacher_spec)?, None)
        }
        _ => {
            return Err(DataError::UnknownDataset {
                spec: spec.to_string(),
            })
        }
    };
    Ok(Loaded {
        train_pool,
        test_pool,
    })
}

/// Opens `path` for buffered reading, through a gzip decoder if its name ends in `.gz`
/// (multi-member gzip streams are read to the end).
pub(crate) fn open_input(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if is_gz(path) {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        ))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Whether the file name ends in `.gz` (any case).
fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Unique temporary files and directories for the tests, removed on drop.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh directory under the system temp dir, removed with its contents on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let k = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = std::env::temp_dir().join(format!(
                "edgewise-data-test-{}-{tag}-{k}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        /// Writes `bytes` to `name` in this directory, gzip'd if `name` ends in `.gz`.
        pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            let data = if name.ends_with(".gz") {
                gzip(bytes)
            } else {
                bytes.to_vec()
            };
            std::fs::write(&path, data).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        Dataset {
            x: (0..12).map(|v| v as f32).collect(),
            labels: vec![0, 2, 1, 2],
            targets: None,
            n: 4,
            dim: 3,
            n_classes: 3,
            name: "toy".into(),
        }
    }

    #[test]
    fn dataset_helpers() {
        let d = toy();
        assert_eq!(d.row(1), &[3.0, 4.0, 5.0]);
        assert_eq!(d.class_counts(), vec![1, 1, 2]);
        assert_eq!(d.target_dim(), 0);
        assert_eq!(d.target_row(0), None);
        let s = d.subset(&[3, 0]);
        assert_eq!(s.n, 2);
        assert_eq!(s.x, vec![9.0, 10.0, 11.0, 0.0, 1.0, 2.0]);
        assert_eq!(s.labels, vec![2, 0]);
        assert_eq!(s.n_classes, 3);

        let mut r = toy();
        r.targets = Some(vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]);
        assert_eq!(r.target_dim(), 2);
        assert_eq!(r.target_row(2), Some(&[4.5, 5.5][..]));
        let s = r.subset(&[2]);
        assert_eq!(s.targets, Some(vec![4.5, 5.5]));
        assert_eq!(s.target_dim(), 2);
    }

    #[test]
    fn load_dispatch_and_errors() {
        let e = load("imagenet", 0).unwrap_err().to_string();
        assert!(e.contains("unknown data set `imagenet`"), "{e}");
        for kind in DATASETS {
            assert!(e.contains(kind.syntax), "{e}");
        }
        let e = load("csv:", 0).unwrap_err().to_string();
        assert!(e.contains("non-empty PATH"), "{e}");
        let e = load("digits:x", 0).unwrap_err().to_string();
        assert!(e.contains("takes no argument"), "{e}");
        let e = load("synthetic:student", 0).unwrap_err().to_string();
        assert!(e.contains("synthetic:teacher"), "{e}");
        let e = load("fashion-mnist:/nonexistent/edgewise-dir", 0).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/edgewise-dir"), "{e}");

        let l = load("synthetic:teacher?n=10", 5).unwrap();
        assert_eq!(l.train_pool.n, 10);
        assert!(l.test_pool.is_none());
        // The load seed is the default teacher seed.
        let same = load("synthetic:teacher?n=10&seed=5", 99).unwrap();
        assert_eq!(l, same);

        let l = load("mnist1d", 0).unwrap();
        assert_eq!(l.train_pool.n, 4000);
        assert_eq!(l.test_pool.map(|t| t.n), Some(1000));
    }
}
