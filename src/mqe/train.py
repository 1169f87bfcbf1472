"""The training loop: K updates per compiled call, metrics reduced on the device, atomic checkpoints.

Python only regains control between compiled calls, to log, evaluate or checkpoint. One seed drives
everything: ``PRNGKey(seed)`` splits into the init key and the sampling key carried through training,
so a run resumed from a checkpoint ends with exactly the parameters of an uninterrupted one (on CPU).

Several seeds of one configuration train as one program (``train_seeds``): their agent states and keys
are stacked on a leading axis and the compiled loop is ``vmap``ped over it, with one copy of the dataset
on the device. Each seed still has its own run directory (config, logs, checkpoints, evaluations) in
exactly the layout of a single-seed run, and draws exactly its single-seed run's batches. On CPU the
seeds run one after another inside the program (``lax.map``), bit-identical to single-seed runs; on an
accelerator they are vmapped into wider kernels (``train.seed_batching``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from mqe import checkpoint as ckpt
from mqe import provenance
from mqe.agents import AGENTS
from mqe.config import BOOKKEEPING, ConfigError, RunConfig
from mqe.data.dataset import Dataset
from mqe.encoders import check_encoder, load_encoder_weights, read_encoder_weights, with_augmentation
from mqe.errors import MQEError
from mqe.io import RunDirLock, atomic_write_text
from mqe.logger import RunLogger
from mqe.sampling import DeviceData

# Fields that may change when a run is resumed (they do not change what a step computes).
RESUMABLE_CHANGES = BOOKKEEPING | {"steps"}  # a resumed run may also train longer

Evaluator = Callable[[Any], dict[str, float]]
# Evaluates every seed of a group at once: (agent states stacked on a leading axis) -> one dict per seed.
GroupEvaluator = Callable[[Any], list[dict[str, float]]]


class TrainingDiverged(MQEError, RuntimeError):
    pass


@dataclasses.dataclass
class TrainResult:
    agent: Any
    step: int
    run_dir: str
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float] | None
    updates_per_second: float  # per seed; a group of S seeds makes S times as many updates in total
    seed: int = 0
    start_step: int = 0  # where this call began: the step of the checkpoint it resumed (0: a new run)


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees of the same structure -> one pytree with a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, index: int) -> Any:
    """Entry ``index`` of a pytree stacked by ``stack``."""
    return jax.tree.map(lambda x: x[index], tree)


def resolve_seed_batching(batching: str) -> str:
    """``auto`` -> ``vmap`` on an accelerator (one batched program keeps it busy), ``map`` on CPU (no
    faster batched there, and ``map`` keeps every seed bit-identical to its single-seed run). The value was
    checked with the rest of ``TrainConfig``."""
    if batching == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return batching


def over_seeds(fn: Callable, batching: str, in_axes: tuple) -> Callable:
    """``fn`` applied to each seed's slice of the arguments whose ``in_axes`` entry is 0 (the others are
    shared), outputs stacked on a leading seed axis.

    ``vmap`` batches the seeds into wider kernels; ``map`` runs them one after another inside the same
    compiled program (``lax.map``), each seed computing exactly what it computes alone: batched
    kernels sum in another order, and float32 rounding then differs by ~1e-6 after one update and
    grows with training's sensitivity to it."""
    if resolve_seed_batching(batching) == "vmap":
        return jax.vmap(fn, in_axes=in_axes)

    def mapped(*args):
        per_seed = tuple(a for a, axis in zip(args, in_axes) if axis == 0)

        def one(sliced):
            it = iter(sliced)
            return fn(*(next(it) if axis == 0 else a for a, axis in zip(args, in_axes)))

        return jax.lax.map(one, per_seed)

    return mapped


DISPATCH = ("scan", "per_update")


def chunk_dispatch(agent_config) -> str:
    """How a chunk's updates are dispatched: ``per_update`` for image agents on the CPU, ``scan`` otherwise.

    XLA:CPU rewrites the gradient convolutions of an update into the layouts its fast (Eigen)
    convolution takes only when they are not inside a loop's body (``lax.scan``, ``lax.map``): inside
    one, the weight- and input-gradient convolutions keep other layouts and run through XLA's generic
    loop code, about 10x slower (measured: an impala-small MQE update at batch 32, 1.6 s as its own
    program against 15 s as a scan's body). A 1 s update gains nothing from fusing dispatches, so
    image agents on the CPU run one compiled program per update; GPUs take any layout and keep the scan."""
    if getattr(agent_config, "encoder", None) and jax.default_backend() == "cpu":
        return "per_update"
    return "scan"


