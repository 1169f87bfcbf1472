"""The training loop: K updates per compiled call, metrics reduced on the device, atomic checkpoints.

Python only regains control between compiled calls, to log, evaluate or checkpoint. One seed drives
everything: ``PRNGKey(seed)`` splits into the init key and the sampling key carried through training,
so a run resumed from a checkpoint ends with exactly the parameters of an uninterrupted one (on CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from mqe import checkpoint as ckpt
from mqe.agents import AGENTS
from mqe.config import ConfigError, RunConfig
from mqe.data.dataset import Dataset
from mqe.io import atomic_write_text
from mqe.logger import RunLogger
from mqe.sampling import DeviceData

# Fields that may change when a run is resumed (they do not change what a step computes).
RESUMABLE_CHANGES = {"steps", "log_interval", "checkpoint_interval", "keep_checkpoints", "eval_interval",
                     "tensorboard"}

Evaluator = Callable[[Any], dict[str, float]]


class TrainingDiverged(RuntimeError):
    pass


@dataclasses.dataclass
class TrainResult:
    agent: Any
    step: int
    run_dir: str
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float] | None
    updates_per_second: float


@functools.lru_cache(maxsize=32)
def make_train_chunk(sampler, length: int):
    """A compiled function running ``length`` updates: (agent, key, data) -> (agent, key, mean metrics).

    ``sampler`` is the agent config's ``sampler()``: anything hashable with ``sample(key, data) -> batch``.
    Cached, so a second run with the same settings in one process reuses the compiled code."""

    def chunk(agent, key, data: DeviceData):
        def body(carry, _):
            agent, key = carry
            key, batch_key = jax.random.split(key)
            agent, metrics = agent.update(sampler.sample(batch_key, data))
            return (agent, key), metrics

        (agent, key), metrics = jax.lax.scan(body, (agent, key), None, length=length)
        return agent, key, jax.tree.map(jnp.mean, metrics)

    return jax.jit(chunk, donate_argnums=(0, 1))


def initial_state(config: RunConfig, dataset: Dataset):
    """(agent, sampling key) at step 0, both from the one seed."""
    spec = AGENTS[config.agent_name]
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(config.train.seed))
    agent = spec.agent_class.create(
        init_key, dataset.observations[:1], dataset.actions[:1], config.agent
    )
    return agent, sample_key


def train(
    config: RunConfig,
    dataset: Dataset,
    run_dir: str,
    *,
    evaluator: Evaluator | None = None,
    eval_steps: set[int] | None = None,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Trains (or resumes) a run in ``run_dir``; returns the final agent and metrics.

    ``evaluator(agent) -> metrics`` runs at the steps in ``eval_steps`` (each a multiple of
    ``train.updates_per_call``), every ``train.eval_interval`` steps, and at the end.
    """
    tc = config.train
    eval_steps = set(eval_steps or ())
    misaligned = sorted(s for s in eval_steps if s % tc.updates_per_call and s != tc.steps)
    if misaligned:
        raise ConfigError(f"evaluation steps {misaligned} are not multiples of train.updates_per_call")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    config = dataclasses.replace(config, dataset=config.dataset or dataset.source,
                                 dataset_fingerprint=dataset.fingerprint)
    _check_same_data(run_dir, config)
    os.makedirs(run_dir, exist_ok=True)
    agent, key = initial_state(config, dataset)
    step = 0
    window: list[tuple[dict[str, Any], int]] = []  # (mean metrics of a chunk, its length) since last log
    latest = ckpt.latest_checkpoint(ckpt_dir) if resume else None
    if latest is not None:
        payload = ckpt.read_checkpoint(latest)
        _check_resumable(RunConfig.from_dict(payload["config"]), config, latest)
        state = ckpt.restore_state({"agent": agent, "rng": key}, payload["state"], latest)
        agent, key, step = state["agent"], state["rng"], payload["step"]
        if step > tc.steps:
            raise ConfigError(
                f"{latest} is at step {step}, past the requested train.steps={tc.steps}; "
                "raise --steps to continue training, or use a new run directory"
            )
        pending = payload["extra"].get("log_window")
        if pending:  # the killed run's partly filled log window: the next row averages the same steps
            window.append((pending["mean"], pending["count"]))
    elif not resume and ckpt.list_checkpoints(ckpt_dir):
        raise ConfigError(f"{run_dir} already holds checkpoints; resume it or choose a new run directory")
    atomic_write_text(os.path.join(run_dir, "config.json"), json.dumps(config.to_dict(), indent=2))

    logger = RunLogger(run_dir, resume_step=step, tensorboard=tc.tensorboard)
    data = DeviceData.from_dataset(dataset)
    sampler = config.agent.sampler()
    chunks: dict[int, Any] = {}
    train_metrics: dict[str, float] = {}
    eval_metrics = None
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True,
               desc=f"train {config.agent_name}")
    first_step = step
    start_step, start_time = step, None

    def save():
        ckpt.save_checkpoint(
            ckpt_dir, step=step, config=config.to_dict(), state={"agent": agent, "rng": key},
            observation_shape=dataset.observation_shape, action_dim=dataset.action_dim,
            keep=tc.keep_checkpoints,
            extra={"log_window": {"mean": _window_mean(window), "count": sum(n for _, n in window)}
                   if window else None},
        )

    try:
        while step < tc.steps:
            length = min(tc.updates_per_call, tc.steps - step)
            if length not in chunks:
                chunks[length] = make_train_chunk(sampler, length)
            agent, key, metrics = chunks[length](agent, key, data)
            jax.block_until_ready(agent.step)
            if start_time is None:  # exclude the first call's compilation from the rate
                start_time, start_step = time.perf_counter(), step + length
            step += length
            window.append((metrics, length))
            bar.update(length)
            done = step == tc.steps
            if done or (tc.log_interval and step % tc.log_interval == 0):
                train_metrics = _window_mean(window)
                window.clear()
                elapsed = time.perf_counter() - start_time
                rate = (step - start_step) / elapsed if elapsed > 0 and step > start_step else float("nan")
                train_metrics["time/updates_per_second"] = rate
                logger.log("train", step, train_metrics)
                bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in train_metrics.items()
                                 if k in ("total_loss", "critic/matched_steps")})
                if not math.isfinite(train_metrics.get("total_loss", 0.0)):
                    save_path = ckpt.latest_checkpoint(ckpt_dir)
                    raise TrainingDiverged(
                        f"non-finite loss at step {step} (see {logger.path('train', 'csv')}); "
                        f"last good checkpoint: {save_path}"
                    )
            if done or (tc.checkpoint_interval and step % tc.checkpoint_interval == 0):
                save()
            if evaluator is not None and (done or step in eval_steps
                                          or (tc.eval_interval and step % tc.eval_interval == 0)):
                eval_metrics = evaluator(agent)
                logger.log("eval", step, eval_metrics)
                atomic_write_text(os.path.join(run_dir, f"eval_{step}.json"),
                                  json.dumps({"step": step, **eval_metrics}, indent=2))
    except KeyboardInterrupt:
        save()  # keep the last completed chunk; `mqe train` on the same run dir resumes from here
        raise
    finally:
        bar.close()
        logger.close()
    if evaluator is not None and eval_metrics is None and step == first_step:
        eval_metrics = evaluator(agent)  # a finished run asked again: report, log nothing new
    rate = train_metrics.get("time/updates_per_second", float("nan"))
    return TrainResult(agent, step, run_dir, train_metrics, eval_metrics, rate)


