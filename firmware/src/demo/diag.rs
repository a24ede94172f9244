//! The two-parameter diagonal linear network `L = (theta1 theta2 - 1)^2 / 2` under GD: exact
//! 2x2 Hessian, closed-form eigenpairs. Started just off the valley of minima at an unbalanced
//! point (`lambda_max ~ 4.25`), a stable step stays put; an unstable one (`lr * lambda > 2`)
//! oscillates across the valley, rotates the top eigenvector toward the balanced direction
//! `(1, 1)/sqrt(2)` and settles on a flatter point with `lr * lambda_max < 2`.

use super::show;
use edgewise_core::{eigenvector_rotation, DiagLinearNet, Objective, OptState, Optimizer};

/// Start: `theta1 theta2 = 1.04`, just off the valley (on it the gradient is zero).
pub const START: [f32; 2] = [2.0, 0.52];

/// What a diagonal-network run ended with.
#[derive(Clone, Copy, Default)]
pub struct DiagOutcome {
    pub lambda0: f32,
    pub lambda_end: f32,
    pub theta: [f32; 2],
    /// `1 - |cos|` between the top eigenvectors at the start and at the end.
    pub rotation: f32,
    pub final_loss: f32,
    /// Steps whose loss exceeded the previous step's.
    pub uphill: u32,
}

/// GD at `lr` for `steps` steps from [`START`]; logs at the steps in `log_at` (and the end).
pub fn run(name: &'static str, lr: f32, steps: u32, log_at: &[u32]) -> DiagOutcome {
    let mut net = DiagLinearNet { target: 1.0 };
    let opt = Optimizer::Gd { weight_decay: 0.0 };
    let mut st = OptState { t: 0, buf: &mut [] };
    let mut th = START;
    let mut g = [0.0f32; 2];
    let (l0, _, v0) = net.eigen(START);
    let mut out = DiagOutcome {
        lambda0: l0,
        ..DiagOutcome::default()
    };
    let mut prev = f32::INFINITY;
    for step in 0..=steps {
        let loss = match net.loss_grad(&th, &mut g) {
            Ok(l) => l,
            Err(_) => defmt::panic!("diag: bad buffers"),
        };
        if loss > prev {
            out.uphill += 1;
        }
        prev = loss;
        if log_at.contains(&step) || step == steps {
            let (lmax, _, v) = net.eigen(th);
            let rot = eigenvector_rotation(&v0, &v).unwrap_or(f32::NAN);
            defmt::println!(
                "{=str} step {=u32:04}  loss {=f32}  theta ({=f32}, {=f32})  lambda {=f32}  lr*lambda {=f32}  v ({=f32}, {=f32})  rot {=f32}",
                name,
                step,
                show(loss),
                show(th[0]),
                show(th[1]),
                show(lmax),
                show(lr * lmax),
                show(v[0].abs()),
                show(v[1].abs()),
                show(rot)
            );
        }
        out.final_loss = loss;
        if step < steps && opt.step(lr, &mut th, &g, &mut st).is_err() {
            defmt::panic!("diag: bad step");
        }
    }
    let (l_end, _, v_end) = net.eigen(th);
    out.lambda_end = l_end;
    out.theta = th;
    out.rotation = eigenvector_rotation(&v0, &v_end).unwrap_or(f32::NAN);
    out
}
