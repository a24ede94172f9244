//! The optimized tile passes (register-tiled, vectorised, plain and packed-weight forms, the
//! vectorised `tanh`, the panel-reading parameter phase) against a plain reference of the
//! canonical summation order written here, bit for bit, on odd shapes: widths 1, 7, 17 and 33
//! (and 8, 16, 32: one panel; 10, 12: a zero-padded last packed panel),
//! tiles of 1, 3 and 5 samples, every activation, both losses and math backends, whole and
//! arbitrary parameter ranges.
//!
//! The reference is the definition in `core/src/mlp.rs`, one sample and one accumulator at a
//! time: dot products from `+0.0` in ascending index order, each term fused into the sum
//! (`f32::mul_add`, the hardware's FMA here, independent of core's `libm::fmaf`), with the bias
//! added last, the R-operator's paired terms fused one after the other (first the `V` or
//! `R(delta) a` term), per-parameter accumulation over samples in order, one division by `N`
//! at the end, the loss summed in f64.

// The reference loops index on purpose: they spell out the canonical order.
#![allow(clippy::needless_range_loop)]

use edgewise_core::loss::Target;
use edgewise_core::*;

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

/// The reference: loss, gradient and Hessian-vector product of the mean loss.
struct Reference<'a> {
    arch: &'a Arch,
    widths: Vec<usize>,
}

/// One sample's forward quantities, per layer (index 0 = input).
struct Fwd {
    a: Vec<Vec<f32>>,
    z: Vec<Vec<f32>>,
}

impl<'a> Reference<'a> {
    fn new(arch: &'a Arch) -> Self {
        Self {
            arch,
            widths: arch.widths().to_vec(),
        }
    }

    fn w(&self, p: &[f32], l: usize, o: usize, j: usize) -> f32 {
        let sp = self.arch.try_layer(l).unwrap();
        p[sp.weight + o * sp.fan_in + j]
    }

    fn b(&self, p: &[f32], l: usize, o: usize) -> f32 {
        p[self.arch.try_layer(l).unwrap().bias + o]
    }

    fn forward(&self, p: &[f32], x: &[f32]) -> Fwd {
        let (act, m) = (self.arch.activation(), self.arch.math());
        let last = self.arch.n_layers() - 1;
        let mut a = vec![x.to_vec()];
        let mut z = vec![vec![]];
        for l in 0..=last {
            let (fi, fo) = (self.widths[l], self.widths[l + 1]);
            let mut zl = vec![0.0f32; fo];
            let mut al = vec![0.0f32; fo];
            for o in 0..fo {
                let mut acc = 0.0f32;
                for j in 0..fi {
                    acc = self.w(p, l, o, j).mul_add(a[l][j], acc);
                }
                zl[o] = acc + self.b(p, l, o);
                al[o] = if l == last {
                    zl[o]
                } else {
                    act.value(zl[o], m)
                };
            }
            z.push(zl);
            a.push(al);
        }
        Fwd { a, z }
    }

