//! Regression tests for the library-user audit (2026-12-06): a researcher driving the public
//! API directly found results returned as `Ok` that were wrong (a Ritz vector of the wrong
//! length, more deflated pairs than eigenvalues, a `lambda_min` above its shift, a converged
//! sharpness far off next to a large negative eigenvalue), settings accepted that make every
//! test pass (`tol = inf`), misleading errors, and a default schedule with a zero factor.

use edgewise_core::*;

const NO_PAIR: Eigenpair = Eigenpair {
    value: 0.0,
    residual: 0.0,
    iterations: 0,
    converged: false,
};

/// `diag(d)`.
struct Diag(Vec<f32>);

impl LinearOperator for Diag {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        for ((o, &x), &d) in out.iter_mut().zip(v).zip(&self.0) {
            *o = d * x;
        }
        Ok(())
    }
}

#[test]
fn ritz_vector_checks_the_output_length_against_the_run() {
    let mut op = Diag(vec![3.0, 2.0, 1.0, 0.5, 0.25]);
    let cfg = LanczosConfig { steps: 3 };
    let mut basis = vec![0.0f32; lanczos_basis_len(3, 5)];
    let mut work = vec![0.0f64; lanczos_work_len(3)];
    let (mut vals, mut res) = ([0.0f32; 3], [0.0f32; 3]);
    let r = lanczos(
        &mut op, &cfg, &[1.0; 5], &mut basis, &mut work, &mut vals, &mut res,
    )
    .unwrap();
    assert_eq!(r.dim, 5);
    assert_eq!(lanczos_basis_len(3, 5), 20);
    for len in [4, 6, 1] {
        let mut out = vec![0.0f32; len];
        assert!(matches!(
            ritz_vector(&basis, &work, &cfg, &r, 0, &mut out),
            Err(Error::LengthMismatch { .. })
        ));
    }
    let mut out = [0.0f32; 5];
    ritz_vector(&basis, &work, &cfg, &r, 0, &mut out).unwrap();
    // The top Ritz vector of 3 steps leans on the top eigenvector e_1.
    assert!(out[0].abs() > 0.9, "{out:?}");
}

#[test]
fn top_k_deflation_refuses_more_pairs_than_the_dimension() {
    let mut op = Diag(vec![2.0, 1.0]);
    let mut vecs = [1.0f32, 0.5, 0.2, 1.0, 0.3, 0.7];
    let mut out = [NO_PAIR; 3];
    let mut scratch = [0.0f32; 2];
    assert!(matches!(
        top_k_deflation(
            &mut op,
            &mut vecs,
            &mut out,
            &mut scratch,
            &PowerConfig::default()
        ),
        Err(Error::InvalidConfig(_))
    ));
    let mut out = [NO_PAIR; 2];
    top_k_deflation(
        &mut op,
        &mut vecs[..4],
        &mut out,
        &mut scratch,
        &PowerConfig::default(),
    )
    .unwrap();
    assert!((out[0].value - 2.0).abs() < 1e-3 && (out[1].value - 1.0).abs() < 1e-3);
}

#[test]
fn lambda_min_above_its_shift_is_not_converged() {
    // Spectrum [-0.5, 2]: with the shift 0.1 (below the top), A - 0.1 I has dominant
    // eigenvalue 1.9 > 0, so power iteration converges to 2, the top, not lambda_min.
    let mut op = Diag(vec![2.0, -0.5]);
    let mut v = [1.0f32, 1.0];
    let mut scratch = [0.0f32; 2];
    let cfg = PowerConfig {
        tol: 1e-4,
        max_iter: 200,
    };
    let e = lambda_min(&mut op, 0.1, &mut v, &mut scratch, &cfg).unwrap();
    assert!((e.value - 2.0).abs() < 1e-3, "{e:?}");
    assert!(
        !e.converged,
        "a value above the shift is not the smallest eigenvalue"
    );
    // With the sharpness as the shift it converges to the bottom.
    let mut v = [1.0f32, 1.0];
    let e = lambda_min(&mut op, 2.0, &mut v, &mut scratch, &cfg).unwrap();
    assert!((e.value + 0.5).abs() < 1e-3 && e.converged, "{e:?}");
}

