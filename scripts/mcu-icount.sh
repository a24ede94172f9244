#!/usr/bin/env bash
# Instruction counts of one training step and one exact Hessian-vector product of the firmware
# demo model (64-16-10 tanh, MSE, 200 digits in flash as bytes, tiles of 4 samples), executed
# under QEMU, without touching firmware/.
#
#   scripts/mcu-icount.sh [thumbv7em|thumbv7m|riscv32] [CORE_DIR]
#
# Method: copies firmware/ to a temporary directory, replaces the demo by a routine that
# initialises the demo network exactly as the demo does, then calls three #[inline(never)]
# markers around (1) one full-batch GD step (loss + gradient + update) and (2) one exact HVP,
# and builds it with the same toolchain as `cargo xtask firmware` (release profile). QEMU runs
# it with `-d in_asm,exec,nochain`: in_asm lists the guest instructions of each translation
# block once, exec logs every execution of a block (nochain: every one, no chaining). The
# instructions executed between two markers are the sum, over the logged executions, of the
# sizes of the blocks executed. CORE_DIR (default: this repository's core/) lets one count an
# older edgewise-core for comparison.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-thumbv7em}
CORE=${2:-$ROOT/core}
case "$TARGET" in
    thumbv7em) TRIPLE=thumbv7em-none-eabihf; QEMU=(qemu-system-arm -cpu cortex-m4 -machine mps2-an386) ;;
    thumbv7m) TRIPLE=thumbv7m-none-eabi; QEMU=(qemu-system-arm -cpu cortex-m3 -machine mps2-an385) ;;
    riscv32) TRIPLE=riscv32imac-unknown-none-elf; QEMU=(qemu-system-riscv32 -machine virt -bios none) ;;
    *) echo "unknown target $TARGET" >&2; exit 2 ;;
esac
WORK=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT; echo "work dir $WORK" >&2
cp -r "$ROOT/firmware" "$WORK/fw"
rm -rf "$WORK/fw/target"
# The conformance scenarios are not needed (and would pull in this repository's core as well).
sed -i "s#path = \"../core\"#path = \"$CORE\"#; /^edgewise-tests/d; /^conformance = /d" "$WORK/fw/Cargo.toml"
cat > "$WORK/fw/src/icount.rs" <<'RS'
//! One GD step and one exact HVP of the demo network, between markers.
use crate::demo::mlp::{train_data, ARCH, P, SEED, TILE, WS};
use edgewise_core::{Init, MlpObjective, Objective, SplitMix64};

#[inline(never)]
#[no_mangle]
pub extern "C" fn icount_marker_a() { core::hint::black_box(1); }
#[inline(never)]
#[no_mangle]
pub extern "C" fn icount_marker_b() { core::hint::black_box(2); }
#[inline(never)]
#[no_mangle]
pub extern "C" fn icount_marker_c() { core::hint::black_box(3); }

static mut PARAMS: [f32; P] = [0.0; P];
static mut GRAD: [f32; P] = [0.0; P];
static mut V: [f32; P] = [0.0; P];
static mut HV: [f32; P] = [0.0; P];
static mut WSB: [f32; WS] = [0.0; WS];

#[allow(static_mut_refs)]
pub fn run() -> bool {
    // SAFETY: single-threaded bare-metal program; each static is borrowed once here.
    let (params, grad, v, hv, ws) = unsafe { (&mut PARAMS, &mut GRAD, &mut V, &mut HV, &mut WSB) };
    let train = train_data(200);
    if ARCH.init(params, Init::PytorchDefault, SEED).is_err() {
        return false;
    }
    SplitMix64::new(SEED ^ 0x5eed).fill_normal(v);
    icount_marker_a();
    // One GD step: loss + gradient, then the update.
    let ok = ARCH.loss_grad(params, &train, grad, ws, TILE).is_ok();
    for (p, g) in params.iter_mut().zip(grad.iter()) {
        *p -= 0.1 * g;
    }
    icount_marker_b();
    let ok2 = match MlpObjective::new(&ARCH, train, ws, TILE) {
        Ok(mut obj) => obj.hvp(params, v, hv).is_ok(),
        Err(_) => false,
    };
    icount_marker_c();
    defmt::println!("icount done {=f32}", core::hint::black_box(hv[0]));
    ok && ok2
}
RS
python3 - "$WORK/fw/src/main.rs" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("mod platform;\n", "mod platform;\n#[cfg(not(feature = \"conformance\"))]\nmod icount;\n", 1)
s = s.replace("let ok = demo::run();", "let ok = icount::run();", 1)
open(p, "w").write(s)
PY
cd "$WORK/fw"
if rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE"; then
    cargo build --release --quiet --target "$TRIPLE"
else
    PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$WORK/target" \
        /usr/bin/cargo build --release --quiet --target "$TRIPLE" 2>&1 | grep -v "^warning" >&2 || true
fi
ELF=""
for e in "$WORK/target/$TRIPLE/release/edgewise-firmware" "$WORK/fw/target/$TRIPLE/release/edgewise-firmware"; do
    [ -f "$e" ] && ELF=$e
done
[ -n "$ELF" ] || { echo "build failed" >&2; exit 1; }
addr() { nm "$ELF" | awk -v s="$1" '$3 == s { print $1 }'; }
A=$(addr icount_marker_a); B=$(addr icount_marker_b); C=$(addr icount_marker_c)
timeout 600 "${QEMU[@]}" -nographic -semihosting-config enable=on,target=native \
    -d in_asm,exec,nochain -D "$WORK/qemu.log" -kernel "$ELF" > /dev/null 2>&1 || true
python3 - "$WORK/qemu.log" "$A" "$B" "$C" "$TARGET" "$CORE" <<'PY'
import re, sys
log, a, b, c, target, core = sys.argv[1:]
# Thumb function symbols have the low bit set in nm? nm prints the address without it.
marks = {int(a, 16) & ~1: "a", int(b, 16) & ~1: "b", int(c, 16) & ~1: "c"}
size = {}
cur = None
counts = {"a": 0, "b": 0}
phase = None
for line in open(log, errors="replace"):
    if line.startswith("IN:"):
        cur = None
        continue
    m = re.match(r"^0x([0-9a-f]+):\s", line)
    if m and not line.startswith("Trace"):
        pc = int(m.group(1), 16)
        if cur is None:
            cur = pc
            size[cur] = 0
        size[cur] += 1
        continue
    if not line.strip():
        cur = None
        continue
    t = re.search(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
    if t:
        pc = int(t.group(1), 16)
        if pc in marks:
            phase = {"a": "a", "b": "b", "c": None}[marks[pc]]
        if phase:
            counts[phase] += size.get(pc, 0)
print(f"{target} (core: {core}): one GD step {counts['a']} instructions, one exact HVP {counts['b']} instructions")
PY
