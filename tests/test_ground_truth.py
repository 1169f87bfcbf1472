"""Ground truth (spec section 8): on a grid-world maze whose corridors make geometry a poor guide, the
MQE critic trained on random walks recovers the exact shortest-path (BFS) distances in rank order.

Trains for real on this CPU (about a minute); nothing is mocked. ``benchmarks/ground_truth.py`` prints
the same figure next to the one-step (p = 1) variant.
"""

import functools
import math
import tempfile
import time

import numpy as np
from scipy.stats import spearmanr

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.envs.gridworld import GridMaze, all_pairs_distances
from mqe.train import train

STEPS = 4000  # with the "gridmaze-xy" preset: batch 128, 2x128 encoders, latent 64, gamma 0.95


def test_geometry_is_a_poor_guide_in_this_maze():
    maze = GridMaze()
    euclid, bfs = all_pairs_distances(
        maze, lambda o, g: np.linalg.norm(o - g, axis=-1), step_distance=1.0)
    assert spearmanr(euclid, bfs).statistic <= 0.6


@functools.cache
def _spearman_vs_bfs(*overrides: str) -> tuple[float, float]:
    """(Spearman of MQE's learned distance with BFS, training seconds) on the grid maze's random walks."""
    maze = GridMaze()
    data = maze.random_walk_dataset(num_episodes=1000, episode_length=100, seed=0)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"])
    config = make_config("mqe", "gridmaze-xy", [f"train.steps={STEPS}", *overrides])
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = train(config, dataset, run_dir, progress=False)
        seconds = time.perf_counter() - start
    learned, bfs = all_pairs_distances(
        maze, lambda o, g: np.asarray(result.agent.distance(o, g)).mean(axis=0),
        abs(math.log(config.agent.gamma)))
    rho = spearmanr(learned, bfs).statistic
    print(f"MQE {' '.join(overrides)}: Spearman(d/|log gamma|, BFS) = {rho:.4f} after {STEPS} updates in {seconds:.0f} s")
    return rho, seconds


def test_mqe_distance_tracks_bfs_distance():
    rho, seconds = _spearman_vs_bfs()
    assert seconds <= 180
    assert rho >= 0.9


def test_bf16_matmuls_learn_distances_as_good_as_float32():
    """The bfloat16 switch (bf16 matmul inputs, float32 accumulation) at an equal budget and seed."""
    rho_f32, _ = _spearman_vs_bfs()
    rho_bf16, _ = _spearman_vs_bfs("matmul_dtype=bfloat16")
    assert rho_bf16 >= 0.9
    assert rho_bf16 >= rho_f32 - 0.02
