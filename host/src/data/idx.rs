//! Fashion-MNIST in its IDX distribution format (`fashion-mnist:DIR`).
//!
//! # Files
//!
//! `DIR` holds the four standard files, each either plain or gzip'd with a `.gz` suffix (the
//! plain file is used when both exist):
//!
//! | file | contents |
//! | --- | --- |
//! | `train-images-idx3-ubyte` | training images |
//! | `train-labels-idx1-ubyte` | training labels |
//! | `t10k-images-idx3-ubyte` | test images |
//! | `t10k-labels-idx1-ubyte` | test labels |
//!
//! # Format
//!
//! Big-endian. An image file starts with the magic number `0x00000803` (unsigned bytes, 3
//! dimensions), then the image count, rows and columns as `u32`, then `count × rows × cols`
//! pixel bytes, row by row. A label file starts with `0x00000801` (unsigned bytes, 1
//! dimension), then the count, then one byte per label. The reader checks the magic numbers,
//! that the data is exactly as long as the header says (a truncated file or trailing bytes are
//! errors naming the file), that labels are 0-9, that each label file matches its image file
//! in count, and that train and test images have the same size (any nonzero rows × cols are
//! accepted; Fashion-MNIST's are 28 × 28).
//!
//! Pixels are scaled by `/ 255` into `[0, 1]`; the result has 10 classes.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::{open_input, DataError, Dataset};

/// How `fashion-mnist:DIR` inputs are scaled.
pub(crate) const SCALING: &str = "x / 255: the 0..255 pixel values into [0, 1]";

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const N_CLASSES: usize = 10;

/// Reads Fashion-MNIST from the IDX files in `dir` (see the [module documentation](self)).
/// Returns the training set (60000 images in the real distribution) and the test set (10000).
///
/// # Errors
/// A missing directory or file, a read or gzip error, a bad magic number, a truncated file or
/// trailing data, no images, a label above 9, a label count that differs from the image count,
/// or test images of another size than the training images; the message names the file.
pub fn read_fashion_mnist(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    if !dir.is_dir() {
        return Err(DataError::dir(
            dir,
            "not found or not a directory (it should hold the Fashion-MNIST IDX files)",
        ));
    }
    let train = read_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = read_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if test.shape != train.shape {
        return Err(DataError::format(
            &test.images_path,
            format!(
                "images are {}x{} but the training images are {}x{}",
                test.shape.0, test.shape.1, train.shape.0, train.shape.1
            ),
        ));
    }
    Ok((train.data, test.data))
}

/// One images/labels pair, read.
struct Part {
    data: Dataset,
    images_path: PathBuf,
    /// Rows and columns of one image.
    shape: (usize, usize),
}

/// Reads one images/labels pair.
fn read_pair(dir: &Path, images: &str, labels: &str) -> Result<Part, DataError> {
    let images_path = locate(dir, images)?;
    let labels_path = locate(dir, labels)?;
    let (dims, pixels) = read_idx(&images_path, IMAGES_MAGIC, "image")?;
    // The magic number fixes 3 dimensions.
    let &[n, rows, cols] = dims.as_slice() else {
        return Err(DataError::format(&images_path, "expected 3 dimensions"));
    };
    if n == 0 || rows == 0 || cols == 0 {
        return Err(DataError::format(
            &images_path,
            format!("empty image set: {n} images of {rows}x{cols}"),
        ));
    }
    let (label_dims, label_bytes) = read_idx(&labels_path, LABELS_MAGIC, "label")?;
    if label_dims != [n] {
        return Err(DataError::format(
            &labels_path,
            format!(
                "{} labels, but {} has {n} images",
                label_bytes.len(),
                images_path.display()
            ),
        ));
    }
    let labels =
        check_labels(&label_bytes, "item").map_err(|msg| DataError::format(&labels_path, msg))?;
    let data = Dataset {
        x: scale_bytes(&pixels),
        labels,
        targets: None,
        n,
        dim: rows * cols,
        n_classes: N_CLASSES,
        name: "fashion-mnist".to_string(),
    };
    Ok(Part {
        data,
        images_path,
        shape: (rows, cols),
    })
}

/// Labels as `u16`, checking they are `0..10`. The message counts `item`s from 1.
pub(crate) fn check_labels(bytes: &[u8], item: &str) -> Result<Vec<u16>, String> {
    if let Some((i, &l)) = bytes
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= N_CLASSES)
    {
        return Err(format!(
            "label {l} of {item} {} is out of range 0..=9",
            i + 1
        ));
    }
    Ok(bytes.iter().map(|&l| u16::from(l)).collect())
}

