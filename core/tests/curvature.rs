//! Eigen-solvers and curvature measures against references that share no code with the crate:
//! nalgebra's dense symmetric eigensolver, closed forms, and known spectra.

mod common;

use common::*;
use edgewise_core::eig::lanczos::{lanczos_work_len, ritz_vector};
use edgewise_core::*;
use nalgebra::{DMatrix, SymmetricEigen};

/// A random symmetric matrix with eigenvalues `eigs` (Q diag Q^T, Q from QR of a random matrix).
fn matrix_with_spectrum(eigs: &[f64], seed: u64) -> (Vec<f32>, DMatrix<f64>) {
    let n = eigs.len();
    let mut rng = SplitMix64::new(seed);
    let g = DMatrix::from_fn(n, n, |_, _| rng.normal() as f64);
    let q = g.qr().q();
    let a = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_row_slice(eigs)) * q.transpose();
    let a = (&a + a.transpose()) * 0.5;
    let flat: Vec<f32> = (0..n * n).map(|k| a[(k / n, k % n)] as f32).collect();
    (flat, a)
}

fn nalgebra_eigs(a: &[f32], n: usize) -> Vec<f64> {
    let m = DMatrix::from_fn(n, n, |i, j| a[i * n + j] as f64);
    let m = (&m + m.transpose()) * 0.5;
    let mut e: Vec<f64> = SymmetricEigen::new(m).eigenvalues.iter().copied().collect();
    e.sort_by(|a, b| b.partial_cmp(a).unwrap());
    e
}

#[test]
fn quadratic_sharpness_and_the_stability_threshold() {
    let eigs = [10.0, 6.0, 3.0, 1.0, 0.5, 0.1];
    let (a, _) = matrix_with_spectrum(&eigs, 1);
    let b = [0.3f32, -0.2, 0.1, 0.0, 0.5, -0.4];
    let mut q = Quadratic::new(&a, &b).unwrap();
    let params = [0.0f32; 6];
    let mut op = HessianOp::exact(&mut q, &params);
    let mut v = [1.0f32; 6];
    let mut scratch = [0.0f32; 6];
    let cfg = PowerConfig {
        tol: 1e-7,
        max_iter: 1000,
    };
    let top = sharpness(&mut op, &mut v, &mut scratch, &cfg).unwrap();
    assert!(
        ((top.value as f64 - 10.0) / 10.0).abs() < 1e-5,
        "sharpness {}",
        top.value
    );
    assert!(top.residual < 1e-3);

    let lam = top.value;
    // Minimiser theta* = A^-1 b; GD converges iff lr * lambda_max < 2.
    let run = |lr: f32| {
        let mut q = Quadratic::new(&a, &b).unwrap();
        let mut th = [1.0f32; 6];
        let mut g = [0.0f32; 6];
        let opt = Optimizer::default();
        let mut st = OptState { t: 0, buf: &mut [] };
        for _ in 0..3000 {
            q.loss_grad(&th, &mut g).unwrap();
            opt.step(lr, &mut th, &g, &mut st).unwrap();
        }
        q.loss_grad(&th, &mut g).unwrap();
        g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
    };
    let stable = run(0.98 * 2.0 / lam);
    let unstable = run(1.02 * 2.0 / lam);
    assert!(
        stable < 1e-4,
        "GD at 0.98 * 2/lambda should converge: |g| = {stable}"
    );
    assert!(
        unstable > 1e3 || !unstable.is_finite(),
        "GD at 1.02 * 2/lambda should diverge: |g| = {unstable}"
    );
}

