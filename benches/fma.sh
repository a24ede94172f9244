#!/usr/bin/env bash
# The machine's clock and the FMA micro-benchmark (benches/fma/*.rs; BENCHMARKS.md, "Machine and
# method" and "FMA on this machine"): builds both with plain `rustc -O` into target/fma and runs
# them on core 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/target/fma"
for b in clock fma; do
    rustc -O --edition 2021 -o "$ROOT/target/fma/$b" "$ROOT/benches/fma/$b.rs"
done
taskset -c 0 "$ROOT/target/fma/clock"
taskset -c 0 "$ROOT/target/fma/fma"
