//! Forward, backward and forward-over-reverse passes of a dense network, in one canonical order.
//!
//! # The passes
//!
//! For weight layer `l` with weights `W`, bias `b`, input activations `a` and pre-activations
//! `z = W a + b`: hidden layers output `sigma(z)`, the last layer outputs `z` itself.
//! Backward: `delta_L = dl/df`, `delta_{l-1} = sigma'(z_{l-1}) * (W^T delta_l)`, gradient
//! `dW = delta a^T`, `db = delta`.
//!
//! The exact Hessian-vector product `H v` is Pearlmutter's R-operator (forward-mode derivative
//! along `v` of the backward pass; Pearlmutter 1994, "Fast exact multiplication by the
//! Hessian"). With `V`, `v_b` the parts of `v` belonging to a layer:
//! `R(z) = V a + W R(a) + v_b`, `R(a) = sigma'(z) R(z)` (`R(a_0) = 0`),
//! `R(delta_L) = H_f R(f)` (the loss Hessian on the outputs, see [`crate::loss`]),
//! `R(delta_{l-1}) = sigma''(z) R(z) (W^T delta) + sigma'(z) (V^T delta + W^T R(delta))`,
//! `R(dW) = R(delta) a^T + delta R(a)^T`, `R(db) = R(delta)`.
//!
//! # The canonical summation order
//!
//! Every result is defined by this order, and every implementation (tiled, multi-threaded,
//! vectorised) must reproduce it exactly:
//!
//! 1. **Over inputs** (forward): `z_o = (sum_j W_oj a_j) + b_o`, the sum in f32 from `+0.0`
//!    in ascending `j`, the bias added last. `R(z)_o = (sum_j (V_oj a_j + W_oj R(a)_j)) + v_o`,
//!    each pair added as one term (on the first layer the term is `V_oj a_j` alone).
//! 2. **Over outputs** (backward): `(W^T delta)_j = sum_o W_oj delta_o` in f32 from `+0.0`, ascending
//!    `o`; `R(W^T delta)_j = sum_o (V_oj delta_o + W_oj R(delta)_o)`, likewise.
//! 3. **Over samples** (gradient and Hessian-vector product): each parameter's accumulator
//!    starts at `+0.0` and adds its per-sample term for sample 0, 1, 2, ... of the data view in
//!    order (`delta_o a_j`; for `H v`: `R(delta)_o a_j + delta_o R(a)_j`); at the end it is divided
//!    by `N` (one f32 division). The loss is `sum_i l_i` accumulated in f64 in sample order, divided
//!    by `N` in f64 and rounded to f32 once.
//!
//! Rule 3 is why the tile size cannot change a bit: a tile only decides *when* a parameter's
//! accumulator receives its next term, never in which order. A host may also split the
//! *parameters* among threads ([`Arch::tile_accumulate_grad`] takes a parameter range), which
//! leaves every accumulator's sequence of terms untouched.

use core::ops::Range;

use crate::arch::Arch;
use crate::data::Data;
use crate::error::{check_len, check_min, Error};
use crate::loss::{argmax, Loss, Target};
use crate::vec::dot;

/// Loss and accuracy of a network on a data view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    /// Mean loss.
    pub loss: f32,
    /// Fraction of samples whose largest output is the label (0 for real-valued targets).
    pub accuracy: f32,
    /// Number of correctly classified samples.
    pub correct: u32,
    /// Number of samples.
    pub n: u32,
}

/// The workspace of one tile, cut into its slots.
struct Slots<'w> {
    a: &'w mut [f32],
    z: &'w mut [f32],
    d: &'w mut [f32],
    loss: &'w mut [f32],
    correct: &'w mut [f32],
    rz: &'w mut [f32],
    ra: &'w mut [f32],
    rd: &'w mut [f32],
}

