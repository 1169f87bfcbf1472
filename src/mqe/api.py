"""Python API for analysis: load a run directory or checkpoint, query distances and actions (numpy in/out).

    >>> import mqe
    >>> model = mqe.load("runs/my-run")            # newest checkpoint of a run, or a .msgpack file
    >>> model.distance(observations, goals)         # learned d(psi(s), psi(g)), shape (N,)
    >>> model.distance(observations, goals) / model.step_distance   # in environment steps
    >>> model.steps(observations, goals)            # the same, as the agent (and the planner) count them
    >>> model.act(observations, goals)              # deterministic actions, shape (N, action_dim)
"""

from __future__ import annotations

import os
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from mqe import checkpoint as ckpt
from mqe.agents import AGENTS
from mqe.config import RunConfig

_REDUCTIONS = ("mean", "max", "min", "none")


class LoadedAgent:
    """A trained agent restored from a checkpoint; methods take and return numpy arrays, batched."""

    def __init__(self, agent, config: RunConfig, step: int, path: str, observation_shape, action_dim,
                 policy_only: bool = False):
        self.agent = agent
        self.policy_only = policy_only  # a policy checkpoint: act() works, the critics are not there
        self.config = config
        self.step = step
        self.path = path
        self.observation_shape = tuple(observation_shape)
        self.action_dim = int(action_dim)

    def __repr__(self) -> str:
        return (f"LoadedAgent({self.config.agent_name}, step={self.step}, obs={self.observation_shape}, "
                f"action_dim={self.action_dim}, path={self.path!r})")

    @property
    def step_distance(self) -> float:
        """The learned distance of one environment step, as the agent states it (``agent.step_distance()``:
        |log gamma| for MQE and TMD, 1 for QRL)."""
        if not hasattr(self.agent, "step_distance"):
            raise TypeError(f"agent {self.config.agent_name!r} has no learned distance")
        return float(self.agent.step_distance())

    def steps(self, observations, goals, *, batch_size: int = 4096) -> np.ndarray:
        """Environment steps from each observation to its goal as the agent learned them (matched rows):
        the same ``agent.steps_functions()`` the planner plans with. (N,)."""
        if not hasattr(self.agent, "steps_functions"):
            raise TypeError(f"agent {self.config.agent_name!r} has no distance or value to count steps with")
        if self.policy_only:
            raise TypeError(f"{self.path} is a policy checkpoint: it holds the policy's networks, not the critic's")
        obs, goals = self._rows(observations, "observations"), self._rows(goals, "goals")
        if obs.shape[0] != goals.shape[0]:
            raise ValueError(f"observations has {obs.shape[0]} rows but goals has {goals.shape[0]}")
        return _batched(self._steps_fn, batch_size, obs, goals, axis=0)

    def distance(self, observations, goals, *, reduce: str = "mean", batch_size: int = 4096) -> np.ndarray:
        """d(psi(s), psi(g)) for matched rows; ``reduce`` over the ensemble: mean | max | min | none."""
        if not hasattr(self.agent, "distance"):
            raise TypeError(f"agent {self.config.agent_name!r} has no learned distance")
        if self.policy_only:
            raise TypeError(f"{self.path} is a policy checkpoint: it holds the policy's networks, not the critic's")
        if reduce not in _REDUCTIONS:
            raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
        obs, goals = self._rows(observations, "observations"), self._rows(goals, "goals")
        if obs.shape[0] != goals.shape[0]:
            raise ValueError(f"observations has {obs.shape[0]} rows but goals has {goals.shape[0]}")
        out = _batched(self._distance_fn, batch_size, obs, goals)  # (E, N) chunks concatenated on axis 1
        if reduce == "none":
            return out
        return getattr(np, reduce)(out, axis=0)

    def act(self, observations, goals, *, batch_size: int = 4096) -> np.ndarray:
        """Deterministic actions (policy mean clipped to [-1, 1]) for matched rows: (N, action_dim)."""
        obs, goals = self._rows(observations, "observations"), self._rows(goals, "goals")
        if obs.shape[0] != goals.shape[0]:
            raise ValueError(f"observations has {obs.shape[0]} rows but goals has {goals.shape[0]}")
        return _batched(self._act_fn, batch_size, obs, goals, axis=0)

    def _rows(self, array, name: str) -> np.ndarray:
        arr = np.asarray(array)
        if arr.shape == self.observation_shape:
            arr = arr[None]
        if arr.shape[1:] != self.observation_shape:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.observation_shape))}) "
                f"or {self.observation_shape}; got {arr.shape}"
            )
        return arr.astype(np.float32) if arr.dtype != np.uint8 else arr

    @cached_property
    def _distance_fn(self):
        return jax.jit(lambda o, g: self.agent.distance(o, g))

    @cached_property
    def _steps_fn(self):
        fns = self.agent.steps_functions()
        return jax.jit(lambda o, g: fns.steps(fns.embed_state(o), fns.embed_goal(g)))

    @cached_property
    def _act_fn(self):
        return jax.jit(lambda o, g: self.agent.sample_actions(o, g))


