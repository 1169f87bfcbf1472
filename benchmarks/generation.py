"""Generation speed and data statistics per dataset family, on small sets with the full recipe's
episode length: for each name, generate ``--episodes`` episodes (plus the 10% validation file), load
both files through OGBench's loader and ours, check the sizes, and print steps/s, the time the full
recipe would take at that rate (``--workers`` processes), and the collector's statistics.

Usage: python benchmarks/generation.py [--episodes 10] [--workers 2] [--names NAME,NAME,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from mqe.data.dataset import Dataset
from mqe.data.generate import generate, recipe_for

DEFAULT_NAMES = [
    "antmaze-large-navigate-v0", "antmaze-large-stitch-v0", "antmaze-large-explore-v0",
    "antmaze-giant-stitch-v0", "antmaze-colossal-navigate-v0", "antmaze-colossal-stitch-v0",
    "cube-single-play-v0", "cube-double-play-v0", "cube-triple-noisy-v0",
    "scene-play-v0", "scene-noisy-v0", "puzzle-3x3-play-v0", "puzzle-4x4-play-v0", "puzzle-4x4-noisy-v0",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--names", default=",".join(DEFAULT_NAMES))
    args = parser.parse_args()
    import ogbench

    for name in args.names.split(","):
        _, recipe = recipe_for(name)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            train_path, val_path, stats = generate(name, out, num_episodes=args.episodes, workers=args.workers,
                                                   progress=False)
            seconds = time.perf_counter() - start
            _, train, val = ogbench.make_env_and_datasets(name, dataset_dir=out, compact_dataset=True)
            ours = Dataset.load_npz(train_path)
            rows = stats["episodes"] + stats["val_episodes"]
            assert train["observations"].shape[0] == args.episodes * recipe.episode_steps
            assert val["observations"].shape[0] == stats["val_episodes"] * recipe.episode_steps
            assert ours.num_trajectories == args.episodes and set(ours.trajectory_lengths) == {recipe.episode_steps}
            steps_per_second = rows * recipe.episode_steps / seconds
            full_rows = (recipe.num_episodes + recipe.num_episodes // 10) * recipe.episode_steps
            size_mb = (os.path.getsize(train_path) + os.path.getsize(val_path)) / 2 ** 20
        skip = ("episodes", "val_episodes", "episode_steps", "shards", "shards_reused")
        detail = ", ".join(f"{k} {v}" for k, v in stats.items() if k not in skip)
        print(f"{name:30s} {args.episodes}+{stats['val_episodes']} x {recipe.episode_steps} rows in {seconds:6.1f} s "
              f"({steps_per_second:6.0f} steps/s on {args.workers} workers; full recipe {recipe.num_episodes} "
              f"episodes ~{full_rows / steps_per_second / 60:5.1f} min, ~{size_mb * full_rows / (rows * recipe.episode_steps):4.0f} MB): "
              f"{detail}", flush=True)


if __name__ == "__main__":
    main()
