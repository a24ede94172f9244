//! The network's loss, gradient and Hessian-vector products against an independent f64
//! reference (hyper-dual numbers and finite differences), and bit-identity across tilings and
//! between the runtime-shaped and compile-time sized forms.

mod common;

use common::*;
use edgewise_core::*;

const ACTS: [(Activation, RefAct); 6] = [
    (Activation::Identity, RefAct::Identity),
    (Activation::Tanh, RefAct::Tanh),
    (Activation::Relu, RefAct::Relu),
    (Activation::Elu, RefAct::Elu),
    (Activation::Softplus, RefAct::Softplus),
    (Activation::Gelu, RefAct::Gelu),
];

struct Case {
    arch: Arch,
    params: Vec<f32>,
    x: Vec<f32>,
    labels: Vec<u16>,
}

impl Case {
    fn new(widths: &[usize], act: Activation, loss: Loss, n: usize, seed: u64) -> Self {
        let arch = Arch::new(widths, act, loss).unwrap();
        let mut params = vec![0.0; arch.n_params()];
        arch.init(&mut params, Init::PytorchDefault, seed).unwrap();
        // Scale up so that nonlinearities and curvature are exercised.
        for p in params.iter_mut() {
            *p *= 1.5;
        }
        let mut rng = SplitMix64::new(seed ^ 0xabc);
        let x: Vec<f32> = (0..n * widths[0]).map(|_| rng.normal()).collect();
        let k = *widths.last().unwrap() as u64;
        let labels: Vec<u16> = (0..n).map(|_| rng.below(k) as u16).collect();
        Self {
            arch,
            params,
            x,
            labels,
        }
    }
    fn data(&self) -> Data<'_> {
        Data::new(
            &self.x,
            self.arch.input_dim(),
            Targets::Classes(&self.labels),
        )
        .unwrap()
    }
    fn x64(&self) -> Vec<f64> {
        self.x.iter().map(|&v| v as f64).collect()
    }
    fn lab(&self) -> Vec<usize> {
        self.labels.iter().map(|&l| l as usize).collect()
    }
    fn grad(&self, tile: usize) -> (f32, Vec<f32>) {
        let mut ws = vec![0.0; self.arch.workspace_len(tile)];
        let mut g = vec![0.0; self.arch.n_params()];
        let l = self
            .arch
            .loss_grad(&self.params, &self.data(), &mut g, &mut ws, tile)
            .unwrap();
        (l, g)
    }
    fn hvp(&self, v: &[f32], tile: usize) -> Vec<f32> {
        let mut ws = vec![0.0; self.arch.workspace_len(tile)];
        let mut out = vec![0.0; self.arch.n_params()];
        self.arch
            .hvp(&self.params, &self.data(), v, &mut out, &mut ws, tile)
            .unwrap();
        out
    }
}

fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.normal()).collect()
}

#[test]
fn gradient_matches_reference_and_central_differences() {
    for (act, ract) in ACTS {
        for loss in [Loss::Mse, Loss::CrossEntropy] {
            let c = Case::new(&[3, 5, 4, 3], act, loss, 6, 11);
            let ce = loss == Loss::CrossEntropy;
            let (l, g) = c.grad(4);
            let x = c.x64();
            let lab = c.lab();
            let p64: Vec<f64> = c.params.iter().map(|&v| v as f64).collect();
            let l_ref = ref_loss(&[3, 5, 4, 3], ract, ce, &p64, &x, &lab);
            assert!(
                ((l as f64 - l_ref) / l_ref).abs() < 1e-5,
                "{act:?} {loss:?} loss"
            );
            // Central differences of the f64 reference loss.
            let mut fd = vec![0.0f64; g.len()];
            for k in 0..g.len() {
                let h = 1e-5;
                let mut pp = p64.clone();
                pp[k] += h;
                let lp = ref_loss(&[3, 5, 4, 3], ract, ce, &pp, &x, &lab);
                pp[k] -= 2.0 * h;
                let lm = ref_loss(&[3, 5, 4, 3], ract, ce, &pp, &x, &lab);
                fd[k] = (lp - lm) / (2.0 * h);
            }
            let e = rel_err(&g, &fd);
            assert!(
                e < 1e-5,
                "{act:?} {loss:?}: gradient vs central differences {e}"
            );
        }
    }
}

