"""Pixel datasets rendered from state datasets: ``mqe generate visual-<name>``.

``visual-<name>`` is made from the state dataset ``<name>`` (found in the dataset directories, else
generated first with OGBench's recipe): every stored row is put back into OGBench's visual environment
(``visual-antmaze-large-v0`` for ``antmaze-large-navigate-v0``, ``visual-cube-single-v0`` for
``cube-single-play-v0``, ...) with its ``set_state`` and the environment's own observation is taken
there, through its own camera and renderer. So

- the state and pixel datasets hold the same episodes, row for row (same actions, terminals, qpos,
  qvel, button states), and a frame is what the visual environment shows in that row's stored state;
- frames are uint8 ``(N, 64, 64, 3)``, in OGBench's visual file layout (``observations`` plus the state
  extras), compressed.

How a stored state becomes an observation, per family (the environment's public methods):
  maze (ant, humanoid):  set_state(qpos, qvel); get_ob()
  cube:                  reset() once (the cube colours are set there); set_state(qpos, qvel);
                         compute_observation()
  scene, puzzle:         reset() once; set_state(qpos, qvel, button_states) (the buttons, drawer and
                         window handles are coloured from the button states); compute_observation()
The stored state is float32 (OGBench's dtype), so a frame is the environment's observation at that
float32 state. Two known differences from OGBench's own collection, which rendered while stepping:
OGBench's maze and cube step frames show the last physics substep's body poses (the environment
renders after ``mj_step`` without ``mj_forward``); and frames at float64 states differ from float32 ones
in a few hundred of 4096 pixels for manipulation (shadow-map and transparency edges).

Rows are rendered in fixed-size shards by worker processes, each with its own environment (a GL
context belongs to the thread that made it); finished shards are kept in ``.visual-<name>.shards/``, so
an interrupted run resumes from them; the final files are written by streaming the shards, so memory
stays at one shard whatever the dataset size. The renderer is MuJoCo's ``MUJOCO_GL`` backend (``egl``
by default): software (llvmpipe) on a CPU-only machine, the GPU's own EGL driver where there is one.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.data.dataset import ChunkedArray, Dataset, write_npz
from mqe.data.generate import GenerationError, _prepare_shard_dir
from mqe.io import atomic_writer

# State dataset name -> OGBench's visual environment: drop the data kind, prefix "visual-".
_STATE_NAME = re.compile(r"^(?P<env>[a-z0-9x-]+?)-(?P<kind>navigate|stitch|explore|play|noisy)-v0$")
SHARD_ROWS = 5000  # rows per shard (about 11 min of one CPU core for an ant maze, 25-40 for manipulation)
_STATE_KEYS = ("qpos", "qvel", "button_states")


def split_visual_name(name: str) -> tuple[str, str]:
    """``visual-<state name>`` -> (state dataset name, OGBench visual environment id); clear errors for
    names without a visual environment."""
    if not name.startswith("visual-"):
        raise GenerationError(f"{name!r} is not a visual dataset name (expected visual-<state dataset name>)")
    state = name[len("visual-"):]
    match = _STATE_NAME.match(state)
    if not match:
        raise GenerationError(f"cannot render {name!r}: {state!r} is not a state dataset name like "
                              "antmaze-large-navigate-v0 or cube-single-play-v0")
    env_id = f"visual-{match['env']}-v0"
    if state.startswith("pointmaze-"):
        raise GenerationError(f"cannot render {name!r}: OGBench has no visual point maze (its point model has "
                              "no camera); the visual mazes are antmaze and humanoidmaze")
    if "colossal" in state:
        raise GenerationError(f"cannot render {name!r}: the colossal maze exists for states only")
    import gymnasium
    import ogbench  # noqa: F401  (registers OGBench's environments)

    if env_id not in gymnasium.registry:
        raise GenerationError(f"cannot render {name!r}: OGBench registers no visual environment {env_id!r}")
    return state, env_id


class FrameRenderer:
    """One visual environment that renders stored states (``render(qpos, qvel, button_states)``)."""

    def __init__(self, env_id: str):
        import gymnasium
        import ogbench  # noqa: F401

        self.env = gymnasium.make(env_id)
        self.env.reset(seed=0)  # manipulation sets its fixed cube colours here; harmless for mazes
        self.unwrapped = self.env.unwrapped
        self.is_maze = hasattr(self.unwrapped, "get_ob")
        self.has_buttons = hasattr(self.unwrapped, "_cur_button_states")

    def render(self, qpos: np.ndarray, qvel: np.ndarray, button_states: np.ndarray | None = None) -> np.ndarray:
        u = self.unwrapped
        qpos, qvel = np.asarray(qpos, np.float64), np.asarray(qvel, np.float64)
        if self.has_buttons:
            if button_states is None:
                raise GenerationError(f"{self.env.spec.id}: rendering needs the stored 'button_states'")
            u.set_state(qpos, qvel, np.asarray(button_states, np.int64))
        else:
            u.set_state(qpos, qvel)
        frame = u.get_ob() if self.is_maze else u.compute_observation()
        return np.asarray(frame, np.uint8)

    def close(self) -> None:
        self.env.close()


@functools.cache
def _renderer(env_id: str) -> FrameRenderer:
    return FrameRenderer(env_id)  # one per worker process, reused for all its shards


def render_rows(env_id: str, states: dict[str, np.ndarray]) -> np.ndarray:
    """uint8 frames (rows, H, W, 3) of the stored states ``states`` (qpos, qvel[, button_states])."""
    renderer = _renderer(env_id)
    rows = states["qpos"].shape[0]
    first = renderer.render(states["qpos"][0], states["qvel"][0], _row(states, "button_states", 0))
    frames = np.empty((rows, *first.shape), np.uint8)
    frames[0] = first
    for i in range(1, rows):
        frames[i] = renderer.render(states["qpos"][i], states["qvel"][i], _row(states, "button_states", i))
    return frames


def _row(states: dict[str, np.ndarray], key: str, i: int) -> np.ndarray | None:
    return states[key][i] if key in states else None


def _shard_job(job) -> int:
    """Worker entry point: renders one shard and writes its frames (``.npy``) atomically."""
    env_id, index, states, path = job
    frames = render_rows(env_id, states)
    with atomic_writer(path, suffix=".tmp.npy") as fh:
        np.save(fh, frames)
    return index


def _state_files(state: str, dataset_dir: str | None, seed: int, num_episodes: int | None, workers: int,
                 progress: bool) -> tuple[str, str]:
    """The state dataset's (train, val) files: found, else generated with OGBench's recipe."""
    from mqe.data.generate import generate
    from mqe.data.resolve import find_dataset, search_dirs

    found = find_dataset(state, dataset_dir)
    if found:
        return found
    target = search_dirs(dataset_dir)[0]
    if progress:
        print(f"{state}: not found; generating the state dataset first (the frames render its states)")
    train, val, _ = generate(state, target, seed=seed, num_episodes=num_episodes, workers=workers,
                             progress=progress)
    return train, val


def generate_visual(name: str, dataset_dir: str | None = None, *, seed: int = 0, num_episodes: int | None = None,
                    workers: int = 1, shard_rows: int = SHARD_ROWS, progress: bool = True) -> tuple[str, str, dict]:
    """Writes ``visual-<name>.npz`` and ``visual-<name>-val.npz`` next to the state dataset's first search
    directory; returns (train path, val path, stats). ``seed`` and ``num_episodes`` apply only when the
    state dataset has to be generated first; an existing one is rendered as it is."""
    from mqe.data.resolve import search_dirs

    if workers < 1:
        raise GenerationError(f"--workers must be >= 1, got {workers}")
    if shard_rows < 1:
        raise GenerationError(f"shard_rows must be >= 1, got {shard_rows}")
    state, env_id = split_visual_name(name)
    sources = _state_files(state, dataset_dir, seed, num_episodes, workers, progress)
    target = search_dirs(dataset_dir)[0]
    parts = []
    for source in sources:
        dataset = Dataset.load_npz(source)
        missing = [k for k in ("qpos", "qvel") if k not in dataset.extras]
        if missing:
            raise GenerationError(f"{source}: has no {', '.join(map(repr, missing))}; rendering needs the stored "
                                  "simulator state of every row (files from `mqe generate` and OGBench have it)")
        parts.append(dataset)

    shard_dir = os.path.join(target, f".{name}.shards")
    manifest = json.dumps({"name": name, "env": env_id, "shard_rows": shard_rows,
                           "sources": [d.file_fingerprint for d in parts]})
    _prepare_shard_dir(shard_dir, manifest)
    jobs, paths = [], []
    for p, dataset in enumerate(parts):
        paths.append([])
        for start in range(0, dataset.size, shard_rows):
            path = os.path.join(shard_dir, f"part{p}-{start // shard_rows:05d}.npy")
            paths[-1].append(path)
            if not os.path.exists(path):
                rows = slice(start, start + shard_rows)
                states = {k: np.ascontiguousarray(dataset.extras[k][rows]) for k in _STATE_KEYS if k in dataset.extras}
                jobs.append((env_id, len(jobs), states, path))
    total = sum(d.size for d in parts)
    todo = sum(job[2]["qpos"].shape[0] for job in jobs)
    began = time.monotonic()
    bar = tqdm(total=total, initial=total - todo, disable=not progress, unit="frame", desc=f"render {name}")
    sizes = [job[2]["qpos"].shape[0] for job in jobs]
    if workers > 1 and len(jobs) > 1:
        from mqe.parallel import imap_unordered

        for index in imap_unordered(_shard_job, jobs, workers):
            bar.update(sizes[index])
    else:
        for job in jobs:
            bar.update(sizes[_shard_job(job)])
    elapsed = time.monotonic() - began
    bar.close()

    out = []
    for suffix, dataset, shard_paths in zip(("", "-val"), parts, paths):
        frame_shape = np.load(shard_paths[0], mmap_mode="r").shape[1:]
        observations = ChunkedArray((dataset.size, *frame_shape), np.uint8,
                                    (np.load(p, mmap_mode="r") for p in shard_paths))
        members = {"observations": observations, "actions": dataset.actions,
                   "terminals": np.asarray(dataset.terminals, bool), **dataset.extras}
        path = os.path.join(target, f"{name}{suffix}.npz")
        with atomic_writer(path, suffix=".tmp.npz") as fh:
            write_npz(fh, members, compress=True)
        out.append(path)
    shutil.rmtree(shard_dir, ignore_errors=True)
    stats = {"state_dataset": sources[0], "env": env_id, "frames": parts[0].size, "val_frames": parts[1].size,
             "frame_shape": "x".join(map(str, frame_shape)), "shards": sum(len(p) for p in paths),
             "shards_reused": sum(len(p) for p in paths) - len(jobs),
             "frames_per_second": round(todo / elapsed, 2) if todo and elapsed else None,
             "renderer": os.environ.get("MUJOCO_GL", "")}
    return out[0], out[1], stats