#[test]
fn warm_lanczos_tolerance_is_relative_to_the_sharpness() {
    // A large negative eigenvalue next to a small top: a scale that took in the bottom of the
    // spectrum accepted a top Ritz value far from 1 after two products.
    let mut op = Diag(vec![1.0, 0.5, -1000.0]);
    let cfg = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 3,
        k: 1,
    };
    let mut v = [0.001f32, 0.3, 1.0];
    let mut basis = vec![0.0f32; lanczos_basis_len(3, 3)];
    let mut work = vec![0.0f64; lanczos_work_len(3)];
    let mut pairs = [NO_PAIR];
    let r = warm_lanczos(&mut op, &cfg, &mut v, &mut basis, &mut work, &mut pairs).unwrap();
    assert!(r.converged);
    assert!(
        (pairs[0].value - 1.0).abs() <= 2e-3,
        "converged at {} after {} products",
        pairs[0].value,
        r.steps
    );
    assert_eq!(r.steps, 3, "the top is resolved only by the whole space");
}

#[test]
fn solvers_refuse_an_infinite_tolerance_and_name_a_non_finite_start() {
    let mut op = Diag(vec![2.0, 1.0]);
    let mut scratch = [0.0f32; 2];
    let inf = PowerConfig {
        tol: f32::INFINITY,
        max_iter: 10,
    };
    let mut v = [1.0f32, 1.0];
    assert!(matches!(
        sharpness(&mut op, &mut v, &mut scratch, &inf),
        Err(Error::InvalidConfig(_))
    ));
    let wc = WarmLanczosConfig {
        tol: f32::INFINITY,
        max_steps: 2,
        k: 1,
    };
    let mut basis = vec![0.0f32; 6];
    let mut work = vec![0.0f64; lanczos_work_len(2)];
    let mut pairs = [NO_PAIR];
    assert!(matches!(
        warm_lanczos(&mut op, &wc, &mut v, &mut basis, &mut work, &mut pairs),
        Err(Error::InvalidConfig(_))
    ));
    for bad in [f32::NAN, f32::INFINITY] {
        let mut v = [bad, 1.0];
        assert!(matches!(
            power_iteration(&mut op, &mut v, &mut scratch, &PowerConfig::default()),
            Err(Error::NonFinite(_))
        ));
        let wc = WarmLanczosConfig {
            tol: 1e-3,
            max_steps: 2,
            k: 1,
        };
        let mut v = [bad, 1.0];
        assert!(matches!(
            warm_lanczos(&mut op, &wc, &mut v, &mut basis, &mut work, &mut pairs),
            Err(Error::NonFinite(_))
        ));
        let (mut vals, mut res) = ([0.0f32; 2], [0.0f32; 2]);
        assert!(matches!(
            lanczos(
                &mut op,
                &LanczosConfig { steps: 2 },
                &[bad, 1.0],
                &mut basis,
                &mut work,
                &mut vals,
                &mut res
            ),
            Err(Error::NonFinite(_))
        ));
    }
    // A zero start is still a zero vector.
    let mut v = [0.0f32, 0.0];
    assert!(matches!(
        power_iteration(&mut op, &mut v, &mut scratch, &PowerConfig::default()),
        Err(Error::ZeroVector)
    ));
}

#[test]
fn empty_data_is_empty_data_for_both_kinds_of_targets() {
    assert!(matches!(
        Data::new(&[], 4, Targets::Values(&[])),
        Err(Error::EmptyData)
    ));
    assert!(matches!(
        Data::new(&[], 4, Targets::Classes(&[])),
        Err(Error::EmptyData)
    ));
    assert!(Data::new(&[1.0; 4], 4, Targets::Values(&[0.5, 0.5])).is_ok());
}

#[test]
fn the_default_schedule_is_constant() {
    assert_eq!(Schedule::default(), Schedule::constant());
    let s = Schedule {
        decay_every: 100,
        ..Default::default()
    };
    assert!(s.validate().is_ok());
    assert_eq!(s.lr(0.1, 250), 0.1);
}

#[test]
fn a_diverged_network_predicts_no_class() {
    // NaN parameters make NaN outputs: accuracy 0, not the share of class 0.
    let arch = Arch::new(&[2, 3, 3], Activation::Tanh, Loss::CrossEntropy).unwrap();
    let params = vec![f32::NAN; arch.n_params()];
    let x = [0.5f32, -1.0, 1.0, 0.25, -0.5, 0.5];
    let data = Data::new(&x, 2, Targets::Classes(&[0, 0, 0])).unwrap();
    let mut ws = vec![0.0f32; arch.workspace_len(3)];
    let mut obj = MlpObjective::new(&arch, data, &mut ws, 3).unwrap();
    let e = obj.evaluate(&params).unwrap();
    assert_eq!(e.accuracy, 0.0, "{e:?}");
}

