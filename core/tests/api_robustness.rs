//! Regression tests for the public-API panic audit: each input below used to panic (or to
//! overflow in debug builds) and must now return an error (or a documented empty result).

use edgewise_core::static_mlp::{checked_static_workspace_len, static_workspace_len};
use edgewise_core::{
    checked_param_count, param_count, Activation, Arch, Data, EpochSampler, Error, Features,
    FirstLayer, Loss, MathBackend, MlpObjective, Portable, StaticMlp, Targets,
};

fn arch(widths: &[usize]) -> Arch {
    Arch::new(widths, Activation::Tanh, Loss::Mse).unwrap()
}

fn params(a: &Arch) -> Vec<f32> {
    (0..a.n_params()).map(|k| 0.01 * k as f32 - 0.1).collect()
}

// Finding 1: size arithmetic that overflows.

#[test]
fn huge_tiles_are_errors() {
    let a = arch(&[2, 3, 2]);
    let p = params(&a);
    let x = [0.5f32, -0.5];
    let labels = [1u16];
    let data = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut ws = vec![0.0f32; 4096];
    let mut g = vec![0.0f32; a.n_params()];
    let mut out = vec![0.0f32; a.n_params()];
    for tile in [usize::MAX, 1 << 63, 4611686018427387905] {
        assert!(a.loss_grad(&p, &data, &mut g, &mut ws, tile).is_err());
        assert!(a.hvp(&p, &data, &p, &mut out, &mut ws, tile).is_err());
        assert!(a.evaluate(&p, &data, &mut ws, tile).is_err());
        assert!(a
            .tile_grad_pass::<Portable>(&p, &data, 0, 1, &mut ws, tile)
            .is_err());
        let (mut loss, mut correct) = (0.0f64, 0u32);
        assert!(a.tile_tally(&ws, tile, 1, &mut loss, &mut correct).is_err());
        assert!(a
            .tile_accumulate_grad::<Portable>(&ws, tile, &data, 0, 1, 0..a.n_params(), &mut g)
            .is_err());
    }
    let mut ws8 = [0.0f32; 8];
    assert!(MlpObjective::new(&a, data, &mut ws8, 1 << 63).is_err());
}

#[test]
fn static_mlp_huge_tiles_are_errors() {
    const W: [usize; 3] = [2, 3, 2];
    let net: StaticMlp<3, { param_count(&W) }> = StaticMlp::new(W, Activation::Tanh, Loss::Mse);
    let x = [0.5f32, -0.5];
    let labels = [1u16];
    let data = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut ws: [f32; 0] = [];
    let mut g = [0.0f32; param_count(&W)];
    let v = [0.0f32; param_count(&W)];
    assert!(net.loss_grad(&data, &mut g, &mut ws, 1 << 63).is_err());
    assert!(net.hvp(&data, &v, &mut g, &mut ws, 1 << 63).is_err());
    assert!(net.evaluate(&data, &mut ws, 1 << 63).is_err());
}

#[test]
fn size_helpers_do_not_overflow() {
    let a = arch(&[1 << 24, 1]);
    assert_eq!(a.checked_workspace_len(1 << 40), None);
    assert_eq!(a.checked_workspace_len_grad(1 << 40), None);
    assert_eq!(a.workspace_len(1 << 40), usize::MAX);
    assert_eq!(a.workspace_len_grad(1 << 40), usize::MAX);
    let b = arch(&[3, 4, 2]);
    assert_eq!(b.checked_workspace_len(5), Some(b.workspace_len(5)));
    assert_eq!(b.workspace_len(5), 6 * 5 * 9 + 2 * 5);
    assert_eq!(b.workspace_len_grad(5), 3 * 5 * 9 + 2 * 5);

    assert_eq!(checked_param_count(&[5, 1 << 63]), None);
    assert_eq!(param_count(&[5, 1 << 63]), usize::MAX);
    assert_eq!(checked_param_count(&[3, 4, 2]), Some(26));

    assert_eq!(checked_static_workspace_len(&[usize::MAX, 2], 0), None);
    assert_eq!(checked_static_workspace_len(&[], 1 << 63), None);
    assert_eq!(static_workspace_len(&[], 1 << 63), usize::MAX);
    assert_eq!(static_workspace_len(&[3, 4, 2], 5), b.workspace_len(5));
}

// Findings 2-6: the tile passes validate their data, ranges and empty tiles.

