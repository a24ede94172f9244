//! CIFAR-10 in its binary distribution format (`cifar10:DIR`).
//!
//! # Files
//!
//! `DIR` holds the training batches `data_batch_1.bin`, `data_batch_2.bin`, ... (up to 5) and
//! `test_batch.bin`, as extracted from `cifar-10-binary.tar.gz`. The training batches present
//! must run from 1 without a gap (e.g. only `data_batch_1.bin` is fine, `1, 2, 4` is not);
//! `test_batch.bin` is required. Batches are read in order, so the pool is their concatenation.
//! CIFAR-10 has five training batches: a `data_batch_6.bin` or higher is not read, with a
//! warning on standard error.
//!
//! # Format
//!
//! Each batch is a sequence of 3073-byte records: one label byte (0-9), then the 32×32 image as
//! 3072 bytes, channel-major (1024 red, then 1024 green, then 1024 blue values, each plane row
//! by row). A file whose size is not a positive multiple of 3073 is reported as truncated or
//! not a CIFAR-10 batch; a label above 9 is an error naming the file and the record.
//!
//! # Scaling
//!
//! Each pixel byte `b` of channel `c` becomes `(b / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]`,
//! the standard per-channel normalisation with the training-set statistics, computed in f32 in
//! that order (so the same bits on every platform). The layout stays channel-major: feature
//! `c * 1024 + row * 32 + col`.

use std::path::{Path, PathBuf};

use super::idx::check_labels;
use super::{DataError, Dataset};

/// Per-channel (R, G, B) mean of the CIFAR-10 training pixels, after `/ 255`.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel (R, G, B) standard deviation of the CIFAR-10 training pixels, after `/ 255`.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// How `cifar10:DIR` inputs are scaled.
pub(crate) const SCALING: &str = "x / 255, then per channel (x - mean) / std with \
     mean (0.4914, 0.4822, 0.4465) and std (0.2470, 0.2435, 0.2616)";

const PIXELS: usize = 3 * 32 * 32;
const RECORD: usize = 1 + PIXELS;
const MAX_TRAIN_BATCHES: usize = 5;

/// Reads CIFAR-10 from the binary batches in `dir` (see the [module documentation](self)).
/// Returns the training pool (all training batches present, in order) and the test set.
///
/// # Errors
/// A missing directory or file, a gap in the batch numbers, a read error, a file size that is
/// not a positive multiple of 3073, or a label above 9; the message names the file.
pub fn read_cifar10(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    if !dir.is_dir() {
        return Err(DataError::dir(
            dir,
            "not found or not a directory (it should hold the CIFAR-10 .bin batches)",
        ));
    }
    let train_files = train_batches(dir)?;
    let test_file = dir.join("test_batch.bin");
    if !test_file.is_file() {
        return Err(DataError::dir(dir, "missing test_batch.bin"));
    }
    for name in ignored_batches(dir) {
        eprintln!(
            "warning: data directory {}: {name} is not read (CIFAR-10 has {MAX_TRAIN_BATCHES} \
             training batches, data_batch_1.bin to data_batch_{MAX_TRAIN_BATCHES}.bin)",
            dir.display()
        );
    }
    let table = normalisation_table();
    let mut train = empty();
    for path in &train_files {
        read_batch(path, &table, &mut train)?;
    }
    let mut test = empty();
    read_batch(&test_file, &table, &mut test)?;
    Ok((train, test))
}

/// The training batch files: `data_batch_1.bin` up to the last present one, without gaps.
fn train_batches(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let name = |k: usize| format!("data_batch_{k}.bin");
    let present: Vec<bool> = (1..=MAX_TRAIN_BATCHES)
        .map(|k| dir.join(name(k)).is_file())
        .collect();
    let count = present.iter().take_while(|&&p| p).count();
    if count == 0 {
        return Err(DataError::dir(dir, "missing data_batch_1.bin"));
    }
    if let Some(k) = present.iter().skip(count).position(|&p| p) {
        return Err(DataError::dir(
            dir,
            format!(
                "{} is present but {} is missing: the training batches must run from \
                 data_batch_1.bin without a gap",
                name(count + 1 + k),
                name(count + 1)
            ),
        ));
    }
    Ok((1..=count).map(|k| dir.join(name(k))).collect())
}

/// The files `data_batch_N.bin` in `dir` with `N` above [`MAX_TRAIN_BATCHES`], sorted by `N`.
fn ignored_batches(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(u64, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let k: u64 = name
                .strip_prefix("data_batch_")?
                .strip_suffix(".bin")?
                .parse()
                .ok()?;
            (k > MAX_TRAIN_BATCHES as u64).then_some((k, name))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, name)| name).collect()
}

/// `table[c][b]`: the input value of pixel byte `b` in channel `c`.
fn normalisation_table() -> [[f32; 256]; 3] {
    let mut table = [[0.0f32; 256]; 3];
    for (c, row) in table.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            *v = (b as f32 / 255.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c];
        }
    }
    table
}

fn empty() -> Dataset {
    Dataset {
        x: Vec::new(),
        labels: Vec::new(),
        targets: None,
        n: 0,
        dim: PIXELS,
        n_classes: 10,
        name: "cifar10".to_string(),
    }
}

