"""Environment factory from an OGBench dataset name (all of OGBench's, plus the colossal maze)."""

from __future__ import annotations

import gymnasium

import mqe.envs  # noqa: F401  (sets MUJOCO_GL before MuJoCo loads)
from mqe.envs import colossal  # noqa: F401  (registers antmaze-colossal-v0 / pointmaze-colossal-v0)
from mqe.errors import MQEError


class UnknownEnvironmentError(MQEError, ValueError):
    pass


def make_env(dataset_name: str, **env_kwargs):
    """The evaluation environment for a dataset name, e.g. 'pointmaze-large-navigate-v0'.

    Uses OGBench's own name resolution (so '-singletask-', '-oraclerep' and visual names work) and
    never touches the network.
    """
    import ogbench

    try:
        return ogbench.make_env_and_datasets(dataset_name, env_only=True, **env_kwargs)
    except gymnasium.error.Error as exc:
        raise UnknownEnvironmentError(
            f"{dataset_name!r} is not an OGBench dataset name (or the colossal maze): {exc}. "
            "Expected e.g. 'pointmaze-large-navigate-v0' or 'antmaze-colossal-stitch-v0'."
        ) from None
