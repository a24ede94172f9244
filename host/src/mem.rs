//! Memory preflight: a run whose buffers cannot be allocated at all stops with a clear error
//! before it writes anything, instead of aborting the process at the first allocation that
//! fails (Rust's default reaction to an out-of-memory allocation).
//!
//! The estimate counts the large buffers a command is certain to allocate (parameter-sized
//! vectors, the data, the engine's tile buffers); the check asks the allocator for that many
//! bytes at once and gives them back untouched. It fails when the operating system refuses
//! the request (more than the machine's memory and swap under Linux's default overcommit
//! heuristic, or beyond a `ulimit -v`). A run that passes can still exhaust memory that other
//! processes hold; the check is for requests that can never succeed, such as a mistyped width.

use crate::error::{Failure, Result};

/// Fails with a bad-input error naming `what` when `bytes` cannot be allocated in one piece.
pub fn ensure_allocatable(bytes: u128, what: &str) -> Result<()> {
    let fail = || {
        Failure::input(format!(
            "{what} needs about {} of memory, more than this process can allocate",
            human_bytes(bytes)
        ))
    };
    let n = usize::try_from(bytes).map_err(|_| fail())?;
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(n).map_err(|_| fail())?;
    Ok(())
}

/// `bytes` in binary units with two decimals: `512 B`, `1.50 KiB`, `3.00 PiB`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Bytes of `floats` f32 values.
pub fn f32_bytes(floats: u128) -> u128 {
    floats * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(human_bytes(1u128 << 70), "1024.00 EiB");
    }

    #[test]
    fn what_fits_passes_and_what_cannot_exist_fails() {
        assert!(ensure_allocatable(1 << 20, "a small buffer").is_ok());
        // More than any address space holds: refused before any allocator is asked.
        let e = ensure_allocatable(1u128 << 70, "the run").unwrap_err();
        assert_eq!(e.code, crate::error::EXIT_BAD_INPUT);
        assert!(e
            .message
            .starts_with("the run needs about 1024.00 EiB of memory"));
        // Within the address space but beyond any machine's memory (2^62 bytes, 4 EiB).
        assert!(ensure_allocatable(1u128 << 62, "the run").is_err());
    }
}