def _window_mean(window: list[tuple[dict[str, Any], int]]) -> dict[str, float]:
    fetched = jax.device_get([m for m, _ in window])  # the only device-to-host copy per log row
    weights = np.array([n for _, n in window], dtype=np.float64)
    keys = fetched[0].keys()
    return {k: float(np.average([float(m[k]) for m in fetched], weights=weights)) for k in keys}


def _check_same_data(run_dir: str, config: RunConfig) -> None:
    """A run directory belongs to one dataset: refuse to continue it on other data (its logs,
    checkpoints and config.json would then describe a run that never happened)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    before = saved.get("dataset_fingerprint", "")
    if before and before != config.dataset_fingerprint:
        raise ConfigError(
            f"{run_dir} was trained on {saved.get('dataset', '?')!r} (fingerprint {before}); "
            f"refusing to continue it on {config.dataset!r} (fingerprint {config.dataset_fingerprint}). "
            "Use a new --run-dir for other data."
        )


def _check_resumable(saved: RunConfig, requested: RunConfig, path: str) -> None:
    a, b = saved.to_dict(), requested.to_dict()
    diffs = [f"agent.{k}: {a['agent'][k]!r} -> {b['agent'].get(k)!r}" for k in a["agent"]
             if a["agent"][k] != b["agent"].get(k)]
    diffs += [f"train.{k}: {a['train'][k]!r} -> {b['train'].get(k)!r}" for k in a["train"]
              if k not in RESUMABLE_CHANGES and a["train"][k] != b["train"].get(k)]
    if a["agent_name"] != b["agent_name"]:
        diffs.append(f"agent_name: {a['agent_name']!r} -> {b['agent_name']!r}")
    if a["dataset_fingerprint"] and a["dataset_fingerprint"] != b["dataset_fingerprint"]:
        diffs.append(f"dataset: {a['dataset']!r} ({a['dataset_fingerprint']}) -> "
                     f"{b['dataset']!r} ({b['dataset_fingerprint']})")
    if diffs:
        raise ConfigError(
            f"cannot resume from {path}: the config differs in " + "; ".join(diffs)
            + " (use a new run directory, or --no-resume after removing the checkpoints)"
        )