fn slots(ws: &mut [f32], cap: usize, width_sum: usize, hvp: bool) -> Slots<'_> {
    let ts = cap * width_sum;
    let (a, rest) = ws.split_at_mut(ts);
    let (z, rest) = rest.split_at_mut(ts);
    let (d, rest) = rest.split_at_mut(ts);
    let (loss, rest) = rest.split_at_mut(cap);
    let (correct, rest) = rest.split_at_mut(cap);
    if hvp {
        let (rz, rest) = rest.split_at_mut(ts);
        let (ra, rest) = rest.split_at_mut(ts);
        let (rd, _) = rest.split_at_mut(ts);
        Slots {
            a,
            z,
            d,
            loss,
            correct,
            rz,
            ra,
            rd,
        }
    } else {
        Slots {
            a,
            z,
            d,
            loss,
            correct,
            rz: &mut [],
            ra: &mut [],
            rd: &mut [],
        }
    }
}

/// Read-only view of a tile's slots, for the parameter phase.
struct SlotsRef<'w> {
    a: &'w [f32],
    d: &'w [f32],
    loss: &'w [f32],
    correct: &'w [f32],
    ra: &'w [f32],
    rd: &'w [f32],
}

fn slots_ref(ws: &[f32], cap: usize, width_sum: usize, hvp: bool) -> SlotsRef<'_> {
    let ts = cap * width_sum;
    let a = &ws[..ts];
    let d = &ws[2 * ts..3 * ts];
    let loss = &ws[3 * ts..3 * ts + cap];
    let correct = &ws[3 * ts + cap..3 * ts + 2 * cap];
    let base = 3 * ts + 2 * cap;
    if hvp {
        SlotsRef {
            a,
            d,
            loss,
            correct,
            ra: &ws[base + ts..base + 2 * ts],
            rd: &ws[base + 2 * ts..base + 3 * ts],
        }
    } else {
        SlotsRef {
            a,
            d,
            loss,
            correct,
            ra: &[],
            rd: &[],
        }
    }
}