#[test]
fn power_iteration_on_networks_matches_nalgebra() {
    for (seed, act, loss) in [
        (1u64, Activation::Tanh, Loss::Mse),
        (2, Activation::Softplus, Loss::CrossEntropy),
        (3, Activation::Elu, Loss::CrossEntropy),
    ] {
        let widths = [3, 5, 3];
        let arch = Arch::new(&widths, act, loss).unwrap();
        let p = arch.n_params();
        let mut params = vec![0.0; p];
        arch.init(&mut params, Init::PytorchDefault, seed).unwrap();
        params.iter_mut().for_each(|x| *x *= 2.0);
        let mut rng = SplitMix64::new(seed);
        let x: Vec<f32> = (0..8 * 3).map(|_| rng.normal()).collect();
        let labels: Vec<u16> = (0..8).map(|_| rng.below(3) as u16).collect();
        let data = Data::new(&x, 3, Targets::Classes(&labels)).unwrap();
        let ract = match act {
            Activation::Tanh => RefAct::Tanh,
            Activation::Softplus => RefAct::Softplus,
            _ => RefAct::Elu,
        };
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let lab: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
        let (_, h) = ref_grad_hessian(
            &widths,
            ract,
            loss == Loss::CrossEntropy,
            &params,
            &x64,
            &lab,
        );
        let hm = DMatrix::from_row_slice(p, p, &h);
        let mut ev: Vec<f64> = SymmetricEigen::new(hm)
            .eigenvalues
            .iter()
            .copied()
            .collect();
        ev.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let (lmax, lmin) = (ev[0], ev[p - 1]);

        let mut ws = vec![0.0; arch.workspace_len(4)];
        let mut obj = MlpObjective::new(&arch, data, &mut ws, 4).unwrap();
        let mut op = HessianOp::exact(&mut obj, &params);
        let cfg = PowerConfig {
            tol: 1e-6,
            max_iter: 5000,
        };
        let mut v = vec![0.0; p];
        SplitMix64::new(9).fill_normal(&mut v);
        let mut s = vec![0.0; p];
        let top = sharpness(&mut op, &mut v, &mut s, &cfg).unwrap();
        assert!(
            ((top.value as f64 - lmax) / lmax).abs() < 1e-3,
            "{act:?}: {} vs {lmax}",
            top.value
        );
        let mut w = vec![0.0; p];
        SplitMix64::new(10).fill_normal(&mut w);
        let bot = lambda_min(&mut op, top.value, &mut w, &mut s, &cfg).unwrap();
        let scale = lmax.abs().max(lmin.abs());
        assert!(
            (bot.value as f64 - lmin).abs() < 2e-3 * scale,
            "{act:?} lambda_min: {} vs {lmin}",
            bot.value
        );

        // Lanczos: the extreme Ritz values at both ends.
        let steps = p.min(30);
        let cfg = LanczosConfig { steps };
        let mut basis = vec![0.0; (steps + 1) * p];
        let mut work = vec![0.0; lanczos_work_len(steps)];
        let (mut vals, mut res) = (vec![0.0; steps], vec![0.0; steps]);
        let mut start = vec![0.0; p];
        SplitMix64::new(11).fill_normal(&mut start);
        let r = lanczos(
            &mut op, &cfg, &start, &mut basis, &mut work, &mut vals, &mut res,
        )
        .unwrap();
        assert!(
            ((vals[0] as f64 - lmax) / lmax).abs() < 1e-4,
            "Lanczos top {} vs {lmax}",
            vals[0]
        );
        assert!(
            (vals[r.steps - 1] as f64 - lmin).abs() < 1e-3 * scale,
            "Lanczos bottom {} vs {lmin}",
            vals[r.steps - 1]
        );
        // The top Ritz vector is an eigenvector: its residual is small.
        let mut y = vec![0.0; p];
        ritz_vector(&basis, &work, &cfg, &r, 0, &mut y).unwrap();
        let mut hy = vec![0.0; p];
        op.apply(&y, &mut hy).unwrap();
        let resid: f64 = hy
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (a as f64 - vals[0] as f64 * b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(resid < 1e-3 * lmax.abs(), "Ritz residual {resid}");
    }
}

#[test]
fn lanczos_finds_both_ends_of_a_known_spectrum() {
    let n = 60;
    let eigs: Vec<f64> = (0..n)
        .map(|i| {
            if i == 0 {
                50.0
            } else if i == n - 1 {
                -20.0
            } else {
                (i as f64 * 0.37).sin() * 5.0
            }
        })
        .collect();
    let (a, _) = matrix_with_spectrum(&eigs, 7);
    let mut op = DenseOp::new(&a, n).unwrap();
    let steps = 25;
    let cfg = LanczosConfig { steps };
    let mut basis = vec![0.0; (steps + 1) * n];
    let mut work = vec![0.0; lanczos_work_len(steps)];
    let (mut vals, mut res) = (vec![0.0; steps], vec![0.0; steps]);
    let start = vec![1.0; n];
    let r = lanczos(
        &mut op, &cfg, &start, &mut basis, &mut work, &mut vals, &mut res,
    )
    .unwrap();
    assert_eq!(r.steps, steps);
    assert!((vals[0] - 50.0).abs() < 1e-3, "{}", vals[0]);
    assert!((vals[steps - 1] + 20.0).abs() < 1e-3, "{}", vals[steps - 1]);
    assert!(res[0] < 1e-2);
}

#[test]
fn lanczos_continues_past_an_invariant_subspace_with_multiplicities() {
    // Eigenvalues 5, 5, 5, 2, 2, 2 and six zeros; the start e_0 + e_3 spans an invariant
    // subspace of two dimensions. Lanczos goes on from new directions (each again invariant)
    // and reports the top of the spectrum with its multiplicities, every residual exact.
    let n = 12;
    let mut a = vec![0.0f32; n * n];
    for (i, &d) in [5.0f32, 5.0, 5.0, 2.0, 2.0, 2.0].iter().enumerate() {
        a[i * n + i] = d;
    }
    let mut op = DenseOp::new(&a, n).unwrap();
    let steps = 8;
    let cfg = LanczosConfig { steps };
    let mut basis = vec![0.0; (steps + 1) * n];
    let mut work = vec![0.0; lanczos_work_len(steps)];
    let (mut vals, mut res) = (vec![0.0; steps], vec![0.0; steps]);
    let mut start = vec![0.0f32; n];
    start[0] = 1.0;
    start[3] = 1.0;
    let r = lanczos(
        &mut op, &cfg, &start, &mut basis, &mut work, &mut vals, &mut res,
    )
    .unwrap();
    assert_eq!(r.steps, steps);
    let want = [5.0f32, 5.0, 5.0, 2.0, 2.0, 2.0, 0.0, 0.0];
    for (i, (&v, &w)) in vals.iter().zip(&want).enumerate() {
        assert!((v - w).abs() < 1e-6 && res[i] < 1e-6, "{vals:?} {res:?}");
    }
    // Each Ritz vector is an eigenvector, and the top three span the eigenvalue-5 space.
    let mut y = vec![0.0f32; n];
    for k in 0..3 {
        ritz_vector(&basis, &work, &cfg, &r, k, &mut y).unwrap();
        let inside: f32 = y[..3].iter().map(|x| x * x).sum();
        assert!((inside - 1.0).abs() < 1e-5, "{k}: {y:?}");
    }
    // warm_lanczos from the same start with k = 3: no error, three exact pairs. The Krylov
    // space of this start holds one eigenvalue-5 direction, the first restart (e_1) another.
    let wc = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 8,
        k: 3,
    };
    let mut vecs = vec![0.0f32; 3 * n];
    vecs[..n].copy_from_slice(&start);
    let mut pairs = [Eigenpair {
        value: 0.0,
        residual: 0.0,
        iterations: 0,
        converged: false,
    }; 3];
    let r = warm_lanczos(&mut op, &wc, &mut vecs, &mut basis, &mut work, &mut pairs).unwrap();
    assert!(r.converged && r.steps == 3, "{r:?}");
    let got: Vec<f32> = pairs.iter().map(|p| p.value).collect();
    assert!(
        (got[0] - 5.0).abs() < 1e-6 && (got[1] - 5.0).abs() < 1e-6 && (got[2] - 2.0).abs() < 1e-6,
        "{got:?}"
    );
}

#[test]
fn top_k_deflation_matches_nalgebra() {
    let eigs = [9.0, 7.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1];
    let (a, _) = matrix_with_spectrum(&eigs, 3);
    let n = eigs.len();
    let want = nalgebra_eigs(&a, n);
    let mut op = DenseOp::new(&a, n).unwrap();
    let k = 3;
    let mut vecs = vec![0.0; k * n];
    SplitMix64::new(1).fill_normal(&mut vecs);
    let mut out = [Eigenpair {
        value: 0.0,
        residual: 0.0,
        iterations: 0,
        converged: false,
    }; 3];
    let mut s = vec![0.0; n];
    top_k_deflation(
        &mut op,
        &mut vecs,
        &mut out,
        &mut s,
        &PowerConfig {
            tol: 1e-7,
            max_iter: 2000,
        },
    )
    .unwrap();
    for i in 0..k {
        assert!(
            (out[i].value as f64 - want[i]).abs() < 1e-4 * want[0],
            "{i}: {} vs {}",
            out[i].value,
            want[i]
        );
    }
    // The found vectors span the top-3 eigenspace: subspace score 1 against nalgebra's.
    let m = DMatrix::from_fn(n, n, |i, j| a[i * n + j] as f64);
    let se = SymmetricEigen::new((&m + m.transpose()) * 0.5);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| se.eigenvalues[y].partial_cmp(&se.eigenvalues[x]).unwrap());
    let reference: Vec<f32> = order[..k]
        .iter()
        .flat_map(|&c| (0..n).map(move |r| (c, r)))
        .map(|(c, r)| se.eigenvectors[(r, c)] as f32)
        .collect();
    let score = subspace_score(&vecs, &reference, k).unwrap();
    assert!(score > 0.9999, "score {score}");
}

