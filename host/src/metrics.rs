//! `metrics.csv`: one row per optimizer step, in a fixed column order; empty cells where a
//! quantity was not measured at that step.
//!
//! Numbers are written with Rust's shortest round-trip formatting of the f32 value (so the file
//! is exact, and byte-identical between runs that compute the same bits). Non-finite values are
//! written `NaN`, `inf`, `-inf`.

use std::fmt::Write as _;

use crate::error::{Failure, Result};

/// Column names, in file order.
pub const COLUMNS: [&str; 26] = [
    "step",
    "epoch",
    "lr",
    "loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "grad_norm",
    "sharpness",
    "lr_x_sharpness",
    "lambda_min",
    "rotation",
    "subspace_score",
    "hocm",
    "trace",
    "precond_sharpness",
    "eig_residual",
    "hvps",
    "sharpness_hvps",
    "full_train_loss",
    "full_train_acc",
    "tracked_sharpness",
    "tracked_residual",
    "tracked_hvps",
    "trace_se",
    "unconverged",
];

/// The column counts of the files earlier versions wrote, newest first: before `unconverged`
/// (25), before `trace_se` (24) and before the `tracked_*` columns (21). Such files are read,
/// and rewritten with the current columns when their run is resumed.
const LEGACY_LAYOUTS: [usize; 3] = [25, 24, 21];

/// What the `unconverged` column can name, in the order it names them: the measurements of the
/// row that missed `--power-tol` (the keys of `summary.json`'s `unconverged`), and `non_finite`
/// (a measurement left empty because a Hessian-vector product overflowed at a finite loss).
/// Bit `i` of [`Row::unconverged`] stands for name `i`.
pub const UNCONVERGED: [&str; 6] = [
    "sharpness",
    "topk",
    "lambda_min",
    "precond_sharpness",
    "tracked_sharpness",
    "non_finite",
];

/// The bit of [`Row::unconverged`] for `name`, one of [`UNCONVERGED`].
pub fn unconverged_bit(name: &str) -> u8 {
    UNCONVERGED
        .iter()
        .position(|n| *n == name)
        .map_or(0, |i| 1 << i)
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Step index (0-based): the state before the step's update.
    pub step: u64,
    /// Epoch of the step.
    pub epoch: u64,
    /// Learning rate used by the step.
    pub lr: f32,
    /// Loss on the step's batch (the whole training set for full-batch GD).
    pub loss: f32,
    /// Accuracy on the step's batch.
    pub train_acc: f32,
    /// Test loss (every `eval_every` steps).
    pub test_loss: Option<f32>,
    /// Test accuracy.
    pub test_acc: Option<f32>,
    /// Norm of the batch gradient.
    pub grad_norm: f32,
    /// Top Hessian eigenvalue on the Hessian subset.
    pub sharpness: Option<f32>,
    /// `lr * sharpness` (unstable above 2 for GD).
    pub lr_x_sharpness: Option<f32>,
    /// Smallest Hessian eigenvalue.
    pub lambda_min: Option<f32>,
    /// `1 - |cos|` between this and the previous measurement's top eigenvector.
    pub rotation: Option<f32>,
    /// Subspace score between this and the previous top-k eigenspace.
    pub subspace_score: Option<f32>,
    /// Third derivative along the top eigenvector.
    pub hocm: Option<f32>,
    /// Hutchinson trace estimate.
    pub trace: Option<f32>,
    /// Preconditioned sharpness (adaptive optimizers).
    pub precond_sharpness: Option<f32>,
    /// Residual `||Hv - lambda v||` of the top eigenpair.
    pub eig_residual: Option<f32>,
    /// Hessian-vector products spent on this step's measurements.
    pub hvps: Option<u32>,
    /// Of which on the top eigenpair (the sharpness).
    pub sharpness_hvps: Option<u32>,
    /// Loss on the whole training set (minibatch runs, every `eval_every` steps).
    pub full_train_loss: Option<f32>,
    /// Accuracy on the whole training set (minibatch runs).
    pub full_train_acc: Option<f32>,
    /// Top Hessian eigenvalue from the sharpness-only tracker (`track_every`).
    pub tracked_sharpness: Option<f32>,
    /// Its residual `||Hv - lambda v||`.
    pub tracked_residual: Option<f32>,
    /// Hessian-vector products it spent.
    pub tracked_hvps: Option<u32>,
    /// Standard error of the Hutchinson trace estimate (the probes' sample standard deviation
    /// over the square root of their number).
    pub trace_se: Option<f32>,
    /// The row's measurements that missed the tolerance, or were not finite: bit `i` for
    /// [`UNCONVERGED`]`[i]`; written as their names joined by `;` (empty: none, or a row of an
    /// earlier version, which did not record it).
    pub unconverged: u8,
}

