"""The evaluator's positive control on the cube environments: the scripted cube-task agent
(``mqe.envs.task_oracle``) through ``mqe.evaluation.evaluate``, exactly as a trained agent is run.

    python benchmarks/cube_task_control.py --names cube-single-play-v0,cube-double-play-v0 --episodes-per-task 4

A rate well below 100% here means something in the evaluation path (task reset, success at the
episode's end, the time limit) is off, not the agent.
"""

from __future__ import annotations

import argparse
import time

from mqe.envs.task_oracle import CubeTaskPolicy
from mqe.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", default="cube-single-play-v0,cube-double-play-v0,cube-triple-play-v0")
    parser.add_argument("--episodes-per-task", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.names.split(","):
        policy = CubeTaskPolicy(name, seed=args.seed)
        start = time.perf_counter()
        result = evaluate(policy, policy.make_env, episodes_per_task=args.episodes_per_task, seed=args.seed)
        tasks = "  ".join(f"{key} {100 * value:.0f}%" for key, value in result.items())
        print(f"{name}: {tasks}  ({args.episodes_per_task} episodes per task, {time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