/// A symmetric `n x n` matrix of seeded standard normals (upper triangle drawn row by row).
fn random_symmetric(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut a = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i..n {
            let x = rng.normal() as f64;
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

#[test]
fn jacobi_matches_nalgebra() {
    let n = 12;
    let a = random_symmetric(4, n);
    let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let want = nalgebra_eigs(&af, n);
    let mut work = a.clone();
    let (mut vecs, mut vals) = (vec![0.0; n * n], vec![0.0; n]);
    symmetric_eigen(&mut work, n, &mut vecs, &mut vals).unwrap();
    for i in 0..n {
        assert!(
            (vals[i] - want[i]).abs() < 1e-6,
            "{i}: {} vs {}",
            vals[i],
            want[i]
        );
        // A v = lambda v for column i.
        for r in 0..n {
            let av: f64 = (0..n).map(|c| a[r * n + c] * vecs[c * n + i]).sum();
            assert!((av - vals[i] * vecs[r * n + i]).abs() < 1e-9);
        }
    }
}

/// Checks an eigen-decomposition of the dense symmetric `a`: values against nalgebra's,
/// `A v = lambda v` per column and orthonormal columns.
fn check_eigen(a: &[f64], n: usize, vals: &[f64], vecs: &[f64], tol: f64) {
    let m = DMatrix::from_fn(n, n, |i, j| a[i * n + j]);
    let mut want: Vec<f64> = SymmetricEigen::new(m).eigenvalues.iter().copied().collect();
    want.sort_by(|x, y| y.partial_cmp(x).unwrap());
    let scale = want.iter().fold(1.0f64, |s, &x| s.max(x.abs()));
    for i in 0..n {
        assert!(
            (vals[i] - want[i]).abs() <= tol * scale,
            "n {n}, eigenvalue {i}: {} vs {}",
            vals[i],
            want[i]
        );
        if i > 0 {
            assert!(vals[i] <= vals[i - 1], "not descending at {i}");
        }
        for r in 0..n {
            let av: f64 = (0..n).map(|c| a[r * n + c] * vecs[c * n + i]).sum();
            assert!(
                (av - vals[i] * vecs[r * n + i]).abs() <= tol * scale,
                "n {n}, residual of pair {i}, row {r}"
            );
        }
        for j in 0..=i {
            let d: f64 = (0..n).map(|r| vecs[r * n + i] * vecs[r * n + j]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (d - want).abs() <= 1e-12 * n as f64,
                "n {n}: v{i} . v{j} = {d}"
            );
        }
    }
}

#[test]
fn householder_ql_above_the_jacobi_range_matches_nalgebra() {
    use edgewise_core::eig::jacobi::JACOBI_MAX;
    for (seed, n) in [(1u64, JACOBI_MAX + 1), (2, 100), (3, 157)] {
        let a = random_symmetric(seed, n);
        let mut work = a.clone();
        let (mut vecs, mut vals) = (vec![0.0; n * n], vec![0.0; n]);
        symmetric_eigen(&mut work, n, &mut vecs, &mut vals).unwrap();
        check_eigen(&a, n, &vals, &vecs, 1e-12);
    }
    // Degenerate spectra: a multiple of the identity, a rank-one matrix, the zero matrix, and a
    // diagonal one with values spanning 30 orders of magnitude.
    let n = 80;
    let mut rng = SplitMix64::new(9);
    let u: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
    let cases: Vec<Vec<f64>> = vec![
        (0..n * n)
            .map(|k| if k / n == k % n { 3.0 } else { 0.0 })
            .collect(),
        (0..n * n).map(|k| u[k / n] * u[k % n]).collect(),
        vec![0.0; n * n],
        (0..n * n)
            .map(|k| {
                if k / n == k % n {
                    10f64.powi((k / n) as i32 % 31 - 15)
                } else {
                    0.0
                }
            })
            .collect(),
    ];
    for a in cases {
        let mut work = a.clone();
        let (mut vecs, mut vals) = (vec![0.0; n * n], vec![0.0; n]);
        symmetric_eigen(&mut work, n, &mut vecs, &mut vals).unwrap();
        check_eigen(&a, n, &vals, &vecs, 1e-12);
    }
}

#[test]
fn tridiagonal_eigen_agrees_with_the_dense_solver() {
    use edgewise_core::eig::jacobi::{symmetric_tridiagonal_eigen, JACOBI_MAX};
    for n in [1, 2, 5, JACOBI_MAX, JACOBI_MAX + 1, 200] {
        let mut rng = SplitMix64::new(n as u64);
        let diag: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        let off: Vec<f64> = (0..n.saturating_sub(1))
            .map(|_| rng.uniform() as f64)
            .collect();
        let mut a = vec![0.0f64; n * n];
        for i in 0..n {
            a[i * n + i] = diag[i];
            if i + 1 < n {
                a[i * n + i + 1] = off[i];
                a[(i + 1) * n + i] = off[i];
            }
        }
        let mut work = vec![0.0f64; n * n];
        let (mut vecs, mut vals) = (vec![0.0; n * n], vec![0.0; n]);
        symmetric_tridiagonal_eigen(&diag, &off, n, &mut work, &mut vecs, &mut vals).unwrap();
        check_eigen(&a, n, &vals, &vecs, 1e-12);
        let mut dense = a.clone();
        let (mut dvecs, mut dvals) = (vec![0.0; n * n], vec![0.0; n]);
        symmetric_eigen(&mut dense, n, &mut dvecs, &mut dvals).unwrap();
        if n <= JACOBI_MAX {
            // The same method: the same bits.
            assert_eq!(vals, dvals, "n {n}");
            assert_eq!(vecs, dvecs, "n {n}");
        } else {
            for i in 0..n {
                assert!(
                    (vals[i] - dvals[i]).abs() < 1e-12 * dvals[0].abs(),
                    "n {n}, {i}"
                );
            }
        }
    }
}

#[test]
fn diagonal_linear_network_hessian_and_eigen() {
    let mut net = DiagLinearNet { target: 1.0 };
    let theta = [2.0f32, 0.7];
    // Hessian against central differences of the gradient (f64 arithmetic by hand).
    let h = net.hessian(theta);
    let g = |t: [f64; 2]| {
        let r = t[0] * t[1] - 1.0;
        [r * t[1], r * t[0]]
    };
    let e = 1e-6;
    for j in 0..2 {
        let mut tp = [theta[0] as f64, theta[1] as f64];
        let mut tm = tp;
        tp[j] += e;
        tm[j] -= e;
        let (gp, gm) = (g(tp), g(tm));
        for i in 0..2 {
            let fd = (gp[i] - gm[i]) / (2.0 * e);
            assert!((fd - h[i][j] as f64).abs() < 1e-5, "H[{i}][{j}]");
        }
    }
    let (l1, l2, v) = net.eigen(theta);
    let want = nalgebra_eigs(&[h[0][0], h[0][1], h[1][0], h[1][1]], 2);
    assert!((l1 as f64 - want[0]).abs() < 1e-5 && (l2 as f64 - want[1]).abs() < 1e-5);
    // Power iteration on the exact HVPs agrees.
    let mut op = HessianOp::exact(&mut net, &theta);
    let mut u = [1.0f32, 0.0];
    let mut s = [0.0f32; 2];
    let top = sharpness(
        &mut op,
        &mut u,
        &mut s,
        &PowerConfig {
            tol: 1e-7,
            max_iter: 500,
        },
    )
    .unwrap();
    assert!((top.value - l1).abs() < 1e-4);
    assert!(eigenvector_rotation(&u, &v).unwrap() < 1e-5);
}

#[test]
fn unstable_gd_on_the_diagonal_network_rotates_the_eigenvector_and_flattens() {
    // Start just off the valley of minima (theta1 theta2 = 1) near an unbalanced point where
    // lambda_max = 4.25 (exactly on the valley the gradient is 0 and GD would not move).
    let start = [2.0f32, 0.52];
    let run = |lr: f32| {
        let mut net = DiagLinearNet { target: 1.0 };
        let mut th = start;
        let mut g = [0.0f32; 2];
        let opt = Optimizer::default();
        let mut st = OptState { t: 0, buf: &mut [] };
        for _ in 0..2000 {
            net.loss_grad(&th, &mut g).unwrap();
            opt.step(lr, &mut th, &g, &mut st).unwrap();
        }
        th
    };
    let net = DiagLinearNet { target: 1.0 };
    let (l0, _, v0) = net.eigen(start);
    // Stable step (lr * lambda = 1.7 < 2): the point and its eigenvector barely move.
    let th = run(0.4);
    let (l_stable, _, v_stable) = net.eigen(th);
    let rot_stable = eigenvector_rotation(&v0, &v_stable).unwrap();
    assert!((l_stable - l0).abs() < 0.05 * l0);
    assert!(rot_stable < 1e-3, "stable rotation {rot_stable}");
    // Unstable step (lr * lambda = 2.55 > 2): GD leaves for a flatter point with
    // lr * lambda_max < 2, and the top eigenvector rotates toward (1, 1)/sqrt(2).
    let lr = 0.6;
    let th = run(lr);
    let (l_end, _, v_end) = net.eigen(th);
    assert!(
        (th[0] * th[1] - 1.0).abs() < 1e-3,
        "ended on the valley: {th:?}"
    );
    assert!(lr * l_end < 2.0, "flatter: lambda {l_end}");
    let rot = eigenvector_rotation(&v0, &v_end).unwrap();
    // From (0.25, 0.97) toward the balanced direction: several degrees, 1 - cos > 1e-3.
    assert!(
        rot > 3e-3 && rot > 10.0 * rot_stable,
        "unstable rotation {rot} vs {rot_stable}"
    );
}

#[test]
fn hutchinson_is_exact_on_diagonals_and_unbiased_in_general() {
    let n = 10;
    let mut d = vec![0.0f32; n * n];
    for i in 0..n {
        d[i * n + i] = i as f32 - 3.0;
    }
    let mut op = DenseOp::new(&d, n).unwrap();
    let (mut z, mut az) = (vec![0.0; n], vec![0.0; n]);
    let t = hutchinson_trace(&mut op, 5, &mut SplitMix64::new(1), &mut z, &mut az).unwrap();
    assert_eq!(t.mean, 15.0);
    assert_eq!(t.std_err, 0.0);
    let eigs: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 1.0).collect();
    let (a, _) = matrix_with_spectrum(&eigs, 5);
    let trace: f64 = eigs.iter().sum();
    let mut op = DenseOp::new(&a, n).unwrap();
    let t = hutchinson_trace(&mut op, 4000, &mut SplitMix64::new(2), &mut z, &mut az).unwrap();
    assert!(
        (t.mean - trace).abs() < 4.0 * t.std_err + 1e-3,
        "{} vs {trace} (se {})",
        t.mean,
        t.std_err
    );
    assert!(t.std_err > 0.0 && t.std_err < 0.5);
}

#[test]
fn hutchinson_mean_and_standard_error_are_the_sample_statistics() {
    // [[1, 0.5], [0.5, 2]]: a probe z gives z^T A z = 3 + z_0 z_1, so 2 or 4. Replaying the
    // probes' Rademacher draws gives the four values; the estimate must be their mean and the
    // standard error sqrt(sample variance / 4) (the sample variance divides by m - 1).
    let a = [1.0f32, 0.5, 0.5, 2.0];
    let mut op = DenseOp::new(&a, 2).unwrap();
    let (mut z, mut az) = ([0.0f32; 2], [0.0f32; 2]);
    let seed = (0..64u64)
        .find(|&s| {
            let mut r = SplitMix64::new(s);
            let q: Vec<f32> = (0..4).map(|_| r.rademacher() * r.rademacher()).collect();
            q.iter().any(|&x| x > 0.0) && q.iter().any(|&x| x < 0.0)
        })
        .unwrap();
    let mut r = SplitMix64::new(seed);
    let q: Vec<f64> = (0..4)
        .map(|_| 3.0 + (r.rademacher() * r.rademacher()) as f64)
        .collect();
    let mean = q.iter().sum::<f64>() / 4.0;
    let var = q.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0;
    let t = hutchinson_trace(&mut op, 4, &mut SplitMix64::new(seed), &mut z, &mut az).unwrap();
    assert!((t.mean - mean).abs() < 1e-12, "{} vs {mean}", t.mean);
    assert!(
        (t.std_err - (var / 4.0).sqrt()).abs() < 1e-12,
        "{} vs {}",
        t.std_err,
        (var / 4.0).sqrt()
    );
    assert!(t.std_err > 0.0);
}

#[test]
fn third_derivative_matches_reference_finite_differences() {
    let widths = [2, 4, 2];
    let arch = Arch::new(&widths, Activation::Tanh, Loss::CrossEntropy).unwrap();
    let p = arch.n_params();
    let mut params = vec![0.0; p];
    arch.init(&mut params, Init::PytorchDefault, 3).unwrap();
    params.iter_mut().for_each(|x| *x *= 2.0);
    let x = [0.5f32, -1.0, 1.5, 0.3, -0.7, 0.9];
    let labels = [0u16, 1, 1];
    let data = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut v = vec![0.0; p];
    SplitMix64::new(8).fill_normal(&mut v);
    let nrm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= nrm);
    let mut ws = vec![0.0; arch.workspace_len(3)];
    let mut obj = MlpObjective::new(&arch, data, &mut ws, 3).unwrap();
    let mut scratch = vec![0.0; 2 * p];
    let t = third_derivative(&mut obj, &params, &v, &mut scratch).unwrap() as f64;
    // Reference: fourth-order-free central difference of the f64 loss along the line.
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let lab = [0usize, 1, 1];
    let line = |s: f64| {
        let q: Vec<f64> = params
            .iter()
            .zip(&v)
            .map(|(&a, &b)| a as f64 + s * b as f64)
            .collect();
        ref_loss(&widths, RefAct::Tanh, true, &q, &x64, &lab)
    };
    let h = 1e-2;
    let want =
        (line(2.0 * h) - 2.0 * line(h) + 2.0 * line(-h) - line(-2.0 * h)) / (2.0 * h * h * h);
    assert!(
        (t - want).abs() < 2e-2 * want.abs().max(1e-2),
        "{t} vs {want}"
    );
}

