"""Rendering speed of `mqe generate visual-<name>` on this machine: the number a GPU renderer must beat.

For each visual dataset name, the first ``--frames`` rows of its state dataset (found in ``--dataset-dir``,
else a one-episode state dataset generated into a temporary directory) are rendered by the real command
path (``generate_visual``: worker processes, shards, the streamed npz), with ``--workers`` processes.
Printed per name, all measured in this run: frames/s of the whole call (loading, worker and environment
start-up, rendering, writing the files) and of the render stage (worker and environment start-up and
rendering), and the hours OGBench's full-size dataset would take at the render stage's rate. The renderer is whatever ``MUJOCO_GL`` selects (``egl`` by default).

Usage: python benchmarks/rendering.py [--frames 200] [--workers 2] [--names visual-antmaze-giant-stitch-v0,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from mqe.data.dataset import Dataset
from mqe.data.generate import generate, recipe_for
from mqe.data.resolve import find_dataset
from mqe.data.visual import generate_visual, split_visual_name

# The five pixel rows of the MQE paper's Table 1.
DEFAULT_NAMES = ["visual-antmaze-giant-stitch-v0", "visual-cube-double-noisy-v0", "visual-cube-triple-play-v0",
                 "visual-scene-play-v0", "visual-puzzle-4x4-play-v0"]


def head_of(dataset: Dataset, rows: int) -> Dataset:
    """The first ``rows`` rows as a dataset (the last of them closes its episode)."""
    rows = min(rows, dataset.size)
    terminals = np.array(dataset.terminals[:rows])
    terminals[-1] = True
    return Dataset.from_arrays(dataset.observations[:rows], dataset.actions[:rows], terminals,
                               **{k: v[:rows] for k, v in dataset.extras.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200, help="training frames rendered per name")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--names", default=",".join(DEFAULT_NAMES))
    parser.add_argument("--dataset-dir", default=os.environ.get("MQE_DATASET_DIR"))
    args = parser.parse_args()
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}, {args.workers} workers, {os.cpu_count()} CPU cores visible, "
          f"{args.frames} frames (+ {max(2, args.frames // 10)} validation) per name")
    print(f"{'dataset':34s} {'call frames/s':>14s} {'render frames/s':>16s} {'full dataset':>13s} {'hours':>8s}")
    for name in args.names.split(","):
        state, _ = split_visual_name(name)
        with tempfile.TemporaryDirectory() as tmp:
            found = find_dataset(state, args.dataset_dir)
            if found is None:
                found = generate(state, tmp, num_episodes=1, workers=1, progress=False)[:2]
            for path, rows in zip(found, (args.frames, max(2, args.frames // 10))):
                suffix = "-val" if path.endswith("-val.npz") else ""
                head_of(Dataset.load_npz(path), rows).save_npz(os.path.join(tmp, f"{state}{suffix}.npz"))
            start = time.perf_counter()
            _, _, stats = generate_visual(name, tmp, workers=args.workers, shard_rows=max(1, args.frames // (2 * args.workers)),
                                          progress=False)
            seconds = time.perf_counter() - start
        frames = stats["frames"] + stats["val_frames"]
        recipe = recipe_for(state)[1]
        full = recipe.num_episodes * recipe.episode_steps * 11 // 10  # with the validation file
        rate = stats["frames_per_second"]
        print(f"{name:34s} {frames / seconds:14.2f} {rate:16.2f} {full:13,d} {full / rate / 3600:8.1f}", flush=True)


if __name__ == "__main__":
    main()
