"""Ground truth (spec section 8): on a grid-world maze whose corridors make geometry a poor guide, the
MQE critic trained on random walks recovers the exact shortest-path (BFS) distances in rank order.

Trains for real on this CPU (about a minute); nothing is mocked.
"""

import math
import time

import numpy as np
from scipy.stats import spearmanr

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.envs.gridworld import GridMaze
from mqe.train import train

# The 'gridmaze' preset (batch 128, 2x128 encoders, latent 64, gamma 0.95), 4000 updates.
STEPS = 4000


def learned_vs_bfs(tmp_path, overrides=()):
    maze = GridMaze()
    data = maze.random_walk_dataset(num_episodes=1000, episode_length=100, seed=0)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"])
    config = make_config("mqe", "gridmaze", [f"train.steps={STEPS}", *overrides])
    start = time.perf_counter()
    result = train(config, dataset, str(tmp_path / "run"), progress=False)
    seconds = time.perf_counter() - start
    n = maze.num_cells
    s, g = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    s, g = s[s != g], g[s != g]  # all ordered pairs of distinct cells (all reachable: one component)
    d = np.asarray(result.agent.distance(maze.obs_of(s), maze.obs_of(g))).mean(axis=0)
    steps = d / abs(math.log(config.agent.gamma))
    return steps, maze.bfs_distances()[s, g], seconds


def test_geometry_is_a_poor_guide_in_this_maze():
    maze = GridMaze()
    n = maze.num_cells
    s, g = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    s, g = s[s != g], g[s != g]
    euclid = np.linalg.norm(maze.obs_of(s) - maze.obs_of(g), axis=-1)
    assert spearmanr(euclid, maze.bfs_distances()[s, g]).statistic <= 0.6


def test_mqe_distance_tracks_bfs_distance(tmp_path):
    learned, bfs, seconds = learned_vs_bfs(tmp_path)
    rho = spearmanr(learned, bfs).statistic
    print(f"MQE: Spearman(d/|log gamma|, BFS) = {rho:.4f} after {STEPS} updates in {seconds:.0f} s")
    assert seconds <= 180
    assert rho >= 0.9