#[test]
fn hvp_exact_matches_dense_reference_hessian_and_finite_differences() {
    for (act, ract) in ACTS {
        for loss in [Loss::Mse, Loss::CrossEntropy] {
            let widths = [3, 4, 4, 2];
            let c = Case::new(&widths, act, loss, 5, 23);
            let p = c.arch.n_params();
            let ce = loss == Loss::CrossEntropy;
            let (g_ref, h_ref) = ref_grad_hessian(&widths, ract, ce, &c.params, &c.x64(), &c.lab());
            let (_, g) = c.grad(2);
            assert!(
                rel_err(&g, &g_ref) < 1e-5,
                "{act:?} {loss:?} gradient vs hyper-dual"
            );
            // Columns of the dense Hessian: H e_k.
            let mut e = vec![0.0f32; p];
            for k in [0, p / 3, p / 2, p - 1] {
                e.fill(0.0);
                e[k] = 1.0;
                let col = c.hvp(&e, 3);
                let want: Vec<f64> = (0..p).map(|i| h_ref[i * p + k]).collect();
                let err = rel_err(&col, &want);
                assert!(err < 1e-4, "{act:?} {loss:?} column {k}: {err}");
            }
            // A random direction: exact vs reference vs finite differences.
            let v = random_vec(p, 5);
            let hv = c.hvp(&v, 5);
            let want: Vec<f64> = (0..p)
                .map(|i| (0..p).map(|j| h_ref[i * p + j] * v[j] as f64).sum())
                .collect();
            let err = rel_err(&hv, &want);
            assert!(err < 1e-4, "{act:?} {loss:?} exact HVP vs reference: {err}");
            let mut ws = vec![0.0; c.arch.workspace_len(4)];
            let mut obj = MlpObjective::new(&c.arch, c.data(), &mut ws, 4).unwrap();
            let mut fd = vec![0.0; p];
            let mut scratch = vec![0.0; 2 * p];
            operator::fd_hvp(&mut obj, &c.params, &v, &mut fd, &mut scratch).unwrap();
            let err = rel_err(&fd, &want);
            let tol = if act == Activation::Relu { 5e-2 } else { 1e-2 };
            assert!(
                err < tol,
                "{act:?} {loss:?} finite-difference HVP vs reference: {err}"
            );
        }
    }
}

#[test]
fn hvp_is_symmetric() {
    for (act, _) in ACTS {
        let c = Case::new(&[4, 6, 3], act, Loss::CrossEntropy, 7, 3);
        let p = c.arch.n_params();
        let (u, v) = (random_vec(p, 1), random_vec(p, 2));
        let (hu, hv) = (c.hvp(&u, 3), c.hvp(&v, 3));
        let a: f64 = u.iter().zip(&hv).map(|(&x, &y)| x as f64 * y as f64).sum();
        let b: f64 = hu.iter().zip(&v).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(b.abs()),
            "{act:?}: {a} vs {b}"
        );
    }
}

#[test]
fn tile_size_never_changes_a_bit() {
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        let c = Case::new(&[5, 7, 6, 4], Activation::Tanh, loss, 23, 9);
        let v = random_vec(c.arch.n_params(), 4);
        let (l1, g1) = c.grad(1);
        let h1 = c.hvp(&v, 1);
        for tile in [2, 3, 7, 16, 23, 64] {
            let (l, g) = c.grad(tile);
            assert_eq!(l.to_bits(), l1.to_bits(), "loss, tile {tile}");
            assert_eq!(bits(&g), bits(&g1), "gradient, tile {tile}");
            assert_eq!(bits(&c.hvp(&v, tile)), bits(&h1), "HVP, tile {tile}");
        }
    }
}