#[test]
fn optimizer_state_from_outside_is_checked() {
    let adam = Optimizer::Adam(AdamConfig::default());
    assert_eq!(adam.second_moments(3), 3..6);
    assert_eq!(
        adam.check_state(3, &[0.0, 0.1, -0.2, 0.0, 0.5, 0.25]),
        Ok(())
    );
    assert_eq!(
        adam.check_state(3, &[0.0, 0.1, 0.2, 0.0, -0.5, 0.25]),
        Err(StateFault::NegativeSecondMoment(4))
    );
    assert_eq!(
        adam.check_state(3, &[0.0, f32::NAN, 0.2, 0.0, 0.5, 0.25]),
        Err(StateFault::NonFinite(1))
    );
    assert_eq!(
        adam.check_state(3, &[0.0; 5]),
        Err(StateFault::Length {
            expected: 6,
            got: 5
        })
    );
    let rms = Optimizer::RmsProp(RmsPropConfig::default());
    assert_eq!(
        rms.check_state(2, &[0.1, -0.1]),
        Err(StateFault::NegativeSecondMoment(1))
    );
    // Momentum's buffer may be negative; GD keeps none.
    let mom = Optimizer::Momentum(MomentumConfig::default());
    assert_eq!(mom.check_state(2, &[-1.0, 1.0]), Ok(()));
    assert_eq!(Optimizer::default().check_state(2, &[]), Ok(()));
    const LEN: usize = Optimizer::Adam(AdamConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
        clip: Clip::None,
    })
    .state_len(10);
    assert_eq!(LEN, 20);
}

/// `A_t`: `diag(d)` turned in the plane of its top two coordinates by `angle * t`.
fn turned(d: &[f32], angle: f64) -> Vec<f32> {
    let n = d.len();
    let (c, s) = (angle.cos(), angle.sin());
    let mut a = vec![0.0f32; n * n];
    for i in 2..n {
        a[i * n + i] = d[i];
    }
    // R diag(d0, d1) R^T in the (0, 1) plane.
    let (d0, d1) = (d[0] as f64, d[1] as f64);
    a[0] = (c * c * d0 + s * s * d1) as f32;
    a[n + 1] = (s * s * d0 + c * c * d1) as f32;
    let off = (c * s * (d0 - d1)) as f32;
    a[1] = off;
    a[n] = off;
    a
}

#[test]
fn sharpness_tracker_follows_a_turning_top_eigenvector() {
    const N: usize = 6;
    let cfg = WarmLanczosConfig {
        tol: 1e-4,
        max_steps: N,
        k: 1,
    };
    let mut floats = vec![0.0f32; SharpnessTracker::floats(N, N)];
    assert_eq!(floats.len(), (TRACK_HISTORY + N + 2) * N);
    let mut work = vec![0.0f64; SharpnessTracker::work_len(N)];
    let bufs = TrackerBuffers {
        floats: &mut floats,
        work: &mut work,
    };
    let mut tr = SharpnessTracker::new(N, cfg, bufs, 11).unwrap();
    assert_eq!(tr.history(), 0);
    let d = [4.0f32, 3.0, 1.0, 0.5, -0.5, -1.0];
    let mut products = Vec::new();
    for t in 0..12 {
        let a = turned(&d, 0.05 * t as f64);
        let mut op = DenseOp::new(&a, N).unwrap();
        let m = tr.measure(&mut op).unwrap();
        assert!(m.pair.converged, "step {t}: {m:?}");
        assert!((m.pair.value - 4.0).abs() <= 1e-3, "step {t}: {m:?}");
        assert_eq!(m.prediction.is_none(), t == 0);
        assert_eq!(tr.history(), (t + 1).min(PREDICT_HISTORY));
        // The eigenvector: (cos, sin) of the angle in the top plane.
        let v = tr.eigenvector();
        let ang = 0.05 * t as f64;
        let cos = (v[0] as f64 * ang.cos() + v[1] as f64 * ang.sin()).abs();
        assert!(cos > 0.999, "step {t}: {v:?}");
        products.push(m.products);
    }
    // A steady turn is predicted by the linear extrapolation: fewer products than the cold start.
    let late = products[4..].iter().sum::<u32>() as f64 / 8.0;
    assert!(late < products[0] as f64, "{products:?}");
}

