//! `metrics.csv`: one row per optimizer step, in a fixed column order; empty cells where a
//! quantity was not measured at that step.
//!
//! Numbers are written with Rust's shortest round-trip formatting of the f32 value (so the file
//! is exact, and byte-identical between runs that compute the same bits). Non-finite values are
//! written `NaN`, `inf`, `-inf`.

use std::fmt::Write as _;

use crate::error::{Failure, Result};

/// Column names, in file order.
pub const COLUMNS: [&str; 21] = [
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
];

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
        s
    }

    /// Parses a line written by [`Row::to_csv`]; `origin` names the file and line for errors.
    pub fn from_csv(line: &str, origin: &str) -> Result<Row> {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != COLUMNS.len() {
            return Err(Failure::input(format!(
                "{origin}: expected {} columns, found {}",
                COLUMNS.len(),
                cells.len()
            )));
        }
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
            hvps: if cells[17].trim().is_empty() {
                None
            } else {
                Some(int(17)? as u32)
            },
            sharpness_hvps: if cells[18].trim().is_empty() {
                None
            } else {
                Some(int(18)? as u32)
            },
            full_train_loss: num(19)?,
            full_train_acc: num(20)?,
        })
    }
}

/// Reads a whole `metrics.csv`.
pub fn read(path: &std::path::Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == header() => {}
        _ => {
            return Err(Failure::input(format!(
                "{}: not an edgewise metrics file (unexpected header)",
                path.display()
            )))
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Row::from_csv(l, &format!("{}, line {}", path.display(), i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(Row::from_csv("1,2", "m.csv, line 2")
            .unwrap_err()
            .message
            .contains("line 2"));
    }
}