/// Pixel bytes divided by 255 (one correctly rounded f32 division, through a lookup table).
fn scale_bytes(bytes: &[u8]) -> Vec<f32> {
    let mut table = [0.0f32; 256];
    for (b, v) in table.iter_mut().enumerate() {
        *v = b as f32 / 255.0;
    }
    bytes.iter().map(|&b| table[usize::from(b)]).collect()
}

/// `dir/base` if it exists, else `dir/base.gz`.
fn locate(dir: &Path, base: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(base);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::dir(
        dir,
        format!("missing {base} (or {base}.gz)"),
    ))
}

/// Reads an IDX file of unsigned bytes with magic number `magic`: returns its dimensions and
/// its data, which must be exactly as long as the dimensions say.
fn read_idx(path: &Path, magic: u32, what: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let mut r = open_input(path)?;
    let mut word = [0u8; 4];
    read_header(&mut r, &mut word, path)?;
    let found = u32::from_be_bytes(word);
    if found != magic {
        let hint = if word[..2] == [0x1f, 0x8b] {
            " (the file looks gzip-compressed: give it a .gz suffix)"
        } else {
            ""
        };
        return Err(DataError::format(
            path,
            format!(
                "bad magic number 0x{found:08x}, expected 0x{magic:08x} for an IDX {what} file{hint}"
            ),
        ));
    }
    let ndims = usize::from(word[3]);
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        read_header(&mut r, &mut word, path)?;
        dims.push(u32::from_be_bytes(word) as usize);
    }
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("dimensions {dims:?} are too large")))?;
    let mut data = Vec::new();
    (&mut r)
        .take(len as u64)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, e))?;
    if data.len() < len {
        return Err(DataError::format(
            path,
            format!(
                "truncated: the header announces {} = {len} bytes of data, found {}",
                shape(&dims),
                data.len()
            ),
        ));
    }
    if has_more(&mut r).map_err(|e| read_error(path, e))? {
        return Err(DataError::format(
            path,
            format!(
                "unexpected data after the {} = {len} bytes the header announces",
                shape(&dims)
            ),
        ));
    }
    Ok((dims, data))
}

fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// Reads one 4-byte header word; a short file is reported as truncated.
fn read_header(r: &mut impl Read, word: &mut [u8; 4], path: &Path) -> Result<(), DataError> {
    r.read_exact(word).map_err(|e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            DataError::format(path, "truncated: the IDX header is incomplete")
        } else {
            DataError::io(path, e)
        }
    })
}

/// A read error; an early end of a gzip stream is reported as truncation.
fn read_error(path: &Path, e: std::io::Error) -> DataError {
    if e.kind() == ErrorKind::UnexpectedEof {
        DataError::format(path, format!("truncated: {e}"))
    } else {
        DataError::io(path, e)
    }
}