#[test]
fn rotation_and_subspace_scores() {
    let a = [1.0f32, 0.0, 0.0];
    assert_eq!(eigenvector_rotation(&a, &[-2.0, 0.0, 0.0]).unwrap(), 0.0);
    assert_eq!(eigenvector_rotation(&a, &[0.0, 1.0, 0.0]).unwrap(), 1.0);
    let t = 0.3f32;
    let r = eigenvector_rotation(&a, &[t.cos(), t.sin(), 0.0]).unwrap();
    assert!((r - (1.0 - t.cos())).abs() < 1e-6);
    // Subspaces: a rotated basis of the same plane scores 1; a plane tilted by angle t in one
    // direction has principal angles (0, t): score cos(t / sqrt 2).
    let e = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0];
    let (c, s) = (0.6f32, 0.8f32);
    let same = [c, s, 0.0, -s, c, 0.0];
    assert!((subspace_score(&e, &same, 2).unwrap() - 1.0).abs() < 1e-6);
    let tilted = [1.0f32, 0.0, 0.0, 0.0, t.cos(), t.sin()];
    let sc = subspace_score(&e, &tilted, 2).unwrap();
    assert!((sc - (t / 2f32.sqrt()).cos()).abs() < 1e-5, "{sc}");
    let ortho = [0.0f32, 0.0, 1.0];
    assert!(subspace_score(&a, &ortho, 1).unwrap().abs() < 1e-6);
    assert!(subspace_score(&e, &tilted, 0).is_err());
}

