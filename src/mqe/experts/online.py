"""Online SAC training of a command-following locomotion expert, resumable and reproducible by seed.

Loop: the host steps one environment with the numpy actor (no device call per step); every
``updates_per_chunk`` steps the new transitions are inserted into a device-resident replay buffer
and as many SAC updates run in one compiled ``lax.scan`` (one update per environment step, as in
OGBench). The acting policy therefore lags by at most one chunk.

Determinism: every episode resets with seeds derived from (seed, episode index), exploration noise
comes from one numpy generator whose state is checkpointed, and update randomness from a JAX key.
Checkpoints are written at episode boundaries (agent, key, replay rows, generator state), so a
killed run resumes to exactly the parameters an uninterrupted run reaches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from mqe import checkpoint as ckpt
from mqe.errors import MQEError
from mqe.experts.sac import NumpyActor, SACAgent, SACConfig
from mqe.io import atomic_write_text, atomic_writer
from mqe.logger import RunLogger

REPLAY_KEYS = ("states", "commands", "actions", "rewards", "masks", "next_states", "next_commands")


@dataclasses.dataclass(frozen=True)
class DirectionalTask:
    """A command-conditioned locomotion task: observations end with a ``command_dim`` command."""

    name: str
    make_env: Callable[[], Any]  # -> gymnasium env; its observation is concat(state, command)
    command_dim: int = 2


class ExpertError(MQEError, ValueError):
    """Bad expert-training input; the message names the flag or file."""


def _episode_seeds(seed: int, episode: int) -> tuple[int, int]:
    a, b = np.random.SeedSequence([seed, episode]).generate_state(2)
    return int(a), int(b)


def _reset(env, seed: int, episode: int):
    global_seed, env_seed = _episode_seeds(seed, episode)
    np.random.seed(global_seed)  # OGBench's XY wrapper draws its commands from numpy's global generator
    ob, _ = env.reset(seed=env_seed)
    return ob


def evaluate_actor(task: DirectionalTask, actor: NumpyActor, episodes: int, seed: int) -> dict[str, float]:
    """Deterministic episodes (tanh of the mean): mean/min return and length. Leaves numpy's global
    generator as it found it, so evaluating does not change the training run."""
    saved = np.random.get_state()
    env = task.make_env()
    returns, lengths = [], []
    try:
        for episode in range(episodes):
            ob = _reset(env, seed + 1_000_003, episode)
            total, steps, done = 0.0, 0, False
            while not done:
                action = actor.act(ob[None, :-task.command_dim], ob[None, -task.command_dim:])[0]
                ob, reward, terminated, truncated, _ = env.step(action)
                total, steps, done = total + float(reward), steps + 1, terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
        np.random.set_state(saved)
    return {"eval/return_mean": float(np.mean(returns)), "eval/return_min": float(np.min(returns)),
            "eval/length_mean": float(np.mean(lengths))}


def _make_chunk(length: int, batch_size: int):
    def chunk(agent, buffer, new_rows, start, key):
        buffer = {k: jax.lax.dynamic_update_slice_in_dim(buffer[k], new_rows[k], start, axis=0) for k in buffer}
        size = start + length

        def body(agent, step_key):
            index_key, update_key = jax.random.split(step_key)
            index = jax.random.randint(index_key, (batch_size,), 0, size)
            batch = {k: v[index] for k, v in buffer.items()}
            batch["rng"] = jax.random.key_data(update_key)
            return agent.update(batch)

        agent, metrics = jax.lax.scan(body, agent, jax.random.split(key, length))
        return agent, buffer, jax.tree.map(jnp.mean, metrics)

    return jax.jit(chunk, donate_argnums=(0, 1))  # agent and replay buffer are updated in place


def train_expert(task: DirectionalTask, run_dir: str, config: SACConfig = SACConfig(), *, seed: int = 0,
                 until: int | None = None, eval_every: int = 20_000, eval_episodes: int = 5,
                 checkpoint_every: int = 20_000, progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Trains (or resumes) the expert in ``run_dir``; writes ``actor.npz`` and ``record.json`` at the end.

    ``until``: stop at the first episode boundary at or after this step (checkpointed), e.g. to train
    in several sittings. ``command`` (the command line) goes into the record. Returns the record (or
    the progress so far when stopped early).
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    os.makedirs(run_dir, exist_ok=True)
    env = task.make_env()
    obs_dim = env.observation_space.shape[0]
    state_dim, command_dim = obs_dim - task.command_dim, task.command_dim
    action_dim = env.action_space.shape[0]
    total = config.total_steps
    replay = {"states": np.zeros((total, state_dim), np.float32), "commands": np.zeros((total, command_dim), np.float32),
              "actions": np.zeros((total, action_dim), np.float32), "rewards": np.zeros(total, np.float32),
              "masks": np.zeros(total, np.float32), "next_states": np.zeros((total, state_dim), np.float32),
              "next_commands": np.zeros((total, command_dim), np.float32)}
    agent = SACAgent.create(jax.random.PRNGKey(seed), np.zeros((1, state_dim)), np.zeros((1, command_dim)),
                            np.zeros((1, action_dim)), config)
    key = jax.random.PRNGKey(seed + 1)
    rng = np.random.default_rng([seed, 2])
    step, episode, wall_before = 0, 0, 0.0
    config_dict = {"task": task.name, "seed": seed, "sac": dataclasses.asdict(config)}
    latest = ckpt.latest_checkpoint(ckpt_dir)
    if latest is not None:
        payload = ckpt.read_checkpoint(latest)
        if payload["config"] != json.loads(json.dumps(config_dict)):
            raise ExpertError(f"{latest} was made with other settings ({payload['config']}); "
                              "use a new --out directory or the same settings")
        state = ckpt.restore_state({"agent": agent, "key": key}, payload["state"], latest)
        agent, key, step = state["agent"], state["key"], payload["step"]
        extra = payload["extra"]
        episode, wall_before = extra["episode"], extra["wall_seconds"]
        rng.bit_generator.state = extra["rng_state"]
        with np.load(_replay_path(ckpt_dir, step)) as saved:
            for k in REPLAY_KEYS:
                replay[k][:step] = saved[k]
    atomic_write_text(os.path.join(run_dir, "config.json"), json.dumps(config_dict, indent=2))
    logger = RunLogger(run_dir, resume_step=step)
    chunk = _make_chunk(config.updates_per_chunk, config.batch_size)
    buffer = None if step < config.random_steps else jax.tree.map(jnp.asarray, replay)
    actor = NumpyActor(jax.device_get(agent.params["actor"]), config.layer_norm)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    episode_return, episode_returns = 0.0, []
    bar = tqdm(total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True,
               desc=f"expert {task.name}")

    def save():
        with atomic_writer(_replay_path(ckpt_dir, step), suffix=".tmp.npz") as fh:
            np.savez(fh, **{k: v[:step] for k, v in replay.items()})
        ckpt.save_checkpoint(ckpt_dir, step=step, config=config_dict, state={"agent": agent, "key": key},
                             observation_shape=(obs_dim,), action_dim=action_dim, keep=1,
                             extra={"episode": episode, "rng_state": rng.bit_generator.state,
                                    "wall_seconds": wall_before + time.perf_counter() - started})
        for name in os.listdir(ckpt_dir):  # replay files of pruned checkpoints
            if name.startswith("replay_") and name != os.path.basename(_replay_path(ckpt_dir, step)):
                os.remove(os.path.join(ckpt_dir, name))

    last_saved = step
    try:
        ob = _reset(env, seed, episode)
        while step < total:
            if step < config.random_steps:
                action = rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
            else:
                action = actor.act(ob[None, :state_dim], ob[None, state_dim:], rng)[0]
            next_ob, reward, terminated, truncated, _ = env.step(action)
            for k, v in (("states", ob[:state_dim]), ("commands", ob[state_dim:]), ("actions", action),
                         ("rewards", reward), ("masks", 0.0 if terminated else 1.0),
                         ("next_states", next_ob[:state_dim]), ("next_commands", next_ob[state_dim:])):
                replay[k][step] = v
            step += 1
            episode_return += float(reward)
            ob = next_ob
            if step % config.updates_per_chunk == 0 and step > config.random_steps:
                if buffer is None:
                    buffer = jax.tree.map(jnp.asarray, replay)
                start = step - config.updates_per_chunk
                new_rows = {k: v[start:step] for k, v in replay.items()}
                key, chunk_key = jax.random.split(key)
                agent, buffer, chunk_metrics = chunk(agent, buffer, new_rows, start, chunk_key)
                actor = NumpyActor(jax.device_get(agent.params["actor"]), config.layer_norm)
                metrics = chunk_metrics
                if step % eval_every == 0 or step == total:
                    result = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    result.update(evaluate_actor(task, actor, eval_episodes, seed))
                    if episode_returns:
                        result["train/episode_return"] = float(np.mean(episode_returns[-10:]))
                    result["time/wall_seconds"] = wall_before + time.perf_counter() - started
                    logger.log("train", step, result)
                    bar.set_postfix({"return": f"{result['eval/return_mean']:.1f}"})
            bar.update(1)
            if terminated or truncated:
                episode += 1
                episode_returns.append(episode_return)
                episode_return = 0.0
                if step < total and (step - last_saved >= checkpoint_every or (until is not None and step >= until)):
                    save()
                    last_saved = step
                if until is not None and step >= until:
                    break
                ob = _reset(env, seed, episode)
    except KeyboardInterrupt:
        bar.close()
        raise  # the last periodic checkpoint stays; training resumes from it
    finally:
        bar.close()
        logger.close()
        env.close()
    if step < total:
        return {"step": step, "finished": False}
    final = evaluate_actor(task, actor, max(eval_episodes, 10), seed)
    record = {"command": command, "task": task.name, "seed": seed, "environment_steps": step, "episodes": episode,
              "final_eval": final, "wall_seconds": round(wall_before + time.perf_counter() - started, 1),
              "sac": dataclasses.asdict(config), "versions": _versions()}
    with atomic_writer(os.path.join(run_dir, "actor.npz"), suffix=".tmp.npz") as fh:
        np.savez(fh, **actor.to_arrays())
    atomic_write_text(os.path.join(run_dir, "record.json"), json.dumps(record, indent=2))
    return {**record, "finished": True}


def _replay_path(ckpt_dir: str, step: int) -> str:
    return os.path.join(ckpt_dir, f"replay_{step:010d}.npz")


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("mqe", "jax", "flax", "ogbench", "mujoco", "gymnasium", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out
