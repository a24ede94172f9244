//! The bundled real data sets, embedded in the binary (gzip'd CSV from `host/data/`, see
//! `host/data/PROVENANCE.md` for sources and licences).
//!
//! | name | samples | features | raw values | scaling |
//! | --- | --- | --- | --- | --- |
//! | `digits` | 1797 (one pool) | 64 (8×8) | integers 0..16 | `x / 16`, into `[0, 1]` |
//! | `mnist5k` | 5000 (one pool) | 784 (28×28) | integers 0..255 | `x / 255`, into `[0, 1]` |
//! | `mnist1d` | 4000 train + 1000 test | 40 | standardised floats | none |
//!
//! All have 10 classes (labels 0-9). The scaling is one correctly rounded f32 division per
//! value, so it is exact and the same on every platform. The files are in a fixed but not
//! shuffled order: draw train and test sets with [`split`](fn@super::split).

use std::io::BufReader;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::csv::parse_csv;
use super::{DataError, Dataset};

const DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");
const MNIST5K_GZ: &[u8] = include_bytes!("../../data/mnist_5k.csv.gz");
const MNIST1D_TRAIN_GZ: &[u8] = include_bytes!("../../data/mnist1d_train.csv.gz");
const MNIST1D_TEST_GZ: &[u8] = include_bytes!("../../data/mnist1d_test.csv.gz");

pub(crate) const DIGITS_SCALING: &str = "x / 16: the 0..16 pixel counts into [0, 1]";
pub(crate) const MNIST5K_SCALING: &str = "x / 255: the 0..255 pixel values into [0, 1]";
pub(crate) const MNIST1D_SCALING: &str = "none: the floats are already standardised";

/// Description of one bundled data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundledInfo {
    /// The name accepted by [`bundled`] and [`load`](super::load).
    pub name: &'static str,
    /// Samples in the pool (the training file).
    pub n: usize,
    /// Samples in the separate test file, if the data set has one.
    pub test_n: Option<usize>,
    /// Features per sample.
    pub dim: usize,
    /// Number of classes.
    pub n_classes: usize,
    /// How the raw values are scaled into the inputs.
    pub scaling: &'static str,
    /// Where the data comes from.
    pub source: &'static str,
}

/// The bundled data sets.
pub const BUNDLED: [BundledInfo; 3] = [
    BundledInfo {
        name: "digits",
        n: 1797,
        test_n: None,
        dim: 64,
        n_classes: 10,
        scaling: DIGITS_SCALING,
        source:
            "UCI Optical Recognition of Handwritten Digits (scikit-learn's load_digits), CC BY 4.0",
    },
    BundledInfo {
        name: "mnist5k",
        n: 5000,
        test_n: None,
        dim: 784,
        n_classes: 10,
        scaling: MNIST5K_SCALING,
        source: "the first 5000 MNIST training images (LeCun, Cortes, Burges), CC BY-SA 3.0",
    },
    BundledInfo {
        name: "mnist1d",
        n: 4000,
        test_n: Some(1000),
        dim: 40,
        n_classes: 10,
        scaling: MNIST1D_SCALING,
        source: "MNIST-1D (Greydanus and Steinbach), default make_dataset, Apache-2.0",
    },
];

/// Loads a bundled data set: `digits`, `mnist5k` or `mnist1d`. Returns the pool and, for
/// `mnist1d`, its official test set.
///
/// # Errors
/// [`DataError::UnknownDataset`] for any other name (the embedded files themselves are checked
/// against their expected shape and value range, so a damaged build also gives an error).
pub fn bundled(name: &str) -> Result<(Dataset, Option<Dataset>), DataError> {
    match name {
        "digits" => Ok((
            decode("digits.csv.gz", DIGITS_GZ, &BUNDLED[0], Some(16.0))?,
            None,
        )),
        "mnist5k" => Ok((
            decode("mnist_5k.csv.gz", MNIST5K_GZ, &BUNDLED[1], Some(255.0))?,
            None,
        )),
        "mnist1d" => {
            let info = &BUNDLED[2];
            let train = decode("mnist1d_train.csv.gz", MNIST1D_TRAIN_GZ, info, None)?;
            let test_info = BundledInfo {
                n: info.test_n.unwrap_or(0),
                ..*info
            };
            let test = decode("mnist1d_test.csv.gz", MNIST1D_TEST_GZ, &test_info, None)?;
            Ok((train, Some(test)))
        }
        _ => Err(DataError::UnknownDataset {
            spec: name.to_string(),
        }),
    }
}

/// Decompresses and parses one embedded file, checks it against `info` and divides every
/// value by `divisor` (after checking it lies in `0..=divisor`).
fn decode(
    file: &str,
    gz: &[u8],
    info: &BundledInfo,
    divisor: Option<f32>,
) -> Result<Dataset, DataError> {
    let path: PathBuf = Path::new("<bundled>").join(file);
    let table = parse_csv(BufReader::new(GzDecoder::new(gz)), &path)?;
    if table.n() != info.n || table.dim != info.dim || table.n_classes() != info.n_classes {
        return Err(DataError::format(
            &path,
            format!(
                "expected {} samples x {} features in {} classes, found {} x {} in {}",
                info.n,
                info.dim,
                info.n_classes,
                table.n(),
                table.dim,
                table.n_classes()
            ),
        ));
    }
    let mut data = table.into_dataset(info.name.to_string());
    if let Some(divisor) = divisor {
        if let Some(bad) = data.x.iter().find(|&&v| !(0.0..=divisor).contains(&v)) {
            return Err(DataError::format(
                &path,
                format!("value {bad} outside the expected range 0..={divisor}"),
            ));
        }
        for v in &mut data.x {
            *v /= divisor;
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        let (d, test) = bundled("digits").unwrap();
        assert!(test.is_none());
        assert_eq!((d.n, d.dim, d.n_classes), (1797, 64, 10));
        assert_eq!(d.x.len(), 1797 * 64);
        assert_eq!(
            d.class_counts(),
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        // First line: 0,0,5,13,9,1,0,0,... label 0.
        assert_eq!(&d.row(0)[..4], &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]);
        assert_eq!(d.labels[0], 0);
        assert!(d.x.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(d.x.iter().cloned().fold(0.0f32, f32::max), 1.0);
        assert_eq!(d.name, "digits");
    }

    #[test]
    fn mnist5k() {
        let (d, test) = bundled("mnist5k").unwrap();
        assert!(test.is_none());
        assert_eq!((d.n, d.dim, d.n_classes), (5000, 784, 10));
        assert_eq!(d.x.len(), 5000 * 784);
        assert_eq!(d.class_counts(), vec![500; 10]);
        assert!(d.x.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn mnist1d() {
        let (train, test) = bundled("mnist1d").unwrap();
        let test = test.unwrap();
        assert_eq!((train.n, train.dim, train.n_classes), (4000, 40, 10));
        assert_eq!((test.n, test.dim, test.n_classes), (1000, 40, 10));
        assert_eq!(
            train.class_counts(),
            vec![398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
        );
        assert_eq!(
            test.class_counts(),
            vec![102, 104, 89, 106, 106, 98, 99, 96, 98, 102]
        );
        // Unscaled: the first value of the file as printed.
        assert_eq!(train.x[0], -0.332_005_68);
        assert!(train.x.iter().any(|&v| v < -1.0));
    }

    #[test]
    fn unknown_name() {
        let e = bundled("cifar").unwrap_err().to_string();
        assert!(
            e.contains("unknown data set `cifar`") && e.contains("digits"),
            "{e}"
        );
    }
}
