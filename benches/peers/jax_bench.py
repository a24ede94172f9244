#!/usr/bin/env python3
"""Times JAX on the models of `edgewise bench`: one loss + gradient (`jax.value_and_grad`) and one
exact Hessian-vector product (`jax.jvp(jax.grad(loss))`, forward-over-reverse, the R-operator's
counterpart), both jit-compiled, on seeded random data, as the median of repeated runs after the
compilation and a warm-up run (each timed call ends with `block_until_ready`).

The model matches edgewise's: dense layers in PyTorch layout (W: [out, in], y = W x + b), tanh
hidden layers, a linear output layer, mean squared error 1/2 ||f - onehot(y)||^2 averaged over
the samples, float32 throughout. Prints one JSON line.

Thread count: the caller sets it (run.sh: XLA_FLAGS and taskset); this script only reports it.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import jax
import jax.numpy as jnp


def init(widths, rng):
    params = []
    for fi, fo in zip(widths[:-1], widths[1:]):
        bound = 1.0 / np.sqrt(fi)
        w = rng.uniform(-bound, bound, size=(fo, fi)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(fo,)).astype(np.float32)
        params.append((jnp.asarray(w), jnp.asarray(b)))
    return params


def forward(params, x):
    a = x
    for i, (w, b) in enumerate(params):
        z = a @ w.T + b
        a = jnp.tanh(z) if i < len(params) - 1 else z
    return a


def loss(params, x, y1h):
    f = forward(params, x)
    return 0.5 * jnp.mean(jnp.sum((f - y1h) ** 2, axis=1))


def timed(fn, reps):
    out = fn()  # compile
    jax.block_until_ready(out)
    out = fn()  # warm-up
    jax.block_until_ready(out)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    widths = [int(w) for w in a.arch.split("-")]
    rng = np.random.default_rng(a.seed)
    params = init(widths, rng)
    x = jnp.asarray(rng.standard_normal((a.n, widths[0])).astype(np.float32))
    labels = rng.integers(0, widths[-1], size=a.n)
    y1h = jnp.asarray(np.eye(widths[-1], dtype=np.float32)[labels])
    v = jax.tree_util.tree_map(
        lambda p: jnp.asarray(rng.standard_normal(p.shape).astype(np.float32)), params)

    vg = jax.jit(jax.value_and_grad(loss))
    hvp = jax.jit(lambda p, t: jax.jvp(lambda q: jax.grad(loss)(q, x, y1h), (p,), (t,))[1])

    g_med, g_min = timed(lambda: vg(params, x, y1h), a.repeats)
    h_med, h_min = timed(lambda: hvp(params, v), a.repeats)
    print(json.dumps({
        "peer": "jax", "jax": jax.__version__, "arch": a.arch, "n": a.n, "threads": a.threads,
        "repeats": a.repeats, "grad_s": g_med, "hvp_s": h_med, "grad_min_s": g_min,
        "hvp_min_s": h_min, "hvp_over_grad": h_med / g_med,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }))


if __name__ == "__main__":
    main()