def _batched(fn, batch_size: int, obs: np.ndarray, goals: np.ndarray, axis: int = 1) -> np.ndarray:
    n = obs.shape[0]
    outs = []
    for start in range(0, n, batch_size):
        o, g = obs[start:start + batch_size], goals[start:start + batch_size]
        pad = batch_size - o.shape[0] if n > batch_size else 0
        if pad:  # one compiled shape for every chunk
            o = np.concatenate([o, np.repeat(o[-1:], pad, 0)])
            g = np.concatenate([g, np.repeat(g[-1:], pad, 0)])
        out = np.asarray(fn(jnp.asarray(o), jnp.asarray(g)))
        outs.append(np.take(out, np.arange(out.shape[axis] - pad), axis=axis))
    return np.concatenate(outs, axis=axis)


def _readable(path: str) -> bool:
    try:
        ckpt.read_checkpoint(path)
        return True
    except ckpt.CheckpointError:
        return False


def load(path: str | os.PathLike) -> LoadedAgent:
    """Loads a checkpoint file, or the newest checkpoint of a run directory (a full one if it has any,
    else its newest policy checkpoint); needs nothing else."""
    path = os.fspath(path)
    directory = None
    if os.path.isdir(path):
        for directory, policies in ((os.path.join(path, "checkpoints"), False), (path, False),
                                    (os.path.join(path, ckpt.POLICY_DIR), True)):
            found = ckpt.list_checkpoints(directory, policies)
            if found:
                path = found[-1][1]
                break
        else:
            raise ckpt.CheckpointError(f"{path}: no checkpoint (checkpoints/ckpt_*.msgpack or "
                                       f"{ckpt.POLICY_DIR}/policy_*.msgpack) in this run directory")
    try:
        payload = ckpt.read_checkpoint(path)
    except ckpt.CheckpointError as exc:
        folder = directory or os.path.dirname(path)
        good = next((p for _, p in reversed(ckpt.list_checkpoints(folder, os.path.basename(folder) == ckpt.POLICY_DIR))
                     if p != path and _readable(p)), None)
        raise ckpt.CheckpointError(f"{exc}; " + (f"the newest good checkpoint there is {good} (load or serve that "
                                                 "file)" if good else "no other checkpoint there reads")) from None
    config = RunConfig.from_dict(payload["config"])
    spec = AGENTS[config.agent_name]
    obs_shape, action_dim = payload["observation_shape"], payload["action_dim"]
    template = spec.agent_class.create(
        jax.random.PRNGKey(0), np.zeros((1, *obs_shape), np.float32), np.zeros((1, action_dim), np.float32),
        config.agent,
    )
    state = payload["state"]
    if payload.get("contents") == "policy":
        stored = state["agent"]["params"]
        params = dict(template.params)
        for name, tree in stored.items():
            if name not in params:
                raise ckpt.CheckpointError(f"{path}: network {name!r} is not one of this agent's ({', '.join(params)})")
            params[name] = ckpt.restore_state(template.params[name], tree, path)
        return LoadedAgent(template.replace(params=params), config, int(payload["step"]), path, obs_shape,
                           action_dim, policy_only=True)
    agent = ckpt.restore_state(template, state["agent"], path)
    return LoadedAgent(agent, config, int(payload["step"]), path, obs_shape, action_dim)
