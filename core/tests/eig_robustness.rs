//! Regression tests for the public-API audit of the eigen-solvers, curvature measures,
//! operators and optimizers: inputs that used to panic (overflow in length arithmetic) or
//! return a non-finite or wrong result as `Ok` now return an error.

use edgewise_core::eig::lanczos::{checked_lanczos_work_len, lanczos_work_len, ritz_vector};
use edgewise_core::eig::lanczos::{LanczosResult, WarmLanczosConfig};
use edgewise_core::*;

/// Returns the same value in every entry.
struct ConstOp(usize, f32);

impl LinearOperator for ConstOp {
    fn dim(&self) -> usize {
        self.0
    }
    fn apply(&mut self, _v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        out.fill(self.1);
        Ok(())
    }
}

/// The identity of any dimension (no storage).
struct HugeOp(usize);

impl LinearOperator for HugeOp {
    fn dim(&self) -> usize {
        self.0
    }
    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        out.copy_from_slice(v);
        Ok(())
    }
}

const NO_PAIR: Eigenpair = Eigenpair {
    value: 0.0,
    residual: 0.0,
    iterations: 0,
    converged: false,
};

fn is_non_finite<T: core::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::NonFinite(_)))
}

// Finding 12: eigenvalues finite in f64 but beyond the f32 range.

#[test]
fn power_iteration_rejects_an_eigenvalue_beyond_f32() {
    let a = [2.4e38f32; 4];
    let mut op = DenseOp::new(&a, 2).unwrap();
    let mut v = [1.0f32, 1.0];
    let mut scratch = [0.0f32; 2];
    let r = power_iteration(&mut op, &mut v, &mut scratch, &PowerConfig::default());
    assert!(is_non_finite(r), "{r:?}");
    let mut v = [1.0f32, 1.0];
    let r = sharpness(&mut op, &mut v, &mut scratch, &PowerConfig::default());
    assert!(is_non_finite(r), "{r:?}");
}

#[test]
fn const_op_at_f32_max_is_an_error_for_every_power_method() {
    let cfg = PowerConfig {
        tol: 1.0,
        max_iter: 50,
    };
    let start = [-1.346448f32, 1.5414703, -1.352838];
    let mut scratch = [0.0f32; 3];
    let mut op = ConstOp(3, f32::MAX);
    let mut v = start;
    assert!(is_non_finite(power_iteration(
        &mut op,
        &mut v,
        &mut scratch,
        &cfg
    )));
    let mut v = start;
    assert!(is_non_finite(sharpness(
        &mut op,
        &mut v,
        &mut scratch,
        &cfg
    )));
    let mut v = start;
    assert!(is_non_finite(lambda_min(
        &mut op,
        2.0,
        &mut v,
        &mut scratch,
        &cfg
    )));
    let mut v = start;
    let mut pairs = [NO_PAIR; 1];
    assert!(is_non_finite(top_k_deflation(
        &mut op,
        &mut v,
        &mut pairs,
        &mut scratch,
        &cfg
    )));
}

#[test]
fn lambda_min_rejects_a_non_finite_shift_and_an_overflowing_sum() {
    let mut op = HugeOp(2);
    let mut v = [1.0f32, 0.5];
    let mut scratch = [0.0f32; 2];
    let cfg = PowerConfig::default();
    for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let r = lambda_min(&mut op, bad, &mut v, &mut scratch, &cfg);
        assert!(is_non_finite(r), "{bad}: {r:?}");
    }
    // diag(-3e38, 3e38) shifted by 3e38: the shifted products (-6e38) leave the f32 range.
    let a = [-3.0e38f32, 0.0, 0.0, 3.0e38];
    let mut op = DenseOp::new(&a, 2).unwrap();
    let mut v = [1.0f32, 0.0];
    let r = lambda_min(&mut op, 3.0e38, &mut v, &mut scratch, &cfg);
    assert!(is_non_finite(r), "{r:?}");
}

