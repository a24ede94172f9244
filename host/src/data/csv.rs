//! CSV data files (`csv:PATH`), also the format of the bundled data.
//!
//! # Format
//!
//! - One sample a line: the features, then the class label, separated by commas. No header (a
//!   first line with a field that is no number is reported as a likely header).
//! - Every line has the same number of fields as the first one (at least one feature).
//! - Features are decimal numbers (anything Rust's `f32` parser accepts, e.g. `-1.5e-3`),
//!   rounded to the nearest `f32`; NaN and infinities (also by overflow, e.g. `1e39`) are
//!   rejected.
//! - The label is a non-negative integer below 65536, possibly written with a zero fraction or
//!   an exponent (`3`, `3.0`, `3e0`). `n_classes` is the largest label plus one.
//! - Spaces around fields, `\r\n` line ends, a missing final newline, blank lines and a UTF-8
//!   byte order mark at the start of the file are accepted; anything else is an error naming
//!   the file and the 1-based line.
//! - A line is at most [`MAX_LINE`] bytes (16 MiB, some two million features); a longer one
//!   is an error, so that a file without line breaks (or `/dev/zero`) cannot fill the memory.
//! - The file is decompressed with gzip if its name ends in `.gz`.
//!
//! Values are used as they are: no scaling.

use std::io::{BufRead, Read};
use std::path::Path;

use super::{open_input, DataError, Dataset};

/// The longest line accepted, in bytes, line break included (16 MiB).
pub const MAX_LINE: usize = 16 << 20;

/// How `csv:PATH` inputs are scaled.
pub(crate) const SCALING: &str = "none: the features are used as written";

/// Reads a CSV data file (see the [module documentation](self) for the format). The data set
/// is named `csv:PATH`.
///
/// # Errors
/// A missing or unreadable file, a corrupt gzip stream, no samples, or a bad line (wrong
/// number of fields, a field that is not a finite number, a label that is not an integer in
/// `0..65536`); the message names the file and, for a bad line, its 1-based number.
pub fn read_csv(path: &Path) -> Result<Dataset, DataError> {
    let reader = open_input(path)?;
    let table = parse_csv(reader, path)?;
    Ok(table.into_dataset(format!("csv:{}", path.display())))
}

/// Parsed CSV contents.
#[derive(Debug)]
pub(crate) struct Table {
    /// Features, row-major.
    pub(crate) x: Vec<f32>,
    /// One label per row.
    pub(crate) labels: Vec<u16>,
    /// Features per row.
    pub(crate) dim: usize,
}

impl Table {
    /// Number of rows.
    pub(crate) fn n(&self) -> usize {
        self.labels.len()
    }

    /// The largest label plus one.
    pub(crate) fn n_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| usize::from(m) + 1)
    }

    pub(crate) fn into_dataset(self, name: String) -> Dataset {
        let n_classes = self.n_classes();
        Dataset {
            n: self.n(),
            dim: self.dim,
            n_classes,
            x: self.x,
            labels: self.labels,
            targets: None,
            name,
        }
    }
}