fn f(out: &mut String, v: Option<f32>) {
    out.push(',');
    if let Some(x) = v {
        push_f32(out, x);
    }
}

/// Shortest round-trip decimal of `x`, in scientific notation when very large or very small.
pub fn push_f32(out: &mut String, x: f32) {
    let a = x.abs();
    if x.is_finite() && a != 0.0 && !(1e-5..1e16).contains(&a) {
        let _ = write!(out, "{x:e}");
    } else {
        let _ = write!(out, "{x}");
    }
}

/// The header line (without newline).
pub fn header() -> String {
    COLUMNS.join(",")
}

impl Row {
    /// The row as a CSV line (without newline).
    pub fn to_csv(&self) -> String {
        let mut s = String::with_capacity(160);
        let _ = write!(s, "{},{}", self.step, self.epoch);
        f(&mut s, Some(self.lr));
        f(&mut s, Some(self.loss));
        f(&mut s, Some(self.train_acc));
        f(&mut s, self.test_loss);
        f(&mut s, self.test_acc);
        f(&mut s, Some(self.grad_norm));
        f(&mut s, self.sharpness);
        f(&mut s, self.lr_x_sharpness);
        f(&mut s, self.lambda_min);
        f(&mut s, self.rotation);
        f(&mut s, self.subspace_score);
        f(&mut s, self.hocm);
        f(&mut s, self.trace);
        f(&mut s, self.precond_sharpness);
        f(&mut s, self.eig_residual);
        for h in [self.hvps, self.sharpness_hvps] {
            s.push(',');
            if let Some(h) = h {
                let _ = write!(s, "{h}");
            }
        }
        f(&mut s, self.full_train_loss);
        f(&mut s, self.full_train_acc);
        f(&mut s, self.tracked_sharpness);
        f(&mut s, self.tracked_residual);
        s.push(',');
        if let Some(h) = self.tracked_hvps {
            let _ = write!(s, "{h}");
        }
        f(&mut s, self.trace_se);
        s.push(',');
        let mut sep = "";
        for (i, name) in UNCONVERGED.iter().enumerate() {
            if self.unconverged & (1 << i) != 0 {
                s.push_str(sep);
                s.push_str(name);
                sep = ";";
            }
        }
        s
    }

    /// Parses a line written by [`Row::to_csv`]; `origin` names the file and line for errors.
    pub fn from_csv(line: &str, origin: &str) -> Result<Row> {
        Self::from_cells(line, COLUMNS.len(), origin)
    }

    /// Parses a line of `columns` cells (the current or a legacy layout).
    fn from_cells(line: &str, columns: usize, origin: &str) -> Result<Row> {
        let mut cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns {
            return Err(Failure::input(format!(
                "{origin}: expected {columns} columns, found {}",
                cells.len()
            )));
        }
        cells.resize(COLUMNS.len(), "");
        let num = |i: usize| -> Result<Option<f32>> {
            let c = cells[i].trim();
            if c.is_empty() {
                return Ok(None);
            }
            c.parse::<f32>().map(Some).map_err(|_| {
                Failure::input(format!(
                    "{origin}: column {} is not a number: {c:?}",
                    COLUMNS[i]
                ))
            })
        };
        let req = |i: usize| -> Result<f32> {
            num(i)?
                .ok_or_else(|| Failure::input(format!("{origin}: column {} is empty", COLUMNS[i])))
        };
        let int = |i: usize| -> Result<u64> {
            cells[i].trim().parse::<u64>().map_err(|_| {
                Failure::input(format!(
                    "{origin}: column {} is not an integer: {:?}",
                    COLUMNS[i], cells[i]
                ))
            })
        };
        let count = |i: usize| -> Result<Option<u32>> {
            if cells[i].trim().is_empty() {
                return Ok(None);
            }
            u32::try_from(int(i)?).map(Some).map_err(|_| {
                Failure::input(format!("{origin}: column {} is out of range", COLUMNS[i]))
            })
        };
        Ok(Row {
            step: int(0)?,
            epoch: int(1)?,
            lr: req(2)?,
            loss: req(3)?,
            train_acc: req(4)?,
            test_loss: num(5)?,
            test_acc: num(6)?,
            grad_norm: req(7)?,
            sharpness: num(8)?,
            lr_x_sharpness: num(9)?,
            lambda_min: num(10)?,
            rotation: num(11)?,
            subspace_score: num(12)?,
            hocm: num(13)?,
            trace: num(14)?,
            precond_sharpness: num(15)?,
            eig_residual: num(16)?,
            hvps: count(17)?,
            sharpness_hvps: count(18)?,
            full_train_loss: num(19)?,
            full_train_acc: num(20)?,
            tracked_sharpness: num(21)?,
            tracked_residual: num(22)?,
            tracked_hvps: count(23)?,
            trace_se: num(24)?,
            unconverged: {
                let c = cells[25].trim();
                let mut bits = 0u8;
                for name in c.split(';').filter(|_| !c.is_empty()) {
                    match unconverged_bit(name) {
                        0 => {
                            return Err(Failure::input(format!(
                                "{origin}: column unconverged names {name:?}, not one of {}",
                                UNCONVERGED.join(", ")
                            )))
                        }
                        b => bits |= b,
                    }
                }
                bits
            },
        })
    }
}