impl Arch {
    /// Checks that `data` fits the network: feature width, target width, loss/target kind.
    pub fn check_data(&self, data: &Data<'_>) -> Result<(), Error> {
        if data.is_empty() {
            return Err(Error::EmptyData);
        }
        if data.dim() != self.input_dim() {
            return Err(Error::LengthMismatch {
                what: "features per sample",
                expected: self.input_dim(),
                got: data.dim(),
            });
        }
        match (self.loss(), data.label(0)) {
            (Loss::CrossEntropy, None) => {
                return Err(Error::TargetsMismatch("cross-entropy needs class labels"))
            }
            (_, None) if data.target_width() != self.output_dim() => {
                return Err(Error::LengthMismatch {
                    what: "targets per sample",
                    expected: self.output_dim(),
                    got: data.target_width(),
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn check_tile(
        &self,
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &[f32],
        cap: usize,
        hvp: bool,
    ) -> Result<(), Error> {
        if cap == 0 {
            return Err(Error::InvalidConfig("tile size must be positive"));
        }
        if n > cap {
            return Err(Error::InvalidConfig("more samples than the tile holds"));
        }
        if start + n > data.len() {
            return Err(Error::InvalidConfig("tile reaches past the data"));
        }
        let need = if hvp {
            self.workspace_len(cap)
        } else {
            self.workspace_len_grad(cap)
        };
        check_min("workspace", ws, need)
    }

    #[inline]
    fn target<'d>(&self, data: &Data<'d>, i: usize) -> Result<Target<'d>, Error> {
        match data.label(i) {
            Some(c) => {
                if (c as usize) < self.output_dim() {
                    Ok(Target::Class(c as usize))
                } else {
                    Err(Error::LabelOutOfRange {
                        sample: i,
                        label: c,
                        classes: self.output_dim(),
                    })
                }
            }
            None => match data.target_row(i) {
                Some(row) => Ok(Target::Values(row)),
                None => Err(Error::TargetsMismatch("missing targets")),
            },
        }
    }

    /// Forward pass of samples `start..start + n` of `data` into the tile's `A` and `Z` slots,
    /// plus per-sample loss and correctness.
    fn forward_into(
        &self,
        params: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        s: &mut Slots<'_>,
        cap: usize,
        grad: bool,
    ) -> Result<(), Error> {
        let m = self.math();
        let act = self.activation();
        let last = self.n_layers() - 1;
        let d0 = self.input_dim();
        for i in 0..n {
            data.copy_features(start + i, &mut s.a[i * d0..(i + 1) * d0]);
        }
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let b = &params[sp.bias..sp.bias + fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let (lo, hi) = s.a.split_at_mut(out_off);
            let a_in = &lo[in_off..];
            let z_out = &mut s.z[out_off..out_off + n * fo];
            for i in 0..n {
                let x = &a_in[i * fi..(i + 1) * fi];
                let zr = &mut z_out[i * fo..(i + 1) * fo];
                let ar = &mut hi[i * fo..(i + 1) * fo];
                for o in 0..fo {
                    let z = dot(&w[o * fi..(o + 1) * fi], x) + b[o];
                    zr[o] = z;
                    ar[o] = if l == last { z } else { act.value(z, m) };
                }
            }
        }
        // Loss (and its gradient into the output deltas).
        let out_off = cap * self.width_prefix(last + 1);
        let k = self.output_dim();
        for i in 0..n {
            let t = self.target(data, start + i)?;
            let f = &s.a[out_off + i * k..out_off + (i + 1) * k];
            s.loss[i] = if grad {
                self.loss()
                    .value_grad(f, t, &mut s.d[out_off + i * k..out_off + (i + 1) * k], m)
            } else {
                self.loss().value(f, t, m)
            };
            s.correct[i] = match t {
                Target::Class(c) if argmax(f) == c => 1.0,
                _ => 0.0,
            };
        }
        Ok(())
    }

    /// Sample phase of an evaluation for one tile: forward pass, per-sample losses and
    /// correctness of samples `start..start + n` (no deltas; tally with [`Arch::tile_tally`]).
    pub fn tile_eval_pass(
        &self,
        params: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_tile(data, start, n, ws, cap, false)?;
        let mut s = slots(ws, cap, self.width_sum(), false);
        self.forward_into(params, data, start, n, &mut s, cap, false)
    }

    /// Sample phase of the gradient for one tile: forward pass, per-sample losses and all deltas
    /// of samples `start..start + n` of `data`, into `ws` (laid out for tiles of `cap` samples).
    pub fn tile_grad_pass(
        &self,
        params: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_tile(data, start, n, ws, cap, false)?;
        let mut s = slots(ws, cap, self.width_sum(), false);
        self.forward_into(params, data, start, n, &mut s, cap, true)?;
        let m = self.math();
        let act = self.activation();
        for l in (1..self.n_layers()).rev() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let (lo, hi) = s.d.split_at_mut(out_off);
            for i in 0..n {
                let dout = &hi[i * fo..(i + 1) * fo];
                let din = &mut lo[in_off + i * fi..in_off + (i + 1) * fi];
                din.fill(0.0);
                for (o, &dv) in dout.iter().enumerate() {
                    let row = &w[o * fi..(o + 1) * fi];
                    for (x, &wv) in din.iter_mut().zip(row) {
                        *x += wv * dv;
                    }
                }
                let z = &s.z[in_off + i * fi..in_off + (i + 1) * fi];
                let a = &s.a[in_off + i * fi..in_off + (i + 1) * fi];
                for j in 0..fi {
                    din[j] *= act.deriv1(z[j], a[j], m);
                }
            }
        }
        Ok(())
    }

    /// Sample phase of the exact Hessian-vector product `H v` for one tile: forward pass,
    /// R-forward pass, and the fused backward / R-backward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_hvp_pass(
        &self,
        params: &[f32],
        v: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_params("direction", v)?;
        self.check_tile(data, start, n, ws, cap, true)?;
        let mut s = slots(ws, cap, self.width_sum(), true);
        self.forward_into(params, data, start, n, &mut s, cap, true)?;
        let m = self.math();
        let act = self.activation();
        let last = self.n_layers() - 1;
        // R-forward.
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let vw = &v[sp.weight..sp.weight + fi * fo];
            let vb = &v[sp.bias..sp.bias + fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let (ra_lo, ra_hi) = s.ra.split_at_mut(out_off);
            for i in 0..n {
                let x = &s.a[in_off + i * fi..in_off + (i + 1) * fi];
                let rx = &ra_lo[in_off + i * fi..in_off + (i + 1) * fi];
                for o in 0..fo {
                    let vrow = &vw[o * fi..(o + 1) * fi];
                    let rz = if l == 0 {
                        dot(vrow, x)
                    } else {
                        let wrow = &w[o * fi..(o + 1) * fi];
                        let mut acc = 0.0f32;
                        for j in 0..fi {
                            acc += vrow[j] * x[j] + wrow[j] * rx[j];
                        }
                        acc
                    } + vb[o];
                    let k = out_off + i * fo + o;
                    s.rz[k] = rz;
                    ra_hi[i * fo + o] = if l == last {
                        rz
                    } else {
                        act.deriv1(s.z[k], s.a[k], m) * rz
                    };
                }
            }
        }
        // Loss Hessian on the outputs.
        let out_off = cap * self.width_prefix(last + 1);
        let k = self.output_dim();
        for i in 0..n {
            let r = out_off + i * k..out_off + (i + 1) * k;
            self.loss()
                .hess_vec(&s.a[r.clone()], &s.rz[r.clone()], &mut s.rd[r], m);
        }
        // Fused backward and R-backward.
        for l in (1..self.n_layers()).rev() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let vw = &v[sp.weight..sp.weight + fi * fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let (dlo, dhi) = s.d.split_at_mut(out_off);
            let (rlo, rhi) = s.rd.split_at_mut(out_off);
            for i in 0..n {
                let dout = &dhi[i * fo..(i + 1) * fo];
                let rdout = &rhi[i * fo..(i + 1) * fo];
                let din = &mut dlo[in_off + i * fi..in_off + (i + 1) * fi];
                let rdin = &mut rlo[in_off + i * fi..in_off + (i + 1) * fi];
                din.fill(0.0);
                rdin.fill(0.0);
                for o in 0..fo {
                    let (dv, rv) = (dout[o], rdout[o]);
                    let wrow = &w[o * fi..(o + 1) * fi];
                    let vrow = &vw[o * fi..(o + 1) * fi];
                    for j in 0..fi {
                        din[j] += wrow[j] * dv;
                        rdin[j] += vrow[j] * dv + wrow[j] * rv;
                    }
                }
                let base = in_off + i * fi;
                for j in 0..fi {
                    let (d1, d2) = act.derivs(s.z[base + j], s.a[base + j], m);
                    let wtd = din[j];
                    din[j] = wtd * d1;
                    rdin[j] = d1 * rdin[j] + (wtd * d2) * s.rz[base + j];
                }
            }
        }
        Ok(())
    }

    /// Parameter phase of the gradient: adds one tile's per-sample terms, sample by sample, to
    /// the accumulators of parameters `range` (`out[k - range.start]` holds parameter `k`).
    /// `ws` must come from [`Arch::tile_grad_pass`] (or [`Arch::tile_hvp_pass`]) with the same
    /// `cap` and `n`.
    pub fn tile_accumulate_grad(
        &self,
        ws: &[f32],
        cap: usize,
        n: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.accumulate(ws, cap, n, range, out, false)
    }

    /// Parameter phase of the Hessian-vector product, as [`Arch::tile_accumulate_grad`] but for
    /// the R-gradient; `ws` must come from [`Arch::tile_hvp_pass`].
    pub fn tile_accumulate_hvp(
        &self,
        ws: &[f32],
        cap: usize,
        n: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.accumulate(ws, cap, n, range, out, true)
    }

    fn accumulate(
        &self,
        ws: &[f32],
        cap: usize,
        n: usize,
        range: Range<usize>,
        out: &mut [f32],
        hvp: bool,
    ) -> Result<(), Error> {
        if range.start > range.end || range.end > self.n_params() {
            return Err(Error::InvalidConfig("parameter range outside the network"));
        }
        if n > cap {
            return Err(Error::InvalidConfig("more samples than the tile holds"));
        }
        check_len("accumulator", out, range.end - range.start)?;
        let need = if hvp {
            self.workspace_len(cap)
        } else {
            self.workspace_len_grad(cap)
        };
        check_min("workspace", ws, need)?;
        let s = slots_ref(ws, cap, self.width_sum(), hvp);
        let p0 = range.start;
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let a_in = &s.a[in_off..in_off + n * fi];
            let d = &s.d[out_off..out_off + n * fo];
            // Weights: the part of [weight, bias) inside the range, row by row.
            let lo = range.start.max(sp.weight);
            let hi = range.end.min(sp.bias);
            let mut k = lo;
            while k < hi {
                let o = (k - sp.weight) / fi;
                let j0 = (k - sp.weight) % fi;
                let j1 = fi.min(j0 + (hi - k));
                let seg = &mut out[k - p0..k - p0 + (j1 - j0)];
                if !hvp {
                    for i in 0..n {
                        let dv = d[i * fo + o];
                        let x = &a_in[i * fi + j0..i * fi + j1];
                        for (acc, &xj) in seg.iter_mut().zip(x) {
                            *acc += dv * xj;
                        }
                    }
                } else {
                    let rd = &s.rd[out_off..out_off + n * fo];
                    let ra_in = &s.ra[in_off..in_off + n * fi];
                    for i in 0..n {
                        let dv = d[i * fo + o];
                        let rv = rd[i * fo + o];
                        let x = &a_in[i * fi + j0..i * fi + j1];
                        if l == 0 {
                            for (acc, &xj) in seg.iter_mut().zip(x) {
                                *acc += rv * xj;
                            }
                        } else {
                            let rx = &ra_in[i * fi + j0..i * fi + j1];
                            for ((acc, &xj), &rxj) in seg.iter_mut().zip(x).zip(rx) {
                                *acc += rv * xj + dv * rxj;
                            }
                        }
                    }
                }
                k += j1 - j0;
            }
            // Biases.
            let lo = range.start.max(sp.bias);
            let hi = range.end.min(sp.bias + fo);
            let src = if hvp {
                &s.rd[out_off..out_off + n * fo]
            } else {
                d
            };
            for k in lo..hi {
                let o = k - sp.bias;
                let acc = &mut out[k - p0];
                for i in 0..n {
                    *acc += src[i * fo + o];
                }
            }
        }
        Ok(())
    }

