//! Multi-threaded evaluation of the loss, gradient and exact Hessian-vector products, bit-identical
//! to `edgewise-core`'s single-threaded functions for every thread count.
//!
//! The canonical order (see `core/src/mlp.rs`) allows two kinds of parallelism and no other:
//! 1. **over samples** in the sample phase: each tile's forward/backward pass is independent, so
//!    tiles are spread over threads (tile `k` of a chunk goes to thread `k mod T`);
//! 2. **over parameters** in the parameter phase: each parameter's accumulator receives its
//!    per-sample terms in sample order, so the parameter vector is cut into `T` contiguous ranges
//!    and each thread walks all tiles of the chunk in order for its range.
//!
//! Samples are processed in chunks (so the workspace stays bounded); the loss is tallied in f64
//! in sample order on the calling thread. With one thread the phases run inline. The tile size is
//! a performance knob only: it never changes a bit.

use std::ops::Range;

use edgewise_core::{Arch, Data, Error, Eval, Objective};

/// Samples per tile in the sample phase.
pub const DEFAULT_TILE: usize = 32;

/// Upper bound of the workspace, in f32 values, that one chunk may use (64 Mi values = 256 MiB).
const CHUNK_BUDGET: usize = 64 << 20;

/// Reusable tile buffers (so that a training loop does not allocate at every step).
#[derive(Default, Debug)]
pub struct Workspace {
    bufs: Vec<Vec<f32>>,
}

/// The network's mean loss over a data view, evaluated with `threads` threads.
pub struct ParObjective<'a> {
    arch: &'a Arch,
    data: Data<'a>,
    threads: usize,
    tile: usize,
    chunk_tiles: usize,
    ws: &'a mut Vec<Vec<f32>>,
}

impl<'a> ParObjective<'a> {
    /// An objective over `data` with `threads` threads (at least 1) and tiles of `tile` samples.
    pub fn new(
        arch: &'a Arch,
        data: Data<'a>,
        threads: usize,
        tile: usize,
        ws: &'a mut Workspace,
    ) -> Result<Self, Error> {
        arch.check_data(&data)?;
        let tile = tile.max(1);
        let threads = threads.max(1);
        let per_tile = arch.workspace_len(tile);
        let n_tiles = data.len().div_ceil(tile);
        // At least one tile per thread, and enough tiles to amortise thread start-up, within budget.
        let budget_tiles = (CHUNK_BUDGET / per_tile.max(1)).max(threads);
        let chunk_tiles = n_tiles.min(budget_tiles).max(1);
        Ok(Self { arch, data, threads, tile, chunk_tiles, ws: &mut ws.bufs })
    }

    /// Limits a chunk to `tiles` tiles (the workspace then holds `tiles` tile buffers).
    pub fn with_chunk_tiles(mut self, tiles: usize) -> Self {
        self.chunk_tiles = tiles.clamp(1, self.data.len().div_ceil(self.tile));
        self
    }