#[test]
fn tile_passes_check_the_data_shape() {
    let a = arch(&[2, 3, 2]);
    let p = params(&a);
    let mut ws = vec![0.0f32; a.workspace_len(4)];
    // One feature per sample, the network takes two.
    let x = [0.5f32, 1.0, -1.0];
    let labels = [0u16, 1, 0];
    let d1 = Data::new(&x, 1, Targets::Classes(&labels)).unwrap();
    assert!(matches!(
        a.tile_eval_pass::<Portable>(&p, &d1, 0, 2, &mut ws, 2),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(a
        .tile_grad_pass::<Portable>(&p, &d1, 0, 2, &mut ws, 2)
        .is_err());
    assert!(a
        .tile_hvp_pass::<Portable>(&p, &p, &d1, 0, 2, &mut ws, 2)
        .is_err());
    // Three features per sample, as u8.
    let bytes = [1u8, 2, 3, 4, 5, 6];
    let d3 = Data::with_features(
        Features::U8 {
            bytes: &bytes,
            scale: 0.5,
        },
        3,
        Targets::Classes(&labels[..2]),
    )
    .unwrap();
    assert!(a
        .tile_eval_pass::<Portable>(&p, &d3, 0, 1, &mut ws, 1)
        .is_err());
    let mut wt = vec![0.0f32; a.packed_len()];
    a.pack_transposed(&p, &mut wt).unwrap();
    let mut z0 = vec![0.0f32; 16];
    assert!(a
        .tile_hvp_pass_cached::<Portable>(
            &p,
            &wt,
            &p,
            &wt,
            &d3,
            0,
            1,
            &mut ws,
            1,
            FirstLayer::Store(&mut z0)
        )
        .is_err());

    // Real targets one wide, the network has three outputs.
    let b = arch(&[1, 32, 3]);
    let pb = params(&b);
    let mut wsb = vec![0.0f32; b.workspace_len(1)];
    let y = [0.25f32];
    let dv = Data::new(&x[..1], 1, Targets::Values(&y)).unwrap();
    assert!(b
        .tile_eval_pass::<Portable>(&pb, &dv, 0, 1, &mut wsb, 1)
        .is_err());
    assert!(b
        .tile_hvp_pass::<Portable>(&pb, &pb, &dv, 0, 1, &mut wsb, 1)
        .is_err());
}

#[test]
fn parameter_phase_checks_the_data_shape() {
    // 64 inputs, data of 32 features: the first layer's rows would be read past the data.
    let a = arch(&[64, 1]);
    let x = [0.5f32; 64];
    let labels = [0u16, 0];
    let d = Data::new(&x, 32, Targets::Classes(&labels)).unwrap();
    let ws = vec![0.0f32; a.workspace_len(1)];
    let mut out = vec![0.0f32; a.n_params()];
    assert!(a
        .tile_accumulate_grad::<Portable>(&ws, 1, &d, 0, 1, 0..a.n_params(), &mut out)
        .is_err());
    assert!(a
        .tile_accumulate_hvp::<Portable>(&ws, 1, &d, 0, 1, 0..a.n_params(), &mut out)
        .is_err());
}

#[test]
fn tile_ranges_use_checked_addition() {
    let a = arch(&[2, 3]);
    let p = params(&a);
    let x = [0.5f32, 1.0, -1.0, 0.0, 2.0, 1.0];
    let labels = [0u16, 1, 2];
    let d = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut ws = vec![0.0f32; a.workspace_len(8)];
    let mut out = vec![0.0f32; a.n_params()];
    let s = usize::MAX;
    assert!(a
        .tile_eval_pass::<Portable>(&p, &d, s, 1, &mut ws, 5)
        .is_err());
    assert!(a
        .tile_grad_pass::<Portable>(&p, &d, s, 1, &mut ws, 5)
        .is_err());
    assert!(a
        .tile_hvp_pass::<Portable>(&p, &p, &d, s, 1, &mut ws, 5)
        .is_err());
    assert!(a
        .tile_accumulate_grad::<Portable>(&ws, 5, &d, s, 1, 0..a.n_params(), &mut out)
        .is_err());
    assert!(a
        .tile_accumulate_hvp::<Portable>(&ws, 5, &d, s, 1, 0..a.n_params(), &mut out)
        .is_err());
    // Past the end without overflow.
    assert!(a
        .tile_accumulate_grad::<Portable>(&ws, 5, &d, 2, 2, 0..a.n_params(), &mut out)
        .is_err());
    // tile_hvp_pass_cached: n = usize::MAX with a zero tile.
    let mut wt = vec![0.0f32; a.packed_len()];
    a.pack_transposed(&p, &mut wt).unwrap();
    assert!(a
        .tile_hvp_pass_cached::<Portable>(
            &p,
            &wt,
            &p,
            &wt,
            &d,
            2,
            usize::MAX,
            &mut ws,
            0,
            FirstLayer::Compute
        )
        .is_err());
}

#[test]
fn empty_tiles_are_consistent_no_ops() {
    let a = arch(&[2, 1]);
    let p = params(&a);
    let x = [0.5f32, -0.5];
    let labels = [0u16];
    let d = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
    let mut ws = vec![0.0f32; a.workspace_len(1)];
    let mut out = vec![7.0f32; a.n_params()];
    for start in [0, 1] {
        a.tile_grad_pass::<Portable>(&p, &d, start, 0, &mut ws, 1)
            .unwrap();
        a.tile_accumulate_grad::<Portable>(&ws, 1, &d, start, 0, 0..a.n_params(), &mut out)
            .unwrap();
        a.tile_hvp_pass::<Portable>(&p, &p, &d, start, 0, &mut ws, 1)
            .unwrap();
        a.tile_accumulate_hvp::<Portable>(&ws, 1, &d, start, 0, 0..a.n_params(), &mut out)
            .unwrap();
        let (mut loss, mut correct) = (0.0f64, 0u32);
        a.tile_tally(&ws, 1, 0, &mut loss, &mut correct).unwrap();
        assert_eq!((loss, correct), (0.0, 0));
    }
    assert!(out.iter().all(|&v| v == 7.0));
    // A zero tile size is an error everywhere.
    let (mut loss, mut correct) = (0.0f64, 0u32);
    assert!(a.tile_tally(&ws, 0, 0, &mut loss, &mut correct).is_err());
    assert!(a
        .tile_accumulate_grad::<Portable>(&ws, 0, &d, 0, 0, 0..a.n_params(), &mut out)
        .is_err());
    assert!(a
        .tile_grad_pass::<Portable>(&p, &d, 0, 0, &mut ws, 0)
        .is_err());
}

// Finding 7: layer index out of range.

#[test]
fn try_layer_rejects_out_of_range() {
    let a = arch(&[3, 30]);
    assert_eq!(a.try_layer(0), Some(a.first_layer()));
    assert_eq!(a.layers().collect::<Vec<_>>(), [a.first_layer()]);
    for l in [1, 8, 9, usize::MAX] {
        assert_eq!(a.try_layer(l), None);
    }
}

// Finding 8: data accessors.

#[test]
fn data_accessors_reject_out_of_range() {
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let y = [0.5f32, 1.5, 2.5, 3.5];
    let d = Data::new(&x, 2, Targets::Values(&y)).unwrap();
    let mut out = [0.0f32; 2];
    assert_eq!(d.row_of(1), Some(1));
    assert_eq!(d.row_of(2), None);
    assert!(d.copy_features(4, &mut out).is_err());
    assert!(d.copy_features(0, &mut out[..1]).is_err());
    d.copy_features(1, &mut out).unwrap();
    assert_eq!(out, [3.0, 4.0]);
    assert_eq!(d.target_row(1), Some(&y[2..4]));
    assert_eq!(d.target_row(2), None);
    assert_eq!(d.rows_f32(usize::MAX, 1), None);
    assert_eq!(d.rows_f32(1, usize::MAX), None);

    let bytes = [1u8, 2];
    let labels = [1u16];
    let b = Data::with_features(
        Features::U8 {
            bytes: &bytes,
            scale: 2.0,
        },
        2,
        Targets::Classes(&labels),
    )
    .unwrap();
    assert_eq!(b.label(0), Some(1));
    assert_eq!(b.label(6), None);
    assert!(b.copy_features(1, &mut out).is_err());
    let ix = [0u32, 0, 0];
    let sel = b.select(&ix).unwrap();
    assert_eq!(sel.label(2), Some(1));
    assert_eq!(sel.label(3), None);
    assert_eq!(sel.row_of(5), None);
    let empty = b.select(&[]).unwrap();
    assert_eq!(empty.label(0), None);
    assert!(empty.copy_features(0, &mut out).is_err());
}

// Finding 9: losses with mismatched lengths or classes.

#[test]
fn losses_reject_mismatched_inputs() {
    use edgewise_core::loss::Target;
    let m = MathBackend::Libm;
    let f = [0.5f32, 1.5];
    let mut g = [0.0f32; 2];
    let mut short = [0.0f32; 1];
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        assert!(loss.value(&f, Target::Class(2), m).is_err());
        assert!(loss.value(&[], Target::Class(1), m).is_err());
        assert!(loss.value_grad(&f, Target::Class(4), &mut g, m).is_err());
        assert!(loss
            .value_grad(&f, Target::Class(0), &mut short, m)
            .is_err());
        assert!(loss.value_grad(&f, Target::Values(&[]), &mut g, m).is_err());
        assert!(loss.hess_vec(&f, &[], &mut g, m).is_err());
        assert!(loss.hess_vec(&f, &f, &mut short, m).is_err());
        assert!(loss.value(&f, Target::Class(1), m).is_ok());
    }
    assert!(Loss::Mse.value(&f, Target::Values(&[]), m).is_err());
    assert!(Loss::Mse.value(&f, Target::Values(&[1.0, 2.0]), m).is_ok());
    assert!(Loss::CrossEntropy
        .value(&f, Target::Values(&[1.0, 2.0]), m)
        .is_err());
}

// Finding 10: debug-build overflows.

#[test]
fn sampler_batch_index_past_the_epoch_is_empty() {
    let s = EpochSampler::new(2, 2, false, 1).unwrap();
    let order = [1u32, 0];
    assert_eq!(s.batch(&order, 0), &order[..]);
    assert!(s.batch(&order, 1).is_empty());
    assert!(s.batch(&order, usize::MAX).is_empty());
}

#[test]
fn micromath_ln_of_negative_zero_does_not_overflow() {
    let m = MathBackend::Micromath;
    assert_eq!(m.ln(-0.0), f32::NEG_INFINITY);
    assert!(m.ln(-1.0).is_nan());
    assert!(m.ln(f32::NEG_INFINITY).is_nan());
    assert!(m.ln_1p(f32::NEG_INFINITY).is_nan());
}