    /// Adds a tile's per-sample losses (in f64, sample order) to `loss_sum` and its correct
    /// predictions to `correct`.
    pub fn tile_tally(
        &self,
        ws: &[f32],
        cap: usize,
        n: usize,
        loss_sum: &mut f64,
        correct: &mut u32,
    ) -> Result<(), Error> {
        if n > cap {
            return Err(Error::InvalidConfig("more samples than the tile holds"));
        }
        check_min("workspace", ws, self.workspace_len_grad(cap))?;
        let s = slots_ref(ws, cap, self.width_sum(), false);
        for i in 0..n {
            *loss_sum += s.loss[i] as f64;
            if s.correct[i] != 0.0 {
                *correct += 1;
            }
        }
        Ok(())
    }

    /// Mean loss over `data` and its gradient (written into `grad`), in tiles of `tile` samples
    /// using the workspace `ws` (at least [`Arch::workspace_len_grad`]`(tile)` long).
    pub fn loss_grad(
        &self,
        params: &[f32],
        data: &Data<'_>,
        grad: &mut [f32],
        ws: &mut [f32],
        tile: usize,
    ) -> Result<f32, Error> {
        self.check_data(data)?;
        self.check_params("gradient", grad)?;
        grad.fill(0.0);
        let (mut loss_sum, mut correct) = (0.0f64, 0u32);
        let n_all = data.len();
        let mut start = 0;
        while start < n_all {
            let n = tile.min(n_all - start);
            self.tile_grad_pass(params, data, start, n, ws, tile)?;
            self.tile_tally(ws, tile, n, &mut loss_sum, &mut correct)?;
            self.tile_accumulate_grad(ws, tile, n, 0..self.n_params(), grad)?;
            start += n;
        }
        finish_mean(grad, n_all);
        Ok((loss_sum / n_all as f64) as f32)
    }