#[test]
fn track_sharpness_checks_its_state() {
    let mut op = Diag(vec![2.0, 1.0, 0.5]);
    let cfg = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 3,
        k: 1,
    };
    let mut latest = [1.0f32, 0.5, 0.2];
    let mut history = vec![0.0f32; TRACK_HISTORY * 3];
    let mut basis = vec![0.0f32; lanczos_basis_len(3, 3)];
    let mut work = vec![0.0f64; lanczos_work_len(3)];
    // A history without a measured latest vector.
    let mut st = TrackState {
        latest: &mut latest,
        history: &mut history,
        history_len: 1,
        measured: false,
    };
    assert!(track_sharpness(&mut op, &cfg, &mut st, &mut basis, &mut work).is_err());
    st.history_len = 0;
    let k2 = WarmLanczosConfig { k: 2, ..cfg };
    assert!(track_sharpness(&mut op, &k2, &mut st, &mut basis, &mut work).is_err());
    let m = track_sharpness(&mut op, &cfg, &mut st, &mut basis, &mut work).unwrap();
    assert!((m.pair.value - 2.0).abs() < 1e-3 && st.measured && st.history_len == 0);
    let m = track_sharpness(&mut op, &cfg, &mut st, &mut basis, &mut work).unwrap();
    assert!((m.pair.value - 2.0).abs() < 1e-3 && st.history_len == 1);
    assert_eq!(m.prediction, Some(StartPrediction::Latest));
    // A refused call (a basis too short for max_steps) leaves the state as it was.
    let (before, hist_before) = (st.latest.to_vec(), st.history.to_vec());
    let mut short_basis = vec![0.0f32; 5];
    assert!(matches!(
        track_sharpness(&mut op, &cfg, &mut st, &mut short_basis, &mut work),
        Err(Error::BufferTooSmall { .. })
    ));
    assert_eq!(
        (st.latest.to_vec(), st.history.to_vec()),
        (before, hist_before)
    );
    assert_eq!(st.history_len, 1);
    let mut short = vec![0.0f32; 3];
    let mut st = TrackState {
        latest: &mut latest,
        history: &mut short,
        history_len: 0,
        measured: false,
    };
    assert!(matches!(
        track_sharpness(&mut op, &cfg, &mut st, &mut basis, &mut work),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn finite_difference_product_along_a_subnormal_direction_is_an_error() {
    let arch = Arch::new(&[2, 3, 2], Activation::Tanh, Loss::Mse).unwrap();
    let mut params = vec![0.0f32; arch.n_params()];
    arch.init(&mut params, Init::default(), 3).unwrap();
    let x = [0.5f32, -1.0, 1.0, 0.25];
    let data = Data::new(&x, 2, Targets::Classes(&[0, 1])).unwrap();
    let mut ws = vec![0.0f32; arch.workspace_len(2)];
    let mut obj = MlpObjective::new(&arch, data, &mut ws, 2).unwrap();
    let p = arch.n_params();
    let mut scratch = vec![0.0f32; 2 * p];
    let mut out = vec![0.0f32; p];
    let tiny = vec![1e-44f32; p];
    let mut op =
        HessianOp::new(&mut obj, &params, HvpMethod::FiniteDifference, &mut scratch).unwrap();
    assert!(matches!(
        op.apply(&tiny, &mut out),
        Err(Error::NonFinite(_))
    ));
    // A unit direction works.
    let mut unit = vec![0.0f32; p];
    unit[0] = 1.0;
    op.apply(&unit, &mut out).unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
}

#[test]
fn a_start_nearly_orthogonal_to_the_top_converges_to_the_second_eigenvalue() {
    // What the residual test certifies (warm_lanczos docs): *an* eigenvalue, here the second.
    let mut d = vec![0.5f32; 10];
    d[0] = 1.0;
    d[1] = 0.97;
    let mut op = Diag(d);
    let mut start = [0.0f32; 10];
    start[1] = 1.0;
    start[0] = 0.03;
    let cfg = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 10,
        k: 1,
    };
    let (mut basis, mut work) = (vec![0.0f32; 110], vec![0.0f64; lanczos_work_len(10)]);
    let mut v = start;
    let mut pairs = [NO_PAIR];
    let r = warm_lanczos(&mut op, &cfg, &mut v, &mut basis, &mut work, &mut pairs).unwrap();
    assert!(r.converged && r.steps == 1, "{r:?}");
    assert!((pairs[0].value - 0.97).abs() < 1e-3, "{:?}", pairs[0]);
    let mut v = start;
    let mut scratch = [0.0f32; 10];
    let e = sharpness(&mut op, &mut v, &mut scratch, &PowerConfig::default()).unwrap();
    assert!(
        e.converged && e.iterations == 1 && (e.value - 0.97).abs() < 1e-3,
        "{e:?}"
    );
    // A smaller tolerance resolves the top.
    let tight = WarmLanczosConfig { tol: 1e-6, ..cfg };
    let mut v = start;
    warm_lanczos(&mut op, &tight, &mut v, &mut basis, &mut work, &mut pairs).unwrap();
    assert!((pairs[0].value - 1.0).abs() < 1e-4, "{:?}", pairs[0]);
}
