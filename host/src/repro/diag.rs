//! Experiment 8: the depth-2 diagonal linear network `L = (theta_1 theta_2 - 1)^2 / 2`, run with
//! core's [`DiagLinearNet`] and full-batch GD (`Optimizer::Gd`), in f32 like everything else.
//!
//! Each start `theta_0` lies off the valley of minima `theta_1 theta_2 = 1` at an unbalanced
//! point. Gradient flow conserves `c = theta_1^2 - theta_2^2`, so it would reach the valley point
//! with `a^2 - 1/a^2 = c`, whose sharpness is `lambda_ref = sqrt(c^2 + 4)` (on the valley,
//! `lambda_max = theta_1^2 + theta_2^2`). The learning rates are multiples `m * 2 / lambda_ref`:
//! `m < 1` is stable at that point, `m > 1` is not, and GD must find a flatter valley point.

use std::fmt::Write as _;
use std::path::Path;

use edgewise_core::{DiagLinearNet, Objective, OptState, Optimizer};

use crate::error::{core_err, Failure, Result};
use crate::metrics::push_f32;

/// The target of the product.
pub const TARGET: f32 = 1.0;
/// A run has converged when its final loss is at most this.
pub const CONVERGED_LOSS: f32 = 1e-8;
/// A run has diverged when a coordinate exceeds this in magnitude or a value is not finite.
pub const DIVERGED_ABS: f32 = 1e4;

/// One state along a trajectory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiagPoint {
    /// `(theta_1, theta_2)`.
    pub theta: [f32; 2],
    /// Loss.
    pub loss: f32,
    /// Largest Hessian eigenvalue.
    pub lambda_max: f32,
    /// Smallest Hessian eigenvalue.
    pub lambda_min: f32,
    /// Angle of the top eigenvector in degrees, in `[0, 180)` (sign-invariant).
    pub angle_deg: f32,
}

/// One GD run on the diagonal network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiagRun {
    /// Start `theta_0`.
    pub start: [f32; 2],
    /// Learning-rate multiple `m` of `2 / lambda_ref`.
    pub multiple: f64,
    /// Learning rate.
    pub lr: f32,
    /// Sharpness of the gradient-flow limit: `sqrt(c0^2 + 4 y^2)`.
    pub lambda_ref: f64,
    /// `theta_1^2 - theta_2^2` at the start.
    pub c0: f64,
    /// `theta_1^2 - theta_2^2` at the end.
    pub c_final: f64,
    /// Final loss at most [`CONVERGED_LOSS`].
    pub converged: bool,
    /// Non-finite or exploding.
    pub diverged: bool,
    /// `lambda_max` at the end.
    pub final_lambda: f64,
    /// Sign-invariant angle (degrees) between the top eigenvector at the end and the one at the
    /// valley point gradient flow reaches from the start (where stable training would end).
    pub angle_from_flow_deg: f64,
    /// Loss increases (relative above 1e-3) along the run.
    pub spikes: usize,
    /// The trajectory (step 0 first).
    pub points: Vec<DiagPoint>,
}

impl DiagRun {
    /// Directory-style name, e.g. `start=4,0.1_m=1.25`.
    pub fn name(&self) -> String {
        format!(
            "start={},{}_m={}",
            self.start[0], self.start[1], self.multiple
        )
    }

    /// Whether `lr * lambda_ref < 2` (stable at the gradient-flow limit).
    pub fn stable(&self) -> bool {
        (self.lr as f64) * self.lambda_ref < 2.0
    }
}

fn angle_deg(v: [f32; 2]) -> f32 {
    let a = libm::atan2f(v[1], v[0]).to_degrees();
    let a = if a < 0.0 { a + 180.0 } else { a };
    if a >= 180.0 {
        a - 180.0
    } else {
        a
    }
}

/// Sign-invariant difference of two angles (degrees, modulo 180), in `[0, 90]`.
pub fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() % 180.0;
    d.min(180.0 - d)
}

/// `sqrt(c^2 + 4 y^2)`: the sharpness of the valley point gradient flow reaches from `start`.
pub fn lambda_ref(start: [f32; 2]) -> f64 {
    let (a, b) = (start[0] as f64, start[1] as f64);
    let c = a * a - b * b;
    let y = TARGET as f64;
    (c * c + 4.0 * y * y).sqrt()
}

/// Angle (degrees, modulo 180) of the top eigenvector at the valley point `(a, y / a)` that
/// gradient flow reaches from `start`: the eigenvector is along `(theta_2, theta_1) = (y / a, a)`,
/// with `a^2 = (c + sqrt(c^2 + 4 y^2)) / 2`.
pub fn flow_angle_deg(start: [f32; 2]) -> f64 {
    let (t1, t2) = (start[0] as f64, start[1] as f64);
    let c = t1 * t1 - t2 * t2;
    let y = TARGET as f64;
    let a = ((c + (c * c + 4.0 * y * y).sqrt()) / 2.0).sqrt();
    let deg = a.atan2(y / a).to_degrees();
    if deg < 0.0 {
        deg + 180.0
    } else {
        deg
    }
}