    /// Exact Hessian-vector product `H v` of the mean loss over `data` (written into `out`), in
    /// tiles of `tile` samples using `ws` (at least [`Arch::workspace_len`]`(tile)` long).
    pub fn hvp(
        &self,
        params: &[f32],
        data: &Data<'_>,
        v: &[f32],
        out: &mut [f32],
        ws: &mut [f32],
        tile: usize,
    ) -> Result<(), Error> {
        self.check_data(data)?;
        self.check_params("output", out)?;
        out.fill(0.0);
        let n_all = data.len();
        let mut start = 0;
        while start < n_all {
            let n = tile.min(n_all - start);
            self.tile_hvp_pass(params, v, data, start, n, ws, tile)?;
            self.tile_accumulate_hvp(ws, tile, n, 0..self.n_params(), out)?;
            start += n;
        }
        finish_mean(out, n_all);
        Ok(())
    }

    /// Mean loss and accuracy over `data` (forward passes only).
    pub fn evaluate(
        &self,
        params: &[f32],
        data: &Data<'_>,
        ws: &mut [f32],
        tile: usize,
    ) -> Result<Eval, Error> {
        self.check_data(data)?;
        self.check_params("params", params)?;
        let (mut loss_sum, mut correct) = (0.0f64, 0u32);
        let n_all = data.len();
        let mut start = 0;
        while start < n_all {
            let n = tile.min(n_all - start);
            self.tile_eval_pass(params, data, start, n, ws, tile)?;
            self.tile_tally(ws, tile, n, &mut loss_sum, &mut correct)?;
            start += n;
        }
        let classes = data.label(0).is_some();
        Ok(Eval {
            loss: (loss_sum / n_all as f64) as f32,
            accuracy: if classes {
                correct as f32 / n_all as f32
            } else {
                0.0
            },
            correct,
            n: n_all as u32,
        })
    }