def make_train_chunk(sampler, length: int, num_seeds: int = 0, batching: str = "auto", dispatch: str = "scan"):
    """A compiled function running ``length`` updates: (agent, key, data) -> (agent, key, mean metrics).

    ``sampler`` is the agent config's ``sampler()``: anything hashable with ``sample(key, data) -> batch``.
    With ``num_seeds`` > 0 the agent and key carry a leading seed axis, the dataset is shared, and the
    seeds run as ``batching`` says (see ``over_seeds``); one seed runs the plain program. ``dispatch``
    (``chunk_dispatch``) is ``scan`` (all updates in one program) or ``per_update`` (one program per
    update and seed, called ``length`` times; the same updates). Cached, so a second run with the same
    settings in one process reuses the compiled code."""
    # One cache key however the caller spells the call (lru_cache tells f(a) from f(a, default) apart).
    return _train_chunk(sampler, int(length), int(num_seeds), resolve_seed_batching(batching), dispatch)


@functools.lru_cache(maxsize=32)
def _train_chunk(sampler, length: int, num_seeds: int, batching: str, dispatch: str):
    if dispatch not in DISPATCH:
        raise ConfigError(f"dispatch must be one of {DISPATCH}, got {dispatch!r}")
    if dispatch == "per_update":
        return _per_update_chunk(sampler, length, num_seeds, batching)
    one_update = _one_update(sampler)

    def chunk(agent, key, data: DeviceData):
        def body(carry, _):
            agent, key, metrics = one_update(*carry, data)
            return (agent, key), metrics

        (agent, key), metrics = jax.lax.scan(body, (agent, key), None, length=length)
        return agent, key, jax.tree.map(jnp.mean, metrics)

    if num_seeds == 0:
        return jax.jit(chunk, donate_argnums=(0, 1))
    if num_seeds == 1:
        def one(agent, key, data):
            out = chunk(unstack(agent, 0), key[0], data)
            return jax.tree.map(lambda x: x[None], out)
        return jax.jit(one, donate_argnums=(0, 1))
    return jax.jit(over_seeds(chunk, batching, (0, 0, None)), donate_argnums=(0, 1))


def _one_update(sampler) -> Callable:
    """(agent, key, data) -> (agent, key, metrics): one batch drawn and one update made."""

    def one_update(agent, key, data: DeviceData):
        key, batch_key = jax.random.split(key)
        agent, metrics = agent.update(sampler.sample(batch_key, data))
        return agent, key, metrics

    return one_update


@functools.lru_cache(maxsize=32)
def _compiled_update(sampler, vmapped: bool) -> Callable:
    """One update as its own program, shared by per-update chunks of every length."""
    one_update = _one_update(sampler)
    return jax.jit(jax.vmap(one_update, in_axes=(0, 0, None)) if vmapped else one_update, donate_argnums=(0, 1))


_add_tree = jax.jit(lambda total, metrics: jax.tree.map(jnp.add, total, metrics))


def _per_update_chunk(sampler, length: int, num_seeds: int, batching: str) -> Callable:
    """``length`` calls of one compiled update (per seed, one after another, unless ``batching`` is
    ``vmap``), the metrics averaged on the device; same interface as the scanned chunk."""
    vmapped = num_seeds > 0 and resolve_seed_batching(batching) == "vmap"
    step, add = _compiled_update(sampler, vmapped), _add_tree

    def run(agent, key, data):
        total = None
        for _ in range(length):
            agent, key, metrics = step(agent, key, data)
            total = metrics if total is None else add(total, metrics)
        return agent, key, jax.tree.map(lambda x: x / length, total)

    if num_seeds == 0 or vmapped:
        return run

    def per_seed(agents, keys, data):
        outs = [run(unstack(agents, i), keys[i], data) for i in range(num_seeds)]
        return tuple(stack(parts) for parts in zip(*outs))

    return per_seed