#[test]
fn lanczos_rejects_ritz_values_beyond_f32() {
    let mut op = ConstOp(3, f32::MAX);
    let cfg = LanczosConfig { steps: 5 };
    let start = [-0.0f32, -0.5290277, 1e-40];
    let mut basis = [0.0f32; 18];
    let mut work = [0.0f64; 65];
    let (mut vals, mut res) = ([0.0f32; 5], [0.0f32; 5]);
    let r = lanczos(
        &mut op, &cfg, &start, &mut basis, &mut work, &mut vals, &mut res,
    );
    assert!(is_non_finite(r), "{r:?}");

    let a = [2.4e38f32; 4];
    let mut op = DenseOp::new(&a, 2).unwrap();
    let cfg = LanczosConfig { steps: 2 };
    let mut basis = [0.0f32; 6];
    let mut work = [0.0f64; 14];
    let (mut vals, mut res) = ([0.0f32; 2], [0.0f32; 2]);
    let r = lanczos(
        &mut op,
        &cfg,
        &[1.0, 0.0],
        &mut basis,
        &mut work,
        &mut vals,
        &mut res,
    );
    assert!(is_non_finite(r), "{r:?}");
    let mut vecs = [1.0f32, 0.0];
    let mut pairs = [NO_PAIR; 1];
    let wc = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 2,
        k: 1,
    };
    let r = warm_lanczos(&mut op, &wc, &mut vecs, &mut basis, &mut work, &mut pairs);
    assert!(is_non_finite(r), "{r:?}");
}

// Finding 13: non-finite vectors in the rotation measures.

#[test]
fn rotation_measures_reject_non_finite_vectors() {
    assert!(is_non_finite(eigenvector_rotation(&[f32::NAN], &[1.0])));
    assert!(is_non_finite(eigenvector_rotation(
        &[f32::INFINITY],
        &[0.0]
    )));
    assert!(is_non_finite(eigenvector_rotation(
        &[1.0],
        &[f32::NEG_INFINITY]
    )));
    assert_eq!(eigenvector_rotation(&[1.0, 0.0], &[0.0, 2.0]), Ok(1.0));
    assert!(is_non_finite(subspace_score(
        &[f32::NAN, 0.0],
        &[1.0, 0.0],
        1
    )));
    assert!(is_non_finite(subspace_score(
        &[1.0, 0.0],
        &[0.0, f32::INFINITY],
        1
    )));
    assert_eq!(subspace_score(&[1.0, 0.0], &[1.0, 0.0], 1), Ok(1.0));
}

// Finding 14: dense eigen-decomposition of huge and tiny matrices, and non-convergence.

/// Largest `|A v - lambda v|` over the pairs, relative to the largest `|lambda|`.
fn eig_residual(a: &[f64], n: usize, vecs: &[f64], vals: &[f64]) -> f64 {
    let scale = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for k in 0..n {
        for i in 0..n {
            let av: f64 = (0..n).map(|j| a[i * n + j] * vecs[j * n + k]).sum();
            worst = worst.max((av - vals[k] * vecs[i * n + k]).abs());
        }
    }
    worst / scale
}

#[test]
fn symmetric_eigen_scales_matrices_whose_norm_overflows() {
    let mut a = [1e200f64; 4];
    let (mut vecs, mut vals) = ([0.0f64; 4], [0.0f64; 2]);
    symmetric_eigen(&mut a, 2, &mut vecs, &mut vals).unwrap();
    assert!((vals[0] / 2e200 - 1.0).abs() < 1e-12, "{vals:?}");
    assert!(vals[1].abs() < 1e-12 * 2e200, "{vals:?}");
    assert!(eig_residual(&[1e200; 4], 2, &vecs, &vals) < 1e-12);

    // All-1e160 3x3 (rank one): top eigenvalue 3e160.
    let mut a = [1e160f64; 9];
    let (mut vecs, mut vals) = ([0.0f64; 9], [0.0f64; 3]);
    symmetric_eigen(&mut a, 3, &mut vecs, &mut vals).unwrap();
    assert!((vals[0] / 3e160 - 1.0).abs() < 1e-12, "{vals:?}");

    // Tiny entries whose squares underflow.
    let orig = [2e-300f64, 1e-300, 1e-300, 2e-300];
    let mut a = orig;
    let (mut vecs, mut vals) = ([0.0f64; 4], [0.0f64; 2]);
    symmetric_eigen(&mut a, 2, &mut vecs, &mut vals).unwrap();
    assert!((vals[0] / 3e-300 - 1.0).abs() < 1e-12, "{vals:?}");
    assert!((vals[1] / 1e-300 - 1.0).abs() < 1e-12, "{vals:?}");

    // Eigenvalues beyond the f64 range: an error.
    let mut a = [f64::MAX / 4.0; 64];
    let (mut vecs, mut vals) = ([0.0f64; 64], [0.0f64; 8]);
    let r = symmetric_eigen(&mut a, 8, &mut vecs, &mut vals);
    assert!(is_non_finite(r), "{r:?}");
}

