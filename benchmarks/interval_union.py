"""IQE's interval union, by comparison of all start pairs against by sort, at the shapes that use it.

QRL's IQE (16 components of 8 dims) computes, per pair of latents and component, the length of a
union of intervals. ``mqe.quasimetric`` compares all start pairs for components of at most
``SORT_FREE_MAX_DIMS`` dims and sorts longer ones; this prints both forms' time per call (forward, and
forward + gradient where training uses it) and the ratio, measured in this run.

    python benchmarks/interval_union.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from mqe.quasimetric import _union_by_comparison, _union_by_sort

SHAPES = {  # name: (pairs, components, dims per component), with or without the gradient
    "planner replan (250 states x 500 landmarks), QRL": ((250 * 500, 16, 8), False),
    "QRL update (batch 256, value + dynamics terms)": ((4 * 256, 16, 8), True),
    "64-dim components (sorted in mqe)": ((256, 8, 64), True),
}


def seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'shape':52s} {'sort ms':>9s} {'compare ms':>11s} {'ratio':>6s}")
    for name, (shape, grad) in SHAPES.items():
        x, y = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(2))
        times = []
        for form in (_union_by_sort, _union_by_comparison):
            f = lambda a, b, form=form: jnp.sum(form(a, jnp.maximum(a, b)))
            times.append(seconds(jax.jit(jax.grad(f, argnums=(0, 1)) if grad else f), x, y, repeats=args.repeats))
        label = name + (" + grad" if grad else "")
        print(f"{label:52s} {times[0] * 1e3:9.1f} {times[1] * 1e3:11.1f} {times[0] / times[1]:5.2f}x")


if __name__ == "__main__":
    main()