#[test]
fn preconditioned_sharpness_is_the_top_eigenvalue_of_d_times_h() {
    let eigs = [5.0, 2.0, 1.0, 0.5];
    let (a, am) = matrix_with_spectrum(&eigs, 9);
    let d = [0.1f32, 0.5, 2.0, 1.0];
    let sqrt_d: Vec<f32> = d.iter().map(|x| x.sqrt()).collect();
    let dm = DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
        4,
        d.iter().map(|&x| x as f64),
    ));
    let prod = &dm * &am;
    let want = prod
        .complex_eigenvalues()
        .iter()
        .map(|c| c.re)
        .fold(f64::MIN, f64::max);
    let mut inner = DenseOp::new(&a, 4).unwrap();
    let mut tmp = [0.0f32; 4];
    let mut op = PreconditionedOp::new(&mut inner, &sqrt_d, &mut tmp).unwrap();
    let mut v = [1.0f32; 4];
    let mut s = [0.0f32; 4];
    let e = sharpness(
        &mut op,
        &mut v,
        &mut s,
        &PowerConfig {
            tol: 1e-7,
            max_iter: 2000,
        },
    )
    .unwrap();
    assert!(
        ((e.value as f64 - want) / want).abs() < 1e-4,
        "{} vs {want}",
        e.value
    );
}

#[test]
fn warm_started_power_iteration_converges_in_one_product() {
    let eigs = [4.0, 1.0, 0.5];
    let (a, _) = matrix_with_spectrum(&eigs, 2);
    let mut op = DenseOp::new(&a, 3).unwrap();
    let mut v = [0.3f32, -1.0, 0.2];
    let mut s = [0.0f32; 3];
    let cfg = PowerConfig {
        tol: 1e-4,
        max_iter: 500,
    };
    let cold = power_iteration(&mut op, &mut v, &mut s, &cfg).unwrap();
    assert!(cold.iterations > 2);
    let warm = power_iteration(&mut op, &mut v, &mut s, &cfg).unwrap();
    assert!(warm.iterations <= 2, "warm start took {}", warm.iterations);
    assert!(power_iteration(&mut op, &mut [0.0; 3], &mut s, &cfg).is_err());
}

#[test]
fn dense_hessian_of_a_network_matches_the_reference() {
    let widths = [2, 3, 2];
    let arch = Arch::new(&widths, Activation::Gelu, Loss::Mse).unwrap();
    let p = arch.n_params();
    let mut params = vec![0.0; p];
    arch.init(&mut params, Init::KaimingNormal, 6).unwrap();
    let x = [0.5f32, -1.0, 1.5, 0.3];
    let labels = [0u16, 1];
    let data = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut ws = vec![0.0; arch.workspace_len(2)];
    let mut obj = MlpObjective::new(&arch, data, &mut ws, 2).unwrap();
    let mut op = HessianOp::exact(&mut obj, &params);
    let mut h = vec![0.0; p * p];
    let (mut e, mut col) = (vec![0.0; p], vec![0.0; p]);
    dense_hessian(&mut op, &mut h, &mut e, &mut col).unwrap();
    assert_eq!(op.products(), p as u32);
    let (_, want) = ref_grad_hessian(
        &widths,
        RefAct::Gelu,
        false,
        &params,
        &[0.5, -1.0, 1.5, 0.30000001192092896],
        &[0, 1],
    );
    assert!(rel_err(&h, &want) < 1e-4);
}

/// Counts the products of an inner operator.
struct Counted<'a> {
    inner: DenseOp<'a>,
    products: u32,
}

impl LinearOperator for Counted<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.products += 1;
        self.inner.apply(v, out)
    }
}

fn warm(
    a: &[f32],
    n: usize,
    cfg: &WarmLanczosConfig,
    vecs: &mut [f32],
) -> (WarmLanczosResult, Vec<Eigenpair>, u32) {
    let mut op = Counted {
        inner: DenseOp::new(a, n).unwrap(),
        products: 0,
    };
    let mut basis = vec![0.0; (cfg.max_steps + 1) * n];
    let mut work = vec![0.0; lanczos_work_len(cfg.max_steps)];
    let mut pairs = vec![
        Eigenpair {
            value: 0.0,
            residual: 0.0,
            iterations: 0,
            converged: false
        };
        cfg.k
    ];
    let r = warm_lanczos(&mut op, cfg, vecs, &mut basis, &mut work, &mut pairs).unwrap();
    (r, pairs, op.products)
}

fn true_residual(a: &[f32], n: usize, v: &[f32], value: f32) -> (f64, f64) {
    let nv = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let r = (0..n)
        .map(|i| {
            let av: f64 = (0..n).map(|j| a[i * n + j] as f64 * v[j] as f64).sum();
            (av - value as f64 * v[i] as f64) / nv
        })
        .map(|d| d * d)
        .sum::<f64>()
        .sqrt();
    (r, nv)
}

