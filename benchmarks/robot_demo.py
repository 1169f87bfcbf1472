"""The robot pipeline end to end on a simulated arm: image-goal policies served by ``mqe serve`` in their
own processes, and this process as the robot, asking the server for an action at every control step.

The arm is OGBench's visual cube environment (a UR5e, 64x64 camera frames, end-effector actions). Tasks
follow the short-horizon protocol of ``scene_short_horizon.py``, with its episode loop: from a held-out
state of the visual dataset's validation file (frames, ``qpos``, ``qvel``), the goal is the frame the
same episode showed ``k`` steps later; the arm succeeds when the cube is within 4 cm of where it was then
(the environment's own test), within ``2k`` steps. Only starts where the cube moved more than 4 cm in
those ``k`` steps count, so an arm that never moves scores 0 unless the cube settles into place by
itself.

Policies, on the same starts:
  each served run   ``--runs mqe=RUN,gcbc=RUN``: one ``mqe serve`` process each; every action is an HTTP
                    request carrying the camera frame and the goal frame (uint8), answered in the robot's
                    units (the run's action normalisation undone by the server)
  zero              an arm that never moves
  replay            the dataset's own actions from the same state (checks that the stored states and the
                    simulator agree; should be near 100%)

It prints the success rate of each and the robot-side latency of its requests (p50/p99).

    python benchmarks/robot_demo.py --dataset-dir DIR --runs mqe=runs/robot-mqe,gcbc=runs/robot-gcbc
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)

TOLERANCE = 0.04  # the cube environment's own success radius (m)


def cube_slice(env) -> slice:
    start = int(env._model.joint("object_joint_0").qposadr[0])
    return slice(start, start + 3)


def choose_starts(data: dict, cube: slice, k: int, count: int, rng) -> np.ndarray:
    """``count`` rows a of the validation file whose episode lasts past a + k and whose cube moved more than
    the success radius between a and a + k."""
    ends = np.flatnonzero(data["terminals"])
    episode_end = ends[np.searchsorted(ends, np.arange(len(data["terminals"])))]
    moved = [a for a in range(len(data["terminals"]))
             if a + k <= episode_end[a]
             and np.linalg.norm(data["qpos"][a + k, cube] - data["qpos"][a, cube]) > TOLERANCE]
    if not moved:
        raise SystemExit(f"no start in the validation file whose cube moves more than {TOLERANCE} m within {k} steps")
    return np.asarray(rng.choice(moved, size=min(count, len(moved)), replace=False))


def cube_reset(data: dict, cube: slice):
    """``reset(env, a, k)`` for ``reach``: the arm and cube as in row a, the cube's place in row a + k as the
    task's goal (the environment's success test), the camera frame returned."""
    def reset(env, a, k):
        task = dict(task_name="short_horizon", init_xyzs=data["qpos"][a, cube][None].astype(np.float64),
                    goal_xyzs=data["qpos"][a + k, cube][None].astype(np.float64))
        env.reset(seed=a, options=dict(task_info=task, render_goal=False))
        env.set_state(data["qpos"][a].astype(np.float64), data["qvel"][a].astype(np.float64))
        return env.compute_observation()
    return reset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-dir", default=os.environ.get("MQE_DATASET_DIR"), required=False)
    parser.add_argument("--dataset", default="visual-cube-single-play-v0", help="the visual dataset whose "
                        "validation file gives starts and goal frames (default visual-cube-single-play-v0)")
    parser.add_argument("--runs", default="", help="NAME=RUN,... served with mqe serve (one process each)")
    parser.add_argument("--horizons", default="10,25", help="k: goal frames this many steps ahead (default 10,25)")
    parser.add_argument("--starts", type=int, default=30, help="starts per horizon (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baselines", default="zero,replay", help="which of zero, replay also run (default both; "
                        "'' for none: with the same --seed they take the same starts, so their rates repeat)")
    args = parser.parse_args()
    baselines = [b for b in args.baselines.split(",") if b]
    if set(baselines) - {"zero", "replay"}:
        parser.error(f"--baselines: zero and/or replay, got {args.baselines!r}")
    if not args.dataset_dir:
        raise SystemExit("robot_demo.py: --dataset-dir (or MQE_DATASET_DIR) names where the visual dataset is")

    from mqe.envs.ogbench_envs import make_env
    from mqe.serving import PolicyClient
    from scene_short_horizon import load_validation, reach  # benchmarks/ (this script's folder is on sys.path)
    from mqe.serving.launch import ServedPolicy

    path, data = load_validation(args.dataset_dir, args.dataset, {"observations", "actions", "terminals", "qpos",
                                                                  "qvel"}, "a visual dataset from mqe generate")
    envs = [make_env(args.dataset).unwrapped for _ in range(args.starts)]
    cube = cube_slice(envs[0])
    action_dim = data["actions"].shape[1]
    policies = {"zero": lambda frames, goals, starts, t: np.zeros((len(frames), action_dim)),
                "replay": lambda frames, goals, starts, t: data["actions"][starts + t] if t < k else
                np.zeros((len(frames), action_dim))}
    policies = {name: policy for name, policy in policies.items() if name in baselines}
    runs = dict(item.split("=", 1) for item in args.runs.split(",") if item)
    served, clients, latency = {}, {}, {}
    with contextlib.ExitStack() as stack:  # every server stopped, client and environment closed, whatever happens
        for env in envs:
            stack.callback(env.close)
        for name, run in runs.items():
            served[name] = stack.enter_context(ServedPolicy(run, "--max-batch", "1"))
            clients[name] = PolicyClient(served[name].url)
            stack.callback(clients[name].close)
            latency[name] = []
            print(f"{name}: {served[name].banner}")

            def ask(frames, goals, starts, t, name=name):
                out = []
                for frame, goal in zip(frames, goals):  # a robot asks once per control step
                    start = time.perf_counter()
                    out.append(clients[name].act(frame, goal))
                    latency[name].append(1e3 * (time.perf_counter() - start))
                return np.stack(out)
            policies[name] = ask
        rng = np.random.default_rng(args.seed)
        print(f"{args.dataset}: starts and goals from {path}; success = cube within {TOLERANCE} m of the goal "
              f"frame's cube position, within 2k steps; {args.starts} starts per k")
        for k in [int(h) for h in args.horizons.split(",")]:
            starts = choose_starts(data, cube, k, args.starts, rng)
            row = []
            for name, policy in policies.items():
                t0 = time.perf_counter()
                rate = reach(policy, envs[:len(starts)], data, starts, k, cube_reset(data, cube))
                row.append(f"{name} {100 * rate:5.1f}% ({time.perf_counter() - t0:.0f} s)")
            print(f"k={k:3d} ({len(starts)} starts): " + "   ".join(row), flush=True)
        for name, times in latency.items():
            print(f"{name}: {len(times)} requests, latency p50 {np.percentile(times, 50):.1f} ms, "
                  f"p99 {np.percentile(times, 99):.1f} ms (robot side, HTTP included)")


if __name__ == "__main__":
    main()
