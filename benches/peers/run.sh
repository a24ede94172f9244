#!/usr/bin/env bash
# Side-by-side timing of edgewise and JAX (CPU) on the reference sizes, with 1 thread and with
# all cores. Creates a virtual environment with JAX pinned, builds edgewise, runs both on the
# same sizes and thread counts, and writes target/peers/results.jsonl and target/peers/peers.md.
#
#   benches/peers/run.sh            # S, M, L
#   SIZES="S M" benches/peers/run.sh
#   STAT=min benches/peers/run.sh   # fastest run instead of the median (busy machines)
#   STAT=min ROUNDS=4 THREADS=1 benches/peers/run.sh
#                                   # 4 interleaved rounds (edgewise, JAX, edgewise, ...), one
#                                   # thread only; the table takes the best of the rounds
#
# Thread control. edgewise: --threads T, under `taskset` on the first T cores. JAX: for 1 thread
# XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" under
# `taskset -c 0`; for all cores the default XLA threading under `taskset` on all cores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
JAX_VERSION=${JAX_VERSION:-0.10.2}
VENV=${VENV:-$ROOT/target/peers-venv}
OUT=${OUT:-$ROOT/target/peers}
SIZES=${SIZES:-"S M L"}
REPEATS=${REPEATS:-7}
STAT=${STAT:-median}
ROUNDS=${ROUNDS:-1}
EW_STAT=()
[ "$STAT" = min ] && EW_STAT=(--min)
ALL=$(nproc)
THREADS=${THREADS:-"1 $ALL"}
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import jax, sys; sys.exit(jax.__version__ != '$JAX_VERSION')" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet "jax[cpu]==$JAX_VERSION"
fi
(cd "$ROOT" && cargo build --release -p edgewise --quiet)
EW="$ROOT/target/release/edgewise"

size_args() {
    case "$1" in
        S) echo "64-32-10 1797" ;;
        M) echo "784-32-32-32-10 1000" ;;
        L) echo "3072-200-200-10 5000" ;;
    esac
}

RES="$OUT/results.jsonl"
: > "$RES"
for _ in $(seq "$ROUNDS"); do
    for t in $THREADS; do
        cores="0-$((t - 1))"
        if [ "$t" = 1 ]; then
            xla="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        else
            xla=""
        fi
        for s in $SIZES; do
            read -r arch n <<<"$(size_args "$s")"
            echo "size $s ($arch, N=$n), $t thread(s)" >&2
            taskset -c "$cores" "$EW" bench --arch "$arch" --n "$n" --threads "$t" \
                --act tanh --loss mse --repeats "$REPEATS" "${EW_STAT[@]}" >> "$RES"
            XLA_FLAGS="$xla" taskset -c "$cores" "$VENV/bin/python" "$HERE/jax_bench.py" \
                --arch "$arch" --n "$n" --threads "$t" --repeats "$REPEATS" >> "$RES"
        done
    done
done
echo "load after the runs: $(cat /proc/loadavg)" >&2
STAT=$STAT python3 "$HERE/table.py" "$RES" ${PEAK_GFLOPS_PER_CORE:-} > "$OUT/peers.md"
cat "$OUT/peers.md"
