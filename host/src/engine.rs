//! Multi-threaded evaluation of the loss, gradient and exact Hessian-vector products, bit-identical
//! to `edgewise-core`'s single-threaded functions for every thread count.
//!
//! The canonical order (see `core/src/mlp.rs`) allows two kinds of parallelism and no other:
//! 1. **over samples** in the sample phase: each tile's forward/backward pass is independent, so
//!    whichever thread is free takes the next tile (which thread computes a tile never changes
//!    its bits);
//! 2. **over parameters** in the parameter phase: each parameter's accumulator receives its
//!    per-sample terms in sample order, so the parameter vector is cut into contiguous ranges
//!    (a few per thread, at whole blocks of weight rows, of about equal cost), and each range takes
//!    the tiles strictly in order: tile 0, 1, 2, ... Whichever thread is free advances a range
//!    (one thread at a time per range), so a thread slowed down by another process does not hold
//!    the others up.
//!
//! The two phases are pipelined over a ring of tile buffers: a thread alternates between
//! advancing ranges (and the loss tally, a consumer like the ranges, in f64 in sample order)
//! over the tiles that are ready, and computing the next unclaimed tile; a buffer is reused once
//! every consumer has taken its tile. So a tile's activations are read by the parameter phase
//! while they are still in cache, and there is no barrier. One evaluation runs on `threads - 1`
//! helper threads of the process-wide [`crate::pool`] (persistent, so an evaluation does not pay
//! for spawning threads) and the calling thread; with one thread everything runs inline, tile
//! after tile. The tile size, the ring size and the number of ranges are performance knobs only:
//! they never change a bit.
//!
//! The forward passes read the transposed weights (`Arch::pack_transposed`), packed once per
//! evaluation (and reused while the parameters stay bit-identical, as in power iteration) into
//! the [`Workspace`]. Hessian-vector products likewise keep each tile's first-layer
//! pre-activations and reuse them at bit-identical parameters
//! ([`ParObjective::set_first_layer_cache`]).
//!
//! # Instruction sets
//!
//! On x86_64 CPUs with AVX-512, or AVX2 and FMA, the tile passes run compiled for them
//! ([`kernels`] says which). The core kernels keep independent accumulators in the lanes of a
//! vector, and every multiply-add of the canonical order is `f32::mul_add` (the correctly
//! rounded fused multiply-add: one FMA instruction in these instances, the C library's `fmaf`
//! in the baseline), so the instruction set changes the speed, not the bits; the tests compare
//! every set against core's plain single-threaded functions (whose multiply-add is
//! `libm::fmaf`).

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use edgewise_core::{Arch, Data, Error, Eval, FirstLayer, Objective};

/// The tile size that asks for [`auto_tile`] (the default everywhere).
pub const DEFAULT_TILE: usize = 0;

/// The automatic tile size for `n` samples, `threads` threads and a network whose largest layer
/// has `max_weights` weights: 128 samples when that layer's weights exceed 1 MiB (they do not
/// stay in the L2 cache, and a larger tile reuses each block of packed weights for more
/// samples before the next block is loaded) and that still leaves at least 8 tiles per thread;
/// else 64 when that leaves at least 4 tiles per thread; else 32. Measured on the benchmark
/// machine (BENCHMARKS.md, "Evening version", the tile sweep): 64 is 0-7% faster than 32 at S
/// and M, 19% (gradient) at S with two threads, and 128 is 2-7% faster than 64 at L. Like
/// every tile size it changes the speed only, never a bit.
pub fn auto_tile(n: usize, threads: usize, max_weights: usize) -> usize {
    let threads = threads.max(1);
    if max_weights * 4 > 1 << 20 && n >= 128 * 8 * threads {
        128
    } else if n >= 64 * 4 * threads {
        64
    } else {
        32
    }
}

/// Upper bound of the workspace, in f32 values, that the ring of tile buffers may use
/// (64 Mi values = 256 MiB).
const CHUNK_BUDGET: usize = 64 << 20;

/// The first-layer cache ([`ParObjective::set_first_layer_cache`]) is only used when the first
/// layer has at least this many inputs: below, the product that reuses the pre-activations was
/// slower than one from scratch (the cached pass compiles less well, and the skipped product is
/// small). Measured on the AMD Zen 4 (`edgewise bench`, one thread, N = 1797, fastest of 31;
/// from scratch / reusing, ms): 40-32-32-10 0.795 / 0.870, 64-32-10 0.492 / 0.531, 96-32-10
/// 0.594 / 0.604, 128-32-10 0.696 / 0.672, 256-32-10 1.139 / 0.985.
const Z0_MIN_FAN_IN: usize = 128;

/// Tile buffers per thread in the ring (enough that a thread rarely waits for a buffer).
const RING_PER_THREAD: usize = 4;

/// Parameter ranges per thread in the parameter phase (with more than one thread). One: each
/// range reads every tile's whole input panel, so fewer ranges read less; on the AVX-512
/// machine one per thread was faster than 2 or 4 at S, M and L (BENCHMARKS.md), the previous
/// machine (AVX2) measured no difference between 2 and 4.
const PIECES_PER_THREAD: usize = 1;

/// The instruction sets the engine's tile passes are compiled for, narrowest first. Every one
/// computes the same bits (the same operations in the same order; only the vector width the
/// compiler uses differs); they exist for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernels {
    /// The target's baseline (SSE2 on x86-64; its multiply-adds call `fmaf`).
    Baseline,
    /// AVX2 and FMA (256-bit vectors).
    Avx2,
    /// AVX-512 (F, VL, BW, DQ: 512-bit vectors).
    Avx512,
}