/// Appends the records of one batch file to `data`.
fn read_batch(path: &Path, table: &[[f32; 256]; 3], data: &mut Dataset) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(DataError::format(
            path,
            format!(
                "size {} bytes is not a positive multiple of {RECORD} (one record is a label \
                 byte and {PIXELS} pixel bytes): the file is truncated or not a CIFAR-10 batch",
                bytes.len()
            ),
        ));
    }
    let records = bytes.len() / RECORD;
    let labels: Vec<u8> = bytes.chunks_exact(RECORD).map(|r| r[0]).collect();
    let labels = check_labels(&labels, "record").map_err(|msg| DataError::format(path, msg))?;
    data.x.reserve(records * PIXELS);
    for record in bytes.chunks_exact(RECORD) {
        for (c, plane) in record[1..].chunks_exact(PIXELS / 3).enumerate() {
            data.x
                .extend(plane.iter().map(|&b| table[c][usize::from(b)]));
        }
    }
    data.labels.extend(labels);
    data.n += records;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::TempDir;
    use super::*;

    /// `labels.len()` records; record `r` has pixel `i` equal to `(i + r) % 256`.
    fn batch(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for (r, &l) in labels.iter().enumerate() {
            v.push(l);
            v.extend((0..PIXELS).map(|i| ((i + r) % 256) as u8));
        }
        v
    }

    fn err(dir: &TempDir) -> String {
        read_cifar10(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn reads_batches() {
        let dir = TempDir::new("cifar");
        dir.write("data_batch_1.bin", &batch(&[3, 9]));
        dir.write("data_batch_2.bin", &batch(&[0]));
        dir.write("test_batch.bin", &batch(&[7, 1, 2]));
        let (train, test) = read_cifar10(dir.path()).unwrap();
        assert_eq!((train.n, train.dim, train.n_classes), (3, 3072, 10));
        assert_eq!((test.n, test.dim, test.n_classes), (3, 3072, 10));
        assert_eq!(train.labels, vec![3, 9, 0]);
        assert_eq!(test.labels, vec![7, 1, 2]);
        assert_eq!(train.x.len(), 3 * 3072);
        assert_eq!(train.name, "cifar10");
        // Record 0, red plane, pixel 0 is byte 0; green plane pixel 0 is byte 1024 % 256 = 0;
        // record 1, blue plane pixel 5 is byte (2048 + 5 + 1) % 256 = 6.
        assert_eq!(train.x[0], (0.0 - 0.4914) / 0.2470);
        assert_eq!(train.x[1024], (0.0 - 0.4822) / 0.2435);
        assert_eq!(train.x[1], (1.0 / 255.0 - 0.4914) / 0.2470);
        assert_eq!(train.row(1)[2048 + 5], (6.0 / 255.0 - 0.4465) / 0.2616);
        // The third training sample comes from data_batch_2.bin (record 0 there).
        assert_eq!(train.row(2), train.row(0));
    }

    #[test]
    fn batch_set_rules() {
        let dir = TempDir::new("cifar-set");
        let e = err(&dir);
        assert!(e.contains("missing data_batch_1.bin"), "{e}");
        dir.write("data_batch_1.bin", &batch(&[1]));
        let e = err(&dir);
        assert!(e.contains("missing test_batch.bin"), "{e}");
        dir.write("test_batch.bin", &batch(&[1]));
        dir.write("data_batch_2.bin", &batch(&[1]));
        dir.write("data_batch_4.bin", &batch(&[1]));
        let e = err(&dir);
        assert!(
            e.contains("data_batch_4.bin is present but data_batch_3.bin is missing"),
            "{e}"
        );
        dir.write("data_batch_3.bin", &batch(&[1]));
        assert_eq!(read_cifar10(dir.path()).unwrap().0.n, 4);
        // Batches past the fifth are not read, and named in a warning.
        assert!(ignored_batches(dir.path()).is_empty());
        dir.write("data_batch_5.bin", &batch(&[1]));
        dir.write("data_batch_10.bin", &batch(&[1]));
        dir.write("data_batch_6.bin", &batch(&[1]));
        dir.write("data_batch_x.bin", &batch(&[1]));
        assert_eq!(
            ignored_batches(dir.path()),
            ["data_batch_6.bin", "data_batch_10.bin"]
        );
        assert_eq!(read_cifar10(dir.path()).unwrap().0.n, 5);
        let e = read_cifar10(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn bad_files() {
        let dir = TempDir::new("cifar-bad");
        dir.write("test_batch.bin", &batch(&[1]));
        let mut b = batch(&[1, 2]);
        b.pop();
        let path = dir.write("data_batch_1.bin", &b);
        let e = err(&dir);
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(
            e.contains("size 6145 bytes is not a positive multiple of 3073"),
            "{e}"
        );
        dir.write("data_batch_1.bin", b"");
        let e = err(&dir);
        assert!(e.contains("size 0 bytes"), "{e}");
        dir.write("data_batch_1.bin", &batch(&[1, 2, 10]));
        let e = err(&dir);
        assert!(
            e.contains("data_batch_1.bin: label 10 of record 3 is out of range 0..=9"),
            "{e}"
        );
    }
}
