//! Ctrl-C (and SIGTERM, SIGHUP): stop at the next step boundary with the resume state written.
//!
//! `train`, `sweep` and `repro` install the handler ([`install`]). The first signal sets a flag
//! that the training loop reads after every step ([`requested`]): the run writes its resume
//! checkpoint there and ends with exit code 130 ([`EXIT_INTERRUPTED`]), so `train --resume`
//! (or rerunning the sweep) continues it with the same bits as an uninterrupted run. A sweep
//! starts no new run once the flag is set. A second signal ends the process at once, as the
//! default action would (what was written stays: metrics rows are appended whole, checkpoints
//! replaced atomically). The handler only stores to an atomic and, on the second signal,
//! exits.

use std::sync::atomic::{AtomicBool, Ordering};

/// Exit code of a run or sweep stopped by a signal (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; a second call, or a platform without signals,
/// leaves the default action in place and is not an error).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\nedgewise: interrupted; stopping after the current step with the resume state written (again to stop at once)"
        );
    });
}

/// Whether a signal asked the process to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