impl Kernels {
    /// The names `edgewise bench --kernels` accepts (besides `auto`) and reports, in the
    /// order of the variants.
    pub const NAMES: [(&'static str, Kernels); 3] = [
        ("baseline", Kernels::Baseline),
        ("avx2", Kernels::Avx2),
        ("avx512", Kernels::Avx512),
    ];

    /// The name of this set.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize].0
    }
}

/// The widest kernels this CPU (and this build's compiler) supports.
pub fn best_kernels() -> Kernels {
    simd::detect()
}

/// Makes the engine run `k` for the whole process, or the widest this CPU supports when it
/// supports less (returned). The results are the same bits either way; this exists for tests
/// and for measuring what the wider vectors bring (`edgewise bench --kernels baseline`).
pub fn use_kernels(k: Kernels) -> Kernels {
    simd::set(k.min(simd::detect()))
}

/// Makes the engine run the baseline kernels (`true`) or its default ones (`false`: the widest
/// the CPU supports, unless `EDGEWISE_NO_AVX512` or `EDGEWISE_NO_AVX2` is set).
pub fn use_baseline_kernels(baseline: bool) {
    if baseline {
        use_kernels(Kernels::Baseline);
    } else {
        simd::reset();
    }
}

/// Which kernels the engine runs on this CPU: `avx512`, `avx2` or `baseline`.
pub fn kernels() -> &'static str {
    simd::mode().name()
}

/// Reusable buffers (so that a training loop does not allocate at every step): the tiles, and
/// the transposed weights (and direction) the tile passes read.
#[derive(Default, Debug)]
pub struct Workspace {
    bufs: Vec<RwLock<Vec<f32>>>,
    /// The parameters `wt` was packed from (bit for bit), so that repeated products at the
    /// same parameters (power iteration, Lanczos) pack once.
    packed_from: Vec<f32>,
    wt: Vec<f32>,
    vt: Vec<f32>,
    /// Per tile, its first-layer pre-activations at `packed_from` (Hessian-vector products
    /// at the same parameters reuse them: [`ParObjective::set_first_layer_cache`]).
    z0: Vec<Mutex<Vec<f32>>>,
}

/// What an evaluation's tile passes do with the first layer's pre-activations.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Z0 {
    Compute,
    Store,
    Reuse,
}

/// The network's mean loss over a data view, evaluated with `threads` threads.
pub struct ParObjective<'a> {
    arch: &'a Arch,
    data: Data<'a>,
    threads: usize,
    tile: usize,
    chunk_tiles: usize,
    ws: &'a mut Workspace,
    /// Whether Hessian-vector products keep the first layer's pre-activations.
    z0_cache: bool,
    /// Whether `ws.z0` holds them for the parameters `ws.packed_from` (this objective's data
    /// and tiles: it is reset with every new objective, and whenever the parameters change).
    z0_ready: bool,
}

/// What one evaluation computes.
#[derive(Clone, Copy)]
enum Kind<'v> {
    Eval,
    Grad,
    Hvp(&'v [f32]),
}

/// One consumer of the tiles: a parameter range with its accumulators, or the loss tally. Each
/// takes the tiles strictly in order (`next` is the next one); whichever thread holds its lock
/// advances it, so the parameter phase is spread over the threads as dynamically as the sample
/// phase, while every accumulator still receives its terms in sample order.
struct Consumer<'p> {
    next: usize,
    work: Work<'p>,
}

enum Work<'p> {
    Tally {
        loss: f64,
        correct: u32,
    },
    Range {
        range: Range<usize>,
        acc: &'p mut [f32],
    },
}

/// Shared state of one evaluation.
struct Shared<'p> {
    /// The next tile to claim for the sample phase.
    next_tile: AtomicUsize,
    /// Per tile: its sample phase is done.
    done: Vec<AtomicBool>,
    /// Per tile: how many consumers have taken it (its buffer is free again at `consumers.len()`).
    taken: Vec<AtomicUsize>,
    consumers: Vec<Mutex<Consumer<'p>>>,
    /// Consumers that have taken every tile.
    finished: AtomicUsize,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl Shared<'_> {
    fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::Release);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Spins (then yields) while waiting for another thread.
fn pause(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Runs `f`, turning a panic into an error (a panicking worker must still reach the barriers).
fn guarded<F: FnOnce() -> Result<(), Error>>(f: F) -> Result<(), Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or(Err(Error::InvalidConfig("worker thread panicked")))
}

/// The tile size (resolving [`DEFAULT_TILE`]; never more than the `n` samples, since a larger
/// tile only makes the buffers larger and gives the same bits) and the number of tile buffers
/// of an objective over `n` samples with `threads` threads.
fn ring(arch: &Arch, n: usize, threads: usize, tile: usize) -> (usize, usize) {
    let tile = if tile == DEFAULT_TILE {
        let widths = arch.widths();
        let max_weights = widths.windows(2).map(|w| w[0] * w[1]).max().unwrap_or(0);
        auto_tile(n, threads, max_weights)
    } else {
        tile.min(n.max(1))
    };
    let per_tile = arch.workspace_len(tile).max(1);
    let n_tiles = n.div_ceil(tile);
    let budget_tiles = (CHUNK_BUDGET / per_tile).max(1);
    let chunk_tiles = n_tiles
        .min(budget_tiles)
        .min(RING_PER_THREAD * threads.max(1))
        .max(1);
    (tile, chunk_tiles)
}

