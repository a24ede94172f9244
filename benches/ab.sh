#!/usr/bin/env bash
# Interleaved A/B timing of two (or more) edgewise builds: per round, `edgewise bench --min` of
# each binary in turn (one thread unless THREADS is set), then per binary the fastest and the
# median over the rounds of the gradient and the exact HVP, in milliseconds. Interleaving makes
# the builds share the machine's drift, which on a shared VM is larger than most differences.
#
#   benches/ab.sh ROUNDS ARCH N OLD_BINARY NEW_BINARY [MORE ...]
#   REPEATS=3 benches/ab.sh 4 3072-200-200-10 5000 /tmp/edgewise-old target/release/edgewise
#
# (Build the old binary from a checkout of the older commit: `cargo build --release -p edgewise`.)
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,10p "$0" >&2; exit 2; }
ROUNDS=$1 ARCH=$2 N=$3
shift 3
REPEATS=${REPEATS:-9}
THREADS=${THREADS:-1}
for _ in $(seq "$ROUNDS"); do
    for b in "$@"; do
        printf '%s\t' "$b"
        "$b" bench --arch "$ARCH" --n "$N" --threads "$THREADS" --min --repeats "$REPEATS" \
            --power-steps 1
    done
done | python3 -c '
import json, sys
g, h, order = {}, {}, []
for line in sys.stdin:
    b, js = line.split("\t", 1)
    d = json.loads(js)
    if b not in g:
        order.append(b)
    g.setdefault(b, []).append(d["grad_s"] * 1e3)
    h.setdefault(b, []).append(d["hvp_s"] * 1e3)
med = lambda v: sorted(v)[len(v) // 2]
print("| binary | gradient: fastest / median (ms) | HVP: fastest / median (ms) |")
print("|---|---|---|")
for b in order:
    print(f"| {b} | {min(g[b]):.3f} / {med(g[b]):.3f} | {min(h[b]):.3f} / {med(h[b]):.3f} |")
'
