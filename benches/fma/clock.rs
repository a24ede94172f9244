//! The core clock, for the peak GFLOP/s of BENCHMARKS.md: a chain of dependent register-register
//! integer adds runs at one add per cycle, so adds per second is the clock (the fastest of 20
//! runs of 2e8 adds). Register operands on purpose: recent Intel cores fold `add reg, imm` chains
//! at rename and would report several "GHz" too many. Build and run: `benches/fma.sh`.
use std::arch::asm;
use std::time::Instant;

fn main() {
    let n: u64 = 200_000_000;
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        let (mut x, i) = (0u64, n / 10);
        // SAFETY: register arithmetic and a loop only.
        unsafe {
            asm!("2:",
                 "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
                 "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
                 "add {x}, {one}", "add {x}, {one}",
                 "dec {i}", "jnz 2b",
                 x = inout(reg) x, i = inout(reg) i => _, one = in(reg) 1u64);
        }
        assert_eq!(x, n);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("clock: {:.2} GHz (dependent integer adds)", n as f64 / best / 1e9);
}