def initial_state(config: RunConfig, dataset: Dataset):
    """(agent, sampling key) at step 0, both from the one seed."""
    spec = AGENTS[config.agent_name]
    try:
        check_encoder(config.agent, dataset.observation_shape, f"{dataset.source}")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:  # ImageNet weights for every ResNet backbone (agent.encoder_weights), read before anything is built
        pretrained = read_encoder_weights(config.agent)
    except (ValueError, KeyError, OSError) as exc:
        raise ConfigError(str(exc).strip('"')) from None
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(config.train.seed))
    agent = spec.agent_class.create(
        init_key, dataset.observations[:1], dataset.actions[:1], config.agent
    )
    try:
        agent = load_encoder_weights(agent, pretrained)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
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
    """Trains (or resumes) the seed ``config.train.seed`` in ``run_dir``; returns the final agent and
    metrics.

    ``evaluator(agent) -> metrics`` runs at the steps in ``eval_steps`` (each a multiple of
    ``train.updates_per_call``), every ``train.eval_interval`` steps, and at the end.
    """
    group_evaluator = None if evaluator is None else (lambda agents: [evaluator(unstack(agents, 0))])
    return train_seeds(config, dataset, {config.train.seed: run_dir}, evaluator=group_evaluator,
                       eval_steps=eval_steps, resume=resume, progress=progress)[0]


@dataclasses.dataclass
class _Seed:
    """One seed of a group: its config, run directory, state and bookkeeping."""

    config: RunConfig
    run_dir: str
    agent: Any
    key: Any
    step: int
    window: list  # (mean metrics of a chunk, its length) since the last log row
    logger: RunLogger | None = None
    train_metrics: dict = dataclasses.field(default_factory=dict)
    eval_metrics: dict | None = None
    rate: float = float("nan")
    start_step: int = 0  # the step this call started from (a resumed checkpoint's, else 0)
    eval_dir: str = ""  # where eval_<step>.json go, relative to the run directory ("" = the run directory)

    @property
    def ckpt_dir(self) -> str:
        return os.path.join(self.run_dir, "checkpoints")

    def eval_path(self, step: int) -> str:
        return os.path.join(self.run_dir, self.eval_dir, f"eval_{step}.json")


def train_seeds(
    config: RunConfig,
    dataset: Dataset,
    run_dirs: dict[int, str],
    *,
    evaluator: GroupEvaluator | None = None,
    eval_steps: set[int] | None = None,
    resume: bool = True,
    progress: bool = True,
    eval_dir: str = "",
) -> list[TrainResult]:
    """Trains (or resumes) several seeds of one configuration as one compiled program.

    ``run_dirs`` maps each seed to its own run directory; ``config.train.seed`` is replaced by each
    seed. ``evaluator(agents) -> [metrics per seed]`` receives the agents stacked on a leading axis, in
    the order of ``run_dirs``; its results go to ``eval_<step>.json`` in ``RUN/eval_dir`` (e.g. a test-time
    planner's folder, so they are not taken for the plain policy's). Seeds whose checkpoints are at different steps (a group resumed after a
    kill between two seeds' checkpoint writes, or seeds added later) train as one program per distinct
    step. Returns one result per seed, in the order of ``run_dirs``.
    """
    tc = config.train
    if not run_dirs:
        raise ConfigError("train_seeds: no seeds given")
    paths = [os.path.abspath(d) for d in run_dirs.values()]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"each seed needs its own run directory; got {dict(run_dirs)}")
    eval_steps = set(eval_steps or ())
    misaligned = sorted(s for s in eval_steps if s % tc.updates_per_call and s != tc.steps)
    if misaligned:
        raise ConfigError(f"evaluation steps {misaligned} are not multiples of train.updates_per_call")
    base = dataclasses.replace(config, dataset=config.dataset or dataset.source,
                               dataset_fingerprint=dataset.fingerprint)
    with contextlib.ExitStack() as held:
        seeds = []
        for seed, run_dir in run_dirs.items():
            cfg = dataclasses.replace(base, train=dataclasses.replace(tc, seed=int(seed)))
            _check_same_data(run_dir, cfg)
            held.enter_context(RunDirLock(run_dir))
            seeds.append(_start(cfg, dataset, run_dir, resume))
            seeds[-1].eval_dir = eval_dir
            if eval_dir:
                os.makedirs(os.path.join(run_dir, eval_dir), exist_ok=True)
        data = None
        for start in sorted({s.step for s in seeds}):
            members = [s for s in seeds if s.step == start]
            if start < tc.steps:
                data = data if data is not None else DeviceData.from_dataset(dataset)
                _train_group(members, data, dataset, evaluator, eval_steps, progress)
            elif evaluator is not None:
                _finished_evaluations(members, evaluator)
    diverged = [s for s in seeds if not math.isfinite(s.train_metrics.get("total_loss", 0.0))]
    if diverged:
        raise TrainingDiverged("; ".join(
            f"seed {s.config.train.seed}: non-finite loss at step {s.step} (see "
            f"{os.path.join(s.run_dir, 'train.csv')}); last good checkpoint: {ckpt.newest_good_checkpoint(s.ckpt_dir)[0]}"
            for s in diverged))
    return [TrainResult(s.agent, s.step, s.run_dir, s.train_metrics, s.eval_metrics, s.rate, s.config.train.seed,
                        s.start_step) for s in seeds]