/// The f32 values a [`ParObjective`] over `n` samples allocates for gradients and
/// Hessian-vector products: its tile buffers, the packed weights and direction, and the
/// first-layer cache (for [`crate::mem`]'s preflight).
pub fn objective_floats(arch: &Arch, n: usize, threads: usize, tile: usize) -> u128 {
    let (tile, ring) = ring(arch, n, threads.max(1), tile);
    let bufs = ring as u128 * arch.workspace_len(tile) as u128;
    let packed = 2 * arch.packed_len() as u128;
    let z0 = z0_cache_len(arch, n.div_ceil(tile), tile).unwrap_or(0) as u128;
    bufs + packed + z0
}

/// The f32 values of the first-layer cache over `n_tiles` tiles of `tile` samples (each tile's
/// pre-activations), or `None` where it is not kept: a first layer narrower than
/// [`Z0_MIN_FAN_IN`], or a cache over the workspace budget.
fn z0_cache_len(arch: &Arch, n_tiles: usize, tile: usize) -> Option<usize> {
    let len = n_tiles.saturating_mul(tile * arch.first_layer().fan_out);
    (arch.first_layer().fan_in >= Z0_MIN_FAN_IN && len <= CHUNK_BUDGET).then_some(len)
}

impl<'a> ParObjective<'a> {
    /// An objective over `data` with `threads` threads (at least 1) and tiles of `tile` samples
    /// ([`DEFAULT_TILE`], 0: [`auto_tile`]).
    pub fn new(
        arch: &'a Arch,
        data: Data<'a>,
        threads: usize,
        tile: usize,
        ws: &'a mut Workspace,
    ) -> Result<Self, Error> {
        arch.check_data(&data)?;
        let threads = threads.max(1);
        let (tile, chunk_tiles) = ring(arch, data.len(), threads, tile);
        Ok(Self {
            arch,
            data,
            threads,
            tile,
            chunk_tiles,
            ws,
            z0_cache: true,
            z0_ready: false,
        })
    }

    /// Whether Hessian-vector products keep each tile's first-layer pre-activations `W_0 x +
    /// b_0` and reuse them for the next products at bit-identical parameters (on by default).
    /// Power iteration and Lanczos take all their products at the same parameters; the first
    /// product computes everything and every later one skips the first layer's forward
    /// product (about a third of the first layer's work; [`Arch::tile_hvp_pass_cached`]).
    /// The same bits either way. Costs `N x fan_out(0)` floats (not kept when that is over the
    /// workspace budget, nor for first layers of fewer than 128 inputs, where it does not pay).
    /// `edgewise bench` turns it off to time a product from scratch.
    pub fn set_first_layer_cache(&mut self, on: bool) {
        self.z0_cache = on;
        self.z0_ready = false;
    }

    /// Sets the ring of tile buffers to `tiles` buffers (at least 1, at most the number of tiles):
    /// the workspace then holds `tiles` tile buffers.
    pub fn with_chunk_tiles(mut self, tiles: usize) -> Self {
        self.chunk_tiles = tiles.clamp(1, self.data.len().div_ceil(self.tile));
        self
    }

