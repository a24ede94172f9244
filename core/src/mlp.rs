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
//! Every product below is *fused* into its sum: `s = fma(x, y, s)`, one IEEE 754
//! `fusedMultiplyAdd` (the exact `x * y + s` rounded once, to nearest even), from the
//! instance's [`Isa`] (correctly rounded on every target, so the same bits everywhere).
//!
//! 1. **Over inputs** (forward): `z_o = (sum_j W_oj a_j) + b_o`, the sum in f32 from `+0.0`
//!    in ascending `j`, each `W_oj a_j` fused into it, the bias added last.
//!    `R(z)_o = (sum_j (V_oj a_j + W_oj R(a)_j)) + v_o`, for each `j` first `V_oj a_j` fused
//!    into the sum, then `W_oj R(a)_j` (on the first layer `V_oj a_j` alone).
//! 2. **Over outputs** (backward): `(W^T delta)_j = sum_o W_oj delta_o` in f32 from `+0.0`,
//!    ascending `o`, fused; `R(W^T delta)_j = sum_o (V_oj delta_o + W_oj R(delta)_o)`, for each
//!    `o` first `V_oj delta_o`, then `W_oj R(delta)_o`.
//! 3. **Over samples** (gradient and Hessian-vector product): each parameter's accumulator
//!    starts at `+0.0` and fuses its per-sample term in for sample 0, 1, 2, ... of the data view
//!    in order (`delta_o a_j`; for `H v` first `R(delta)_o a_j`, then `delta_o R(a)_j`); at the
//!    end it is divided
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
use crate::kernels::{self, transpose, Isa, Portable, Term};
use crate::loss::{argmax, Loss, Target};

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