#[test]
fn parameter_ranges_split_like_threads_give_the_same_bits() {
    let c = Case::new(&[5, 7, 4], Activation::Elu, Loss::CrossEntropy, 10, 2);
    let p = c.arch.n_params();
    let (_, full) = c.grad(4);
    // Sample phase per tile, then parameter phase over uneven ranges, as a threaded host does.
    let tile = 4;
    let data = c.data();
    let mut acc = vec![0.0f32; p];
    let cuts = [0, 7, 8, 30, 39, 40, p];
    let mut ws = vec![0.0; c.arch.workspace_len(tile)];
    let mut start = 0;
    while start < data.len() {
        let n = tile.min(data.len() - start);
        c.arch
            .tile_grad_pass::<Portable>(&c.params, &data, start, n, &mut ws, tile)
            .unwrap();
        for w in cuts.windows(2) {
            c.arch
                .tile_accumulate_grad::<Portable>(
                    &ws,
                    tile,
                    &data,
                    start,
                    n,
                    w[0]..w[1],
                    &mut acc[w[0]..w[1]],
                )
                .unwrap();
        }
        start += n;
    }
    edgewise_core::mlp::finish_mean(&mut acc, data.len());
    assert_eq!(bits(&acc), bits(&full));
}

#[test]
fn static_and_runtime_networks_give_identical_bits() {
    const W: [usize; 3] = [4, 6, 3];
    let mut net: StaticMlp<3, { param_count(&W) }> =
        StaticMlp::new(W, Activation::Softplus, Loss::CrossEntropy);
    net.init(Init::LecunNormal, 77).unwrap();
    let c = Case::new(&W, Activation::Softplus, Loss::CrossEntropy, 9, 1);
    let arch = *net.arch();
    let mut params = vec![0.0; arch.n_params()];
    arch.init(&mut params, Init::LecunNormal, 77).unwrap();
    assert_eq!(bits(&params), bits(&net.params));
    let data = c.data();
    let mut ws = [0.0f32; static_mlp::static_workspace_len(&W, 4)];
    let mut g_static = [0.0f32; param_count(&W)];
    let l_static = net.loss_grad(&data, &mut g_static, &mut ws, 4).unwrap();
    let mut ws2 = vec![0.0; arch.workspace_len(3)];
    let mut g_rt = vec![0.0; arch.n_params()];
    let l_rt = arch
        .loss_grad(&params, &data, &mut g_rt, &mut ws2, 3)
        .unwrap();
    assert_eq!(l_static.to_bits(), l_rt.to_bits());
    assert_eq!(bits(&g_static), bits(&g_rt));
    let v: [f32; param_count(&W)] = core::array::from_fn(|i| (i as f32 * 0.37).sin());
    let mut h_static = [0.0f32; param_count(&W)];
    net.hvp(&data, &v, &mut h_static, &mut ws, 4).unwrap();
    let mut h_rt = vec![0.0; arch.n_params()];
    arch.hvp(&params, &data, &v, &mut h_rt, &mut ws2, 3)
        .unwrap();
    assert_eq!(bits(&h_static), bits(&h_rt));
    assert!(StaticMlp::<3, 5>::try_new(W, Activation::Tanh, Loss::Mse).is_err());
}

