"""A scripted agent that solves OGBench's cube evaluation tasks from privileged state: the positive
control for manipulation evaluation.

A learned agent that scores 0% on a manipulation task says nothing about the evaluator unless some
agent is known to score there through the very same code path. This one reads the simulator (cube
poses, the task's target poses) and drives the ``ogbench`` wheel's closed-loop cube oracle, one cube
at a time: the unsolved cube whose target is lowest first, so stacks are built bottom-up. It is
called like a learned policy, ``policy(observations, goals) -> actions``, by
``mqe.evaluation.evaluate``, and never looks at the observations or goals it is handed; everything
else (task reset, goal observation, success at the episode's end, time limit) is the evaluator's.

Only for ``workers=0`` evaluation: the policy reads the environment copies this process made.
"""

from __future__ import annotations

import numpy as np

SUCCESS_RADIUS = 0.04  # the cube environment's own success threshold (metres)


def _target_yaw(env, i: int) -> float:
    from ogbench.manipspace import lie

    quat = env._data.mocap_quat[env._cube_target_mocap_ids[i]]
    return float(lie.SO3(wxyz=quat).compute_yaw_radians())


class CubeTaskSolver:
    """The wheel's ``CubeMarkovOracle`` sequenced over the cubes of one cube environment in task mode."""

    def __init__(self, env):
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        self.env = env.unwrapped
        if getattr(self.env, "_env_type", None) not in ("single", "double", "triple", "quadruple"):
            raise ValueError(f"CubeTaskSolver needs a cube environment, got {type(self.env).__name__}")
        self.oracle = CubeMarkovOracle(env=env, min_norm=0.4)
        self.last_time = np.inf
        self.block: int | None = None

    def _info(self) -> dict:
        """The environment's own observation info plus the target entries its data-collection mode adds."""
        info = self.env.compute_ob_info()
        info["privileged/target_block"] = self.block
        info["privileged/target_block_pos"] = self.env._data.mocap_pos[self.env._cube_target_mocap_ids[self.block]].copy()
        info["privileged/target_block_yaw"] = np.array([_target_yaw(self.env, self.block)])
        return info

    def _next_block(self) -> int | None:
        env = self.env
        unsolved = []
        for i in range(env._num_cubes):
            target = env._data.mocap_pos[env._cube_target_mocap_ids[i]]
            if np.linalg.norm(env._data.joint(f"object_joint_{i}").qpos[:3] - target) > SUCCESS_RADIUS:
                unsolved.append((target[2], i))
        return min(unsolved)[1] if unsolved else None

    def act(self) -> np.ndarray:
        time = float(self.env._data.time)
        if time < self.last_time:  # the environment was reset: a new episode
            self.block = None
        self.last_time = time
        if self.block is None or self.oracle.done:
            block = self._next_block()
            if block is None:  # every cube on its target: hold still, gripper open
                action = np.zeros(self.env.action_space.shape, np.float32)
                action[-1] = -1.0
                return action
            self.block = block
            self.oracle.reset(None, self._info())
        return np.clip(np.asarray(self.oracle.select_action(None, self._info()), np.float32), -1.0, 1.0)


class CubeTaskPolicy:
    """``env_fn`` and ``policy`` for ``mqe.evaluation.evaluate``: every environment copy made through
    ``make_env`` gets a solver, and ``policy`` asks each copy's solver for its action."""

    def __init__(self, dataset_name: str, seed: int = 0):
        self.dataset_name = dataset_name
        self.solvers: list[CubeTaskSolver] = []
        np.random.seed(seed)  # the wheel's oracle draws its final arm pose from numpy's global generator

    def make_env(self):
        from mqe.envs.ogbench_envs import make_env

        env = make_env(self.dataset_name)
        self.solvers.append(CubeTaskSolver(env))
        return env

    def __call__(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        if len(self.solvers) != len(observations):
            raise RuntimeError("CubeTaskPolicy drives the copies made by its own make_env (workers=0 only)")
        return np.stack([solver.act() for solver in self.solvers])