/// Parses CSV text from `reader`; `path` is used in error messages only.
pub(crate) fn parse_csv<R: BufRead>(mut reader: R, path: &Path) -> Result<Table, DataError> {
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut dim: Option<usize> = None;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(|e| DataError::io(path, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let err = |msg: String| DataError::line(path, line_no, msg);
        if read == MAX_LINE && buf.last() != Some(&b'\n') {
            return Err(err(format!(
                "longer than {} MiB: not a CSV data file (or one without line breaks)",
                MAX_LINE >> 20
            )));
        }
        let mut line: &[u8] = &buf;
        if line_no == 1 {
            // A byte order mark, as some spreadsheet programs write.
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| {
                let gzip = line_no == 1 && line.starts_with(b"\x1f\x8b");
                err(format!(
                    "not valid UTF-8 text{}",
                    if gzip {
                        " (the file looks gzip-compressed: give it a .gz suffix)"
                    } else {
                        ""
                    }
                ))
            })?
            .trim();
        if text.is_empty() {
            continue;
        }
        let Some((features, label)) = text.rsplit_once(',') else {
            return Err(err(format!(
                "expected comma-separated features followed by a label, found `{}`",
                abbreviate(text)
            )));
        };
        // A first line with a field that is no number at all is most likely a header: say so.
        let header = dim.is_none()
            && text.split(',').any(|f| {
                let f = f.trim();
                !f.is_empty() && f.parse::<f64>().is_err()
            });
        let hint = |msg: String| {
            err(if header {
                format!("{msg} (a header line? these CSV files have none: remove it)")
            } else {
                msg
            })
        };
        if label.trim().is_empty() {
            return Err(err(
                "the line ends with a comma: the last field, the label, is empty".into(),
            ));
        }
        let start = x.len();
        for (k, field) in features.split(',').enumerate() {
            x.push(parse_feature(field, k + 1).map_err(hint)?);
        }
        let found = x.len() - start;
        match dim {
            None => dim = Some(found),
            Some(d) if d != found => {
                return Err(err(format!(
                    "expected {d} features (as on the first line), found {found}"
                )))
            }
            Some(_) => {}
        }
        labels.push(parse_label(label, found + 1).map_err(hint)?);
    }
    match dim {
        Some(dim) => Ok(Table { x, labels, dim }),
        None => Err(DataError::format(
            path,
            "no samples (the file is empty or has only blank lines)",
        )),
    }
}

/// Parses feature field number `col` (1-based).
fn parse_feature(field: &str, col: usize) -> Result<f32, String> {
    let field = field.trim();
    if field.is_empty() {
        return Err(format!("field {col} is empty"));
    }
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "field {col} is `{}`: NaN or infinity (or out of the f32 range) is not allowed",
            abbreviate(field)
        )),
        Err(_) => Err(format!(
            "field {col}: cannot parse `{}` as a number",
            abbreviate(field)
        )),
    }
}

/// Parses the label, the last field (number `col`, 1-based).
fn parse_label(field: &str, col: usize) -> Result<u16, String> {
    let field = field.trim();
    let value = match field.parse::<u64>() {
        Ok(v) => v,
        Err(_) => match field.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 => {
                if v > f64::from(u16::MAX) {
                    u64::MAX
                } else {
                    v as u64
                }
            }
            _ => {
                return Err(format!(
                    "label (field {col}) `{}` is not a non-negative integer",
                    abbreviate(field)
                ))
            }
        },
    };
    u16::try_from(value).map_err(|_| {
        format!(
            "label (field {col}) `{}` is out of range: labels must be below 65536",
            abbreviate(field)
        )
    })
}