#[test]
fn byte_features_equal_scaled_floats() {
    let arch = Arch::new(&[3, 4, 2], Activation::Tanh, Loss::Mse).unwrap();
    let mut params = vec![0.0; arch.n_params()];
    arch.init(&mut params, Init::default(), 1).unwrap();
    let bytes = [0u8, 16, 255, 7, 8, 9];
    let floats: Vec<f32> = bytes.iter().map(|&b| b as f32 * (1.0 / 255.0)).collect();
    let labels = [0u16, 1];
    let d1 = Data::with_features(
        Features::U8 {
            bytes: &bytes,
            scale: 1.0 / 255.0,
        },
        3,
        Targets::Classes(&labels),
    )
    .unwrap();
    let d2 = Data::new(&floats, 3, Targets::Classes(&labels)).unwrap();
    let mut ws = vec![0.0; arch.workspace_len(2)];
    let (mut g1, mut g2) = (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
    arch.loss_grad(&params, &d1, &mut g1, &mut ws, 2).unwrap();
    arch.loss_grad(&params, &d2, &mut g2, &mut ws, 2).unwrap();
    assert_eq!(bits(&g1), bits(&g2));
}

#[test]
fn subsets_and_real_targets() {
    let arch = Arch::new(&[2, 3, 2], Activation::Tanh, Loss::Mse).unwrap();
    let mut params = vec![0.0; arch.n_params()];
    arch.init(&mut params, Init::default(), 5).unwrap();
    let x = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
    let y = [1.0f32, 0.0, 0.0, 1.0, 0.5, 0.5];
    let all = Data::new(&x, 2, Targets::Values(&y)).unwrap();
    let idx = [2u32, 0];
    let sub = all.select(&idx).unwrap();
    let x2 = [0.5f32, 0.6, 0.1, 0.2];
    let y2 = [0.5f32, 0.5, 1.0, 0.0];
    let direct = Data::new(&x2, 2, Targets::Values(&y2)).unwrap();
    let mut ws = vec![0.0; arch.workspace_len(1)];
    let (mut g1, mut g2) = (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
    let l1 = arch.loss_grad(&params, &sub, &mut g1, &mut ws, 1).unwrap();
    let l2 = arch
        .loss_grad(&params, &direct, &mut g2, &mut ws, 1)
        .unwrap();
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(bits(&g1), bits(&g2));
    assert!(all.select(&[3]).is_err());
}

/// The passes read a contiguous `f32` view's rows in place and copy the rows of any other view
/// (an index list, byte features): both give the same bits, for gradients and HVPs, in the
/// plain and the packed tile passes.
#[test]
fn in_place_and_copied_inputs_agree() {
    let arch = Arch::new(&[3, 5, 4, 2], Activation::Tanh, Loss::Mse).unwrap();
    let mut params = vec![0.0; arch.n_params()];
    arch.init(&mut params, Init::default(), 9).unwrap();
    let v: Vec<f32> = (0..arch.n_params())
        .map(|k| ((k * 7 % 11) as f32 - 5.0) * 0.1)
        .collect();
    let x: Vec<f32> = (0..21)
        .map(|k| ((k * 5 % 13) as f32 - 6.0) * 0.15)
        .collect();
    let y = [0u16, 1, 1, 0, 1, 0, 0];
    let all = Data::new(&x, 3, Targets::Classes(&y)).unwrap();
    assert_eq!(all.rows_f32(2, 3), Some(&x[6..15]));
    assert_eq!(all.rows_f32(5, 3), None);
    let idx: Vec<u32> = (0..7).collect();
    let same = all.select(&idx).unwrap();
    assert_eq!(same.rows_f32(0, 1), None);
    let mut wt = vec![0.0; arch.packed_len()];
    let mut vt = vec![0.0; arch.packed_len()];
    arch.pack_transposed(&params, &mut wt).unwrap();
    arch.pack_transposed(&v, &mut vt).unwrap();
    let p = arch.n_params();
    for tile in [1, 3, 7] {
        let mut ws = vec![0.0; arch.workspace_len(tile)];
        let mut out = [vec![0.0; p], vec![0.0; p], vec![0.0; p], vec![0.0; p]];
        for (k, data) in [all, same].iter().enumerate() {
            arch.loss_grad(&params, data, &mut out[k], &mut ws, tile)
                .unwrap();
            arch.hvp(&params, data, &v, &mut out[2 + k], &mut ws, tile)
                .unwrap();
        }
        assert_eq!(bits(&out[0]), bits(&out[1]));
        assert_eq!(bits(&out[2]), bits(&out[3]));
        let mut packed = [vec![0.0; p], vec![0.0; p]];
        for (k, data) in [all, same].iter().enumerate() {
            let mut start = 0;
            while start < 7 {
                let n = tile.min(7 - start);
                arch.tile_hvp_pass_packed::<Portable>(
                    &params, &wt, &v, &vt, data, start, n, &mut ws, tile,
                )
                .unwrap();
                arch.tile_accumulate_hvp::<Portable>(
                    &ws,
                    tile,
                    data,
                    start,
                    n,
                    0..p,
                    &mut packed[k],
                )
                .unwrap();
                start += n;
            }
        }
        assert_eq!(bits(&packed[0]), bits(&packed[1]));
        edgewise_core::mlp::finish_mean(&mut packed[0], 7);
        assert_eq!(bits(&packed[0]), bits(&out[2]));
    }
}

#[test]
fn reused_first_layer_pre_activations_give_the_same_products() {
    // Products at the same parameters in different directions: computed from scratch, and with
    // the first layer's pre-activations stored by the first and reused by the others.
    let arch = Arch::new(&[6, 5, 4, 3], Activation::Tanh, Loss::CrossEntropy).unwrap();
    let mut params = vec![0.0; arch.n_params()];
    arch.init(&mut params, Init::default(), 4).unwrap();
    let p = arch.n_params();
    let dirs: Vec<Vec<f32>> = (0..3)
        .map(|d| {
            (0..p)
                .map(|k| ((k * (5 + 2 * d) % 13) as f32 - 6.0) * 0.07)
                .collect()
        })
        .collect();
    let x: Vec<f32> = (0..6 * 9)
        .map(|k| ((k * 7 % 17) as f32 - 8.0) * 0.11)
        .collect();
    let y = [0u16, 2, 1, 1, 0, 2, 2, 1, 0];
    let data = Data::new(&x, 6, Targets::Classes(&y)).unwrap();
    let mut wt = vec![0.0; arch.packed_len()];
    arch.pack_transposed(&params, &mut wt).unwrap();
    let tile = 4;
    let starts = [(0, 4), (4, 4), (8, 1)];
    let mut z0 = vec![vec![f32::NAN; tile * 5]; 3];
    let mut ws = vec![0.0; arch.workspace_len(tile)];
    for (d, v) in dirs.iter().enumerate() {
        let mut vt = vec![0.0; arch.packed_len()];
        arch.pack_transposed(v, &mut vt).unwrap();
        let (mut plain, mut cached) = (vec![0.0; p], vec![0.0; p]);
        for (t, &(start, n)) in starts.iter().enumerate() {
            arch.tile_hvp_pass_packed::<Portable>(
                &params, &wt, v, &vt, &data, start, n, &mut ws, tile,
            )
            .unwrap();
            arch.tile_accumulate_hvp::<Portable>(&ws, tile, &data, start, n, 0..p, &mut plain)
                .unwrap();
            let first = if d == 0 {
                FirstLayer::Store(&mut z0[t])
            } else {
                FirstLayer::Reuse(&z0[t])
            };
            arch.tile_hvp_pass_cached::<Portable>(
                &params, &wt, v, &vt, &data, start, n, &mut ws, tile, first,
            )
            .unwrap();
            arch.tile_accumulate_hvp::<Portable>(&ws, tile, &data, start, n, 0..p, &mut cached)
                .unwrap();
        }
        assert_eq!(bits(&plain), bits(&cached), "direction {d}");
        edgewise_core::mlp::finish_mean(&mut plain, 9);
        let mut reference = vec![0.0; p];
        arch.hvp(&params, &data, v, &mut reference, &mut ws, tile)
            .unwrap();
        assert_eq!(bits(&plain), bits(&reference), "direction {d}");
    }
    // What was stored is the first layer's `W x + b`, and a short slice is an error.
    let (w0, b0) = (&params[..30], &params[30..35]);
    for (i, row) in x.chunks_exact(6).enumerate() {
        for o in 0..5 {
            let mut z = b0[o];
            for j in 0..6 {
                z += w0[o * 6 + j] * row[j];
            }
            let got = z0[i / 4][(i % 4) * 5 + o];
            assert!(
                (got - z).abs() <= 1e-5 * (1.0 + z.abs()),
                "sample {i} output {o}"
            );
        }
    }
    let mut short = [0.0; 4 * 5 - 1];
    let v = &dirs[0];
    let mut vt = vec![0.0; arch.packed_len()];
    arch.pack_transposed(v, &mut vt).unwrap();
    for first in [
        FirstLayer::Store(&mut short[..]),
        FirstLayer::Reuse(&[0.0; 19]),
    ] {
        assert!(matches!(
            arch.tile_hvp_pass_cached::<Portable>(
                &params, &wt, v, &vt, &data, 0, 4, &mut ws, tile, first
            ),
            Err(Error::BufferTooSmall {
                need: 20,
                got: 19,
                ..
            })
        ));
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let arch = Arch::new(&[2, 3, 2], Activation::Tanh, Loss::CrossEntropy).unwrap();
    let params = vec![0.1; arch.n_params()];
    let x = [0.0f32; 4];
    let bad_labels = [0u16, 2];
    let data = Data::new(&x, 2, Targets::Classes(&bad_labels)).unwrap();
    let mut ws = vec![0.0; arch.workspace_len(2)];
    let mut g = vec![0.0; arch.n_params()];
    assert!(matches!(
        arch.loss_grad(&params, &data, &mut g, &mut ws, 2),
        Err(Error::LabelOutOfRange {
            sample: 1,
            label: 2,
            classes: 2
        })
    ));
    let y = [0.0f32; 4];
    let reg = Data::new(&x, 2, Targets::Values(&y)).unwrap();
    assert!(matches!(
        arch.loss_grad(&params, &reg, &mut g, &mut ws, 2),
        Err(Error::TargetsMismatch(_))
    ));
    let mut small = vec![0.0; 3];
    let ok_labels = [0u16, 1];
    let ok = Data::new(&x, 2, Targets::Classes(&ok_labels)).unwrap();
    assert!(matches!(
        arch.loss_grad(&params, &ok, &mut g, &mut small, 2),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(arch
        .loss_grad(&params[1..], &ok, &mut g, &mut ws, 2)
        .is_err());
    assert!(Data::new(&x[..3], 2, Targets::Classes(&ok_labels)).is_err());
    let wrong_dim = Data::new(&x, 4, Targets::Classes(&[0u16])).unwrap();
    assert!(arch
        .loss_grad(&params, &wrong_dim, &mut g, &mut ws, 2)
        .is_err());
}

#[test]
fn micromath_backend_is_close_to_libm() {
    let c = Case::new(&[4, 8, 3], Activation::Tanh, Loss::CrossEntropy, 12, 8);
    let fast = c.arch.with_math(MathBackend::Micromath);
    let mut ws = vec![0.0; c.arch.workspace_len(4)];
    let (mut g1, mut g2) = (vec![0.0; c.arch.n_params()], vec![0.0; c.arch.n_params()]);
    let l1 = c
        .arch
        .loss_grad(&c.params, &c.data(), &mut g1, &mut ws, 4)
        .unwrap();
    let l2 = fast
        .loss_grad(&c.params, &c.data(), &mut g2, &mut ws, 4)
        .unwrap();
    assert!((l1 - l2).abs() < 1e-2 * l1.abs());
    let g64: Vec<f64> = g1.iter().map(|&x| x as f64).collect();
    assert!(rel_err(&g2, &g64) < 2e-2);
    assert_ne!(bits(&g1), bits(&g2), "the backends differ in the last bits");
}

#[test]
fn evaluate_and_predict_agree_with_the_loss() {
    let c = Case::new(&[3, 5, 4], Activation::Relu, Loss::CrossEntropy, 8, 4);
    let mut ws = vec![0.0; c.arch.workspace_len(3)];
    let e = c.arch.evaluate(&c.params, &c.data(), &mut ws, 3).unwrap();
    let (l, _) = c.grad(3);
    assert_eq!(e.loss.to_bits(), l.to_bits());
    let mut correct = 0;
    for i in 0..8 {
        let mut out = [0.0f32; 4];
        c.arch
            .predict(&c.params, &c.x[i * 3..(i + 1) * 3], &mut out, &mut ws)
            .unwrap();
        let best = (0..4).fold(0, |b, k| if out[k] > out[b] { k } else { b });
        if best == c.labels[i] as usize {
            correct += 1;
        }
    }
    assert_eq!(e.correct, correct);
    assert_eq!(e.accuracy, correct as f32 / 8.0);
}