#[test]
fn symmetric_tridiagonal_eigen_scales_huge_entries() {
    use edgewise_core::eig::jacobi::symmetric_tridiagonal_eigen;
    for n in [3usize, 70] {
        let diag: Vec<f64> = (0..n).map(|i| (i as f64 + 1.0) * 1e200).collect();
        let off = vec![1e200f64; n - 1];
        let mut work = vec![0.0f64; n * n];
        let mut vecs = vec![0.0f64; n * n];
        let mut vals = vec![0.0f64; n];
        symmetric_tridiagonal_eigen(&diag, &off, n, &mut work, &mut vecs, &mut vals).unwrap();
        let mut dense = vec![0.0f64; n * n];
        for i in 0..n {
            dense[i * n + i] = diag[i];
            if i + 1 < n {
                dense[i * n + i + 1] = off[i];
                dense[(i + 1) * n + i] = off[i];
            }
        }
        let r = eig_residual(&dense, n, &vecs, &vals);
        assert!(r < 1e-10, "n = {n}: relative residual {r}");
    }
}

#[test]
fn symmetric_eigen_reads_only_the_lower_triangle() {
    // A matrix that is not symmetric (outside the contract) used to reach the Jacobi sweeps as
    // it was (`[0, 1; -1, 0]` never converged) and the QL method above 64 rows through its
    // lower triangle alone: now every order decomposes the symmetric matrix of the lower
    // triangle, whatever the upper one holds (a NaN included), with the same bits.
    let mut rng = SplitMix64::new(7);
    for n in [2usize, 5, 64, 70] {
        let mut sym = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = rng.uniform() as f64 - 0.5;
                sym[i * n + j] = x;
                sym[j * n + i] = x;
            }
        }
        let mut skewed = sym.clone();
        for i in 0..n {
            for j in i + 1..n {
                skewed[i * n + j] = -3.0 * sym[i * n + j] + 1.0;
            }
        }
        skewed[n - 1] = f64::NAN;
        let decompose = |mut a: Vec<f64>| {
            let (mut vecs, mut vals) = (vec![0.0f64; n * n], vec![0.0f64; n]);
            symmetric_eigen(&mut a, n, &mut vecs, &mut vals).unwrap();
            (vals, vecs)
        };
        let (vals, vecs) = decompose(sym.clone());
        assert!(eig_residual(&sym, n, &vecs, &vals) < 1e-12, "n = {n}");
        let (svals, svecs) = decompose(skewed);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&svals), bits(&vals), "n = {n}");
        assert_eq!(bits(&svecs), bits(&vecs), "n = {n}");
    }
    let mut a = [0.0f64, 1.0, -1.0, 0.0];
    let (mut vecs, mut vals) = ([0.0f64; 4], [0.0f64; 2]);
    symmetric_eigen(&mut a, 2, &mut vecs, &mut vals).unwrap();
    assert!(
        (vals[0] - 1.0).abs() < 1e-12 && (vals[1] + 1.0).abs() < 1e-12,
        "[0, -1; -1, 0]: {vals:?}"
    );
}

// Finding 15: operators check the length of the direction.

#[test]
fn operators_check_vector_lengths() {
    let m3 = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let pre_d = [1.0f32; 3];
    let mut tmp = [0.0f32; 3];
    let mut out = [0.0f32; 3];
    let mut d3 = DenseOp::new(&m3, 3).unwrap();
    {
        let mut pre = PreconditionedOp::new(&mut d3, &pre_d, &mut tmp).unwrap();
        let r = pre.apply(&[5.0], &mut out);
        assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
        let r = pre.apply(&[1.0; 3], &mut [0.0; 2]);
        assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
        pre.apply(&[1.0, 2.0, 3.0], &mut out).unwrap();
        assert_eq!(out, [1.0, 2.0, 3.0]);
    }
    // The inner operator need not check: the wrappers do.
    let mut huge = ConstOp(3, 1.0);
    let mut shifted = ShiftedOp::new(&mut huge, 1.0);
    let r = shifted.apply(&[1.0; 4], &mut out);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
    let mut huge = ConstOp(3, 1.0);
    let mut pre = PreconditionedOp::new(&mut huge, &pre_d, &mut tmp).unwrap();
    let r = pre.apply(&[1.0; 2], &mut out);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
}

