"""Robot trajectories in, as users have them: a plain NumPy episode format (and RLDS, ``mqe.data.rlds``),
and action normalisation.

The NumPy episode format (no dependency beyond NumPy): a folder with one ``.npz`` per episode, read in
name order, each holding

    images   (T, H, W, 3) uint8    the camera frame at each step (what the policy sees)
    actions  (T, A)       float    the action taken at each step (e.g. end-effector deltas and gripper)
    proprio  (T, P)       float    optional: proprioception at each step (kept as the dataset's extra)

An episode becomes T rows of an OGBench-layout dataset whose last row ends it (``terminals``): goals are
relabelled from later frames of the same trajectory by the agents' samplers, so no reward or label is
read. Frames stay uint8 (the pixel datasets' storage).

Actions are normalised per dimension into [-1, 1], the range of the agents' tanh-bounded policies:
x = clip(2 (a - q01) / (q99 - q01) - 1, -1, 1), with q01 and q99 the dimension's 1st and 99th percentiles
over the dataset (outliers clip instead of squeezing every other action; a constant dimension maps to 0).
The statistics are stored with the run (``ActionNormalization.save``), so that a server hands the robot
de-normalised actions: a = q01 + (x + 1) (q99 - q01) / 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import numpy as np

from mqe.data.dataset import Dataset, DatasetError
from mqe.io import atomic_write_text, atomic_writer

NORMALIZATION_FILE = "action_normalization.json"


@dataclasses.dataclass(frozen=True)
class ActionNormalization:
    """Per-dimension bounds (q01, q99) mapped to [-1, 1]."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    kind: str = "q01-q99"

    @classmethod
    def fit(cls, actions: np.ndarray) -> "ActionNormalization":
        actions = np.asarray(actions, np.float64)
        if not np.isfinite(actions).all():  # one NaN would make a bound NaN, and every served action NaN
            raise ValueError("action normalisation: the actions hold NaN or infinity")
        low, high = np.percentile(actions, 1, axis=0), np.percentile(actions, 99, axis=0)
        return cls(tuple(map(float, low)), tuple(map(float, high)))

    def _bounds(self, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        low, high = np.asarray(self.low), np.asarray(self.high)
        if low.shape != (dim,):
            raise ValueError(f"action normalisation has {low.size} dimensions; the actions have {dim}")
        span = high - low
        return low, span, span > 1e-12

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions, np.float64)
        low, span, varies = self._bounds(actions.shape[-1])
        x = np.where(varies, 2.0 * (actions - low) / np.where(varies, span, 1.0) - 1.0, 0.0)
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(normalized, np.float64), -1.0, 1.0)
        low, span, _ = self._bounds(x.shape[-1])
        return (low + (x + 1.0) * span / 2.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_dict(cls, data: dict, source: str = "action normalisation") -> "ActionNormalization":
        if data.get("kind") != "q01-q99" or len(data.get("low", ())) != len(data.get("high", ())) or not data.get("low"):
            raise ValueError(f"{source}: expected {{kind: q01-q99, low: [...], high: [...]}} of equal lengths, got {data}")
        if not all(np.isfinite(float(v)) for v in (*data["low"], *data["high"])):
            raise ValueError(f"{source}: low and high must be finite numbers, got {data}")
        return cls(tuple(map(float, data["low"])), tuple(map(float, data["high"])))

    def save(self, run_dir: str) -> str:
        path = os.path.join(run_dir, NORMALIZATION_FILE)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, run_dir: str) -> "ActionNormalization | None":
        """The run's statistics, or None for a run trained on actions as they were."""
        path = os.path.join(run_dir, NORMALIZATION_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return cls.from_dict(json.load(f), path)


def _fail(path: str, key: str, message: str) -> DatasetError:
    return DatasetError(f"{path}: '{key}' {message}")


def read_numpy_episode(path: str) -> dict[str, np.ndarray]:
    """One episode file, checked: images uint8 (T, H, W, 3), actions (T, A) float, optional proprio (T, P)."""
    try:
        with np.load(path) as f:
            episode = {k: f[k] for k in f.files}
    except Exception as exc:  # a damaged zip, a plain .npy under an .npz name, ...: all name the file
        raise DatasetError(f"{path}: not a readable .npz episode ({type(exc).__name__}: {exc})") from None
    for key in ("images", "actions"):
        if key not in episode:
            raise _fail(path, key, f"is missing; an episode holds images, actions[, proprio] (found {sorted(episode)})")
    images, actions = episode["images"], episode["actions"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise _fail(path, "images", f"has dtype {images.dtype} and shape {images.shape}; expected uint8 (T, H, W, 3)")
    if not np.issubdtype(actions.dtype, np.floating) or actions.ndim != 2:
        raise _fail(path, "actions", f"has dtype {actions.dtype} and shape {actions.shape}; expected float (T, A)")
    if len(actions) != len(images) or len(images) < 2:
        raise _fail(path, "actions", f"has {len(actions)} steps for {len(images)} images; expected the same T >= 2")
    if not np.isfinite(actions).all():
        raise _fail(path, "actions", "holds NaN or infinity")
    if "proprio" in episode:
        proprio = episode["proprio"]
        if proprio.ndim != 2 or len(proprio) != len(images) or not np.issubdtype(proprio.dtype, np.floating):
            raise _fail(path, "proprio", f"has dtype {proprio.dtype} and shape {proprio.shape}; expected float (T, P)")
    unknown = sorted(set(episode) - {"images", "actions", "proprio"})
    if unknown:
        raise _fail(path, unknown[0], "is not a key of the episode format (images, actions, proprio)")
    return episode


def read_numpy_episodes(folder: str) -> list[dict[str, np.ndarray]]:
    """Every ``*.npz`` episode in ``folder``, in name order, of one image size and action size."""
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder}: not a folder of episode .npz files")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".npz"))
    if not names:
        raise DatasetError(f"{folder}: no episode .npz files")
    episodes = [read_numpy_episode(os.path.join(folder, n)) for n in names]
    first = episodes[0]
    for name, ep in zip(names, episodes):
        for key in ("images", "actions", "proprio"):
            if (key in ep) != (key in first) or (key in ep and ep[key].shape[1:] != first[key].shape[1:]):
                raise _fail(os.path.join(folder, name), key, f"differs from {names[0]}'s "
                            f"({ep[key].shape[1:] if key in ep else 'absent'} against "
                            f"{first[key].shape[1:] if key in first else 'absent'}); every episode needs the same")
    return episodes


def write_numpy_episodes(episodes: Sequence[dict[str, np.ndarray]], folder: str) -> list[str]:
    """Episodes to ``folder/episode_000000.npz`` ..., each written atomically."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, episode in enumerate(episodes):
        path = os.path.join(folder, f"episode_{i:06d}.npz")
        with atomic_writer(path) as f:
            np.savez(f, **episode)
        paths.append(path)
    return paths


def episodes_to_dataset(episodes: Sequence[dict[str, np.ndarray]], normalization: ActionNormalization | None = None,
                        source: str = "<episodes>") -> tuple[Dataset, ActionNormalization]:
    """Episodes -> (an OGBench-layout image dataset with normalised actions, the normalisation used). The
    statistics are fitted on these episodes unless ``normalization`` is given (e.g. the training run's)."""
    actions = np.concatenate([ep["actions"] for ep in episodes]).astype(np.float64)
    normalization = normalization or ActionNormalization.fit(actions)
    terminals = np.concatenate([np.arange(len(ep["images"])) == len(ep["images"]) - 1 for ep in episodes])
    extras = {}
    if "proprio" in episodes[0]:
        extras["proprio"] = np.concatenate([ep["proprio"] for ep in episodes]).astype(np.float32)
    dataset = Dataset.from_arrays(np.concatenate([ep["images"] for ep in episodes]), normalization.normalize(actions),
                                  terminals.astype(np.float32), source=source, **extras)
    return dataset, normalization


def dataset_to_episodes(dataset: Dataset, split_steps: int | None = None) -> list[dict[str, np.ndarray]]:
    """An OGBench-layout image dataset -> episodes in this format: one per trajectory, or its consecutive
    pieces of ``split_steps`` rows (robot demonstrations are short; play data runs for 1000 steps).

    A trajectory's last row is its final frame, whose action OGBench's layout leaves unused (a copy), as
    ``episodes_to_dataset`` does: without ``split_steps`` a round trip gives back the same rows. Pieces
    overlap by one row (the next piece starts at the previous one's final frame), so no transition is lost
    at a cut. A dataset with ``qpos`` (OGBench's manipulation datasets) gives each episode the arm's
    proprioception (``manipulator_proprio``)."""
    if split_steps is not None and split_steps < 2:
        raise ValueError(f"split_steps must be >= 2 (an episode is at least one transition), got {split_steps}")
    if dataset.observations.dtype != np.uint8 or dataset.observations.ndim != 4:
        raise DatasetError(f"{dataset.source}: observations have dtype {dataset.observations.dtype} and shape "
                           f"{dataset.observations.shape}; robot episodes need uint8 frames (N, H, W, 3)")
    proprio = manipulator_proprio(dataset.extras["qpos"]) if "qpos" in dataset.extras else None
    ends = np.flatnonzero(dataset.terminals) + 1
    episodes = []
    for start, end in zip(np.concatenate([[0], ends[:-1]]), ends):
        step = split_steps or max(end - start, 2)  # a one-row trajectory makes no episode (below)
        for piece in range(start, end - 1, step - 1):  # each piece's last row is the next one's first
            stop = min(piece + step, end)
            if stop - piece >= 2:
                episode = {"images": np.asarray(dataset.observations[piece:stop]),
                           "actions": np.asarray(dataset.actions[piece:stop], np.float32)}
                if proprio is not None:
                    episode["proprio"] = proprio[piece:stop]
                episodes.append(episode)
    return episodes


def manipulator_proprio(qpos: np.ndarray) -> np.ndarray:
    """What the arm of OGBench's manipulation environments senses of itself, from MuJoCo's ``qpos``
    (N, Q): the UR5e's six joint angles (qpos[:, 0:6], OGBench's ``proprio/joint_pos``) and the gripper's
    opening in [0, 1] (qpos[:, 6] / 0.8, clipped, as OGBench computes it): (N, 7) float32."""
    qpos = np.asarray(qpos, np.float32)
    if qpos.ndim != 2 or qpos.shape[1] < 7:
        raise DatasetError(f"qpos has shape {qpos.shape}; a manipulation environment's is (N, >= 7)")
    return np.concatenate([qpos[:, :6], np.clip(qpos[:, 6:7] / 0.8, 0.0, 1.0)], axis=1)


def read_episodes(folder: str, *, split: str = "train", image: str | None = None, action: str | None = None,
                  proprio: str | None = None) -> list[dict[str, np.ndarray]]:
    """Robot episodes from ``folder``: a prepared RLDS/TFDS dataset (``mqe.data.rlds``; ``split`` and the
    step feature names apply, BridgeData V2's by default) or a folder of NumPy-format episodes."""
    from mqe.data import rlds

    if rlds.is_rlds_folder(folder):
        return rlds.read_rlds(folder, split, image=image or rlds.DEFAULT_IMAGE, action=action or rlds.DEFAULT_ACTION,
                              proprio=proprio or rlds.DEFAULT_PROPRIO)
    given = [flag for flag, value in (("--image-key", image), ("--action-key", action), ("--proprio-key", proprio))
             if value]
    if given or split != "train":
        raise DatasetError(f"{folder}: {', '.join(given) or '--split'} name RLDS features; this folder is not an "
                           "RLDS/TFDS dataset (no dataset_info.json) but NumPy-format episodes")
    return read_numpy_episodes(folder)


def robot_dataset_name(name: str) -> str:
    """``robot-<state dataset>`` -> the visual dataset whose frames it takes (``visual-<state dataset>``)."""
    if not name.startswith("robot-"):
        raise DatasetError(f"{name!r} is not a robot dataset name (expected robot-<state dataset name>, e.g. "
                           "robot-cube-single-play-v0)")
    return "visual-" + name[len("robot-"):]


def write_robot_dataset(name: str, target: str, dataset_dir: str | None = None, *, fmt: str = "both", seed: int = 0,
                        num_episodes: int | None = None, workers: int = 1, shard_rows: int | None = None,
                        episode_steps: int | None = None, progress: bool = True) -> list[str]:
    """``robot-<name>``: the frames and end-effector actions of ``visual-<name>`` (found in the dataset
    directories, else rendered first) written as robot episodes into ``target``: NumPy episodes
    (``target/robot-<name>/``), RLDS (``target/robot-<name>-rlds/``) or both (``fmt``). Returns what was
    written, a line each."""
    from mqe.data.resolve import dataset_files, search_dirs
    from mqe.data.visual import SHARD_ROWS, generate_visual

    visual = robot_dataset_name(name)
    found = [dataset_files(d, visual)[0] for d in search_dirs(dataset_dir)]  # the training file is enough
    found = [path for path in found if os.path.isfile(path)]
    if found:
        source = found[0]
    else:
        source = generate_visual(visual, dataset_dir, seed=seed, num_episodes=num_episodes, workers=workers,
                                 shard_rows=shard_rows or SHARD_ROWS, progress=progress)[0]
    episodes = dataset_to_episodes(Dataset.load_npz(source), split_steps=episode_steps)
    steps = sum(len(e["images"]) for e in episodes)
    proprio = f", proprio {episodes[0]['proprio'].shape[1]}-d" if "proprio" in episodes[0] else ""
    what = (f"{len(episodes)} episodes, {steps} steps, frames {episodes[0]['images'].shape[1:]} uint8, actions "
            f"{episodes[0]['actions'].shape[1]}-d{proprio} (from {source})")
    lines = []
    if fmt in ("numpy", "both"):
        out = os.path.join(target, name)
        write_numpy_episodes(episodes, out)
        lines.append(f"wrote {out}/ (NumPy episodes): {what}")
    if fmt in ("rlds", "both"):
        from mqe.data.rlds import write_rlds

        folder = write_rlds(episodes, os.path.join(target, name + "-rlds"), name=name.replace("-", "_"))
        lines.append(f"wrote {folder}/ (RLDS, BridgeData V2's step names): {what}")
    return lines