    /// Per-sample loss, gradient terms added to `g`, and (with `v`) R-gradient terms to `h`.
    fn sample(
        &self,
        p: &[f32],
        v: Option<&[f32]>,
        x: &[f32],
        t: Target<'_>,
        g: &mut [f32],
        h: &mut [f32],
    ) -> f32 {
        let (act, m, loss) = (self.arch.activation(), self.arch.math(), self.arch.loss());
        let nl = self.arch.n_layers();
        let f = self.forward(p, x);
        let k = self.widths[nl];
        let mut d = vec![vec![]; nl + 1];
        d[nl] = vec![0.0; k];
        let lv = loss.value_grad(&f.a[nl], t, &mut d[nl], m).unwrap();
        for l in (1..nl).rev() {
            let (fi, fo) = (self.widths[l], self.widths[l + 1]);
            let mut dl = vec![0.0f32; fi];
            for j in 0..fi {
                let mut acc = 0.0f32;
                for o in 0..fo {
                    acc = self.w(p, l, o, j).mul_add(d[l + 1][o], acc);
                }
                dl[j] = acc * act.deriv1(f.z[l][j], f.a[l][j], m);
            }
            d[l] = dl;
        }
        for l in 0..nl {
            let sp = self.arch.try_layer(l).unwrap();
            for o in 0..sp.fan_out {
                for j in 0..sp.fan_in {
                    let q = sp.weight + o * sp.fan_in + j;
                    g[q] = d[l + 1][o].mul_add(f.a[l][j], g[q]);
                }
                g[sp.bias + o] += d[l + 1][o];
            }
        }
        let Some(v) = v else { return lv };
        // R-forward.
        let mut rz = vec![vec![]; nl + 1];
        let mut ra = vec![vec![0.0f32; self.widths[0]]; 1];
        for l in 0..nl {
            let (fi, fo) = (self.widths[l], self.widths[l + 1]);
            let mut rzl = vec![0.0f32; fo];
            let mut ral = vec![0.0f32; fo];
            for o in 0..fo {
                let mut acc = 0.0f32;
                for j in 0..fi {
                    acc = self.w(v, l, o, j).mul_add(f.a[l][j], acc);
                    if l > 0 {
                        acc = self.w(p, l, o, j).mul_add(ra[l][j], acc);
                    }
                }
                rzl[o] = acc + self.b(v, l, o);
                ral[o] = if l == nl - 1 {
                    rzl[o]
                } else {
                    act.deriv1(f.z[l + 1][o], f.a[l + 1][o], m) * rzl[o]
                };
            }
            rz[l + 1] = rzl;
            ra.push(ral);
        }
        // R-backward.
        let mut rd = vec![vec![]; nl + 1];
        rd[nl] = vec![0.0; k];
        loss.hess_vec(&f.a[nl], &rz[nl], &mut rd[nl], m).unwrap();
        let mut dd = vec![vec![]; nl + 1];
        dd[nl] = d[nl].clone();
        for l in (1..nl).rev() {
            let (fi, fo) = (self.widths[l], self.widths[l + 1]);
            let mut rdl = vec![0.0f32; fi];
            for j in 0..fi {
                let (mut wtd, mut racc) = (0.0f32, 0.0f32);
                for o in 0..fo {
                    wtd = self.w(p, l, o, j).mul_add(dd[l + 1][o], wtd);
                    racc = self.w(v, l, o, j).mul_add(dd[l + 1][o], racc);
                    racc = self.w(p, l, o, j).mul_add(rd[l + 1][o], racc);
                }
                let (d1, d2) = act.derivs(f.z[l][j], f.a[l][j], m);
                rdl[j] = d1 * racc + (wtd * d2) * rz[l][j];
            }
            dd[l] = d[l].clone();
            rd[l] = rdl;
        }
        for l in 0..nl {
            let sp = self.arch.try_layer(l).unwrap();
            for o in 0..sp.fan_out {
                for j in 0..sp.fan_in {
                    let q = sp.weight + o * sp.fan_in + j;
                    h[q] = rd[l + 1][o].mul_add(f.a[l][j], h[q]);
                    if l > 0 {
                        h[q] = d[l + 1][o].mul_add(ra[l][j], h[q]);
                    }
                }
                h[sp.bias + o] += rd[l + 1][o];
            }
        }
        lv
    }

    /// Mean loss, gradient and Hessian-vector product.
    fn all(&self, p: &[f32], v: &[f32], data: &Data<'_>) -> (f32, Vec<f32>, Vec<f32>) {
        let n = data.len();
        let mut g = vec![0.0f32; p.len()];
        let mut h = vec![0.0f32; p.len()];
        let mut g2 = vec![0.0f32; p.len()];
        let mut loss = 0.0f64;
        let mut x = vec![0.0f32; data.dim()];
        for i in 0..n {
            data.copy_features(i, &mut x).unwrap();
            let t = match data.label(i) {
                Some(c) => Target::Class(c as usize),
                None => Target::Values(data.target_row(i).unwrap()),
            };
            loss += self.sample(p, None, &x, t, &mut g, &mut h) as f64;
            self.sample(p, Some(v), &x, t, &mut g2, &mut h);
        }
        assert_eq!(bits(&g), bits(&g2));
        for q in g.iter_mut().chain(h.iter_mut()) {
            *q /= n as f32;
        }
        ((loss / n as f64) as f32, g, h)
    }
}

