#!/usr/bin/env bash
# Interleaved A/B timing of two (or more) edgewise builds: per round, `edgewise bench --min` of
# each binary in turn (one thread unless THREADS is set), then per binary the fastest and the
# median over the rounds of the gradient, the exact HVP from scratch, the HVP at the previous
# product's parameters (`hvp_reuse_s`; "-" for builds that do not report it) and one power step
# (`power_s / POWER_STEPS`), in milliseconds. Interleaving makes the builds share the machine's
# drift, which on a shared VM is larger than most differences.
#
#   benches/ab.sh ROUNDS ARCH N OLD_BINARY NEW_BINARY [MORE ...]
#   REPEATS=3 benches/ab.sh 4 3072-200-200-10 5000 /tmp/edgewise-old target/release/edgewise
#   POWER_STEPS=20 benches/ab.sh 8 64-32-10 1797 /tmp/edgewise-old target/release/edgewise
#   benches/ab.sh 8 784-32-32-32-10 1000 target/release/edgewise@avx2 target/release/edgewise@avx512
#
# An entry BINARY@K runs BINARY with `--kernels K` (the kernel sets of one build side by side).
# (Build the old binary from a checkout of the older commit: `cargo build --release -p edgewise`.)
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,16p "$0" >&2; exit 2; }
ROUNDS=$1 ARCH=$2 N=$3
shift 3
REPEATS=${REPEATS:-9}
THREADS=${THREADS:-1}
POWER_STEPS=${POWER_STEPS:-1}
for _ in $(seq "$ROUNDS"); do
    for b in "$@"; do
        kernels=()
        [[ $b == *@* ]] && kernels=(--kernels "${b##*@}")
        printf '%s\t' "$b"
        "${b%@*}" bench --arch "$ARCH" --n "$N" --threads "$THREADS" --min --repeats "$REPEATS" \
            --power-steps "$POWER_STEPS" "${kernels[@]}"
    done
done | python3 -c '
import json, sys
res, order = {}, []
for line in sys.stdin:
    b, js = line.split("\t", 1)
    d = json.loads(js)
    if b not in res:
        order.append(b)
        res[b] = {k: [] for k in "ghrp"}
    e = res[b]
    e["g"].append(d["grad_s"] * 1e3)
    e["h"].append(d["hvp_s"] * 1e3)
    if "hvp_reuse_s" in d:
        e["r"].append(d["hvp_reuse_s"] * 1e3)
    e["p"].append(d["power_s"] * 1e3 / d["power_steps"])
med = lambda v: sorted(v)[len(v) // 2]
fmt = lambda v: f"{min(v):.3f} / {med(v):.3f}" if v else "-"
print("| binary | gradient: fastest / median (ms) | HVP from scratch | HVP at the same parameters | power step |")
print("|---|---|---|---|---|")
for b in order:
    print("| " + " | ".join([b] + [fmt(res[b][k]) for k in "ghrp"]) + " |")
'