/// Runs `steps` GD steps from `start` at `multiple * 2 / lambda_ref(start)`.
pub fn run(start: [f32; 2], multiple: f64, steps: usize) -> Result<DiagRun> {
    if !(multiple > 0.0 && multiple.is_finite()) {
        return Err(Failure::input(format!(
            "diagonal network: learning-rate multiple {multiple} must be positive"
        )));
    }
    let lref = lambda_ref(start);
    let lr = (multiple * 2.0 / lref) as f32;
    let mut net = DiagLinearNet { target: TARGET };
    let opt = Optimizer::Gd { weight_decay: 0.0 };
    let mut p = [start[0], start[1]];
    let mut g = [0.0f32; 2];
    let mut empty: [f32; 0] = [];
    let mut st = OptState {
        t: 0,
        buf: &mut empty,
    };
    let mut points = Vec::with_capacity(steps + 1);
    let mut diverged = false;
    let err = core_err("diagonal network");
    for t in 0..=steps {
        let loss = net.loss_grad(&p, &mut g).map_err(&err)?;
        let (lmax, lmin, v) = net.eigen(p);
        let ok = loss.is_finite() && p.iter().all(|x| x.is_finite() && x.abs() <= DIVERGED_ABS);
        points.push(DiagPoint {
            theta: p,
            loss,
            lambda_max: lmax,
            lambda_min: lmin,
            angle_deg: angle_deg(v),
        });
        if !ok {
            diverged = true;
            break;
        }
        if t == steps {
            break;
        }
        opt.step(lr, &mut p, &g, &mut st).map_err(&err)?;
    }
    let last = points.last().copied().unwrap_or_default();
    let c = |q: [f32; 2]| (q[0] as f64) * (q[0] as f64) - (q[1] as f64) * (q[1] as f64);
    let spikes = points
        .windows(2)
        .filter(|w| {
            w[0].loss.is_finite()
                && w[1].loss.is_finite()
                && (w[1].loss as f64) > (w[0].loss as f64) * 1.001
        })
        .count();
    Ok(DiagRun {
        start,
        multiple,
        lr,
        lambda_ref: lref,
        c0: c(start),
        c_final: c(last.theta),
        converged: !diverged && last.loss <= CONVERGED_LOSS,
        diverged,
        final_lambda: last.lambda_max as f64,
        angle_from_flow_deg: angle_between(flow_angle_deg(start), last.angle_deg as f64),
        spikes,
        points,
    })
}

/// The trajectory as CSV: `step,theta1,theta2,loss,lambda_max,lambda_min,angle_deg`.
pub fn trajectory_csv(r: &DiagRun) -> String {
    let mut s = String::from("step,theta1,theta2,loss,lambda_max,lambda_min,angle_deg\n");
    for (i, q) in r.points.iter().enumerate() {
        let _ = write!(s, "{i}");
        for x in [
            q.theta[0],
            q.theta[1],
            q.loss,
            q.lambda_max,
            q.lambda_min,
            q.angle_deg,
        ] {
            s.push(',');
            push_f32(&mut s, x);
        }
        s.push('\n');
    }
    s
}

/// Writes `dir/<name>/trajectory.csv` for each run.
pub fn write_runs(dir: &Path, runs: &[DiagRun]) -> Result<()> {
    for r in runs {
        let d = dir.join(r.name());
        std::fs::create_dir_all(&d)
            .map_err(|e| Failure::input(format!("cannot create {}: {e}", d.display())))?;
        crate::fsio::atomic_write(&d.join("trajectory.csv"), trajectory_csv(r).as_bytes())
            .map_err(crate::train::out_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_run_conserves_balance_and_unstable_run_flattens() {
        let s = run([4.0, 0.1], 0.5, 3000).unwrap();
        assert!(s.stable() && s.converged);
        assert!((s.c_final - s.c0).abs() < 0.05 * s.c0.abs());
        assert!((s.final_lambda - s.lambda_ref).abs() < 0.05 * s.lambda_ref);
        let u = run([4.0, 0.1], 1.25, 3000).unwrap();
        assert!(!u.stable() && u.converged);
        assert!(u.final_lambda <= 2.0 / u.lr as f64 * 1.01);
        assert!(u.c_final.abs() < 0.9 * u.c0.abs());
        assert!(s.angle_from_flow_deg < 0.25, "{}", s.angle_from_flow_deg);
        assert!(u.angle_from_flow_deg > 0.5, "{}", u.angle_from_flow_deg);
        assert!(trajectory_csv(&u).lines().count() == u.points.len() + 1);
        assert!(run([4.0, 0.1], -1.0, 10).is_err());
        assert!(run([4.0, 0.1], 3.0, 3000).unwrap().diverged);
        assert_eq!(angle_between(179.0, 1.0), 2.0);
    }
}