/// Reads a whole `metrics.csv` (also one of an earlier version's layouts).
pub fn read(path: &std::path::Path) -> Result<Vec<Row>> {
    Ok(read_layout(path, false)?.rows)
}

/// What [`read_layout`] found.
pub struct Layout {
    /// The rows.
    pub rows: Vec<Row>,
    /// Whether the file has the current columns (`false`: a legacy layout).
    pub current: bool,
    /// Whether an unterminated last line that is no row was left out (`torn_tail_ok`).
    pub torn: bool,
}

/// [`read`], and the file's layout. With `torn_tail_ok`, a last line without its newline that
/// does not parse is left out instead of failing: what a run killed (or out of disk space)
/// while appending a row leaves behind, and what `--resume` cuts off anyway.
pub fn read_layout(path: &std::path::Path, torn_tail_ok: bool) -> Result<Layout> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
    let mut lines = text.lines();
    let first = lines.next().map(str::trim);
    let known = std::iter::once(COLUMNS.len())
        .chain(LEGACY_LAYOUTS)
        .find(|&n| first == Some(COLUMNS[..n].join(",").as_str()));
    let columns = match known {
        Some(n) => n,
        None => {
            return Err(Failure::input(format!(
                "{}: not an edgewise metrics file (unexpected header)",
                path.display()
            )))
        }
    };
    let unterminated = !text.ends_with('\n');
    let mut torn = false;
    let mut rows = Vec::new();
    let mut lines = lines.enumerate().peekable();
    while let Some((i, l)) = lines.next() {
        if l.trim().is_empty() {
            continue;
        }
        match Row::from_cells(l, columns, &format!("{}, line {}", path.display(), i + 2)) {
            Ok(r) => rows.push(r),
            Err(_) if torn_tail_ok && unterminated && lines.peek().is_none() => torn = true,
            Err(e) => return Err(e),
        }
    }
    Ok(Layout {
        rows,
        current: columns == COLUMNS.len(),
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field in the column its name says: each field holds its column's index, so a
    /// swap in the writer (or in the reader) shows.
    #[test]
    fn every_field_is_written_and_read_in_its_named_column() {
        let v = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap() as f32;
        let r = Row {
            step: v("step") as u64,
            epoch: v("epoch") as u64,
            lr: v("lr"),
            loss: v("loss"),
            train_acc: v("train_acc"),
            test_loss: Some(v("test_loss")),
            test_acc: Some(v("test_acc")),
            grad_norm: v("grad_norm"),
            sharpness: Some(v("sharpness")),
            lr_x_sharpness: Some(v("lr_x_sharpness")),
            lambda_min: Some(v("lambda_min")),
            rotation: Some(v("rotation")),
            subspace_score: Some(v("subspace_score")),
            hocm: Some(v("hocm")),
            trace: Some(v("trace")),
            precond_sharpness: Some(v("precond_sharpness")),
            eig_residual: Some(v("eig_residual")),
            hvps: Some(v("hvps") as u32),
            sharpness_hvps: Some(v("sharpness_hvps") as u32),
            full_train_loss: Some(v("full_train_loss")),
            full_train_acc: Some(v("full_train_acc")),
            tracked_sharpness: Some(v("tracked_sharpness")),
            tracked_residual: Some(v("tracked_residual")),
            tracked_hvps: Some(v("tracked_hvps") as u32),
            trace_se: Some(v("trace_se")),
            unconverged: 0,
        };
        let line = r.to_csv();
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), COLUMNS.len());
        assert_eq!(cells.last(), Some(&""));
        for (i, cell) in cells[..COLUMNS.len() - 1].iter().enumerate() {
            assert_eq!(
                cell.parse::<f32>().unwrap(),
                i as f32,
                "{}: {line}",
                COLUMNS[i]
            );
        }
        assert_eq!(Row::from_csv(&line, "test").unwrap().to_csv(), line);
        let back = Row::from_csv(&line, "test").unwrap();
        assert_eq!((back.hocm, back.trace), (Some(v("hocm")), Some(v("trace"))));
        assert_eq!(back.tracked_hvps, Some(v("tracked_hvps") as u32));
        // The unconverged names, in UNCONVERGED's order whatever order they are set in.
        let flagged = Row {
            unconverged: unconverged_bit("non_finite") | unconverged_bit("lambda_min"),
            ..r
        };
        let line = flagged.to_csv();
        assert!(line.ends_with(",lambda_min;non_finite"), "{line}");
        assert_eq!(Row::from_csv(&line, "test").unwrap(), flagged);
        let all = Row {
            unconverged: (1 << UNCONVERGED.len()) - 1,
            ..flagged.clone()
        };
        assert!(all
            .to_csv()
            .ends_with(&format!(",{}", UNCONVERGED.join(";"))));
        assert_eq!(Row::from_csv(&all.to_csv(), "test").unwrap(), all);
        let bad = line.replace("lambda_min;", "lambda_max;");
        let e = Row::from_csv(&bad, "m.csv, line 3").unwrap_err().message;
        assert!(
            e.contains("m.csv, line 3: column unconverged names \"lambda_max\", not one of sharpness, topk"),
            "{e}"
        );
    }

    #[test]
    fn rows_round_trip() {
        let r = Row {
            step: 3,
            epoch: 1,
            lr: 0.05,
            loss: 1.25,
            train_acc: 0.5,
            sharpness: Some(39.9),
            lr_x_sharpness: Some(1.995),
            hvps: Some(4),
            test_loss: Some(f32::NAN),
            ..Default::default()
        };
        let line = r.to_csv();
        assert_eq!(line.split(',').count(), COLUMNS.len());
        let back = Row::from_csv(&line, "x").unwrap();
        assert_eq!(back.to_csv(), line);
        assert!(back.test_loss.unwrap().is_nan());
        let t = Row {
            tracked_sharpness: Some(2.5),
            tracked_residual: Some(1e-3),
            tracked_hvps: Some(3),
            ..r.clone()
        };
        let back = Row::from_csv(&t.to_csv(), "x").unwrap();
        assert_eq!(back.tracked_hvps, Some(3));
        assert_eq!(back.to_csv(), t.to_csv());
        assert!(t.to_csv().ends_with(",2.5,0.001,3,,"));
        assert!(Row::from_csv("1,2", "m.csv, line 2")
            .unwrap_err()
            .message
            .contains("line 2"));
    }

    /// A scratch directory, the path of a `metrics.csv` in it, and a row to write there.
    fn scratch(name: &str) -> (std::path::PathBuf, std::path::PathBuf, Row) {
        let dir = std::env::temp_dir().join(format!("edgewise-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        let r = Row {
            step: 0,
            lr: 0.1,
            loss: 1.0,
            sharpness: Some(3.0),
            ..Default::default()
        };
        (dir, path, r)
    }

    #[test]
    fn legacy_files_are_read() {
        let (dir, path, r) = scratch("legacy");
        let line = r.to_csv();
        for n in LEGACY_LAYOUTS {
            let legacy: Vec<&str> = line.split(',').take(n).collect();
            let text = format!("{}\n{}\n", COLUMNS[..n].join(","), legacy.join(","));
            std::fs::write(&path, text).unwrap();
            let l = read_layout(&path, false).unwrap();
            assert!(!l.current && !l.torn, "{n} columns");
            assert_eq!(l.rows, vec![r.clone()], "{n} columns");
            // A legacy header with a current-layout row is an error, not a panic.
            std::fs::write(&path, format!("{}\n{line}\n", COLUMNS[..n].join(","))).unwrap();
            let e = read(&path).unwrap_err().message;
            assert!(e.contains(&format!("expected {n} columns")), "{e}");
        }
        // A header of another length is no edgewise file.
        std::fs::write(&path, format!("{}\n", COLUMNS[..22].join(","))).unwrap();
        let e = read(&path).unwrap_err().message;
        assert!(e.contains("unexpected header"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_left_out_only_when_asked() {
        let (dir, path, r) = scratch("torn");
        let good = format!("{}\n{}\n", header(), r.to_csv());
        std::fs::write(&path, format!("{good}1,0,0.1")).unwrap();
        let l = read_layout(&path, true).unwrap();
        assert!(l.torn && l.current);
        assert_eq!(l.rows, vec![r.clone()]);
        assert!(read(&path).unwrap_err().message.contains("line 3"));
        // A complete last line, or a bad line before the last, is an error either way.
        std::fs::write(&path, format!("{good}1,0,0.1\n")).unwrap();
        assert!(read_layout(&path, true).is_err());
        std::fs::write(&path, format!("{good}1,0,0.1\n{}", r.to_csv())).unwrap();
        assert!(read_layout(&path, true).is_err());
        // An unterminated last line that is a whole row is kept.
        std::fs::write(&path, good.trim_end()).unwrap();
        let l = read_layout(&path, true).unwrap();
        assert!(!l.torn);
        assert_eq!(l.rows, vec![r]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
