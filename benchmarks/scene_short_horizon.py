"""Short-horizon goal reaching on scene: is an agent goal-directed before it solves the five tasks?

Each of the five scene evaluation tasks leaves 2 to 4 objects in a new state, most with steps in
between (unlock, open the drawer, lock again), within 750 steps. A run that scores 0% on them could
still be learning; this diagnostic asks for less. From a state of a held-out
scene episode (the validation file: ``qpos``, ``qvel``, ``button_states``), the agent must reach the
object configuration the same episode had ``k`` steps later, with that later observation as its goal,
within ``2k`` steps. Success is the environment's own task-mode test (cube within 4 cm, button
states equal, drawer and window within 4 cm), with the later configuration installed as the task's
goal. Only starts where some object changes within the ``k`` steps count (otherwise doing nothing
succeeds).

Three policies run on the same starts:
  replay  the dataset's own actions from the same state (then zeros): checks that the generated data
          is consistent with the evaluation environment's dynamics; should be near 100%
  zero    no motion: the floor (only objects settling by themselves into the goal count)
  agent   a trained checkpoint (``--run-dir``), deterministic actions

    python benchmarks/scene_short_horizon.py --dataset-dir /work/ogdata --run-dir runs/scene-play-mqe-s0

With ``--dataset visual-scene-play-v0`` (frames from ``mqe generate visual-scene-play-v0``) the same starts
and goals are frames: the environment is OGBench's visual scene and the agent sees what it renders.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)


def _layout(env):
    model = env._model
    return {
        "cube": slice(model.joint("object_joint_0").qposadr[0], model.joint("object_joint_0").qposadr[0] + 3),
        "drawer": int(model.joint("drawer_slide").qposadr[0]),
        "window": int(model.joint("window_slide").qposadr[0]),
    }


TOLERANCE = 0.04  # the scene environment's own success tolerance for the cube, drawer and window (m)


def _objects_changed(data, lay, a: int, b: int) -> bool:
    q, bs = data["qpos"], data["button_states"]
    return bool(np.linalg.norm(q[a, lay["cube"]] - q[b, lay["cube"]]) > TOLERANCE
                or np.any(bs[a] != bs[b])
                or abs(q[a, lay["drawer"]] - q[b, lay["drawer"]]) > TOLERANCE
                or abs(q[a, lay["window"]] - q[b, lay["window"]]) > TOLERANCE)


def _task_info(data, lay, a: int, b: int) -> dict:
    q, bs = data["qpos"], data["button_states"]

    def config(i):
        return dict(block_xyzs=q[i, lay["cube"]][None].astype(np.float64), button_states=bs[i].copy(),
                    drawer_pos=float(q[i, lay["drawer"]]), window_pos=float(q[i, lay["window"]]))

    return dict(task_name="short_horizon", init=config(a), goal=config(b))


def reach(policy, envs, data, starts, k: int, reset) -> float:
    """Success rate of ``policy(obs, goals, starts, t)`` over ``starts`` (row indices), all episodes side by
    side: ``reset(env, a, k)`` puts an environment in row a's state with row a + k's configuration as its
    task's goal and returns its observation; the goal the policy sees is row a + k's observation; each
    episode has 2k steps and ends at the environment's success."""
    n = len(starts)
    obs = np.zeros((n, *data["observations"].shape[1:]), data["observations"].dtype)  # states or uint8 frames
    for i, (env, a) in enumerate(zip(envs, starts)):
        obs[i] = reset(env, int(a), k)
    goals = data["observations"][starts + k]
    running, success = np.ones(n, bool), np.zeros(n, bool)
    for t in range(2 * k):
        actions = np.clip(np.asarray(policy(obs, goals, starts, t), np.float32), -1.0, 1.0)
        for i in np.flatnonzero(running):
            ob, _, terminated, _, info = envs[i].step(actions[i])
            obs[i] = ob
            if info["success"] or terminated:
                success[i], running[i] = bool(info["success"]), False
        if not running.any():
            break
    # A step reports the success of the state before its action; the environment has already judged
    # the state after the last one.
    for i in np.flatnonzero(running):
        success[i] = bool(envs[i]._success)
    return float(success.mean())


def load_validation(dataset_dir: str, dataset: str, required: set, what: str) -> tuple[str, dict]:
    """(path, arrays) of ``dataset``'s validation file, with the keys the diagnostic needs."""
    path = os.path.join(dataset_dir, f"{dataset}-val.npz")
    with np.load(path) as f:
        missing = set(required) - set(f.files)
        if missing:
            raise SystemExit(f"{path}: missing {sorted(missing)} ({what})")
        return path, {key: f[key] for key in f.files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-dir", default=os.environ.get("MQE_DATASET_DIR", os.path.expanduser("~/.ogbench/data")))
    parser.add_argument("--dataset", default="scene-play-v0")
    parser.add_argument("--run-dir", help="a trained run (its latest checkpoint is the agent)")
    parser.add_argument("--horizons", default="25,50,100")
    parser.add_argument("--starts", type=int, default=100, help="starts per horizon")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from mqe.envs.ogbench_envs import make_env

    path, data = load_validation(args.dataset_dir, args.dataset, {"observations", "actions", "qpos", "qvel",
                                                                  "button_states"},
                                 "a scene dataset from `mqe generate` or OGBench")
    episode_len = int(np.flatnonzero(data["terminals"])[0]) + 1
    envs = [make_env(args.dataset).unwrapped for _ in range(args.starts)]
    lay = _layout(envs[0])
    action_dim = data["actions"].shape[1]

    def replay(obs, goals, starts, t):
        return data["actions"][starts + t] if t < k else np.zeros((len(obs), action_dim))

    def zero(obs, goals, starts, t):
        return np.zeros((len(obs), action_dim))

    def reset(env, a, k):
        env.reset(seed=a, options=dict(task_info=_task_info(data, lay, a, a + k), render_goal=False))
        env.set_state(data["qpos"][a].astype(np.float64), data["qvel"][a].astype(np.float64), data["button_states"][a])
        return env.compute_observation()

    policies = {"replay": replay, "zero": zero}
    if args.run_dir:
        import mqe

        agent = mqe.load(args.run_dir)
        policies["agent"] = lambda obs, goals, starts, t: agent.act(obs, goals)
        print(f"agent: {agent}")
    rng = np.random.default_rng(args.seed)
    print(f"{args.dataset}: validation file {path}, episodes of {episode_len} rows; {args.starts} starts per horizon"
          " where an object changes; success = the environment's task test, limit 2k steps")
    for k in [int(h) for h in args.horizons.split(",")]:
        starts = []
        while len(starts) < args.starts:
            a = int(rng.integers(0, len(data["terminals"])))
            if a % episode_len + k < episode_len and _objects_changed(data, lay, a, a + k):
                starts.append(a)
        starts = np.array(starts)
        row = []
        for name, policy in policies.items():
            t0 = time.perf_counter()
            rate = reach(policy, envs, data, starts, k, reset)
            row.append(f"{name} {100 * rate:5.1f}% ({time.perf_counter() - t0:.0f} s)")
        print(f"k={k:4d}: " + "   ".join(row), flush=True)


if __name__ == "__main__":
    main()