    /// The data view.
    pub fn data(&self) -> &Data<'a> {
        &self.data
    }

    /// The network shape.
    pub fn arch(&self) -> &'a Arch {
        self.arch
    }

    fn ensure_ws(&mut self, hvp: bool) {
        let len = if hvp {
            self.arch.workspace_len(self.tile)
        } else {
            self.arch.workspace_len_grad(self.tile)
        };
        if self.ws.len() < self.chunk_tiles {
            self.ws.resize_with(self.chunk_tiles, Vec::new);
        }
        for w in self.ws.iter_mut() {
            if w.len() < len {
                w.resize(len, 0.0);
            }
        }
    }

    /// Runs `pass(tile_index_in_chunk, start, n, ws)` over the chunk's tiles, spread over threads.
    fn sample_phase<F>(&mut self, chunk_start: usize, tiles: usize, pass: F) -> Result<(), Error>
    where
        F: Fn(usize, usize, &mut [f32]) -> Result<(), Error> + Sync,
    {
        let n_all = self.data.len();
        let tile = self.tile;
        let span = |k: usize| {
            let start = chunk_start + k * tile;
            (start, tile.min(n_all - start))
        };
        let ws = &mut self.ws[..tiles];
        if self.threads == 1 || tiles == 1 {
            for (k, w) in ws.iter_mut().enumerate() {
                let (s, n) = span(k);
                pass(s, n, w)?;
            }
            return Ok(());
        }
        let threads = self.threads.min(tiles);
        // Thread t takes tiles t, t + T, t + 2T, ...
        let mut buckets: Vec<Vec<(usize, &mut Vec<f32>)>> = (0..threads).map(|_| Vec::new()).collect();
        for (k, w) in ws.iter_mut().enumerate() {
            buckets[k % threads].push((k, w));
        }
        let pass = &pass;
        std::thread::scope(|sc| {
            let handles: Vec<_> = buckets
                .into_iter()
                .map(|bucket| {
                    sc.spawn(move || {
                        for (k, w) in bucket {
                            let (s, n) = span(k);
                            pass(s, n, w)?;
                        }
                        Ok::<(), Error>(())
                    })
                })
                .collect();
            let mut result = Ok(());
            for h in handles {
                let r = h.join().unwrap_or(Err(Error::InvalidConfig("worker thread panicked")));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// Adds the chunk's per-sample terms to `out` (all parameters), split over threads by range.
    fn param_phase(
        &self,
        chunk_start: usize,
        tiles: usize,
        out: &mut [f32],
        hvp: bool,
    ) -> Result<(), Error> {
        let n_all = self.data.len();
        let tile = self.tile;
        let arch = self.arch;
        let ws = &self.ws[..tiles];
        let run = |range: Range<usize>, acc: &mut [f32]| -> Result<(), Error> {
            for (k, w) in ws.iter().enumerate() {
                let n = tile.min(n_all - (chunk_start + k * tile));
                if hvp {
                    arch.tile_accumulate_hvp(w, tile, n, range.clone(), acc)?;
                } else {
                    arch.tile_accumulate_grad(w, tile, n, range.clone(), acc)?;
                }
            }
            Ok(())
        };
        let p = out.len();
        let threads = self.threads.min(p.max(1));
        if threads <= 1 {
            return run(0..p, out);
        }
        let cuts: Vec<usize> = (0..=threads).map(|t| p * t / threads).collect();
        let mut pieces = Vec::with_capacity(threads);
        let mut rest = out;
        for t in 0..threads {
            let (head, tail) = rest.split_at_mut(cuts[t + 1] - cuts[t]);
            pieces.push((cuts[t]..cuts[t + 1], head));
            rest = tail;
        }
        let run = &run;
        std::thread::scope(|sc| {
            let handles: Vec<_> =
                pieces.into_iter().map(|(r, acc)| sc.spawn(move || run(r, acc))).collect();
            let mut result = Ok(());
            for h in handles {
                let r = h.join().unwrap_or(Err(Error::InvalidConfig("worker thread panicked")));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    fn tally(&self, tiles: usize, chunk_start: usize, loss: &mut f64, correct: &mut u32) -> Result<(), Error> {
        let n_all = self.data.len();
        for (k, w) in self.ws[..tiles].iter().enumerate() {
            let n = self.tile.min(n_all - (chunk_start + k * self.tile));
            self.arch.tile_tally(w, self.tile, n, loss, correct)?;
        }
        Ok(())
    }

    /// Iterates over chunks: `(chunk_start, tiles)`.
    fn chunks(&self) -> Vec<(usize, usize)> {
        let n_all = self.data.len();
        let per_chunk = self.chunk_tiles * self.tile;
        (0..n_all)
            .step_by(per_chunk)
            .map(|s| (s, (n_all - s).min(per_chunk).div_ceil(self.tile)))
            .collect()
    }

    /// Mean loss and accuracy.
    pub fn evaluate(&mut self, params: &[f32]) -> Result<Eval, Error> {
        self.ensure_ws(false);
        let (arch, data, tile) = (self.arch, self.data, self.tile);
        let (mut loss, mut correct) = (0.0f64, 0u32);
        for (cs, tiles) in self.chunks() {
            self.sample_phase(cs, tiles, |s, n, w| arch.tile_eval_pass(params, &data, s, n, w, tile))?;
            self.tally(tiles, cs, &mut loss, &mut correct)?;
        }
        let n = data.len();
        Ok(Eval {
            loss: (loss / n as f64) as f32,
            accuracy: if data.label(0).is_some() { correct as f32 / n as f32 } else { 0.0 },
            correct,
            n: n as u32,
        })
    }

    /// Mean loss, accuracy, and the gradient written into `grad`.
    pub fn eval_grad(&mut self, params: &[f32], grad: &mut [f32]) -> Result<Eval, Error> {
        if grad.len() != self.arch.n_params() {
            return Err(Error::LengthMismatch { what: "gradient", expected: self.arch.n_params(), got: grad.len() });
        }
        self.ensure_ws(false);
        let (arch, data, tile) = (self.arch, self.data, self.tile);
        grad.fill(0.0);
        let (mut loss, mut correct) = (0.0f64, 0u32);
        for (cs, tiles) in self.chunks() {
            self.sample_phase(cs, tiles, |s, n, w| arch.tile_grad_pass(params, &data, s, n, w, tile))?;
            self.tally(tiles, cs, &mut loss, &mut correct)?;
            self.param_phase(cs, tiles, grad, false)?;
        }
        let n = data.len();
        edgewise_core::mlp::finish_mean(grad, n);
        Ok(Eval {
            loss: (loss / n as f64) as f32,
            accuracy: if data.label(0).is_some() { correct as f32 / n as f32 } else { 0.0 },
            correct,
            n: n as u32,
        })
    }
}

impl Objective for ParObjective<'_> {
    fn dim(&self) -> usize {
        self.arch.n_params()
    }

    fn loss(&mut self, params: &[f32]) -> Result<f32, Error> {
        Ok(self.evaluate(params)?.loss)
    }

    fn loss_grad(&mut self, params: &[f32], grad: &mut [f32]) -> Result<f32, Error> {
        Ok(self.eval_grad(params, grad)?.loss)
    }

    fn hvp(&mut self, params: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        if out.len() != self.arch.n_params() {
            return Err(Error::LengthMismatch { what: "output", expected: self.arch.n_params(), got: out.len() });
        }
        self.ensure_ws(true);
        let (arch, data, tile) = (self.arch, self.data, self.tile);
        out.fill(0.0);
        for (cs, tiles) in self.chunks() {
            self.sample_phase(cs, tiles, |s, n, w| arch.tile_hvp_pass(params, v, &data, s, n, w, tile))?;
            self.param_phase(cs, tiles, out, true)?;
        }
        edgewise_core::mlp::finish_mean(out, data.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewise_core::{Activation, Init, Loss, SplitMix64, Targets};

    fn bits(a: &[f32]) -> Vec<u32> {
        a.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_thread_count_and_tile_gives_the_bits_of_core() {
        let arch = Arch::new(&[7, 9, 5, 3], Activation::Tanh, Loss::CrossEntropy).unwrap();
        let mut params = vec![0.0; arch.n_params()];
        arch.init(&mut params, Init::default(), 3).unwrap();
        let mut rng = SplitMix64::new(1);
        let n = 101;
        let x: Vec<f32> = (0..n * 7).map(|_| rng.normal()).collect();
        let y: Vec<u16> = (0..n).map(|_| rng.below(3) as u16).collect();
        let data = Data::new(&x, 7, Targets::Classes(&y)).unwrap();
        let v: Vec<f32> = (0..arch.n_params()).map(|_| rng.normal()).collect();
        let mut ws = vec![0.0; arch.workspace_len(5)];
        let mut g_ref = vec![0.0; arch.n_params()];
        let l_ref = arch.loss_grad(&params, &data, &mut g_ref, &mut ws, 5).unwrap();
        let mut h_ref = vec![0.0; arch.n_params()];
        arch.hvp(&params, &data, &v, &mut h_ref, &mut ws, 5).unwrap();
        let e_ref = arch.evaluate(&params, &data, &mut ws, 5).unwrap();
        for threads in [1, 2, 3, 8] {
            for tile in [1, 4, 32, 200] {
                let chunk = if tile == 4 { 3 } else { usize::MAX };
                let mut wsp = Workspace::default();
                let mut obj = ParObjective::new(&arch, data, threads, tile, &mut wsp)
                    .unwrap()
                    .with_chunk_tiles(chunk);
                let mut g = vec![0.0; arch.n_params()];
                let l = obj.loss_grad(&params, &mut g).unwrap();
                assert_eq!(l.to_bits(), l_ref.to_bits(), "loss threads {threads} tile {tile}");
                assert_eq!(bits(&g), bits(&g_ref), "grad threads {threads} tile {tile}");
                let mut h = vec![0.0; arch.n_params()];
                obj.hvp(&params, &v, &mut h).unwrap();
                assert_eq!(bits(&h), bits(&h_ref), "hvp threads {threads} tile {tile}");
                assert_eq!(obj.evaluate(&params).unwrap(), e_ref);
            }
        }
    }
}