struct Problem {
    arch: Arch,
    params: Vec<f32>,
    v: Vec<f32>,
    x: Vec<f32>,
    labels: Vec<u16>,
    values: Vec<f32>,
}

impl Problem {
    fn new(
        widths: &[usize],
        act: Activation,
        loss: Loss,
        math: MathBackend,
        n: usize,
        seed: u64,
    ) -> Self {
        let arch = Arch::new(widths, act, loss).unwrap().with_math(math);
        let mut rng = SplitMix64::new(seed);
        let mut params = vec![0.0; arch.n_params()];
        arch.init(&mut params, Init::default(), seed).unwrap();
        let scale = [0.5f32, 1.5, 4.0][(seed % 3) as usize];
        for p in params.iter_mut() {
            *p *= scale;
        }
        let v = (0..arch.n_params()).map(|_| rng.normal()).collect();
        let x = (0..n * widths[0]).map(|_| rng.normal() * scale).collect();
        let k = *widths.last().unwrap();
        let labels = (0..n).map(|_| rng.below(k as u64) as u16).collect();
        let values = (0..n * k).map(|_| rng.normal()).collect();
        Self {
            arch,
            params,
            v,
            x,
            labels,
            values,
        }
    }

    fn data(&self, values: bool) -> Data<'_> {
        let d0 = self.arch.input_dim();
        if values {
            Data::new(&self.x, d0, Targets::Values(&self.values)).unwrap()
        } else {
            Data::new(&self.x, d0, Targets::Classes(&self.labels)).unwrap()
        }
    }
}

/// Runs the tile passes tile by tile (plain or packed), accumulating over the parameter
/// `cuts`, and returns (mean loss, gradient, Hessian-vector product).
fn tiled(
    pb: &Problem,
    data: &Data<'_>,
    tile: usize,
    packed: bool,
    cuts: &[usize],
) -> (f32, Vec<f32>, Vec<f32>) {
    let arch = &pb.arch;
    let p = arch.n_params();
    // Poison the workspace: nothing may read a value it did not write.
    let mut ws = vec![f32::NAN; arch.workspace_len(tile)];
    let mut wt = vec![0.0; arch.packed_len()];
    let mut vt = vec![0.0; arch.packed_len()];
    arch.pack_transposed(&pb.params, &mut wt).unwrap();
    arch.pack_transposed(&pb.v, &mut vt).unwrap();
    let (mut g, mut h) = (vec![0.0f32; p], vec![0.0f32; p]);
    let (mut loss, mut correct) = (0.0f64, 0u32);
    let n_all = data.len();
    let mut start = 0;
    while start < n_all {
        let n = tile.min(n_all - start);
        if packed {
            arch.tile_grad_pass_packed::<Portable>(&pb.params, &wt, data, start, n, &mut ws, tile)
                .unwrap();
        } else {
            arch.tile_grad_pass::<Portable>(&pb.params, data, start, n, &mut ws, tile)
                .unwrap();
        }
        arch.tile_tally(&ws, tile, n, &mut loss, &mut correct)
            .unwrap();
        for c in cuts.windows(2) {
            arch.tile_accumulate_grad::<Portable>(
                &ws,
                tile,
                data,
                start,
                n,
                c[0]..c[1],
                &mut g[c[0]..c[1]],
            )
            .unwrap();
        }
        if packed {
            arch.tile_hvp_pass_packed::<Portable>(
                &pb.params, &wt, &pb.v, &vt, data, start, n, &mut ws, tile,
            )
            .unwrap();
        } else {
            arch.tile_hvp_pass::<Portable>(&pb.params, &pb.v, data, start, n, &mut ws, tile)
                .unwrap();
        }
        for c in cuts.windows(2) {
            arch.tile_accumulate_hvp::<Portable>(
                &ws,
                tile,
                data,
                start,
                n,
                c[0]..c[1],
                &mut h[c[0]..c[1]],
            )
            .unwrap();
        }
        start += n;
    }
    mlp::finish_mean(&mut g, n_all);
    mlp::finish_mean(&mut h, n_all);
    ((loss / n_all as f64) as f32, g, h)
}

