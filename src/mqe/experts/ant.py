"""The ant expert: walks in any commanded XY direction (OGBench's ``online-ant-v0`` + XY wrapper).

Task: the ant with restricted joints (frame skip 5, 1000-step episodes, terminated when its torso
leaves z in [0.2, 1.0]); observation = 27-d body state (no x, y) + 2-d unit direction; reward = the
torso's XY displacement along the direction; the direction is redrawn every 100 steps.
In the mazes the same actor receives the maze observation without x, y plus the unit direction to
the next BFS subgoal.

The trained actor ships with the package (``ant.npz``, ``ant.json``: how it was made);
``mqe expert train ant`` reproduces it.
"""

from __future__ import annotations

import json
import os
from importlib import resources

import numpy as np

from mqe.experts.online import DirectionalTask, ExpertError
from mqe.experts.sac import NumpyActor

STATE_DIM = 27  # ant body state without x, y
RESAMPLE_INTERVAL = 100  # steps between direction changes while training


def make_env(max_episode_steps: int = 1000):
    import gymnasium
    import ogbench.online_locomotion  # noqa: F401  (registers online-ant-v0)
    from ogbench.online_locomotion.wrappers import GymXYWrapper

    import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)

    return GymXYWrapper(gymnasium.make("online-ant-v0", max_episode_steps=max_episode_steps),
                        resample_interval=RESAMPLE_INTERVAL)


def task(max_episode_steps: int = 1000) -> DirectionalTask:
    import functools

    return DirectionalTask("ant", functools.partial(make_env, max_episode_steps), command_dim=2)


def packaged_paths() -> tuple[str, str]:
    root = resources.files("mqe.experts")
    return str(root / "ant.npz"), str(root / "ant.json")


def load_actor(path: str | None = None) -> NumpyActor:
    """The ant actor from ``path`` (an ``actor.npz`` written by ``mqe expert train ant``), or the
    packaged one."""
    path = path or packaged_paths()[0]
    if not os.path.exists(path):
        raise ExpertError(f"no ant expert at {path}: train one with `mqe expert train ant --out DIR` "
                          "and pass --expert DIR/actor.npz")
    try:
        with np.load(path) as arrays:
            actor = NumpyActor.from_arrays(dict(arrays))
    except (KeyError, ValueError, OSError) as exc:
        raise ExpertError(f"{path}: not an ant actor file ({exc})") from None
    if actor.layers[0][0].shape[0] != STATE_DIM + 2 or actor.action_dim != 8:
        raise ExpertError(f"{path}: actor takes {actor.layers[0][0].shape[0]} inputs and returns {actor.action_dim} "
                          f"actions; the ant expert needs {STATE_DIM + 2} and 8")
    return actor


def packaged_record() -> dict:
    with open(packaged_paths()[1]) as fh:
        return json.load(fh)


class AntController:
    """Maze low-level controller: maze observation (x, y first) + unit direction -> ant action, for
    one row (``(29,)``, ``(2,)``) or a batch (``(B, 29)``, ``(B, 2)``)."""

    def __init__(self, actor: NumpyActor):
        self.actor = actor

    def __call__(self, observation: np.ndarray, direction: np.ndarray) -> np.ndarray:
        observation, direction = np.asarray(observation), np.asarray(direction, np.float32)
        if observation.ndim == 1:
            return self.actor.act(observation[None, 2:STATE_DIM + 2], direction[None])[0]
        return self.actor.act(observation[:, 2:STATE_DIM + 2], direction)