#[test]
fn warm_lanczos_finds_the_top_pair_and_its_residual_is_honest() {
    let n = 80;
    // A crowded top (10.0, 9.9, 9.8) above a bulk, and a negative end.
    let eigs: Vec<f64> = (0..n)
        .map(|i| match i {
            0 => 10.0,
            1 => 9.9,
            2 => 9.8,
            _ if i == n - 1 => -3.0,
            _ => (i as f64 * 0.61).sin() * 4.0,
        })
        .collect();
    let (a, _) = matrix_with_spectrum(&eigs, 11);
    let want = nalgebra_eigs(&a, n);
    let mut v = vec![0.0f32; 3 * n];
    SplitMix64::new(5).fill_normal(&mut v);
    let cfg = WarmLanczosConfig {
        tol: 1e-4,
        max_steps: 60,
        k: 3,
    };
    let (r, pairs, products) = warm(&a, n, &cfg, &mut v);
    assert!(r.converged, "{r:?}");
    assert_eq!(products as usize, r.steps);
    assert!(r.top_steps <= r.steps);
    for i in 0..3 {
        assert!(
            (pairs[i].value as f64 - want[i]).abs() < 1e-3,
            "pair {i}: {} vs {}",
            pairs[i].value,
            want[i]
        );
        // The residual read off the tridiagonal matrix is the true one of the returned vector.
        let (tr, nv) = true_residual(&a, n, &v[i * n..(i + 1) * n], pairs[i].value);
        assert!((nv - 1.0).abs() < 1e-4, "norm {nv}");
        assert!(tr <= 1e-4 * 10.0 * 1.5 + 1e-5, "true residual {tr}");
        assert!(
            (tr - pairs[i].residual as f64).abs() < 2e-4,
            "{tr} vs {}",
            pairs[i].residual
        );
    }
}

#[test]
fn warm_lanczos_from_the_eigenvector_stops_after_one_product() {
    let n = 30;
    let eigs: Vec<f64> = (0..n).map(|i| 5.0 - i as f64 * 0.1).collect();
    // Diagonal: the top eigenvector is e_0.
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        a[i * n + i] = eigs[i] as f32;
    }
    let mut v = vec![0.0f32; n];
    v[0] = -2.0;
    let (r, pairs, products) = warm(&a, n, &WarmLanczosConfig::default(), &mut v);
    assert_eq!((r.steps, r.top_steps, products), (1, 1, 1));
    assert!(r.converged && pairs[0].converged);
    assert_eq!(pairs[0].value, 5.0);
    assert_eq!(pairs[0].residual, 0.0);
}

#[test]
fn warm_lanczos_beats_power_iteration_when_the_top_turns_in_a_crowded_spectrum() {
    // The situation at the edge of stability: the previous top eigenvector is now a mix of the
    // two nearly equal top eigenvectors. Power iteration needs many products to separate them
    // (ratio 9.9 / 10); Lanczos resolves the pair in a few.
    let n = 100;
    let eigs: Vec<f64> = (0..n)
        .map(|i| match i {
            0 => 10.0,
            1 => 9.9,
            _ => 6.0 * (i as f64 / n as f64),
        })
        .collect();
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        a[i * n + i] = eigs[i] as f32;
    }
    // 0.8 e_0 + 0.6 e_1 plus a little of everything.
    let mut start = vec![0.01f32; n];
    start[0] = 0.8;
    start[1] = 0.6;
    let mut v = start.clone();
    let (r, pairs, lanczos_products) = warm(&a, n, &WarmLanczosConfig::default(), &mut v);
    assert!(r.converged);
    assert!((pairs[0].value - 10.0).abs() < 1e-4, "{}", pairs[0].value);
    let mut w = start.clone();
    let mut scratch = vec![0.0f32; n];
    let mut op = DenseOp::new(&a, n).unwrap();
    let e = power_iteration(
        &mut op,
        &mut w,
        &mut scratch,
        &PowerConfig {
            tol: 1e-3,
            max_iter: 1000,
        },
    )
    .unwrap();
    assert!(e.converged);
    assert!(
        lanczos_products * 5 < e.iterations,
        "Lanczos {lanczos_products}, power {}",
        e.iterations
    );
}

#[test]
fn warm_lanczos_rejects_bad_settings_and_zero_starts() {
    let a = [2.0f32, 0.0, 0.0, 1.0];
    let mut op = DenseOp::new(&a, 2).unwrap();
    let mut basis = vec![0.0; 20];
    let mut work = vec![0.0; 200];
    let mut pairs = vec![
        Eigenpair {
            value: 0.0,
            residual: 0.0,
            iterations: 0,
            converged: false
        };
        3
    ];
    let bad = |k, max_steps, tol| WarmLanczosConfig { tol, max_steps, k };
    for cfg in [
        bad(0, 4, 1e-3),
        bad(3, 4, 1e-3),
        bad(2, 1, 1e-3),
        bad(1, 4, -1.0),
    ] {
        let mut v = vec![1.0; cfg.k * 2];
        assert!(matches!(
            warm_lanczos(&mut op, &cfg, &mut v, &mut basis, &mut work, &mut pairs),
            Err(Error::InvalidConfig(_))
        ));
    }
    let mut v = vec![0.0; 2];
    assert!(matches!(
        warm_lanczos(
            &mut op,
            &bad(1, 4, 1e-3),
            &mut v,
            &mut basis,
            &mut work,
            &mut pairs
        ),
        Err(Error::ZeroVector)
    ));
    // Dimension 2: an invariant subspace ends the run with exact pairs.
    let mut v = vec![1.0, 0.5, 0.3, 1.0];
    let r = warm_lanczos(
        &mut op,
        &bad(2, 4, 0.0),
        &mut v,
        &mut basis,
        &mut work,
        &mut pairs,
    )
    .unwrap();
    assert!(r.converged && r.steps == 2);
    assert!((pairs[0].value - 2.0).abs() < 1e-6 && (pairs[1].value - 1.0).abs() < 1e-6);
}

#[test]
fn extrapolated_start_aligns_signs() {
    let latest = [1.0f32, 0.1, 0.0];
    let before = [-1.0f32, 0.0, 0.0];
    let mut out = [0.0f32; 3];
    extrapolate_start(&latest, &before, &mut out).unwrap();
    assert_eq!(out, [1.0, 0.2, 0.0]);
    assert!(extrapolate_start(&latest, &before[..2], &mut out).is_err());
}

/// A unit vector in the plane of `a` and `b` (orthonormal), at angle `t` from `a`, plus `w`
/// times `c`, normalised.
fn unit_at(t: f64, w: f64) -> Vec<f32> {
    let v = [t.cos(), t.sin(), w, 0.25 * w * w];
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / n) as f32).collect()
}

fn cos2(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
    d * d / (na * nb)
}

#[test]
fn predicted_start_follows_a_steady_turn() {
    // v_t turns by 0.05 rad per measurement; history newest first, signs scrambled.
    let hist: Vec<Vec<f32>> = (0..8)
        .map(|k| {
            let v = unit_at(0.05 * (10 - k) as f64, 0.0);
            let s = if k % 3 == 1 { -1.0 } else { 1.0 };
            v.iter().map(|x| s * x).collect()
        })
        .collect();
    let refs: Vec<&[f32]> = hist.iter().map(|v| v.as_slice()).collect();
    let mut out = vec![0.0f32; 4];
    let kind = predict_start(&refs, &mut out).unwrap();
    assert_eq!(kind, StartPrediction::Linear);
    let next = unit_at(0.05 * 11.0, 0.0);
    assert!(
        1.0 - cos2(&out, &next) < 1e-5,
        "{}",
        1.0 - cos2(&out, &next)
    );
    assert!(1.0 - cos2(refs[0], &next) > 2e-3);
}

