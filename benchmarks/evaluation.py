"""Batched evaluation vs one episode at a time: the same policy, the same episodes, this machine.

The policy is MQE's actor at the paper's size (3 x 512), jit-compiled; the environment is an OGBench
maze. Prints episodes/s both ways and their ratio, measured in this run.

Usage: python benchmarks/evaluation.py [--env pointmaze-medium-navigate-v0] [--episodes-per-task 4]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mqe.agents.mqe import MQEAgent, MQEConfig
from mqe.envs.ogbench_envs import make_env
from mqe.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="pointmaze-medium-navigate-v0")
    parser.add_argument("--episodes-per-task", type=int, default=4)
    args = parser.parse_args()

    env = make_env(args.env)
    ob, info = env.reset(seed=0, options=dict(task_id=1))
    agent = MQEAgent.create(jax.random.PRNGKey(0), ob[None], env.action_space.sample()[None], MQEConfig())
    act = jax.jit(agent.sample_actions)
    policy = lambda o, g: np.asarray(act(o.astype(np.float32), g.astype(np.float32)))
    for n in (1, 5 * args.episodes_per_task):  # compile both batch shapes before timing
        policy(np.repeat(ob[None], n, 0), np.repeat(info["goal"][None], n, 0))
    env_fn = lambda: make_env(args.env)
    episodes = 5 * args.episodes_per_task
    rates = {}
    for batch in (True, False):
        start = time.perf_counter()
        result = evaluate(policy, env_fn, episodes_per_task=args.episodes_per_task, batch=batch)
        seconds = time.perf_counter() - start
        rates[batch] = episodes / seconds
        print(f"{'batched' if batch else 'one at a time':14s} {episodes} episodes in {seconds:6.1f} s = "
              f"{rates[batch]:.2f} episodes/s (success {result['overall']:.2f})")
    print(f"batched / one-at-a-time: {rates[True] / rates[False]:.1f}x")


if __name__ == "__main__":
    main()