// Finding 16: optimizer settings and the step counter.

#[test]
fn optimizer_step_validates_settings_and_the_counter() {
    let opt = Optimizer::Adam(AdamConfig {
        beta1: 1.0,
        ..AdamConfig::default()
    });
    let mut p = [1.0f32];
    let mut buf = [0.0f32; 2];
    let mut st = OptState {
        t: 0,
        buf: &mut buf,
    };
    let r = opt.step(0.1, &mut p, &[1.0], &mut st);
    assert!(matches!(r, Err(Error::InvalidConfig(_))), "{r:?}");
    assert_eq!((p, st.t), ([1.0], 0));

    for opt in [
        Optimizer::Gd {
            weight_decay: f32::NAN,
        },
        Optimizer::Momentum(MomentumConfig {
            weight_decay: f32::INFINITY,
            ..MomentumConfig::default()
        }),
        Optimizer::RmsProp(RmsPropConfig {
            eps: f32::INFINITY,
            ..RmsPropConfig::default()
        }),
        Optimizer::Adam(AdamConfig {
            weight_decay: f32::INFINITY,
            ..AdamConfig::default()
        }),
    ] {
        assert!(opt.validate().is_err(), "{opt:?}");
        let mut p = [1.0f32];
        let mut buf = [0.0f32; 2];
        let n = opt.state_len(1);
        let mut st = OptState {
            t: 0,
            buf: &mut buf[..n],
        };
        assert!(opt.step(0.1, &mut p, &[1.0], &mut st).is_err(), "{opt:?}");
        let mut out = [0.0f32];
        assert!(opt.step_sizes(0.1, &st, &mut out).is_err(), "{opt:?}");
    }

    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut st = OptState {
        t: u64::MAX,
        buf: &mut [],
    };
    let r = gd.step(0.1, &mut [], &[], &mut st);
    assert!(matches!(r, Err(Error::InvalidConfig(_))), "{r:?}");
    assert_eq!(st.t, u64::MAX);
}

#[test]
fn step_sizes_rejects_bad_learning_rates() {
    let opt = Optimizer::Gd { weight_decay: 0.1 };
    let st = OptState { t: 1, buf: &mut [] };
    let mut out = [0.0f32; 0];
    for lr in [0.0f32, -0.0, -1.0, f32::NAN, f32::INFINITY] {
        let r = opt.step_sizes(lr, &st, &mut out);
        assert!(matches!(r, Err(Error::InvalidConfig(_))), "{lr}: {r:?}");
    }
    let mut out = [0.0f32; 2];
    opt.step_sizes(0.5, &st, &mut out).unwrap();
    assert_eq!(out, [0.5, 0.5]);
}

// Finding 10: length arithmetic that overflowed.