#[test]
fn predicted_start_follows_a_period_two_orbit() {
    // The top eigenvector alternates between two directions 1 rad apart that both drift
    // slowly, as at the edge of stability; the latest vector is a bad start.
    let at = |k: usize| {
        let t = 30 - k; // measurement index, newest (k = 0) last
        let side = if t % 2 == 0 { 0.0 } else { 1.0 };
        unit_at(side + 0.01 * t as f64, 0.002 * t as f64)
    };
    let hist: Vec<Vec<f32>> = (0..8).map(at).collect();
    let refs: Vec<&[f32]> = hist.iter().map(|v| v.as_slice()).collect();
    let mut out = vec![0.0f32; 4];
    let kind = predict_start(&refs, &mut out).unwrap();
    assert!(
        matches!(
            kind,
            StartPrediction::PeriodTwoLinear | StartPrediction::PeriodTwoQuadratic
        ),
        "{kind:?}"
    );
    let next = {
        let t = 31;
        unit_at(1.0 + 0.01 * t as f64, 0.002 * t as f64)
    };
    assert!(
        1.0 - cos2(&out, &next) < 1e-6,
        "{}",
        1.0 - cos2(&out, &next)
    );
    assert!(1.0 - cos2(refs[1], &next) > 1e-4);
    assert!(1.0 - cos2(refs[0], &next) > 0.5);
}

#[test]
fn predicted_start_with_short_histories_and_bad_input() {
    let a = [0.6f32, 0.8, 0.0];
    let b = [-1.0f32, 0.0, 0.0];
    let mut out = [0.0f32; 3];
    // One vector: itself.
    assert_eq!(
        predict_start(&[&a], &mut out).unwrap(),
        StartPrediction::Latest
    );
    assert_eq!(out, a);
    // Two: the linear extrapolation, bit for bit what extrapolate_start gives.
    assert_eq!(
        predict_start(&[&a, &b], &mut out).unwrap(),
        StartPrediction::Linear
    );
    let mut e = [0.0f32; 3];
    extrapolate_start(&a, &b, &mut e).unwrap();
    assert_eq!(out, e);
    // Errors, not panics.
    assert!(predict_start(&[], &mut out).is_err());
    assert!(predict_start(&[&a, &b[..2]], &mut out).is_err());
    assert!(predict_start(&[&a[..2]], &mut out).is_err());
    // Zero vectors in the history do not break the backtests.
    let z = [0.0f32; 3];
    assert!(predict_start(&[&a, &z, &z, &b], &mut out).is_ok());
    assert!(out.iter().all(|x| x.is_finite()));
}

fn lean(
    a: &[f32],
    n: usize,
    cfg: &LeanLanczosConfig,
    v: &mut [f32],
) -> Result<(Eigenpair, u32), Error> {
    let mut op = Counted {
        inner: DenseOp::new(a, n).unwrap(),
        products: 0,
    };
    let mut scratch = vec![0.0; 3 * n];
    let mut work = vec![0.0; lean_lanczos_work_len(cfg.max_steps)];
    let e = lean_lanczos(&mut op, cfg, v, &mut scratch, &mut work)?;
    Ok((e, op.products))
}

#[test]
fn lean_lanczos_finds_the_top_pair_with_an_honest_residual() {
    let n = 80;
    let eigs: Vec<f64> = (0..n)
        .map(|i| match i {
            0 => 10.0,
            1 => 9.9,
            2 => 9.8,
            _ if i == n - 1 => -3.0,
            _ => (i as f64 * 0.61).sin() * 4.0,
        })
        .collect();
    let (a, _) = matrix_with_spectrum(&eigs, 11);
    let want = nalgebra_eigs(&a, n);
    for tol in [1e-3f32, 1e-4] {
        let mut start = vec![0.0f32; n];
        SplitMix64::new(5).fill_normal(&mut start);
        let mut v = start.clone();
        let cfg = LeanLanczosConfig { tol, max_steps: 60 };
        let (e, products) = lean(&a, n, &cfg, &mut v).unwrap();
        assert!(e.converged, "{e:?}");
        assert_eq!(products, e.iterations);
        // Two passes: 2 m - 1 products for m steps, an odd number.
        assert_eq!(products % 2, 1);
        assert!(
            (e.value as f64 - want[0]).abs() < 1e-3,
            "{} vs {}",
            e.value,
            want[0]
        );
        let (tr, nv) = true_residual(&a, n, &v, e.value);
        assert!((nv - 1.0).abs() < 1e-4, "norm {nv}");
        assert!(tr <= tol as f64 * 10.0 * 1.5 + 1e-5, "true residual {tr}");
        assert!(
            (tr - e.residual as f64).abs() < 2e-4,
            "{tr} vs {}",
            e.residual
        );
        // The first pass takes the steps the stored-basis method takes (within one, rounding).
        let mut w = start.clone();
        let wcfg = WarmLanczosConfig {
            tol,
            max_steps: 60,
            k: 1,
        };
        let (r, pairs, _) = warm(&a, n, &wcfg, &mut w);
        let m = (products as usize).div_ceil(2);
        assert!(
            m.abs_diff(r.top_steps) <= 1,
            "lean {m} steps, warm {}",
            r.top_steps
        );
        assert!((pairs[0].value - e.value).abs() < 1e-3);
    }
}

#[test]
fn lean_lanczos_from_the_eigenvector_stops_after_one_product() {
    let n = 30;
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        a[i * n + i] = 5.0 - i as f32 * 0.1;
    }
    let mut v = vec![0.0f32; n];
    v[0] = -2.0;
    let (e, products) = lean(&a, n, &LeanLanczosConfig::default(), &mut v).unwrap();
    assert_eq!((products, e.iterations), (1, 1));
    assert!(e.converged);
    assert_eq!((e.value, e.residual), (5.0, 0.0));
    assert_eq!(v[0], -1.0);
    assert!(v[1..].iter().all(|&x| x == 0.0));
}

#[test]
fn lean_lanczos_resolves_a_turn_in_a_crowded_top_like_warm_lanczos() {
    // As warm_lanczos_beats_power_iteration_when_the_top_turns_in_a_crowded_spectrum: the
    // lean method pays each step twice and still beats power iteration by far.
    let n = 100;
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        a[i * n + i] = match i {
            0 => 10.0,
            1 => 9.9,
            _ => 6.0 * (i as f32 / n as f32),
        };
    }
    let mut start = vec![0.01f32; n];
    start[0] = 0.8;
    start[1] = 0.6;
    let mut v = start.clone();
    let (e, products) = lean(&a, n, &LeanLanczosConfig::default(), &mut v).unwrap();
    assert!(e.converged);
    assert!((e.value - 10.0).abs() < 1e-4, "{}", e.value);
    assert!(v[0].abs() > 0.999, "{}", v[0]);
    let mut w = start.clone();
    let mut scratch = vec![0.0f32; n];
    let mut op = DenseOp::new(&a, n).unwrap();
    let cfg = PowerConfig {
        tol: 1e-3,
        max_iter: 1000,
    };
    let p = power_iteration(&mut op, &mut w, &mut scratch, &cfg).unwrap();
    assert!(
        products * 3 < p.iterations,
        "lean {products}, power {}",
        p.iterations
    );
}