/// `s`, cut to at most 40 characters for an error message.
fn abbreviate(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::TempDir;
    use super::*;

    fn parse(text: &str) -> Result<Table, DataError> {
        parse_csv(text.as_bytes(), Path::new("mem.csv"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_valid_text() {
        let t = parse("1,2.5,3\n-4e-1, 5 ,0\r\n\n  \n7,8,12").unwrap();
        assert_eq!(t.dim, 2);
        assert_eq!(t.x, vec![1.0, 2.5, -0.4, 5.0, 7.0, 8.0]);
        assert_eq!(t.labels, vec![3, 0, 12]);
        assert_eq!(t.n_classes(), 13);
        let t = parse("0.5,2.0\n0.25,1e0\n").unwrap();
        assert_eq!(t.labels, vec![2, 1]);
    }

    #[test]
    fn reports_bad_lines() {
        let e = err("1,2,3\n4,5,6\n7,8\n");
        assert_eq!(
            e,
            "data file mem.csv, line 3: expected 2 features (as on the first line), found 1"
        );
        let e = err("1,2,3\n\n4,5,6,7\n");
        assert!(e.contains("line 3: expected 2 features"), "{e}");
        assert!(e.contains("found 3"), "{e}");
        let e = err("1,2,3\n4,x,6\n");
        assert!(e.contains("line 2: field 2: cannot parse `x`"), "{e}");
        assert!(!e.contains("header"), "{e}");
        let e = err("x,y,label\n1,2,0\n");
        assert!(
            e.contains("line 1: field 1: cannot parse `x` as a number (a header line?"),
            "{e}"
        );
        let e = err("1,2,label\n1,2,0\n");
        assert!(
            e.contains("`label` is not a non-negative integer (a header line?"),
            "{e}"
        );
        // A first line of numbers with a bad label is no header.
        let e = err("1,2,0.5\n");
        assert!(!e.contains("header"), "{e}");
        let e = err("1,,3\n");
        assert!(e.contains("line 1: field 2 is empty"), "{e}");
        for bad in ["nan", "NaN", "inf", "-infinity", "1e39"] {
            let e = err(&format!("1,2,0\n3,{bad},1\n"));
            assert!(
                e.contains("line 2: field 2") && e.contains("NaN or infinity"),
                "{e}"
            );
        }
        let e = err("1,2,0\n3,4,-1\n");
        assert!(
            e.contains("line 2: label (field 3) `-1` is not a non-negative integer"),
            "{e}"
        );
        let e = err("1,2,0.5\n");
        assert!(
            e.contains("line 1: label") && e.contains("not a non-negative integer"),
            "{e}"
        );
        let e = err("1,2,cat\n");
        assert!(e.contains("not a non-negative integer"), "{e}");
        let e = err("1,2,65536\n");
        assert!(
            e.contains("line 1: label") && e.contains("below 65536"),
            "{e}"
        );
        let e = err("1,2,1e10\n");
        assert!(e.contains("below 65536"), "{e}");
        assert_eq!(parse("1,65535\n").unwrap().n_classes(), 65536);
        let e = err("17\n");
        assert!(
            e.contains("line 1: expected comma-separated features"),
            "{e}"
        );
        let e = parse_csv(&b"1,0\n\xff,1\n"[..], Path::new("mem.csv")).unwrap_err();
        assert!(e.to_string().contains("line 2: not valid UTF-8"), "{e}");
        assert!(!e.to_string().contains("gzip"), "{e}");
        // gzip's magic bytes at the start: named.
        let e = parse_csv(&b"\x1f\x8b\x08\x00\xff\n"[..], Path::new("mem.csv")).unwrap_err();
        assert!(e.to_string().contains("line 1: not valid UTF-8 text (the file looks gzip-compressed: give it a .gz suffix)"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_a_trailing_comma_named() {
        let t = parse("\u{FEFF}1,2,0\n3,4,1\n").unwrap();
        assert_eq!((t.x, t.labels), (vec![1.0, 2.0, 3.0, 4.0], vec![0, 1]));
        // Only at the start of the file.
        let e = err("1,2,0\n\u{FEFF}3,4,1\n");
        assert!(e.contains("line 2: field 1: cannot parse"), "{e}");
        let e = err("1,2,0\n3,4,1,\n");
        assert_eq!(
            e,
            "data file mem.csv, line 2: the line ends with a comma: the last field, the label, \
             is empty"
        );
        let e = err("1,2,0, \r\n");
        assert!(e.contains("line 1: the line ends with a comma"), "{e}");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_an_error_not_an_allocation() {
        use std::io::BufReader;
        // A file without line breaks, as `/dev/zero` is (bounded here).
        let zeros = std::io::repeat(0).take(MAX_LINE as u64 + 100);
        let e = parse_csv(BufReader::new(zeros), Path::new("zero.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data file zero.csv, line 1: longer than 16 MiB: not a CSV data file (or one \
             without line breaks)"
        );
        // An endless one stops at the limit too.
        let e = parse_csv(
            BufReader::new(std::io::repeat(b'7')),
            Path::new("endless.csv"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 1: longer than 16 MiB"), "{e}");
        // The limit counts the bytes of one line, not of the file.
        let long = format!("1,0\n2,1\n{}\n", "3,".repeat(MAX_LINE / 2));
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.contains("line 3: longer than"), "{e}");
    }

    #[test]
    fn rejects_empty_files() {
        assert!(err("").contains("no samples"));
        assert!(err("\n \n\r\n").contains("no samples"));
    }

    #[test]
    fn reads_plain_and_gz_files() {
        let dir = TempDir::new("csv");
        let text = b"0.5,1.5,1\n2.5,3.5,0\n";
        for name in ["a.csv", "a.csv.gz"] {
            let path = dir.write(name, text);
            let d = read_csv(&path).unwrap();
            assert_eq!((d.n, d.dim, d.n_classes), (2, 2, 2));
            assert_eq!(d.x, vec![0.5, 1.5, 2.5, 3.5]);
            assert_eq!(d.labels, vec![1, 0]);
            assert_eq!(d.name, format!("csv:{}", path.display()));
        }

        let path = dir.write("bad.csv.gz", b"1,2,0\n1,2\n");
        let e = read_csv(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "data file {}, line 2: expected 2 features (as on the first line), found 1",
                path.display()
            )
        );
        let path = dir.write("empty.csv", b"");
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("no samples"),
            "{e}"
        );

        // Not gzip at all, but named .gz.
        let path = dir.path().join("fake.csv.gz");
        std::fs::write(&path, b"1,2,0\n").unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");

        let missing = dir.path().join("missing.csv");
        let e = read_csv(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.csv"), "{e}");
    }
}