#[test]
fn length_arithmetic_overflow_is_an_error() {
    assert_eq!(checked_lanczos_work_len(1 << 32), None);
    assert_eq!(lanczos_work_len(1 << 32), usize::MAX);
    assert_eq!(checked_lanczos_work_len(20), Some(lanczos_work_len(20)));
    assert_eq!(lanczos_work_len(20), 2 * 20 * 20 + 3 * 20);

    let adam = Optimizer::Adam(AdamConfig::default());
    assert_eq!(adam.checked_state_len(1 << 63), None);
    assert_eq!(adam.state_len(1 << 63), usize::MAX);
    assert_eq!(adam.state_len(10), 20);

    assert!(DenseOp::new(&[], 1 << 32).is_err());

    let a1 = [1.0f32];
    let mut dop = DenseOp::new(&a1, 1).unwrap();
    let mut basis = [0.0f32; 8];
    let mut work = [0.0f64; 64];
    let (mut vals, mut res) = ([0.0f32; 4], [0.0f32; 4]);
    for steps in [usize::MAX, 1 << 32] {
        let r = lanczos(
            &mut dop,
            &LanczosConfig { steps },
            &[1.0],
            &mut basis,
            &mut work,
            &mut vals,
            &mut res,
        );
        assert!(r.is_err(), "{steps}: {r:?}");
    }
    let mut vv = [1.0f32];
    let mut pairs = [NO_PAIR; 1];
    let wc = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: usize::MAX,
        k: 1,
    };
    let r = warm_lanczos(&mut dop, &wc, &mut vv, &mut basis, &mut work, &mut pairs);
    assert!(r.is_err(), "{r:?}");

    // A Ritz vector of a result claiming more steps than storage holds.
    let mut out = [0.0f32; 3];
    let r = ritz_vector(
        &basis,
        &work,
        &LanczosConfig { steps: usize::MAX },
        &LanczosResult { steps: 2, dim: 3 },
        0,
        &mut out,
    );
    assert!(r.is_err(), "{r:?}");
    let r = ritz_vector(
        &basis,
        &work,
        &LanczosConfig { steps: usize::MAX },
        &LanczosResult {
            steps: usize::MAX,
            dim: 3,
        },
        1,
        &mut out,
    );
    assert!(r.is_err(), "{r:?}");

    let r = symmetric_eigen(&mut [], 1 << 32, &mut [], &mut []);
    assert!(r.is_err(), "{r:?}");

    let mut op = HugeOp(1 << 32);
    let r = dense_hessian(&mut op, &mut [0.0; 4], &mut [], &mut []);
    assert!(r.is_err(), "{r:?}");
    let mut op = HugeOp((1 << 63) + 1);
    let mut pairs = [NO_PAIR; 2];
    let r = top_k_deflation(
        &mut op,
        &mut [0.0; 4],
        &mut pairs,
        &mut [],
        &PowerConfig::default(),
    );
    assert!(r.is_err(), "{r:?}");
    let mut op = HugeOp(usize::MAX);
    let mut pairs = [NO_PAIR; 4];
    let wc = WarmLanczosConfig {
        tol: f32::INFINITY,
        max_steps: 25,
        k: 3,
    };
    let r = warm_lanczos(
        &mut op,
        &wc,
        &mut [0.0; 4],
        &mut [0.0; 4],
        &mut [],
        &mut pairs,
    );
    assert!(r.is_err(), "{r:?}");
}

// Finding 17.

#[test]
fn warm_lanczos_breakdown_before_k_pairs_restarts() {
    // The identity: every start is an eigenvector, so the Krylov space is invariant after one
    // step. Both pairs (1, 1) come from a restart orthogonal to the first basis vector.
    let id = [1.0f32, 0.0, 0.0, 1.0];
    let mut op = DenseOp::new(&id, 2).unwrap();
    let mut vecs = [1.0f32, 0.0, 0.0, 1.0];
    let mut basis = [0.0f32; 6];
    let mut work = [0.0f64; 14];
    let mut pairs = [NO_PAIR; 2];
    let wc = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 2,
        k: 2,
    };
    let r = warm_lanczos(&mut op, &wc, &mut vecs, &mut basis, &mut work, &mut pairs).unwrap();
    assert!(r.converged && r.steps == 2, "{r:?}");
    assert!(
        pairs
            .iter()
            .all(|p| (p.value - 1.0).abs() < 1e-6 && p.residual == 0.0),
        "{pairs:?}"
    );
    let dot = vecs[0] * vecs[2] + vecs[1] * vecs[3];
    assert!(dot.abs() < 1e-6, "{vecs:?}");
    // k = 1 on the same breakdown is fine.
    let mut vecs = [1.0f32, 0.0];
    let mut pairs = [NO_PAIR; 1];
    let wc = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 2,
        k: 1,
    };
    let r = warm_lanczos(&mut op, &wc, &mut vecs, &mut basis, &mut work, &mut pairs).unwrap();
    assert!(r.converged && pairs[0].value == 1.0, "{r:?} {pairs:?}");
}

#[test]
fn predict_start_rejects_non_finite_history_and_predictions() {
    let mut out = [0.0f32; 1];
    let nan = [f32::NAN];
    assert!(is_non_finite(predict_start(&[&nan], &mut out)));
    let (a, b) = ([-3.4028235e38f32], [-0.45524216f32]);
    assert!(is_non_finite(predict_start(&[&a, &b], &mut out)));
    assert!(is_non_finite(extrapolate_start(&a, &b, &mut out)));
    let (a, b) = ([1.0f32], [1.0f32]);
    assert_eq!(
        predict_start(&[&a, &b], &mut out),
        Ok(StartPrediction::Linear)
    );
    assert_eq!(out, [1.0]);
}
