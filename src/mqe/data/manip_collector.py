"""OGBench's manipulation data-collection policy (cube, scene, puzzle), as a collector for
``mqe.data.generate``, driving the scripted oracles shipped in the ``ogbench`` wheel.

The environment runs in its data-collection mode: every reset and every ``set_new_target`` draws a
task (move a cube, press a button, open/close the drawer or window), and an oracle for that task's
object runs until it reports ``done``; then a new task is drawn, for 1001 steps per episode.
  play:  plan oracles (a smooth keyframe plan with smoothed noise, scale 0.1)
  noisy: Markov (closed-loop) oracles; per episode xi ~ U(0, 0.1), Gaussian action noise with stds
         xi * (1, 1, 1, 3, 10) on (x, y, z, yaw, gripper); with probability ``p_random_action`` a
         uniformly random action instead (no oracle call, no noise)
Cubes are stacked on a new target with probability p_stack per episode (single 0, double
U(0, 0.25), triple U(0.05, 0.35); scene has one cube). Scene episodes in which the cube leaves the
table's usable area are rejected and collected again, as OGBench does. As in OGBench, an oracle reset
on a new task sees that task's information; its next action sees the step's (older) information.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DRAWER_LEFT_Y = -0.3  # cube y below this is only allowed inside the drawer (z in [0.06, 0.08])


def _oracles(env, kind: str) -> dict[str, Any]:
    from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
    from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
    from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    env_type = env.unwrapped._env_type
    plan = {"noise": 0.1, "noise_smoothing": 0.5}
    if env_type in ("single", "double", "triple"):
        return {"cube": CubePlanOracle(env=env, **plan) if kind == "play" else CubeMarkovOracle(env=env, min_norm=0.4)}
    if env_type == "scene":
        if kind == "play":
            return {"cube": CubePlanOracle(env=env, **plan), "button": ButtonPlanOracle(env=env, **plan),
                    "drawer": DrawerPlanOracle(env=env, **plan), "window": WindowPlanOracle(env=env, **plan)}
        return {"cube": CubeMarkovOracle(env=env, min_norm=0.4, max_step=100),
                "button": ButtonMarkovOracle(env=env, min_norm=0.4), "drawer": DrawerMarkovOracle(env=env, min_norm=0.4),
                "window": WindowMarkovOracle(env=env, min_norm=0.4)}
    # puzzle: buttons pressed with the gripper closed
    if kind == "play":
        return {"button": ButtonPlanOracle(env=env, gripper_always_closed=True, **plan)}
    return {"button": ButtonMarkovOracle(env=env, min_norm=0.4, gripper_always_closed=True)}


class ManipCollector:
    """One environment's oracles and the recipe's noise; statistics of the tasks the oracles attempt."""

    def __init__(self, recipe):
        self.recipe = recipe
        self.env_kwargs = {"terminate_at_goal": False, "mode": "data_collection",
                           "max_episode_steps": recipe.episode_steps}
        self.oracles: dict[str, Any] | None = None
        # tasks_done: oracle runs that finished; tasks_succeeded: of those, the environment judged the
        # task achieved on the step the oracle finished.
        self.stats = {"tasks_done": 0, "tasks_succeeded": 0}

    def _p_stack(self, env, rng: np.random.Generator) -> float:
        env_type = env.unwrapped._env_type
        if env_type == "single":
            return 0.0
        if env_type == "double":
            return float(rng.uniform(0.0, 0.25))
        if env_type == "triple":
            return float(rng.uniform(0.05, 0.35))
        return 0.5  # scene (one cube, never stacks) and puzzle (ignored)

    def reset(self, env, rng: np.random.Generator, seed: int | None) -> np.ndarray:
        if self.oracles is None:
            self.oracles = _oracles(env, self.recipe.kind)
            self.is_scene = env.unwrapped._env_type == "scene"
        ob, info = env.reset(seed=seed)
        self.p_stack = self._p_stack(env, rng)
        self.xi = float(rng.uniform(0.0, self.recipe.noise)) if self.recipe.kind == "noisy" else 0.0
        self._start_task(ob, info)
        self.info = info
        return ob

    def _start_task(self, ob, info) -> None:
        self.oracle = self.oracles[info["privileged/target_task"]]
        self.oracle.reset(ob, info)

    def act(self, env, observation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        action_dim = env.action_space.shape[0]
        if self.recipe.p_random_action and rng.random() < self.recipe.p_random_action:
            return rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
        action = np.asarray(self.oracle.select_action(observation, self.info), np.float64)
        if self.recipe.kind == "noisy":
            action = action + rng.standard_normal(action_dim) * self.xi * np.array([1.0, 1.0, 1.0, 3.0, 10.0])
        return np.clip(action, -1.0, 1.0)

    def after_step(self, env, info: dict, rng: np.random.Generator) -> None:
        self.info = info
        if self.oracle.done:
            self.stats["tasks_done"] += 1
            self.stats["tasks_succeeded"] += int(bool(info.get("success", False)))
            ob, new_info = env.unwrapped.set_new_target(p_stack=self.p_stack)
            self._start_task(ob, new_info)

    def accept_episode(self, episode: dict[str, np.ndarray]) -> bool:
        """Scene: rejects episodes in which the cube left the usable table area (OGBench re-collects them)."""
        if not self.is_scene:
            return True
        cube = episode["qpos"][:, 14:17]  # the scene's cube (after 6 arm + 8 gripper joints)
        y, z = cube[:, 1], cube[:, 2]
        out = (y >= 0.29) | ((y <= DRAWER_LEFT_Y) & ((z < 0.06) | (z > 0.08)))
        return not bool(np.any(out))


TABLE_X, TABLE_Y, TABLE_BIN = (0.3, 0.55), (-0.3, 0.3), 0.025  # the cubes' work area (m), 10 x 24 bins


def table_bins(positions: np.ndarray) -> tuple[int, int]:
    """(bins visited, bins in all) of the work area for cube positions (N, >= 2), each bin a
    2.5 cm square counted from the area's corner (the far edges belong to the last bins)."""
    nx = int(round((TABLE_X[1] - TABLE_X[0]) / TABLE_BIN))
    ny = int(round((TABLE_Y[1] - TABLE_Y[0]) / TABLE_BIN))
    x, y = positions[:, 0], positions[:, 1]
    inside = (x >= TABLE_X[0]) & (x <= TABLE_X[1]) & (y >= TABLE_Y[0]) & (y <= TABLE_Y[1])
    ix = np.minimum(((x[inside] - TABLE_X[0]) / TABLE_BIN).astype(np.int64), nx - 1)
    iy = np.minimum(((y[inside] - TABLE_Y[0]) / TABLE_BIN).astype(np.int64), ny - 1)
    return int(len(np.unique(ix * ny + iy))), nx * ny


def summarize(env_id: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Coverage: how much of the table the cubes visit (``table_bins``), the fraction of cube-rows
    with a cube lifted (z > 4 cm), and for buttons the distinct button-state patterns."""
    out: dict[str, Any] = {}
    qpos = arrays["qpos"]
    if env_id.startswith("cube") or env_id.startswith("scene"):
        cubes = (qpos.shape[1] - 14) // 7 if env_id.startswith("cube") else 1
        positions = np.concatenate([qpos[:, 14 + 7 * k:17 + 7 * k] for k in range(cubes)])
        out["table_bins_visited"], out["table_bins"] = table_bins(positions)
        out["rows_cube_lifted_pct"] = round(100.0 * float(np.mean(positions[:, 2] > 0.04)), 2)
    if "button_states" in arrays:
        patterns = np.unique(arrays["button_states"], axis=0)
        out["button_patterns_visited"] = int(len(patterns))
        out["button_patterns"] = int(2 ** arrays["button_states"].shape[1])
    return out