#[test]
fn optimized_passes_match_the_reference_on_odd_shapes() {
    // The last two: widths of exactly one panel on x86 (8, 16, 32) and output widths whose packed
    // weights end in a zero-padded panel (10, 12).
    let shapes: [&[usize]; 9] = [
        &[1, 1],
        &[7, 1, 1],
        &[1, 7, 17],
        &[17, 33, 7],
        &[33, 17, 1, 7],
        &[7, 33, 33, 17, 1],
        &[33, 7, 33, 7],
        &[9, 32, 16, 10],
        &[40, 8, 32, 12],
    ];
    let mut checked = 0;
    for (si, w) in shapes.iter().enumerate() {
        for (ai, act) in Activation::ALL.into_iter().enumerate() {
            for loss in [Loss::Mse, Loss::CrossEntropy] {
                for math in [MathBackend::Libm, MathBackend::Micromath] {
                    let seed = (si * 100 + ai * 10) as u64 + (loss == Loss::Mse) as u64;
                    let n = 11 + si;
                    let pb = Problem::new(w, act, loss, math, n, seed);
                    let reference = Reference::new(&pb.arch);
                    for values in [false, true] {
                        if values && loss == Loss::CrossEntropy {
                            continue;
                        }
                        let data = pb.data(values);
                        let (l_ref, g_ref, h_ref) = reference.all(&pb.params, &pb.v, &data);
                        let p = pb.arch.n_params();
                        let cuts_odd = {
                            let mut c = vec![0, p / 3, p / 3 + 1, (2 * p) / 3 + 2, p];
                            c.retain(|&x| x <= p);
                            c.sort();
                            c.dedup();
                            c
                        };
                        for tile in [1usize, 3, 5, 16] {
                            for packed in [false, true] {
                                for cuts in [vec![0, p], cuts_odd.clone()] {
                                    let (l, g, h) = tiled(&pb, &data, tile, packed, &cuts);
                                    let what = format!("{w:?} {act:?} {loss:?} {math:?} values {values} tile {tile} packed {packed} cuts {cuts:?}");
                                    assert_eq!(l.to_bits(), l_ref.to_bits(), "loss {what}");
                                    assert_eq!(bits(&g), bits(&g_ref), "gradient {what}");
                                    assert_eq!(bits(&h), bits(&h_ref), "hvp {what}");
                                    checked += 1;
                                }
                            }
                        }
                        // The single-threaded entry points too.
                        let mut ws = vec![0.0; pb.arch.workspace_len(5)];
                        let mut g = vec![0.0; p];
                        let l = pb
                            .arch
                            .loss_grad(&pb.params, &data, &mut g, &mut ws, 3)
                            .unwrap();
                        assert_eq!((l.to_bits(), bits(&g)), (l_ref.to_bits(), bits(&g_ref)));
                        let mut h = vec![0.0; p];
                        pb.arch
                            .hvp(&pb.params, &data, &pb.v, &mut h, &mut ws, 5)
                            .unwrap();
                        assert_eq!(bits(&h), bits(&h_ref));
                    }
                }
            }
        }
    }
    assert!(checked > 1000);
}

#[test]
fn packed_buffers_are_checked() {
    let arch = Arch::new(&[3, 4, 2], Activation::Tanh, Loss::Mse).unwrap();
    // The weights, and on CPUs with vector units the zeros padding each layer's last panel.
    assert!(arch.packed_len() >= 3 * 4 + 4 * 2);
    let params = vec![0.1; arch.n_params()];
    let mut short = vec![0.0; arch.packed_len() - 1];
    assert!(arch.pack_transposed(&params, &mut short).is_err());
    let x = [0.5f32; 6];
    let y = [0u16, 1];
    let data = Data::new(&x, 3, Targets::Classes(&y)).unwrap();
    let mut ws = vec![0.0; arch.workspace_len(2)];
    assert!(arch
        .tile_grad_pass_packed::<Portable>(&params, &short, &data, 0, 2, &mut ws, 2)
        .is_err());
    assert!(arch
        .tile_eval_pass_packed::<Portable>(&params, &short, &data, 0, 2, &mut ws, 2)
        .is_err());
    let wt = vec![0.0; arch.packed_len()];
    assert!(arch
        .tile_hvp_pass_packed::<Portable>(&params, &wt, &params, &short, &data, 0, 2, &mut ws, 2)
        .is_err());
}