    /// The network's outputs for one input `x`, written into `out` (output width), using `ws`
    /// (at least [`Arch::workspace_len_grad`]`(1)` long).
    pub fn predict(
        &self,
        params: &[f32],
        x: &[f32],
        out: &mut [f32],
        ws: &mut [f32],
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        check_len("input", x, self.input_dim())?;
        check_len("output", out, self.output_dim())?;
        check_min("workspace", ws, self.workspace_len_grad(1))?;
        // The label is a placeholder: only the features of the one sample are read.
        let zero = [0u16; 1];
        let data = Data::new(x, self.input_dim(), crate::data::Targets::Classes(&zero))?;
        let mut s = slots(ws, 1, self.width_sum(), false);
        self.forward_outputs(params, &data, &mut s)?;
        let off = self.width_prefix(self.n_layers());
        out.copy_from_slice(&s.a[off..off + self.output_dim()]);
        Ok(())
    }

    fn forward_outputs(
        &self,
        params: &[f32],
        data: &Data<'_>,
        s: &mut Slots<'_>,
    ) -> Result<(), Error> {
        // Like forward_into without the loss, for one sample.
        let m = self.math();
        let act = self.activation();
        let last = self.n_layers() - 1;
        data.copy_features(0, &mut s.a[..self.input_dim()]);
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let b = &params[sp.bias..sp.bias + fo];
            let in_off = self.width_prefix(l);
            let out_off = self.width_prefix(l + 1);
            let (lo, hi) = s.a.split_at_mut(out_off);
            let x = &lo[in_off..in_off + fi];
            for o in 0..fo {
                let z = dot(&w[o * fi..(o + 1) * fi], x) + b[o];
                hi[o] = if l == last { z } else { act.value(z, m) };
            }
        }
        Ok(())
    }
}

/// Divides each accumulated sum by the number of samples (rule 3 of the canonical order).
pub fn finish_mean(acc: &mut [f32], n: usize) {
    let nf = n as f32;
    for x in acc.iter_mut() {
        *x /= nf;
    }
}
