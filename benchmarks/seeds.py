"""Several seeds in one program: updates/s per seed and in total for 1, 2, 4 and 8 seeds.

For each configuration (the paper's and the demo's, or ``--presets``) and agent, it compiles the fused
training chunk for S stacked seeds (``mqe.train.make_train_chunk``, the code ``mqe train --seeds`` runs),
times ``--calls`` calls of ``--updates-per-call`` updates after one warm-up call, and prints per seed and
total updates/s and the total's ratio to one seed, all measured in this one run. ``--batching`` picks
how the seeds run (``map``, ``vmap``, or both as separate rows; one seed is always the plain program).

Usage: python benchmarks/seeds.py [--seeds 1,2,4,8] [--presets paper,pointmaze-demo] [--agents mqe]
                                  [--batching map,vmap] [--calls 3] [--updates-per-call 20]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from mqe.config import make_config
from mqe.sampling import DeviceData
from mqe.train import initial_state, make_train_chunk, stack

DATASET = "pointmaze-medium-navigate-v0"  # the per-dataset settings these rows get (obs 2, action 2)


def synthetic_dataset(obs_dim: int = 2, action_dim: int = 2, episodes: int = 100, length: int = 1001):
    """Random trajectories in the layout of pointmaze-medium-navigate (the cost does not depend on values)."""
    from mqe.data.dataset import Dataset

    rng = np.random.default_rng(0)
    n = episodes * length
    obs = np.cumsum(rng.normal(size=(n, obs_dim)), axis=0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[length - 1::length] = True
    return Dataset.from_arrays(obs, act, terminals, source="synthetic")


def rate(agent: str, preset: str, seeds: int, batching: str, dataset, data, calls: int, length: int) -> float:
    """Updates per second per seed for ``seeds`` stacked seeds."""
    import dataclasses

    config = make_config(agent, preset, [f"train.seed_batching={batching}"], dataset=DATASET)
    states = [initial_state(dataclasses.replace(config, train=dataclasses.replace(config.train, seed=s)), dataset)
              for s in range(seeds)]
    agents, keys = stack([a for a, _ in states]), stack([k for _, k in states])
    chunk = make_train_chunk(config.agent.sampler(), length, seeds, batching)
    agents, keys, _ = chunk(agents, keys, data)  # compile + warm up
    jax.block_until_ready(agents.step)
    start = time.perf_counter()
    for _ in range(calls):
        agents, keys, _ = chunk(agents, keys, data)
    jax.block_until_ready(agents.step)
    return calls * length / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,4,8")
    parser.add_argument("--presets", default="paper,pointmaze-demo")
    parser.add_argument("--agents", default="mqe")
    parser.add_argument("--batching", default="map,vmap")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--updates-per-call", type=int, default=20)
    args = parser.parse_args()
    dataset = synthetic_dataset()
    data = DeviceData.from_dataset(dataset)
    counts = [int(s) for s in args.seeds.split(",")]
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} CPU cores; "
          f"{args.calls} calls x {args.updates_per_call} updates after a warm-up call")
    print(f"{'preset':<15} {'agent':<6} {'batching':<8} {'seeds':>5} {'per seed':>9} {'total':>9} {'x one seed':>10}")
    for preset in args.presets.split(","):
        for agent in args.agents.split(","):
            single = None
            for batching in args.batching.split(","):
                for s in counts:
                    if s == 1 and single is not None:
                        continue  # one seed is the plain program whatever the batching
                    per_seed = rate(agent, preset, s, batching, dataset, data, args.calls, args.updates_per_call)
                    if s == 1:
                        single = per_seed
                    ratio = f"{s * per_seed / single:.2f}" if single else "-"
                    print(f"{preset:<15} {agent:<6} {batching if s > 1 else '-':<8} {s:>5} {per_seed:>9.1f} "
                          f"{s * per_seed:>9.1f} {ratio:>10}", flush=True)


if __name__ == "__main__":
    main()
