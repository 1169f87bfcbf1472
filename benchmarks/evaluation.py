"""Batched evaluation vs one episode at a time: the same policy, the same episodes, this machine.

The policy is MQE's actor at the paper's size (3 x 512), jit-compiled; the environment is an OGBench
maze. Prints episodes/s both ways and their ratio, measured in this run.

Usage: python benchmarks/evaluation.py [--env pointmaze-medium-navigate-v0] [--episodes-per-task 4]
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import numpy as np

from mqe.agents.mqe import MQEAgent, MQEConfig
from mqe.envs.ogbench_envs import make_env
from mqe.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="pointmaze-medium-navigate-v0")
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the batched run")
    args = parser.parse_args()

    env = make_env(args.env)
    ob, info = env.reset(seed=0, options=dict(task_id=1))
    agent = MQEAgent.create(jax.random.PRNGKey(0), ob[None], env.action_space.sample()[None], MQEConfig())
    act = jax.jit(agent.sample_actions)
    policy = lambda o, g: np.asarray(act(o.astype(np.float32), g.astype(np.float32)))
    for n in (1, 5 * args.episodes_per_task):  # compile both batch shapes before timing
        policy(np.repeat(ob[None], n, 0), np.repeat(info["goal"][None], n, 0))
    env_fn = functools.partial(make_env, args.env)
    episodes = 5 * args.episodes_per_task
    rates = {}
    runs = {"one at a time": dict(batch=False), "batched, 1 process": dict(batch=True),
            f"batched, {args.workers} workers": dict(batch=True, workers=args.workers)}
    for label, kwargs in runs.items():
        start = time.perf_counter()
        result = evaluate(policy, env_fn, episodes_per_task=args.episodes_per_task, **kwargs)
        seconds = time.perf_counter() - start
        rates[label] = episodes / seconds
        print(f"{label:22s} {episodes} episodes in {seconds:6.1f} s = {rates[label]:.2f} episodes/s "
              f"(success {result['overall']:.2f})")
    reference = rates["one at a time"]
    for label, rate in list(rates.items())[1:]:
        print(f"{label} / one at a time: {rate / reference:.1f}x")


if __name__ == "__main__":
    main()