def _start(config: RunConfig, dataset: Dataset, run_dir: str, resume: bool) -> _Seed:
    """A seed's state at step 0, or restored from its newest checkpoint."""
    tc = config.train
    seed = _Seed(config, run_dir, *initial_state(config, dataset), step=0, window=[])
    latest, payload = None, None
    if resume:  # damaged newer checkpoints are set aside (kept) with a warning naming them and the one used
        existing = ckpt.list_checkpoints(seed.ckpt_dir)
        latest, payload = ckpt.newest_good_checkpoint(seed.ckpt_dir, set_aside=True)
        if existing and latest is None:
            raise ckpt.CheckpointError(
                f"{run_dir}: every checkpoint is damaged ({', '.join(os.path.basename(p) for _, p in existing)}; "
                f"kept in {os.path.join(seed.ckpt_dir, ckpt.CORRUPT_DIR)}); nothing to resume from: use a new "
                "--run-dir")
    if latest is not None:
        _check_resumable(RunConfig.from_dict(payload["config"]), config, latest)
        state = ckpt.restore_state({"agent": seed.agent, "rng": seed.key}, payload["state"], latest)
        seed.agent, seed.key, seed.step = state["agent"], state["rng"], payload["step"]
        if seed.step > tc.steps:
            raise ConfigError(
                f"{latest} is at step {seed.step}, past the requested train.steps={tc.steps}; "
                "raise --steps to continue training, or use a new run directory"
            )
        seed.start_step = seed.step
        if seed.step < tc.steps:  # say so: a resumed run's logs and speed start mid-way
            print(f"{run_dir}: resuming from step {seed.step} ({os.path.basename(latest)})", flush=True)
        pending = payload["extra"].get("log_window")
        if pending:  # the killed run's partly filled log window: the next row averages the same steps
            seed.window.append((pending["mean"], pending["count"]))
    elif not resume and ckpt.list_checkpoints(seed.ckpt_dir):
        raise ConfigError(f"{run_dir} already holds checkpoints; resume it or choose a new run directory")
    atomic_write_text(os.path.join(run_dir, "config.json"), json.dumps(config.to_dict(), indent=2))
    record = {**provenance.collect(), "resumed_from_step": seed.step, "seed": tc.seed}
    with open(os.path.join(run_dir, "provenance.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    return seed


def _train_group(seeds: list[_Seed], data: DeviceData, dataset: Dataset, evaluator: GroupEvaluator | None,
                 eval_steps: set[int], progress: bool) -> None:
    """Trains seeds that all start at the same step as one program, to ``train.steps``."""
    config = seeds[0].config
    tc = config.train
    n = len(seeds)
    step = seeds[0].step
    for s in seeds:
        s.logger = RunLogger(s.run_dir, resume_step=step, tensorboard=tc.tensorboard,
                             wandb_project=tc.wandb_project, config=s.config.to_dict())
    agents, keys = stack([s.agent for s in seeds]), stack([s.key for s in seeds])
    sampler = with_augmentation(config.agent, config.agent.sampler())
    dispatch = chunk_dispatch(config.agent)
    window: list[tuple[dict[str, Any], int]] = []  # (metrics stacked over seeds, chunk length) since last log
    label = f"train {config.agent_name}" + (f" x{n} seeds" if n > 1 else "")
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True, desc=label)
    start_step, start_time = step, None

    def pending_windows() -> list[list[tuple[dict[str, Any], int]]]:
        """Each seed's unlogged window: what it brought from its checkpoint, then this group's chunks."""
        return [s.window + own for s, own in zip(seeds, _per_seed(window, n))]

    def save():
        for i, (s, pending) in enumerate(zip(seeds, pending_windows())):
            ckpt.save_checkpoint(
                s.ckpt_dir, step=step, config=s.config.to_dict(),
                state={"agent": unstack(agents, i), "rng": keys[i]},
                observation_shape=dataset.observation_shape, action_dim=dataset.action_dim,
                keep=tc.keep_checkpoints,
                extra={"log_window": {"mean": _window_mean(pending), "count": sum(c for _, c in pending)}
                       if pending else None},
            )

    def due(at: int) -> bool:
        return at == tc.steps or at in eval_steps or bool(tc.eval_interval and at % tc.eval_interval == 0)

    def evaluate(only_missing: bool = False) -> None:
        for s, result in zip(seeds, evaluator(agents)):
            if only_missing and os.path.exists(s.eval_path(step)):
                continue
            s.eval_metrics = result
            s.logger.log("eval", step, result)
            atomic_write_text(s.eval_path(step), json.dumps({"step": step, **result}, indent=2))

    try:
        # A run killed after a checkpoint but before the evaluation due at that step resumes at that step:
        # evaluate it first, or the result is lost for good (the paper's protocol needs every point).
        if evaluator is not None and step > 0 and due(step) and not all(os.path.exists(s.eval_path(step)) for s in seeds):
            evaluate(only_missing=True)
        while step < tc.steps:
            length = min(tc.updates_per_call, tc.steps - step)
            agents, keys, metrics = make_train_chunk(sampler, length, n, tc.seed_batching, dispatch)(agents, keys, data)
            jax.block_until_ready(agents.step)
            if start_time is None:  # exclude the first call's compilation from the rate
                start_time, start_step = time.perf_counter(), step + length
            step += length
            window.append((metrics, length))
            bar.update(length)
            done = step == tc.steps
            if done or (tc.log_interval and step % tc.log_interval == 0):
                elapsed = time.perf_counter() - start_time
                rate = (step - start_step) / elapsed if elapsed > 0 and step > start_step else float("nan")
                rows = [_window_mean(pending) for pending in pending_windows()]
                window.clear()
                for s, row in zip(seeds, rows):
                    s.window = []
                    row["time/updates_per_second"] = rate  # per seed
                    s.train_metrics, s.rate, s.step = row, rate, step
                    s.logger.log("train", step, row)
                bar.set_postfix(_postfix(rows))
                if any(not math.isfinite(r.get("total_loss", 0.0)) for r in rows):
                    break  # train_seeds names the seeds; their last checkpoints are the good ones
            if done or (tc.checkpoint_interval and step % tc.checkpoint_interval == 0):
                save()
            if evaluator is not None and due(step):
                evaluate()
    except KeyboardInterrupt:
        save()  # keep the last completed chunk; the same command resumes from here
        raise
    finally:
        bar.close()
        for s in seeds:
            s.logger.close()
    for i, s in enumerate(seeds):
        s.agent, s.key, s.step = unstack(agents, i), keys[i], step


def _finished_evaluations(seeds: list[_Seed], evaluator: GroupEvaluator) -> None:
    """Seeds already at ``train.steps``: their final evaluation from disk, else evaluated now (and
    logged nowhere, as the run is complete)."""
    steps = seeds[0].config.train.steps
    missing = []
    for s in seeds:
        path = s.eval_path(steps)
        if os.path.exists(path):
            with open(path) as f:
                s.eval_metrics = {k: v for k, v in json.load(f).items() if k != "step"}
        else:
            missing.append(s)
    if missing:
        for s, result in zip(missing, evaluator(stack([s.agent for s in missing]))):
            s.eval_metrics = result


def _per_seed(window: list[tuple[dict[str, Any], int]], n: int) -> list[list[tuple[dict[str, float], int]]]:
    """The group's window (metrics stacked over seeds) as one window per seed, fetched in one copy."""
    if not window:
        return [[] for _ in range(n)]
    fetched = jax.device_get([m for m, _ in window])
    return [[({k: float(np.asarray(v)[i]) for k, v in m.items()}, c) for m, (_, c) in zip(fetched, window)]
            for i in range(n)]


def _postfix(rows: list[dict[str, float]]) -> dict[str, str]:
    keys = [k for k in ("total_loss", "critic/matched_steps") if k in rows[0]]
    return {k.split("/")[-1]: "/".join(f"{r[k]:.3g}" for r in rows) for k in keys}


def _window_mean(window: list[tuple[dict[str, Any], int]]) -> dict[str, float]:
    fetched = jax.device_get([m for m, _ in window])
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
