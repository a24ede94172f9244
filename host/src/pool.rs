//! A persistent pool of helper threads for the engine's evaluations.
//!
//! Spawning threads for every evaluation costs far more than it should on virtual machines:
//! on the 2-vCPU KVM guest of BENCHMARKS.md a `std::thread::scope` spawn and join takes
//! 0.12-0.17 ms on average and a job on this pool 2-5 us (the `threads` criterion benchmarks),
//! against 0.5-3 ms for a whole gradient at the reference sizes S and M. So the helpers live as long as the process: after a job they spin
//! for [`SPIN`] waiting for the next one (power iteration and training loops issue evaluations
//! back to back), then sleep on a condition variable until woken.
//!
//! Which thread runs which part of an evaluation never changes a bit (see `engine`), so the pool
//! is a performance device only. One process-wide pool serves every evaluation; an evaluation
//! that finds it busy (another thread is using it, as in parallel tests) spawns scoped threads as
//! before.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps.
pub const SPIN: Duration = Duration::from_millis(2);

/// A job: the closure, the number of helpers that run it and its generation.
type Job = (&'static (dyn Fn() + Sync), usize, usize);

struct Shared {
    /// Bumped once per job (and on shutdown).
    generation: AtomicUsize,
    job: Mutex<Option<Job>>,
    /// Helpers still running the current job.
    remaining: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// Number of sleeping helpers (guarded by the mutex, for the condition variable).
    sleepers: Mutex<usize>,
    wake: Condvar,
}

/// A helper thread panicked while running a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Panicked;

/// A fixed set of helper threads that run jobs together with the calling thread.
pub struct Pool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `helpers` threads.
    pub fn new(helpers: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            job: Mutex::new(None),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: Mutex::new(0),
            wake: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            handles: Vec::new(),
        };
        for idx in 0..helpers {
            let sh = Arc::clone(&pool.shared);
            let h = std::thread::Builder::new()
                .name(format!("edgewise-{}", idx + 1))
                .spawn(move || helper(idx, &sh))?;
            pool.handles.push(h);
        }
        Ok(pool)
    }

    /// Number of helper threads.
    pub fn helpers(&self) -> usize {
        self.handles.len()
    }

    /// Runs `f` on `helpers` helper threads and on the calling thread, and returns once every
    /// call has returned: `Err(Panicked)` if a helper's call panicked (a panic of the caller's own
    /// call propagates, after the helpers have finished).
    pub fn run(&self, helpers: usize, f: &(dyn Fn() + Sync)) -> Result<(), Panicked> {
        let helpers = helpers.min(self.helpers());
        let sh = &*self.shared;
        // SAFETY: the helpers call `f` only between the generation bump below and their
        // decrement of `remaining`, and this function does not return or unwind before
        // `remaining` is back to 0 (the `Finish` guard waits for it also during a panic), so
        // `f` outlives every use of the extended reference; it is never used after that (the
        // stale pointer left in `job` is overwritten before the next generation bump).
        let f: &'static (dyn Fn() + Sync) =
            unsafe { std::mem::transmute::<&(dyn Fn() + Sync), &'static (dyn Fn() + Sync)>(f) };
        sh.panicked.store(false, Ordering::Relaxed);
        sh.remaining.store(helpers, Ordering::Release);
        {
            // The job and its generation change together, under the lock, so a helper reads a
            // consistent pair and runs each generation at most once.
            let mut job = lock(&sh.job);
            let gen = sh.generation.load(Ordering::Acquire).wrapping_add(1);
            *job = Some((f, helpers, gen));
            sh.generation.store(gen, Ordering::Release);
        }
        if *lock(&sh.sleepers) > 0 {
            sh.wake.notify_all();
        }
        {
            let _finish = Finish(sh);
            f();
        }
        if sh.panicked.load(Ordering::Acquire) {
            Err(Panicked)
        } else {
            Ok(())
        }
    }
}

