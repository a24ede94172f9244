#!/usr/bin/env python3
"""Turns the JSON lines of run.sh (edgewise bench and jax_bench.py) into a markdown table.

    table.py RESULTS.jsonl [MORE.jsonl ...] [PEAK_GFLOPS_PER_CORE]

With several result files (repeated runs of run.sh), each entry is the best (smallest) time of
any of them, per quantity: the better estimate of the undisturbed speed on a shared machine.
"""
import json
import os
import sys

SIZES = {"64-32-10": "S", "784-32-32-32-10": "M", "3072-200-200-10": "L"}


def main():
    files = [a for a in sys.argv[1:] if os.path.isfile(a)]
    numbers = [a for a in sys.argv[1:] if not os.path.isfile(a)]
    rows = [json.loads(l) for f in files for l in open(f) if l.strip()]
    if os.environ.get("STAT") == "min":
        # JAX reports both; edgewise was run with --min.
        for r in rows:
            if r.get("peer") == "jax":
                r["grad_s"], r["hvp_s"] = r["grad_min_s"], r["hvp_min_s"]
    best = {}
    for r in rows:
        key = (r.get("peer"), r["arch"], r["threads"])
        b = best.setdefault(key, dict(r))
        for q in ("grad_s", "hvp_s", "power_s"):
            if q in r and r[q] < b[q]:
                b[q] = r[q]
    rows = list(best.values())
    for r in rows:
        r["hvp_over_grad"] = r["hvp_s"] / r["grad_s"]
        if "grad_flops" in r:
            r["grad_gflops"] = r["grad_flops"] / r["grad_s"] / 1e9
            r["hvp_gflops"] = r["hvp_flops"] / r["hvp_s"] / 1e9
    peak = float(numbers[0]) if numbers else None  # GFLOP/s of one core
    ours = {(r["arch"], r["threads"]): r for r in rows if "peer" not in r}
    jax_ = {(r["arch"], r["threads"]): r for r in rows if r.get("peer") == "jax"}
    threads = sorted({t for _, t in ours})
    print("| size | threads | edgewise grad (ms) | JAX grad (ms) | edgewise HVP (ms) | JAX HVP (ms) "
          "| edgewise HVP/grad | JAX HVP/grad | edgewise grad / HVP GFLOP/s | % of peak (grad / HVP) "
          "| edgewise 20 power steps (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch, size in SIZES.items():
        for t in threads:
            o = ours.get((arch, t))
            j = jax_.get((arch, t))
            if o is None:
                continue
            pk = f"{100 * o['grad_gflops'] / (peak * t):.0f} / {100 * o['hvp_gflops'] / (peak * t):.0f}" if peak else "-"
            jg = f"{j['grad_s'] * 1e3:.2f}" if j else "-"
            jh = f"{j['hvp_s'] * 1e3:.2f}" if j else "-"
            jr = f"{j['hvp_over_grad']:.2f}" if j else "-"
            print(f"| {size} ({arch}, N={o['n']}) | {t} | {o['grad_s'] * 1e3:.2f} | {jg} | "
                  f"{o['hvp_s'] * 1e3:.2f} | {jh} | {o['hvp_over_grad']:.2f} | {jr} | "
                  f"{o['grad_gflops']:.1f} / {o['hvp_gflops']:.1f} | {pk} | {o['power_s'] * 1e3:.1f} |")
    if len(threads) > 1:
        print()
        print(f"| size | edgewise speedup {threads[-1]} vs 1 thread (grad / HVP) | JAX speedup (grad / HVP) |")
        print("|---|---|---|")
        for arch, size in SIZES.items():
            o1, o2 = ours.get((arch, 1)), ours.get((arch, threads[-1]))
            j1, j2 = jax_.get((arch, 1)), jax_.get((arch, threads[-1]))
            if not (o1 and o2):
                continue
            js = f"{j1['grad_s'] / j2['grad_s']:.2f} / {j1['hvp_s'] / j2['hvp_s']:.2f}" if j1 and j2 else "-"
            print(f"| {size} | {o1['grad_s'] / o2['grad_s']:.2f} / {o1['hvp_s'] / o2['hvp_s']:.2f} | {js} |")


if __name__ == "__main__":
    main()