/// Whether at least one more byte can be read.
fn has_more(r: &mut impl Read) -> std::io::Result<bool> {
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(k) => return Ok(k > 0),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{gzip, TempDir};
    use super::*;

    fn images(n: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend((0..n * rows * cols).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
        v
    }

    fn labels(labels: &[u8]) -> Vec<u8> {
        let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    /// A directory with a small valid set: 5 train and 3 test images of 2x3.
    fn write_set(dir: &TempDir, gz: bool) {
        let sfx = if gz { ".gz" } else { "" };
        dir.write(
            &format!("train-images-idx3-ubyte{sfx}"),
            &images(5, 2, 3, 1),
        );
        dir.write(
            &format!("train-labels-idx1-ubyte{sfx}"),
            &labels(&[0, 9, 3, 3, 1]),
        );
        dir.write(&format!("t10k-images-idx3-ubyte{sfx}"), &images(3, 2, 3, 2));
        dir.write(&format!("t10k-labels-idx1-ubyte{sfx}"), &labels(&[5, 6, 7]));
    }

    fn err(dir: &TempDir) -> String {
        read_fashion_mnist(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn reads_plain_and_gz() {
        for gz in [false, true] {
            let dir = TempDir::new("idx");
            write_set(&dir, gz);
            let (train, test) = read_fashion_mnist(dir.path()).unwrap();
            assert_eq!((train.n, train.dim, train.n_classes), (5, 6, 10));
            assert_eq!((test.n, test.dim, test.n_classes), (3, 6, 10));
            assert_eq!(train.labels, vec![0, 9, 3, 3, 1]);
            assert_eq!(test.labels, vec![5, 6, 7]);
            assert_eq!(train.x[0], 1.0 / 255.0);
            assert_eq!(train.x[1], 8.0 / 255.0);
            assert_eq!(test.x[0], 2.0 / 255.0);
            assert!(train.x.iter().all(|v| (0.0..=1.0).contains(v)));
            assert_eq!(train.name, "fashion-mnist");
        }
        // Mixed plain and gzip'd files are fine too.
        let dir = TempDir::new("idx-mixed");
        write_set(&dir, false);
        let plain = dir.path().join("t10k-labels-idx1-ubyte");
        std::fs::remove_file(&plain).unwrap();
        dir.write("t10k-labels-idx1-ubyte.gz", &labels(&[5, 6, 7]));
        assert_eq!(
            read_fashion_mnist(dir.path()).unwrap().1.labels,
            vec![5, 6, 7]
        );
    }

    #[test]
    fn missing_dir_and_files() {
        let dir = TempDir::new("idx-missing");
        let e = read_fashion_mnist(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("not a directory"), "{e}");
        dir.write("train-images-idx3-ubyte", &images(1, 1, 1, 0));
        let e = err(&dir);
        assert!(
            e.contains("missing train-labels-idx1-ubyte (or train-labels-idx1-ubyte.gz)"),
            "{e}"
        );
    }

    #[test]
    fn truncated_files() {
        for gz in [false, true] {
            let sfx = if gz { ".gz" } else { "" };
            let dir = TempDir::new("idx-trunc");
            write_set(&dir, gz);
            let mut img = images(3, 2, 3, 2);
            img.truncate(img.len() - 1);
            let name = format!("t10k-images-idx3-ubyte{sfx}");
            let path = dir.write(&name, &img);
            let e = err(&dir);
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(
                e.contains("truncated: the header announces 3x2x3 = 18 bytes of data, found 17"),
                "{e}"
            );

            // A header cut short.
            dir.write(&name, &img[..10]);
            let e = err(&dir);
            assert!(
                e.contains(&name) && e.contains("truncated: the IDX header is incomplete"),
                "{e}"
            );

            // A gzip stream cut short.
            if gz {
                let full = gzip(&images(3, 2, 3, 2));
                std::fs::write(&path, &full[..full.len() - 12]).unwrap();
                let e = err(&dir);
                assert!(e.contains(&name), "{e}");
            }
        }
    }

    #[test]
    fn trailing_data() {
        let dir = TempDir::new("idx-trailing");
        write_set(&dir, false);
        let mut l = labels(&[0, 9, 3, 3, 1]);
        l.push(0);
        dir.write("train-labels-idx1-ubyte", &l);
        let e = err(&dir);
        assert!(
            e.contains("train-labels-idx1-ubyte: unexpected data after the 5 = 5 bytes"),
            "{e}"
        );
    }

    #[test]
    fn bad_magic() {
        let dir = TempDir::new("idx-magic");
        write_set(&dir, false);
        // Labels where images should be.
        dir.write("train-images-idx3-ubyte", &labels(&[1, 2]));
        let e = err(&dir);
        assert!(
            e.contains("train-images-idx3-ubyte: bad magic number 0x00000801, expected 0x00000803"),
            "{e}"
        );
        // A gzip'd file without the suffix.
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            gzip(&images(5, 2, 3, 1)),
        )
        .unwrap();
        let e = err(&dir);
        assert!(
            e.contains("bad magic number 0x1f8b") && e.contains(".gz suffix"),
            "{e}"
        );
    }

    #[test]
    fn label_errors() {
        let dir = TempDir::new("idx-labels");
        write_set(&dir, false);
        dir.write("train-labels-idx1-ubyte", &labels(&[0, 9, 10, 3, 1]));
        let e = err(&dir);
        assert!(
            e.contains("train-labels-idx1-ubyte: label 10 of item 3 is out of range 0..=9"),
            "{e}"
        );
        dir.write("train-labels-idx1-ubyte", &labels(&[0, 9, 3, 3]));
        let e = err(&dir);
        assert!(
            e.contains("4 labels, but") && e.contains("has 5 images"),
            "{e}"
        );
    }

    #[test]
    fn shape_errors() {
        let dir = TempDir::new("idx-shape");
        write_set(&dir, false);
        dir.write("t10k-images-idx3-ubyte", &images(3, 3, 2, 0));
        let e = err(&dir);
        assert!(
            e.contains("images are 3x2 but the training images are 2x3"),
            "{e}"
        );
        dir.write("t10k-images-idx3-ubyte", &images(0, 2, 3, 0));
        dir.write("t10k-labels-idx1-ubyte", &labels(&[]));
        let e = err(&dir);
        assert!(e.contains("empty image set"), "{e}");
        // Huge dimensions announced by a tiny file: an error, not an allocation.
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        dir.write("t10k-images-idx3-ubyte", &v);
        let e = err(&dir);
        assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
    }
}