/// Waits for the helpers of the current job when dropped.
struct Finish<'a>(&'a Shared);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.0.remaining.load(Ordering::Acquire) > 0 {
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && start.elapsed() > SPIN {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let sh = &*self.shared;
        sh.shutdown.store(true, Ordering::Release);
        {
            let _job = lock(&sh.job);
            sh.generation.fetch_add(1, Ordering::AcqRel);
        }
        {
            let _g = lock(&sh.sleepers);
            sh.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A helper's life: wait for a new generation (spinning, then sleeping), run the job if it is
/// one of the job's helpers, report, repeat.
fn helper(idx: usize, sh: &Shared) {
    // Generation 0 is the pool's creation (no job): a helper that starts late still sees the
    // first job's generation as new.
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if sh.generation.load(Ordering::Acquire) != seen {
                break;
            }
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && start.elapsed() > SPIN {
                let mut n = lock(&sh.sleepers);
                *n += 1;
                while sh.generation.load(Ordering::Acquire) == seen {
                    n = sh.wake.wait(n).unwrap_or_else(|p| p.into_inner());
                }
                *n -= 1;
            } else {
                std::hint::spin_loop();
            }
        }
        if sh.shutdown.load(Ordering::Acquire) {
            return;
        }
        let job = *lock(&sh.job);
        if let Some((f, helpers, gen)) = job {
            if gen == seen {
                continue;
            }
            seen = gen;
            if idx < helpers {
                if catch_unwind(AssertUnwindSafe(f)).is_err() {
                    sh.panicked.store(true, Ordering::Release);
                }
                sh.remaining.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// The process-wide pool.
static GLOBAL: Mutex<Option<Pool>> = Mutex::new(None);

/// Runs `f` on `threads` threads (the caller and `threads - 1` helpers of the process-wide
/// pool, grown if needed); if the pool is busy or cannot grow, on freshly spawned scoped
/// threads. Returns `Err(Panicked)` if a helper panicked.
pub fn run_on(threads: usize, f: &(dyn Fn() + Sync)) -> Result<(), Panicked> {
    let helpers = threads.saturating_sub(1);
    if helpers == 0 {
        f();
        return Ok(());
    }
    let mut guard = match GLOBAL.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    if let Some(g) = guard.as_mut() {
        if g.as_ref().is_none_or(|p| p.helpers() < helpers) {
            // Drop the smaller pool first (joins its threads), then grow.
            **g = None;
            **g = Pool::new(helpers).ok();
        }
        if let Some(pool) = g.as_ref() {
            return pool.run(helpers, f);
        }
    }
    drop(guard);
    let mut ok = true;
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..helpers).map(|_| sc.spawn(f)).collect();
        f();
        for h in hs {
            ok &= h.join().is_ok();
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_the_job_once_per_run_and_borrows_are_released() {
        let pool = Pool::new(3).unwrap();
        for round in 0..200usize {
            let hits = AtomicUsize::new(0);
            let local = [round; 4];
            let helpers = round % 4;
            pool.run(helpers, &|| {
                hits.fetch_add(local[0] - round + 1, Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(hits.load(Ordering::Relaxed), helpers + 1, "round {round}");
            if round % 50 == 0 {
                // Let the helpers fall asleep, so that waking them is exercised too.
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    #[test]
    fn a_panicking_helper_is_reported_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let caller = std::thread::current().id();
        let r = pool.run(2, &|| {
            if std::thread::current().id() != caller {
                panic!("helper fails");
            }
        });
        assert_eq!(r, Err(Panicked));
        let hits = AtomicUsize::new(0);
        pool.run(2, &|| {
            hits.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(hits.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn run_on_falls_back_when_the_pool_is_busy() {
        let outer = AtomicUsize::new(0);
        let inner = AtomicUsize::new(0);
        run_on(2, &|| {
            outer.fetch_add(1, Ordering::Relaxed);
            // Nested use from inside a job: the global pool is held, so this spawns.
            run_on(3, &|| {
                inner.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        })
        .unwrap();
        assert_eq!(outer.load(Ordering::Relaxed), 2);
        assert_eq!(inner.load(Ordering::Relaxed), 6);
    }
}