/// What a tile pass does with the first layer's pre-activations `W_0 x + b_0`
/// ([`Arch::tile_hvp_pass_cached`]).
#[derive(Debug)]
pub enum FirstLayer<'c> {
    /// Compute them (as every other pass does).
    Compute,
    /// Compute them and copy them into the slice (`n x fan_out` of layer 0, sample-major).
    Store(&'c mut [f32]),
    /// Read them from the slice (what `Store` wrote for the same parameters and samples)
    /// instead of computing them.
    Reuse(&'c [f32]),
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
    /// The activations in column panels (written over `Z` at the end of a pass).
    ap: &'w [f32],
    d: &'w [f32],
    loss: &'w [f32],
    correct: &'w [f32],
    /// `R(a)` in column panels (written over `R(z)`).
    rap: &'w [f32],
    rd: &'w [f32],
}

fn slots_ref(ws: &[f32], cap: usize, width_sum: usize, hvp: bool) -> SlotsRef<'_> {
    let ts = cap * width_sum;
    let ap = &ws[ts..2 * ts];
    let d = &ws[2 * ts..3 * ts];
    let loss = &ws[3 * ts..3 * ts + cap];
    let correct = &ws[3 * ts + cap..3 * ts + 2 * cap];
    let base = 3 * ts + 2 * cap;
    if hvp {
        SlotsRef {
            ap,
            d,
            loss,
            correct,
            rap: &ws[base..base + ts],
            rd: &ws[base + 2 * ts..base + 3 * ts],
        }
    } else {
        SlotsRef {
            ap,
            d,
            loss,
            correct,
            rap: &[],
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
        match start.checked_add(n) {
            Some(end) if end <= data.len() => {}
            _ => return Err(Error::InvalidConfig("tile reaches past the data")),
        }
        self.check_data(data)?;
        check_min("workspace", ws, self.tile_workspace_len(cap, hvp)?)
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
    /// plus per-sample loss and correctness. Leaves `a_l^T` (the layer inputs transposed,
    /// `[j * cap + i]`) in the `D` slot's block of layer `l < n_layers`, which the R-forward
    /// pass reuses; the backward pass overwrites them.
    #[inline(always)]
    fn forward_into<K: Isa, const CACHE: bool>(
        &self,
        params: &[f32],
        wt: Option<&[f32]>,
        data: &Data<'_>,
        start: usize,
        n: usize,
        s: &mut Slots<'_>,
        cap: usize,
        grad: bool,
        mut first: FirstLayer<'_>,
    ) -> Result<(), Error> {
        let m = self.math();
        let act = self.activation();
        let last = self.n_layers() - 1;
        let d0 = self.input_dim();
        let rows = data.rows_f32(start, n);
        if rows.is_none() {
            for i in 0..n {
                data.copy_features(start + i, &mut s.a[i * d0..(i + 1) * d0])?;
            }
        }
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let b = &params[sp.bias..sp.bias + fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let z_out = &mut s.z[out_off..out_off + n * fo];
            let a_in = layer_input(l, rows, &s.a[in_off..in_off + n * fi]);
            let reused = match (CACHE, l, &first) {
                (true, 0, FirstLayer::Reuse(z0)) => {
                    z_out.copy_from_slice(&z0[..n * fo]);
                    true
                }
                _ => false,
            };
            if !reused {
                match wt {
                    Some(wt) => {
                        let wt = &wt[self.packed_offset(l)..][..self.packed_layer_len(l)];
                        kernels::forward_t::<K>(wt, b, fi, fo, a_in, n, z_out);
                    }
                    None => {
                        let at = &mut s.d[in_off..in_off + cap * fi];
                        transpose(a_in, n, fi, at, cap);
                        kernels::forward::<K>(w, b, fi, fo, at, cap, n, z_out);
                    }
                }
            }
            if let (true, 0, FirstLayer::Store(z0)) = (CACHE, l, &mut first) {
                z0[..n * fo].copy_from_slice(z_out);
            }
            let a_out = &mut s.a[out_off..out_off + n * fo];
            if l == last {
                a_out.copy_from_slice(z_out);
            } else {
                act.value_slice(z_out, a_out, m);
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
                    .value_grad(f, t, &mut s.d[out_off + i * k..out_off + (i + 1) * k], m)?
            } else {
                self.loss().value(f, t, m)?
            };
            s.correct[i] = match t {
                Target::Class(c) if argmax(f) == Some(c) => 1.0,
                _ => 0.0,
            };
        }
        Ok(())
    }

    /// Sample phase of an evaluation for one tile: forward pass, per-sample losses and
    /// correctness of samples `start..start + n` (no deltas; tally with [`Arch::tile_tally`]).
    #[inline(always)]
    pub fn tile_eval_pass<K: Isa>(
        &self,
        params: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.eval_pass::<K>(params, None, data, start, n, ws, cap)
    }

    /// [`Arch::tile_eval_pass`] with the transposed weights `wt` of `params` (written by
    /// [`Arch::pack_transposed`]): the same bits, faster on CPUs with vector units.
    #[inline(always)]
    pub fn tile_eval_pass_packed<K: Isa>(
        &self,
        params: &[f32],
        wt: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        check_len("packed weights", wt, self.packed_len())?;
        self.eval_pass::<K>(params, Some(wt), data, start, n, ws, cap)
    }

    #[inline(always)]
    fn eval_pass<K: Isa>(
        &self,
        params: &[f32],
        wt: Option<&[f32]>,
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_tile(data, start, n, ws, cap, false)?;
        if n == 0 {
            // An empty tile: nothing to compute (its parameter phase and tally add nothing).
            return Ok(());
        }
        let mut s = slots(ws, cap, self.width_sum(), false);
        self.forward_into::<K, false>(
            params,
            wt,
            data,
            start,
            n,
            &mut s,
            cap,
            false,
            FirstLayer::Compute,
        )
    }

    /// Sample phase of the gradient for one tile: forward pass, per-sample losses and all deltas
    /// of samples `start..start + n` of `data`, into `ws` (laid out for tiles of `cap` samples).
    #[inline(always)]
    pub fn tile_grad_pass<K: Isa>(
        &self,
        params: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.grad_pass::<K>(params, None, data, start, n, ws, cap)
    }

    /// [`Arch::tile_grad_pass`] with the transposed weights `wt` of `params` (written by
    /// [`Arch::pack_transposed`]): the same bits, faster on CPUs with vector units.
    #[inline(always)]
    pub fn tile_grad_pass_packed<K: Isa>(
        &self,
        params: &[f32],
        wt: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        check_len("packed weights", wt, self.packed_len())?;
        self.grad_pass::<K>(params, Some(wt), data, start, n, ws, cap)
    }

    #[inline(always)]
    fn grad_pass<K: Isa>(
        &self,
        params: &[f32],
        wt: Option<&[f32]>,
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_tile(data, start, n, ws, cap, false)?;
        if n == 0 {
            // An empty tile: nothing to compute (its parameter phase and tally add nothing).
            return Ok(());
        }
        let mut s = slots(ws, cap, self.width_sum(), false);
        self.forward_into::<K, false>(
            params,
            wt,
            data,
            start,
            n,
            &mut s,
            cap,
            true,
            FirstLayer::Compute,
        )?;
        let m = self.math();
        let act = self.activation();
        for l in (1..self.n_layers()).rev() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let w = &params[sp.weight..sp.weight + fi * fo];
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let (lo, hi) = s.d.split_at_mut(out_off);
            let din = &mut lo[in_off..in_off + n * fi];
            kernels::backward::<K>(w, fi, fo, &hi[..n * fo], n, din);
            let z = &s.z[in_off..in_off + n * fi];
            let a = &s.a[in_off..in_off + n * fi];
            act.mul_deriv1_slice(z, a, din, m);
        }
        self.panelize_inputs(&mut s, data.rows_f32(start, n), n, cap, false);
        Ok(())
    }

    /// Sample phase of the exact Hessian-vector product `H v` for one tile: forward pass,
    /// R-forward pass, and the fused backward / R-backward pass.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn tile_hvp_pass<K: Isa>(
        &self,
        params: &[f32],
        v: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        self.hvp_pass::<K, false>(
            params,
            v,
            None,
            data,
            start,
            n,
            ws,
            cap,
            FirstLayer::Compute,
        )
    }

    /// [`Arch::tile_hvp_pass`] with the transposed weights `wt` of `params` and the transposed
    /// weight part `vt` of `v` (both written by [`Arch::pack_transposed`]): the same bits, faster
    /// on CPUs with vector units.
    #[inline(always)]
    pub fn tile_hvp_pass_packed<K: Isa>(
        &self,
        params: &[f32],
        wt: &[f32],
        v: &[f32],
        vt: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
    ) -> Result<(), Error> {
        check_len("packed weights", wt, self.packed_len())?;
        check_len("packed direction", vt, self.packed_len())?;
        self.hvp_pass::<K, false>(
            params,
            v,
            Some((wt, vt)),
            data,
            start,
            n,
            ws,
            cap,
            FirstLayer::Compute,
        )
    }

    /// [`Arch::tile_hvp_pass_packed`] that keeps the tile's first-layer pre-activations
    /// `W_0 x + b_0` between products at the same parameters: [`FirstLayer::Store`] computes
    /// them and copies them out (`n x fan_out` values of layer 0, sample-major), and
    /// [`FirstLayer::Reuse`] reads them back instead of computing them. Power iteration and
    /// Lanczos take all their products at the same parameters, and the first layer's forward
    /// product is about a third of the first layer's work in a product (most of the work at
    /// wide inputs). The same bits as computing them, provided that what `Reuse` is given is
    /// what `Store` wrote for the same `params`, samples and tile (the caller's contract: the
    /// engine keys its copy on the parameters' bits).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn tile_hvp_pass_cached<K: Isa>(
        &self,
        params: &[f32],
        wt: &[f32],
        v: &[f32],
        vt: &[f32],
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
        first: FirstLayer<'_>,
    ) -> Result<(), Error> {
        check_len("packed weights", wt, self.packed_len())?;
        check_len("packed direction", vt, self.packed_len())?;
        let need = n
            .checked_mul(self.layer(0).fan_out)
            .ok_or(Error::InvalidConfig("more samples than the tile holds"))?;
        match &first {
            FirstLayer::Compute => {}
            FirstLayer::Store(z) => check_min("first-layer pre-activations", z, need)?,
            FirstLayer::Reuse(z) => check_min("first-layer pre-activations", z, need)?,
        }
        self.hvp_pass::<K, true>(params, v, Some((wt, vt)), data, start, n, ws, cap, first)
    }

    #[inline(always)]
    fn hvp_pass<K: Isa, const CACHE: bool>(
        &self,
        params: &[f32],
        v: &[f32],
        packed: Option<(&[f32], &[f32])>,
        data: &Data<'_>,
        start: usize,
        n: usize,
        ws: &mut [f32],
        cap: usize,
        first: FirstLayer<'_>,
    ) -> Result<(), Error> {
        self.check_params("params", params)?;
        self.check_params("direction", v)?;
        self.check_tile(data, start, n, ws, cap, true)?;
        if n == 0 {
            // An empty tile: nothing to compute (its parameter phase adds nothing).
            return Ok(());
        }
        let mut s = slots(ws, cap, self.width_sum(), true);
        self.forward_into::<K, CACHE>(
            params,
            packed.map(|p| p.0),
            data,
            start,
            n,
            &mut s,
            cap,
            true,
            first,
        )?;
        let rows = data.rows_f32(start, n);
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
            let rz = &mut s.rz[out_off..out_off + n * fo];
            if let Some((wt, vt)) = packed {
                let off = self.packed_offset(l);
                let len = self.packed_layer_len(l);
                let (wt, vt) = (&wt[off..][..len], &vt[off..][..len]);
                let a = layer_input(l, rows, &s.a[in_off..in_off + n * fi]);
                let ra = if l == 0 {
                    None
                } else {
                    Some(&s.ra[in_off..in_off + n * fi])
                };
                kernels::r_forward_t::<K>(wt, vt, vb, fi, fo, a, ra, n, rz);
            } else {
                // a_l^T is in the D slot (forward_into); R(a)_l^T goes to the free R(delta) slot.
                let at = &s.d[in_off..in_off + cap * fi];
                let rat = if l == 0 {
                    None
                } else {
                    let rat = &mut s.rd[in_off..in_off + cap * fi];
                    transpose(&s.ra[in_off..in_off + n * fi], n, fi, rat, cap);
                    Some(&*rat)
                };
                kernels::r_forward::<K>(w, vw, vb, fi, fo, at, rat, cap, n, rz);
            }
            let ra = &mut s.ra[out_off..out_off + n * fo];
            if l == last {
                ra.copy_from_slice(rz);
            } else {
                let z = &s.z[out_off..out_off + n * fo];
                let a = &s.a[out_off..out_off + n * fo];
                act.deriv1_mul_slice(z, a, rz, ra, m);
            }
        }
        // Loss Hessian on the outputs.
        let out_off = cap * self.width_prefix(last + 1);
        let k = self.output_dim();
        for i in 0..n {
            let r = out_off + i * k..out_off + (i + 1) * k;
            self.loss()
                .hess_vec(&s.a[r.clone()], &s.rz[r.clone()], &mut s.rd[r], m)?;
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
            let din = &mut dlo[in_off..in_off + n * fi];
            let rdin = &mut rlo[in_off..in_off + n * fi];
            kernels::r_backward::<K>(w, vw, fi, fo, &dhi[..n * fo], &rhi[..n * fo], n, din, rdin);
            let z = &s.z[in_off..in_off + n * fi];
            let a = &s.a[in_off..in_off + n * fi];
            let rz = &s.rz[in_off..in_off + n * fi];
            act.r_backward_slice(z, a, rz, din, rdin, m);
        }
        self.panelize_inputs(&mut s, rows, n, cap, true);
        Ok(())
    }

    /// The last step of a gradient or Hessian-vector pass: the layer inputs `a` (and `R(a)`)
    /// copied in column panels over `Z` (and `R(z)`), which the parameter phase reads and
    /// nothing else needs any more (see [`kernels::panelize`]). Not the first layer's inputs
    /// when they are the data set's contiguous f32 `rows`, unless their stride makes them
    /// collide in the cache ([`kernels::rows_collide`]): the parameter phase reads those in
    /// place ([`Term::GradRows`]; the copy cost more than the streaming saved).
    #[inline(always)]
    fn panelize_inputs(
        &self,
        s: &mut Slots<'_>,
        rows: Option<&[f32]>,
        n: usize,
        cap: usize,
        hvp: bool,
    ) {
        for l in 0..self.n_layers() {
            let fi = self.layer(l).fan_in;
            let off = cap * self.width_prefix(l);
            if l == 0 && rows.is_some() && !kernels::rows_collide(fi) {
                // The parameter phase reads the data rows themselves.
                continue;
            }
            let a = layer_input(l, rows, &s.a[off..off + n * fi]);
            kernels::panelize(a, n, fi, &mut s.z[off..off + n * fi]);
            if hvp && l > 0 {
                kernels::panelize(
                    &s.ra[off..off + n * fi],
                    n,
                    fi,
                    &mut s.rz[off..off + n * fi],
                );
            }
        }
    }

    /// Parameter phase of the gradient: adds one tile's per-sample terms, sample by sample, to
    /// the accumulators of parameters `range` (`out[k - range.start]` holds parameter `k`).
    /// `ws` must come from [`Arch::tile_grad_pass`] (or [`Arch::tile_hvp_pass`]) with the same
    /// `data`, `start`, `n` and `cap` (when the data set's features are contiguous f32 rows,
    /// the first layer's inputs are read from `data` itself, not from a copy in `ws`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn tile_accumulate_grad<K: Isa>(
        &self,
        ws: &[f32],
        cap: usize,
        data: &Data<'_>,
        start: usize,
        n: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_accumulate(cap, data, start, n)?;
        self.accumulate::<K>(ws, cap, data.rows_f32(start, n), n, range, out, false)
    }

    /// Parameter phase of the Hessian-vector product, as [`Arch::tile_accumulate_grad`] but for
    /// the R-gradient; `ws` must come from [`Arch::tile_hvp_pass`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn tile_accumulate_hvp<K: Isa>(
        &self,
        ws: &[f32],
        cap: usize,
        data: &Data<'_>,
        start: usize,
        n: usize,
        range: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_accumulate(cap, data, start, n)?;
        self.accumulate::<K>(ws, cap, data.rows_f32(start, n), n, range, out, true)
    }

    /// The checks of a tile's parameter phase on its samples (those of [`Arch::check_tile`]
    /// but the workspace's, which `accumulate` checks).
    fn check_accumulate(
        &self,
        cap: usize,
        data: &Data<'_>,
        start: usize,
        n: usize,
    ) -> Result<(), Error> {
        if cap == 0 {
            return Err(Error::InvalidConfig("tile size must be positive"));
        }
        match start.checked_add(n) {
            Some(end) if end <= data.len() => {}
            _ => return Err(Error::InvalidConfig("tile reaches past the data")),
        }
        self.check_data(data)
    }

    /// `rows`: the tile's first-layer inputs in the data set, if they are contiguous f32 rows
    /// (then the pass did not copy them into panels, see `Arch::panelize_inputs`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accumulate<K: Isa>(
        &self,
        ws: &[f32],
        cap: usize,
        rows: Option<&[f32]>,
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
        check_min("workspace", ws, self.tile_workspace_len(cap, hvp)?)?;
        if n == 0 {
            // An empty tile adds no term.
            return Ok(());
        }
        let s = slots_ref(ws, cap, self.width_sum(), hvp);
        let p0 = range.start;
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let in_off = cap * self.width_prefix(l);
            let out_off = cap * self.width_prefix(l + 1);
            let a_in = &s.ap[in_off..in_off + n * fi];
            let d = &s.d[out_off..out_off + n * fo];
            // The first layer's term reads the data rows in place when there are any.
            let first = |d| match rows {
                Some(a) if l == 0 && !kernels::rows_collide(fi) => Term::GradRows { d, a },
                _ => Term::Grad { d, a: a_in },
            };
            let term = if !hvp {
                first(d)
            } else if l == 0 {
                // R(a_0) = 0: the term is R(delta) a alone.
                first(&s.rd[out_off..out_off + n * fo])
            } else {
                Term::Hvp {
                    d,
                    rd: &s.rd[out_off..out_off + n * fo],
                    a: a_in,
                    ra: &s.rap[in_off..in_off + n * fi],
                }
            };
            // Weights: the part of [weight, bias) inside the range: a partial first row, whole
            // rows, a partial last row.
            let lo = range.start.max(sp.weight);
            let hi = range.end.min(sp.bias);
            if lo < hi {
                let (o_a, j_a) = ((lo - sp.weight) / fi, (lo - sp.weight) % fi);
                let (o_b, j_b) = ((hi - sp.weight) / fi, (hi - sp.weight) % fi);
                let at = |o: usize| sp.weight + o * fi - p0;
                if o_a == o_b {
                    kernels::accumulate::<K>(
                        term,
                        fi,
                        fo,
                        n,
                        o_a,
                        o_a + 1,
                        j_a,
                        j_b,
                        &mut out[lo - p0..],
                    );
                } else {
                    let mut o_full = o_a;
                    if j_a > 0 {
                        kernels::accumulate::<K>(
                            term,
                            fi,
                            fo,
                            n,
                            o_a,
                            o_a + 1,
                            j_a,
                            fi,
                            &mut out[lo - p0..],
                        );
                        o_full += 1;
                    }
                    if o_full < o_b {
                        kernels::accumulate::<K>(
                            term,
                            fi,
                            fo,
                            n,
                            o_full,
                            o_b,
                            0,
                            fi,
                            &mut out[at(o_full)..],
                        );
                    }
                    if j_b > 0 {
                        kernels::accumulate::<K>(
                            term,
                            fi,
                            fo,
                            n,
                            o_b,
                            o_b + 1,
                            0,
                            j_b,
                            &mut out[at(o_b)..],
                        );
                    }
                }
            }
            // Biases.
            let lo = range.start.max(sp.bias);
            let hi = range.end.min(sp.bias + fo);
            let src = if hvp {
                &s.rd[out_off..out_off + n * fo]
            } else {
                d
            };
            if lo < hi {
                kernels::accumulate_bias(
                    src,
                    fo,
                    n,
                    lo - sp.bias,
                    hi - sp.bias,
                    &mut out[lo - p0..],
                );
            }
        }
        Ok(())
    }

    /// Writes the weight matrices of the parameter-shaped vector `params` transposed, layer
    /// after layer, into `packed` ([`Arch::packed_len`] values), for the `*_packed` tile passes.
    /// The layout within a layer is blocked for the kernels (panels of up to 32 outputs, each
    /// `[fan_in][panel width]`, the last one padded with zeros to a whole vector on CPUs with
    /// vector units); it is an implementation detail, only the packed passes read it.
    pub fn pack_transposed(&self, params: &[f32], packed: &mut [f32]) -> Result<(), Error> {
        self.check_params("params", params)?;
        check_len("packed weights", packed, self.packed_len())?;
        for l in 0..self.n_layers() {
            let sp = self.layer(l);
            let (fi, fo) = (sp.fan_in, sp.fan_out);
            let off = self.packed_offset(l);
            kernels::pack_panels(
                &params[sp.weight..sp.bias],
                fi,
                fo,
                &mut packed[off..off + self.packed_layer_len(l)],
            );
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
        if cap == 0 {
            return Err(Error::InvalidConfig("tile size must be positive"));
        }
        if n > cap {
            return Err(Error::InvalidConfig("more samples than the tile holds"));
        }
        check_min("workspace", ws, self.tile_workspace_len(cap, false)?)?;
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
            self.tile_grad_pass::<Portable>(params, data, start, n, ws, tile)?;
            self.tile_tally(ws, tile, n, &mut loss_sum, &mut correct)?;
            self.tile_accumulate_grad::<Portable>(
                ws,
                tile,
                data,
                start,
                n,
                0..self.n_params(),
                grad,
            )?;
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
            self.tile_hvp_pass::<Portable>(params, v, data, start, n, ws, tile)?;
            self.tile_accumulate_hvp::<Portable>(
                ws,
                tile,
                data,
                start,
                n,
                0..self.n_params(),
                out,
            )?;
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
            self.tile_eval_pass::<Portable>(params, data, start, n, ws, tile)?;
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
        data.copy_features(0, &mut s.a[..self.input_dim()])?;
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
                let mut z = 0.0f32;
                for (&wj, &xj) in w[o * fi..(o + 1) * fi].iter().zip(x) {
                    z = Portable::mul_add(wj, xj, z);
                }
                let z = z + b[o];
                hi[o] = if l == last { z } else { act.value(z, m) };
            }
        }
        Ok(())
    }
}

/// The inputs of layer `l` for a tile: the data's own rows for the first layer when the view
/// stores them contiguously (`rows`, see [`Data::rows_f32`]), else the copy in the `A` slot.
#[inline(always)]
fn layer_input<'x>(l: usize, rows: Option<&'x [f32]>, copied: &'x [f32]) -> &'x [f32] {
    match rows {
        Some(r) if l == 0 => r,
        _ => copied,
    }
}

/// Divides each accumulated sum by the number of samples (rule 3 of the canonical order).
pub fn finish_mean(acc: &mut [f32], n: usize) {
    let nf = n as f32;
    for x in acc.iter_mut() {
        *x /= nf;
    }
}