#[test]
fn lean_lanczos_tracks_gd_beyond_the_edge_of_stability_against_the_dense_hessian() {
    // A 4-8-3 tanh network trained by GD with lr * sharpness above 2, the sharpness measured at
    // every step from the previous eigenvector: every converged value has an eigenvalue of the
    // dense f64 Hessian within its residual, the true residual of the vector it returns is the
    // one it reports (no full re-orthogonalisation), and it agrees with warm_lanczos.
    let widths = [4, 8, 3];
    let arch = Arch::new(&widths, Activation::Tanh, Loss::Mse).unwrap();
    let p = arch.n_params();
    let mut params = vec![0.0; p];
    arch.init(&mut params, Init::PytorchDefault, 3).unwrap();
    let mut rng = SplitMix64::new(21);
    let n = 24;
    let x: Vec<f32> = (0..n * 4).map(|_| rng.normal()).collect();
    let labels: Vec<u16> = (0..n).map(|_| rng.below(3) as u16).collect();
    let data = Data::new(&x, 4, Targets::Classes(&labels)).unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let lab: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let mut ws = vec![0.0; arch.workspace_len(4)];
    let mut grad = vec![0.0; p];
    let mut v = vec![0.0f32; p];
    SplitMix64::new(2).fill_normal(&mut v);
    let mut w = v.clone();
    let mut scratch = vec![0.0; 3 * p];
    let lcfg = LeanLanczosConfig {
        tol: 1e-3,
        max_steps: 30,
    };
    let mut work = vec![0.0; lean_lanczos_work_len(30)];
    let wcfg = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: 30,
        k: 1,
    };
    let mut basis = vec![0.0; 31 * p];
    let mut wwork = vec![0.0; lanczos_work_len(30)];
    let mut pairs = [Eigenpair {
        value: 0.0,
        residual: 0.0,
        iterations: 0,
        converged: false,
    }];
    let mut lr = 0.0;
    let (mut beyond, mut agree) = (0, 0);
    let steps = 60;
    for step in 0..steps {
        let mut obj = MlpObjective::new(&arch, data, &mut ws, 4).unwrap();
        let mut op = HessianOp::exact(&mut obj, &params);
        let e = lean_lanczos(&mut op, &lcfg, &mut v, &mut scratch, &mut work).unwrap();
        warm_lanczos(&mut op, &wcfg, &mut w, &mut basis, &mut wwork, &mut pairs).unwrap();
        assert!(e.converged && pairs[0].converged, "step {step}: {e:?}");
        if step == 0 {
            // lr * sharpness = 2.6 from the start.
            lr = 2.6 / e.value;
        }
        let (_, h) = ref_grad_hessian(&widths, RefAct::Tanh, false, &params, &x64, &lab);
        let hm = DMatrix::from_row_slice(p, p, &h);
        let ev = SymmetricEigen::new(hm.clone()).eigenvalues;
        let nearest = ev
            .iter()
            .map(|&l| (l - e.value as f64).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest <= e.residual as f64 * 1.05 + 1e-5,
            "step {step}: {} is {nearest} from the spectrum, residual {}",
            e.value,
            e.residual
        );
        let y = nalgebra::DVector::from_iterator(p, v.iter().map(|&x| x as f64));
        let true_res = (&hm * &y - &y * e.value as f64).norm() / y.norm();
        assert!(
            (true_res - e.residual as f64).abs() <= 0.05 * e.residual as f64 + 1e-4,
            "step {step}: true residual {true_res}, reported {}",
            e.residual
        );
        let top = ev.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        beyond += (lr as f64 * top > 2.0) as u32;
        agree += ((e.value - pairs[0].value).abs() <= 1e-3 * pairs[0].value.abs()) as u32;
        let loss = obj.loss_grad(&params, &mut grad).unwrap();
        assert!(loss.is_finite());
        for (t, g) in params.iter_mut().zip(&grad) {
            *t -= lr * g;
        }
    }
    assert!(beyond >= steps / 2, "only {beyond} steps beyond the edge");
    assert!(
        agree >= steps - 2,
        "lean and warm Lanczos agree at {agree} of {steps} steps"
    );
}

/// An operator whose products change on every call: not deterministic.
struct Drifting {
    calls: u32,
}

impl LinearOperator for Drifting {
    fn dim(&self) -> usize {
        3
    }
    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.calls += 1;
        let d = [3.0, 2.0 + self.calls as f32 * 1e-3, 1.0];
        for i in 0..3 {
            out[i] = d[i] * v[i];
        }
        Ok(())
    }
}

#[test]
fn lean_lanczos_rejects_bad_settings_buffers_and_operators() {
    let a = [2.0f32, 0.0, 0.0, 1.0];
    let ok = LeanLanczosConfig::default();
    let mut v = [1.0f32, 1.0];
    for cfg in [
        LeanLanczosConfig { max_steps: 0, ..ok },
        LeanLanczosConfig { tol: -1.0, ..ok },
        LeanLanczosConfig {
            tol: f32::NAN,
            ..ok
        },
        LeanLanczosConfig {
            tol: f32::INFINITY,
            ..ok
        },
    ] {
        assert!(
            matches!(lean(&a, 2, &cfg, &mut v), Err(Error::InvalidConfig(_))),
            "{cfg:?}"
        );
    }
    assert_eq!(v, [1.0, 1.0]);
    assert!(matches!(
        lean(&a, 2, &ok, &mut [0.0, 0.0]),
        Err(Error::ZeroVector)
    ));
    assert!(matches!(
        lean(&a, 2, &ok, &mut [f32::NAN, 1.0]),
        Err(Error::NonFinite(_))
    ));
    let mut op = DenseOp::new(&a, 2).unwrap();
    let mut work = vec![0.0; lean_lanczos_work_len(ok.max_steps)];
    let mut short = [0.0f32; 5];
    assert!(matches!(
        lean_lanczos(&mut op, &ok, &mut v, &mut short, &mut work),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut scratch = [0.0f32; 6];
    assert!(matches!(
        lean_lanczos(&mut op, &ok, &mut v, &mut scratch, &mut work[..10]),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        lean_lanczos(&mut op, &ok, &mut [1.0; 3], &mut scratch, &mut work),
        Err(Error::LengthMismatch { .. })
    ));
    // A drifting operator is caught in the second pass instead of giving a wrong vector.
    let mut drift = Drifting { calls: 0 };
    let mut v3 = [1.0f32, 1.0, 1.0];
    let mut scratch3 = [0.0f32; 9];
    let tight = LeanLanczosConfig { tol: 0.0, ..ok };
    assert!(matches!(
        lean_lanczos(&mut drift, &tight, &mut v3, &mut scratch3, &mut work),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(lean_lanczos_work_len(usize::MAX), usize::MAX);
}