    /// The data view.
    pub fn data(&self) -> &Data<'a> {
        &self.data
    }

    /// Samples per tile (after resolving [`DEFAULT_TILE`]).
    pub fn tile(&self) -> usize {
        self.tile
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
        let bufs = &mut self.ws.bufs;
        if bufs.len() < self.chunk_tiles {
            bufs.resize_with(self.chunk_tiles, Default::default);
        }
        for w in bufs.iter_mut() {
            let w = w.get_mut().unwrap_or_else(|p| p.into_inner());
            if w.len() < len {
                w.resize(len, 0.0);
            }
        }
    }

    /// Cuts `0..p` into about `pieces` contiguous ranges of similar cost, at boundaries of
    /// blocks of 4 weight rows (the parameter-phase kernel's row block) where possible.
    fn cuts(&self, pieces: usize) -> Vec<usize> {
        let p = self.arch.n_params();
        let mut bounds = vec![0];
        for t in 1..pieces {
            let target = p * t / pieces;
            let snapped = self.snap(target);
            if snapped > *bounds.last().unwrap_or(&0) && snapped < p {
                bounds.push(snapped);
            }
        }
        bounds.push(p);
        bounds
    }

    /// The row-block boundary nearest to parameter `k`.
    fn snap(&self, k: usize) -> usize {
        for sp in self.arch.layers() {
            let end = sp.bias + sp.fan_out;
            if k >= end {
                continue;
            }
            if k >= sp.bias {
                return if k - sp.bias < end - k { sp.bias } else { end };
            }
            let block = 4 * sp.fan_in;
            let b = ((k - sp.weight) + block / 2) / block;
            return (sp.weight + b * block).min(sp.bias);
        }
        k
    }

    /// Packs the transposed weights of `params` (unless they are packed already) and, for a
    /// Hessian-vector product, of the direction `v`.
    fn pack(&mut self, params: &[f32], v: Option<&[f32]>) -> Result<(), Error> {
        let (arch, ws) = (self.arch, &mut *self.ws);
        let len = arch.packed_len();
        let same = ws.packed_from.len() == params.len()
            && ws.wt.len() == len
            && ws
                .packed_from
                .iter()
                .zip(params)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            self.z0_ready = false;
            ws.wt.resize(len, 0.0);
            arch.pack_transposed(params, &mut ws.wt)?;
            ws.packed_from.clear();
            ws.packed_from.extend_from_slice(params);
        }
        if let Some(v) = v {
            ws.vt.resize(len, 0.0);
            arch.pack_transposed(v, &mut ws.vt)?;
        }
        Ok(())
    }

    /// The sample phase of one tile (AVX-512 or AVX2 kernels when available).
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        kind: Kind<'_>,
        z0: Z0,
        params: &[f32],
        k: usize,
        start: usize,
        n: usize,
        w: &mut [f32],
    ) -> Result<(), Error> {
        let (arch, data, tile) = (self.arch, &self.data, self.tile);
        let (wt, vt) = (&self.ws.wt, &self.ws.vt);
        match kind {
            Kind::Eval => simd::eval_pass(arch, params, wt, data, start, n, w, tile),
            Kind::Grad => simd::grad_pass(arch, params, wt, data, start, n, w, tile),
            Kind::Hvp(v) => {
                let slot = match z0 {
                    Z0::Compute => None,
                    _ => self.ws.z0.get(k),
                };
                match slot {
                    None => simd::hvp_pass(arch, params, wt, v, vt, data, start, n, w, tile),
                    Some(slot) => {
                        let mut z = slot.lock().unwrap_or_else(|p| p.into_inner());
                        let first = if z0 == Z0::Reuse {
                            FirstLayer::Reuse(&z)
                        } else {
                            FirstLayer::Store(&mut z)
                        };
                        simd::hvp_pass_cached(
                            arch, params, wt, v, vt, data, start, n, w, tile, first,
                        )
                    }
                }
            }
        }
    }

    /// One evaluation: the loss sum and correct count, and (gradient, Hessian-vector product)
    /// the per-sample terms accumulated into `out` (not yet divided by `N`).
    fn run(
        &mut self,
        params: &[f32],
        kind: Kind<'_>,
        out: &mut [f32],
    ) -> Result<(f64, u32), Error> {
        self.ensure_ws(matches!(kind, Kind::Hvp(_)));
        self.pack(
            params,
            if let Kind::Hvp(v) = kind {
                Some(v)
            } else {
                None
            },
        )?;
        out.fill(0.0);
        let n_tiles = self.data.len().div_ceil(self.tile);
        let threads = self.threads.min(n_tiles).max(1);
        let z0_len = self.tile * self.arch.first_layer().fan_out;
        let z0 = if !matches!(kind, Kind::Hvp(_))
            || !self.z0_cache
            || z0_cache_len(self.arch, n_tiles, self.tile).is_none()
        {
            Z0::Compute
        } else if self.z0_ready {
            Z0::Reuse
        } else {
            let slots = &mut self.ws.z0;
            if slots.len() < n_tiles {
                slots.resize_with(n_tiles, Default::default);
            }
            for z in slots.iter_mut().take(n_tiles) {
                let z = z.get_mut().unwrap_or_else(|p| p.into_inner());
                if z.len() < z0_len {
                    z.resize(z0_len, 0.0);
                }
            }
            Z0::Store
        };
        // The tally, and (gradient, HVP) the parameter ranges: a few per thread, so that a thread
        // slowed down by something else does not hold the others up.
        let mut consumers = vec![Mutex::new(Consumer {
            next: 0,
            work: Work::Tally {
                loss: 0.0,
                correct: 0,
            },
        })];
        if !matches!(kind, Kind::Eval) {
            let pieces = if threads == 1 {
                1
            } else {
                PIECES_PER_THREAD * threads
            };
            let cuts = self.cuts(pieces);
            let mut rest = out;
            for c in cuts.windows(2) {
                let (head, tail) = rest.split_at_mut(c[1] - c[0]);
                consumers.push(Mutex::new(Consumer {
                    next: 0,
                    work: Work::Range {
                        range: c[0]..c[1],
                        acc: head,
                    },
                }));
                rest = tail;
            }
        }
        let shared = Shared {
            next_tile: AtomicUsize::new(0),
            done: (0..n_tiles).map(|_| AtomicBool::new(false)).collect(),
            taken: (0..n_tiles).map(|_| AtomicUsize::new(0)).collect(),
            consumers,
            finished: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        };
        let this = &*self;
        if threads == 1 {
            this.worker(params, kind, z0, &shared);
        } else if crate::pool::run_on(threads, &|| this.worker(params, kind, z0, &shared)).is_err()
        {
            return Err(Error::InvalidConfig("worker thread panicked"));
        }
        if let Some(e) = shared.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if z0 == Z0::Store {
            // Every tile's pass ran (no error), so every tile's slot holds its values.
            self.z0_ready = true;
        }
        let mut consumers = shared.consumers.into_iter();
        match consumers
            .next()
            .map(|c| c.into_inner().unwrap_or_else(|p| p.into_inner()).work)
        {
            Some(Work::Tally { loss, correct }) => Ok((loss, correct)),
            _ => Err(Error::InvalidConfig("engine: no tally")),
        }
    }

    /// What every thread does in an evaluation, until all consumers have taken all tiles:
    /// advance any consumer (not held by another thread) over the tiles that are ready, in order;
    /// otherwise compute the next unclaimed tile once its ring buffer is free.
    fn worker(&self, params: &[f32], kind: Kind<'_>, z0: Z0, sh: &Shared<'_>) {
        let n_all = self.data.len();
        let tile = self.tile;
        let n_tiles = sh.done.len();
        let ring = self.chunk_tiles;
        let span = |k: usize| {
            let start = k * tile;
            (start, tile.min(n_all - start))
        };
        let hvp = matches!(kind, Kind::Hvp(_));
        let mut claimed: Option<usize> = None;
        let mut exhausted = false;
        let mut spins = 0;
        while !sh.failed() {
            let mut progressed = false;
            // Advance the consumers over the ready tiles.
            for c in &sh.consumers {
                let Ok(mut c) = c.try_lock() else { continue };
                let c = &mut *c;
                while c.next < n_tiles && sh.done[c.next].load(Ordering::Acquire) {
                    let k = c.next;
                    let n = span(k).1;
                    let r = guarded(|| {
                        let w = self.ws.bufs[k % ring]
                            .read()
                            .unwrap_or_else(|p| p.into_inner());
                        match &mut c.work {
                            Work::Tally { loss, correct } => {
                                self.arch.tile_tally(&w, tile, n, loss, correct)
                            }
                            Work::Range { range, acc } => simd::accumulate(
                                self.arch,
                                &w,
                                tile,
                                &self.data,
                                span(k).0,
                                n,
                                range.clone(),
                                acc,
                                hvp,
                            ),
                        }
                    });
                    if let Err(e) = r {
                        sh.fail(e);
                        return;
                    }
                    sh.taken[k].fetch_add(1, Ordering::AcqRel);
                    c.next += 1;
                    progressed = true;
                    if c.next == n_tiles {
                        sh.finished.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            // Claim a tile, and compute it once its buffer is free.
            if claimed.is_none() && !exhausted {
                let k = sh.next_tile.fetch_add(1, Ordering::Relaxed);
                if k < n_tiles {
                    claimed = Some(k);
                } else {
                    exhausted = true;
                }
            }
            if let Some(k) = claimed {
                if k < ring || sh.taken[k - ring].load(Ordering::Acquire) == sh.consumers.len() {
                    let (start, n) = span(k);
                    let r = guarded(|| {
                        let mut w = self.ws.bufs[k % ring]
                            .write()
                            .unwrap_or_else(|p| p.into_inner());
                        self.pass(kind, z0, params, k, start, n, &mut w)
                    });
                    if let Err(e) = r {
                        sh.fail(e);
                        return;
                    }
                    sh.done[k].store(true, Ordering::Release);
                    claimed = None;
                    progressed = true;
                }
            }
            if exhausted
                && claimed.is_none()
                && sh.finished.load(Ordering::Acquire) == sh.consumers.len()
            {
                break;
            }
            if progressed {
                spins = 0;
            } else {
                pause(&mut spins);
            }
        }
    }

    /// Mean loss and accuracy.
    pub fn evaluate(&mut self, params: &[f32]) -> Result<Eval, Error> {
        let (loss, correct) = self.run(params, Kind::Eval, &mut [])?;
        Ok(self.eval_of(loss, correct))
    }

    fn eval_of(&self, loss: f64, correct: u32) -> Eval {
        let n = self.data.len();
        Eval {
            loss: (loss / n as f64) as f32,
            accuracy: if self.data.label(0).is_some() {
                correct as f32 / n as f32
            } else {
                0.0
            },
            correct,
            n: n as u32,
        }
    }

    /// Mean loss, accuracy, and the gradient written into `grad`.
    pub fn eval_grad(&mut self, params: &[f32], grad: &mut [f32]) -> Result<Eval, Error> {
        if grad.len() != self.arch.n_params() {
            return Err(Error::LengthMismatch {
                what: "gradient",
                expected: self.arch.n_params(),
                got: grad.len(),
            });
        }
        let (loss, correct) = self.run(params, Kind::Grad, grad)?;
        edgewise_core::mlp::finish_mean(grad, self.data.len());
        Ok(self.eval_of(loss, correct))
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
            return Err(Error::LengthMismatch {
                what: "output",
                expected: self.arch.n_params(),
                got: out.len(),
            });
        }
        self.run(params, Kind::Hvp(v), out)?;
        edgewise_core::mlp::finish_mean(out, self.data.len());
        Ok(())
    }
}

/// The tile passes and the parameter phase, compiled for AVX-512 or AVX2 (with FMA) when the
/// CPU has it.
///
/// This is one of the crate's two uses of `unsafe` (the other is `crate::pool`): calling a
/// `#[target_feature(enable = "avx2,fma")]` (or `"avx512f,..."`) function is sound only on a CPU
/// with those features, which `is_x86_feature_detected!` checks at run time (once; the result
/// is cached). The functions only call core's tile passes, which are `#[inline(always)]` so that
/// they are compiled inside these functions with the wider instruction set enabled, and which
/// take their multiply-add from the [`Isa`] type they are instantiated with: here
/// `f32::mul_add`, which the compiler emits as the vector FMA instructions inside these
/// functions and as a call of the C library's correctly rounded `fmaf` in the baseline; the
/// same bits either way (core's canonical order rounds every accumulation as one fused
/// multiply-add; the engine's bit-identity test runs every set). The baseline and AVX2
/// instances use blocks of half the rows ([`Isa::HALF_ROWS`]: 16 vector registers).
/// They need Rust 1.89 (where those target features became stable); built with an older
/// compiler the AVX-512 instances are the AVX2 ones and `detect` never reports them.
mod simd {
    use std::ops::Range;

    use edgewise_core::{Arch, Data, Error, FirstLayer, Isa};

    /// `f32::mul_add` with blocks of half the rows (the baseline and AVX2 instances: 16
    /// vector registers).
    pub struct HostFma;

    impl Isa for HostFma {
        #[inline(always)]
        fn mul_add(a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
        const HALF_ROWS: bool = true;
    }

    /// `f32::mul_add` with core's full blocks (the AVX-512 instances: 32 vector registers).
    pub struct HostFma512;

    impl Isa for HostFma512 {
        #[inline(always)]
        fn mul_add(a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
    }

    /// The multiply-add of the baseline instances (the body of each pass names it `K`).
    use HostFma as K;

    use super::Kernels;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: not decided yet, else `1 + Kernels as u8`.
    static MODE: AtomicU8 = AtomicU8::new(0);

    fn decode(m: u8) -> Kernels {
        Kernels::NAMES
            .get(usize::from(m.saturating_sub(1)))
            .map_or(Kernels::Baseline, |&(_, k)| k)
    }

    /// The kernels that run: the widest the CPU supports, capped by `EDGEWISE_NO_AVX512`
    /// (at AVX2) or `EDGEWISE_NO_AVX2` (at the baseline) when set, unless [`set`] chose.
    pub fn mode() -> Kernels {
        match MODE.load(Ordering::Relaxed) {
            0 => {
                let mut k = detect();
                if std::env::var_os("EDGEWISE_NO_AVX512").is_some() {
                    k = k.min(Kernels::Avx2);
                }
                if std::env::var_os("EDGEWISE_NO_AVX2").is_some() {
                    k = Kernels::Baseline;
                }
                set(k)
            }
            m => decode(m),
        }
    }

    pub fn set(k: Kernels) -> Kernels {
        MODE.store(1 + k as u8, Ordering::Relaxed);
        k
    }

    /// Back to the default of [`mode`].
    pub fn reset() {
        MODE.store(0, Ordering::Relaxed);
    }

    /// The widest kernels the CPU supports (and this build has).
    pub fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512_built()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernels::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernels::Avx2;
            }
        }
        Kernels::Baseline
    }

    #[rustversion::since(1.89)]
    fn avx512_built() -> bool {
        true
    }

    #[rustversion::before(1.89)]
    fn avx512_built() -> bool {
        false
    }

    /// Defines each pass three times from one body: a safe dispatcher that runs the widest
    /// instance [`mode`] allows and the baseline otherwise, and the AVX2 and AVX-512 instances
    /// in `x86` and `x86_512`. Those are `unsafe fn` (not safe `#[target_feature]` functions,
    /// which need Rust 1.86; the workspace supports 1.85); each may only be called on a CPU that
    /// supports its features.
    macro_rules! passes {
        ($(fn $name:ident($($arg:ident: $ty:ty),*) $body:block)*) => {
            $(
                #[allow(clippy::too_many_arguments)]
                pub fn $name($($arg: $ty),*) -> Result<(), Error> {
                    #[cfg(target_arch = "x86_64")]
                    {
                        match mode() {
                            // SAFETY: the CPU supports AVX-512F/VL/BW/DQ and FMA (`detect`, run time).
                            Kernels::Avx512 => return unsafe { x86_512::$name($($arg),*) },
                            // SAFETY: the CPU supports AVX2 and FMA (checked at run time by `detect`).
                            Kernels::Avx2 => return unsafe { x86::$name($($arg),*) },
                            Kernels::Baseline => {}
                        }
                    }
                    $body
                }
            )*

            #[cfg(target_arch = "x86_64")]
            mod x86 {
                use super::{Arch, Data, Error, FirstLayer, Range};
                use super::HostFma as K;
                $(
                    #[allow(clippy::too_many_arguments)]
                    #[target_feature(enable = "avx2,fma")]
                    pub unsafe fn $name($($arg: $ty),*) -> Result<(), Error> $body
                )*
            }

            #[cfg(target_arch = "x86_64")]
            #[rustversion::since(1.89)]
            mod x86_512 {
                use super::{Arch, Data, Error, FirstLayer, Range};
                use super::HostFma512 as K;
                $(
                    #[allow(clippy::too_many_arguments)]
                    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")]
                    pub unsafe fn $name($($arg: $ty),*) -> Result<(), Error> $body
                )*
            }

            // Never called (`detect` does not report AVX-512 from these builds).
            #[cfg(target_arch = "x86_64")]
            #[rustversion::before(1.89)]
            mod x86_512 {
                pub use super::x86::*;
            }
        };
    }

    passes! {
        fn eval_pass(
            a: &Arch, p: &[f32], wt: &[f32], d: &Data<'_>, s: usize, n: usize, w: &mut [f32],
            cap: usize
        ) {
            a.tile_eval_pass_packed::<K>(p, wt, d, s, n, w, cap)
        }

        fn grad_pass(
            a: &Arch, p: &[f32], wt: &[f32], d: &Data<'_>, s: usize, n: usize, w: &mut [f32],
            cap: usize
        ) {
            a.tile_grad_pass_packed::<K>(p, wt, d, s, n, w, cap)
        }

        fn hvp_pass(
            a: &Arch, p: &[f32], wt: &[f32], v: &[f32], vt: &[f32], d: &Data<'_>, s: usize,
            n: usize, w: &mut [f32], cap: usize
        ) {
            a.tile_hvp_pass_packed::<K>(p, wt, v, vt, d, s, n, w, cap)
        }

        fn hvp_pass_cached(
            a: &Arch, p: &[f32], wt: &[f32], v: &[f32], vt: &[f32], d: &Data<'_>, s: usize,
            n: usize, w: &mut [f32], cap: usize, first: FirstLayer<'_>
        ) {
            a.tile_hvp_pass_cached::<K>(p, wt, v, vt, d, s, n, w, cap, first)
        }

        fn accumulate(
            a: &Arch, w: &[f32], cap: usize, d: &Data<'_>, s: usize, n: usize, r: Range<usize>,
            out: &mut [f32], hvp: bool
        ) {
            if hvp {
                a.tile_accumulate_hvp::<K>(w, cap, d, s, n, r, out)
            } else {
                a.tile_accumulate_grad::<K>(w, cap, d, s, n, r, out)
            }
        }
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
    fn the_automatic_tile_follows_the_data_and_the_largest_layer() {
        let (big, small) = (3072 * 200, 784 * 32);
        assert_eq!(auto_tile(1024, 1, big), 128);
        assert_eq!(auto_tile(1023, 1, big), 64);
        assert_eq!(auto_tile(5000, 2, big), 128);
        assert_eq!(auto_tile(5000, 2, small), 64);
        assert_eq!(auto_tile(1000, 2, small), 64);
        assert_eq!(auto_tile(1797, 2, 64 * 32), 64);
        assert_eq!(auto_tile(511, 2, small), 32);
        assert_eq!(auto_tile(256, 1, small), 64);
        assert_eq!(auto_tile(255, 1, small), 32);
        assert_eq!(auto_tile(10, 0, big), 32);
        let arch = Arch::new(&[3, 2], Activation::Tanh, Loss::Mse).unwrap();
        let x = vec![0.5f32; 3 * 2048];
        let y = vec![0u16; 2048];
        let data = Data::new(&x, 3, Targets::Classes(&y)).unwrap();
        let mut ws = Workspace::default();
        let obj = ParObjective::new(&arch, data, 2, DEFAULT_TILE, &mut ws).unwrap();
        assert_eq!(obj.tile(), 64);
        // A tile larger than the data is cut to the data (the same bits, smaller buffers).
        let obj = ParObjective::new(&arch, data, 2, usize::MAX, &mut ws).unwrap();
        assert_eq!(obj.tile(), 2048);
    }

    #[test]
    fn kernel_names_follow_the_variants() {
        for (i, &(name, k)) in Kernels::NAMES.iter().enumerate() {
            assert_eq!(k as usize, i, "{name}");
            assert_eq!(k.name(), name);
        }
    }

    /// The vectorised `tanh` (core's `tanh_slice`) gives the bits of the scalar `tanhf` when
    /// compiled for each instruction set the engine dispatches to (core's own test covers the
    /// baseline): every 1021st bit pattern and every pattern near the switch between its two
    /// formulas, its cap and the smallest normal number.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_vectorised_tanh_is_the_scalar_one_with_every_kernel_set() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(z: &[f32], out: &mut [f32]) {
            edgewise_core::tanh_slice(z, out)
        }
        #[rustversion::since(1.89)]
        #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")]
        unsafe fn avx512(z: &[f32], out: &mut [f32]) {
            edgewise_core::tanh_slice(z, out)
        }
        #[rustversion::before(1.89)]
        unsafe fn avx512(z: &[f32], out: &mut [f32]) {
            avx2(z, out)
        }
        let mut z: Vec<f32> = (0..1u64 << 32)
            .step_by(1021)
            .map(|b| f32::from_bits(b as u32))
            .collect();
        for t in [0.7f32.to_bits(), 0x4120_0000, 0x0080_0000, 0x4110_2000] {
            for s in [0, 0x8000_0000] {
                z.extend(((t | s) - 3000..(t | s) + 3000).map(f32::from_bits));
            }
        }
        let want: Vec<f32> = z.iter().map(|&x| edgewise_core::tanhf(x)).collect();
        let best = best_kernels();
        let mut out = vec![0.0f32; z.len()];
        let mut ran = 0;
        for k in [Kernels::Avx2, Kernels::Avx512] {
            if k > best {
                continue;
            }
            out.fill(0.0);
            // SAFETY: the CPU supports `k`'s features (`best_kernels` detected them).
            unsafe {
                match k {
                    Kernels::Avx2 => avx2(&z, &mut out),
                    _ => avx512(&z, &mut out),
                }
            }
            for (i, (&g, &w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{k:?}: tanh({:#010x}) = {:#010x}, scalar {:#010x}",
                    z[i].to_bits(),
                    g.to_bits(),
                    w.to_bits()
                );
            }
            ran += 1;
        }
        // On a CPU without AVX2 there is nothing to compare (the baseline is core's test).
        assert!(ran > 0 || best == Kernels::Baseline);
    }

    #[test]
    fn the_first_layer_cache_follows_the_parameters() {
        // A first layer wide enough for the cache (`Z0_MIN_FAN_IN`).
        let d0 = Z0_MIN_FAN_IN + 2;
        let arch = Arch::new(&[d0, 9, 4], Activation::Tanh, Loss::CrossEntropy).unwrap();
        let mut params = vec![0.0; arch.n_params()];
        arch.init(&mut params, Init::default(), 5).unwrap();
        let mut rng = SplitMix64::new(2);
        let n = 70;
        let x: Vec<f32> = (0..n * d0).map(|_| rng.normal()).collect();
        let y: Vec<u16> = (0..n).map(|_| rng.below(4) as u16).collect();
        let data = Data::new(&x, d0, Targets::Classes(&y)).unwrap();
        let v: Vec<f32> = (0..arch.n_params()).map(|_| rng.normal()).collect();
        // The same parameters but for one bit of one first-layer weight.
        let mut nudged = params.clone();
        nudged[3] = f32::from_bits(nudged[3].to_bits() ^ 1);
        let mut ws = vec![0.0; arch.workspace_len(8)];
        let reference = |p: &[f32], ws: &mut Vec<f32>| {
            let mut h = vec![0.0; arch.n_params()];
            arch.hvp(p, &data, &v, &mut h, ws, 8).unwrap();
            bits(&h)
        };
        let (h_p, h_n) = (reference(&params, &mut ws), reference(&nudged, &mut ws));
        assert_ne!(h_p, h_n);
        for (threads, cache) in [(1, true), (2, true), (3, true), (2, false)] {
            let mut wsp = Workspace::default();
            let mut obj = ParObjective::new(&arch, data, threads, 8, &mut wsp).unwrap();
            obj.set_first_layer_cache(cache);
            let mut h = vec![0.0; arch.n_params()];
            let mut g = vec![0.0; arch.n_params()];
            let what = format!("threads {threads} cache {cache}");
            // Stored, reused, dropped by new parameters (a product or a gradient), stored again.
            for (p, want) in [
                (&params, &h_p),
                (&params, &h_p),
                (&nudged, &h_n),
                (&nudged, &h_n),
                (&params, &h_p),
            ] {
                obj.hvp(p, &v, &mut h).unwrap();
                assert_eq!(&bits(&h), want, "{what}");
            }
            obj.loss_grad(&nudged, &mut g).unwrap();
            obj.hvp(&params, &v, &mut h).unwrap();
            assert_eq!(bits(&h), h_p, "{what}");
            obj.hvp(&params, &v, &mut h).unwrap();
            assert_eq!(bits(&h), h_p, "{what}");
            assert_eq!(obj.z0_ready, cache, "{what}");
        }
        // A narrower first layer does not use it.
        let narrow = Arch::new(&[Z0_MIN_FAN_IN - 1, 9, 4], Activation::Tanh, Loss::Mse).unwrap();
        let xn: Vec<f32> = (0..n * (Z0_MIN_FAN_IN - 1)).map(|_| rng.normal()).collect();
        let dn = Data::new(&xn, Z0_MIN_FAN_IN - 1, Targets::Classes(&y)).unwrap();
        let mut pn = vec![0.0; narrow.n_params()];
        narrow.init(&mut pn, Init::default(), 5).unwrap();
        let vn: Vec<f32> = (0..narrow.n_params()).map(|_| rng.normal()).collect();
        let mut wsp = Workspace::default();
        let mut obj = ParObjective::new(&narrow, dn, 1, 8, &mut wsp).unwrap();
        let mut h = vec![0.0; narrow.n_params()];
        obj.hvp(&pn, &vn, &mut h).unwrap();
        obj.hvp(&pn, &vn, &mut h).unwrap();
        assert!(!obj.z0_ready);
    }

    #[test]
    fn every_thread_count_and_tile_gives_the_bits_of_core() {
        for (widths, loss, n) in [
            (&[7usize, 9, 5, 3][..], Loss::CrossEntropy, 101usize),
            (&[40, 33, 17, 10][..], Loss::Mse, 150),
            (&[35, 24, 1][..], Loss::Mse, 70),
        ] {
            let arch = Arch::new(widths, Activation::Tanh, loss).unwrap();
            let d0 = widths[0];
            let k = *widths.last().unwrap() as u64;
            let mut params = vec![0.0; arch.n_params()];
            arch.init(&mut params, Init::default(), 3).unwrap();
            let mut rng = SplitMix64::new(1);
            let x: Vec<f32> = (0..n * d0).map(|_| rng.normal()).collect();
            let y: Vec<u16> = (0..n).map(|_| rng.below(k) as u16).collect();
            let data = Data::new(&x, d0, Targets::Classes(&y)).unwrap();
            let v: Vec<f32> = (0..arch.n_params()).map(|_| rng.normal()).collect();
            let mut ws = vec![0.0; arch.workspace_len(5)];
            let mut g_ref = vec![0.0; arch.n_params()];
            let l_ref = arch
                .loss_grad(&params, &data, &mut g_ref, &mut ws, 5)
                .unwrap();
            let mut h_ref = vec![0.0; arch.n_params()];
            arch.hvp(&params, &data, &v, &mut h_ref, &mut ws, 5)
                .unwrap();
            let e_ref = arch.evaluate(&params, &data, &mut ws, 5).unwrap();
            // Every kernel set this CPU has (capped: a CPU without AVX-512 runs AVX2 twice).
            use Kernels::{Avx2, Avx512, Baseline};
            for (threads, want) in [
                (1, Avx512),
                (2, Avx512),
                (3, Baseline),
                (8, Avx512),
                (2, Baseline),
                (1, Avx2),
                (3, Avx2),
            ] {
                let kernels = use_kernels(want);
                for tile in [1, 4, 32, 128, 200, DEFAULT_TILE] {
                    let chunk = if tile == 4 { 3 } else { usize::MAX };
                    let mut wsp = Workspace::default();
                    let mut obj = ParObjective::new(&arch, data, threads, tile, &mut wsp)
                        .unwrap()
                        .with_chunk_tiles(chunk);
                    let what =
                        format!("{widths:?} threads {threads} tile {tile} kernels {kernels:?}");
                    let mut g = vec![0.0; arch.n_params()];
                    let l = obj.loss_grad(&params, &mut g).unwrap();
                    assert_eq!(l.to_bits(), l_ref.to_bits(), "loss {what}");
                    assert_eq!(bits(&g), bits(&g_ref), "grad {what}");
                    let mut h = vec![0.0; arch.n_params()];
                    obj.hvp(&params, &v, &mut h).unwrap();
                    assert_eq!(bits(&h), bits(&h_ref), "hvp {what}");
                    // Again at the same parameters (the packed weights are reused).
                    obj.hvp(&params, &g, &mut h).unwrap();
                    let mut h2 = vec![0.0; arch.n_params()];
                    arch.hvp(&params, &data, &g, &mut h2, &mut ws, 5).unwrap();
                    assert_eq!(bits(&h), bits(&h2), "hvp again {what}");
                    assert_eq!(obj.evaluate(&params).unwrap(), e_ref, "eval {what}");
                }
            }
        }
        use_baseline_kernels(false);
    }
}
