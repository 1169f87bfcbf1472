"""Ground truth on the built-in grid maze: how well learned distances track exact shortest paths.

Trains MQE on uniform random walks (the "gridmaze-xy" preset), the one-step variant (next_state_prob
p = 1: every waypoint is s') and every baseline that learns a distance or value, all at an equal budget
(updates, batch, network sizes, learning rate, discount). For each it prints the Spearman correlation
of its goal-closeness estimate (-d(s, g), or V(s, g) / Q(s, pi(s, g), g)) with
  - the exact BFS (optimal) distance, and
  - the random walk's expected hitting time (the behaviour policy's distance, solved exactly),
over all ordered pairs of distinct cells, plus the training time.

``--maze grid`` (default): the built-in 50-cell maze with uniform random walks. There the hitting
time itself correlates 0.92 with BFS, so it cannot tell which distance an agent tracks.
``--maze ring``: a 36-cell ring corridor (the border of a 10 x 10 room) walked with a one-way drift:
the clockwise move with probability ``--drift`` (0.8), the other way otherwise. Both directions are
in the data, so the optimal distance is learnable from it, but the behaviour's distance to a goal
just counter-clockwise is long (it drifts round the other way): optimal and behaviour distances
disagree, and the two columns separate the agents that learn one from those that learn the other.

``--bf16`` adds MQE with bfloat16 matmuls: its updates/s (compilation excluded) and Spearman beside
float32's, in one run.

Usage: python benchmarks/ground_truth.py [--maze grid|ring] [--steps 4000] [--seed 0] [--agents mqe,qrl,...] [--bf16]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from scipy.stats import spearmanr

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.envs.gridworld import MOVE_VECTORS, GridMaze, all_pairs_distances
from mqe.train import train

RING = ("############",) + tuple("#" + "." * 10 + "#" if r in (1, 10) else "#.########.#" for r in range(1, 11)) \
    + ("############",)  # 12 x 12 layout: the free cells form one 36-cell cycle


def uniform_move_probabilities(maze: GridMaze) -> np.ndarray:
    """(cells, 4): the uniform random walk's move probabilities."""
    return np.full((maze.num_cells, 4), 0.25)


def ring_move_probabilities(maze: GridMaze, drift: float) -> np.ndarray:
    """(cells, 4): on a cycle, the clockwise move with probability ``drift``, the other way otherwise."""
    probs = np.zeros((maze.num_cells, 4))
    centre = maze.free_cells.mean(axis=0)
    for cell, (row, col) in enumerate(maze.free_cells):
        neighbours = [m for m in range(4) if maze.next_cell[cell, m] != cell]
        assert len(neighbours) == 2, "a ring cell has exactly two neighbours"
        # Clockwise (rows down, columns right): the move whose cross product with the radius is positive.
        radius = np.array([row, col]) - centre
        def turn(m):
            delta = maze.free_cells[maze.next_cell[cell, m]] - maze.free_cells[cell]
            return radius[1] * delta[0] - radius[0] * delta[1]
        cw = max(neighbours, key=turn)
        ccw = min(neighbours, key=turn)
        probs[cell, cw], probs[cell, ccw] = drift, 1.0 - drift
    return probs


def walk_dataset(maze: GridMaze, move_probs: np.ndarray, episodes: int, length: int, seed: int) -> Dataset:
    """Episodes of the Markov walk with per-cell move probabilities (OGBench's row layout)."""
    rng = np.random.default_rng(seed)
    cells = np.empty((episodes, length + 1), np.int64)
    cells[:, 0] = rng.integers(0, maze.num_cells, episodes)
    moves = np.empty((episodes, length), np.int64)
    cumulative = np.cumsum(move_probs, axis=1)
    for t in range(length):
        u = rng.random(episodes)[:, None]
        moves[:, t] = np.minimum((u > cumulative[cells[:, t]]).sum(axis=1), 3)
        cells[:, t + 1] = maze.next_cell[cells[:, t], moves[:, t]]
    actions = MOVE_VECTORS[np.concatenate([moves, moves[:, -1:]], axis=1)]
    terminals = np.zeros((episodes, length + 1), bool)
    terminals[:, -1] = True
    return Dataset.from_arrays(maze.obs_of(cells).reshape(-1, maze.observation_dim), actions.reshape(-1, 2),
                               terminals.reshape(-1))


def hitting_times(maze: GridMaze, move_probs: np.ndarray) -> np.ndarray:
    """h[s, g]: expected steps for the walk from s to first reach g (exact linear solve)."""
    n = maze.num_cells
    transition = np.zeros((n, n))
    for move in range(4):
        np.add.at(transition, (np.arange(n), maze.next_cell[:, move]), move_probs[:, move])
    hitting = np.zeros((n, n))
    for g in range(n):
        keep = np.arange(n) != g
        a = np.eye(n - 1) - transition[np.ix_(keep, keep)]
        hitting[keep, g] = np.linalg.solve(a, np.ones(n - 1))
    return hitting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maze", choices=("grid", "ring"), default="grid")
    parser.add_argument("--drift", type=float, default=0.8, help="ring: probability of the clockwise move")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agents", default="qrl,crl,cmd,tmd,gcivl,gciql,hiql",
                        help="baselines to compare with MQE (comma-separated; '' for none)")
    parser.add_argument("--bf16", action="store_true",
                        help="also MQE with bfloat16 matmuls (matmul_dtype=bfloat16), beside float32 in the same run")
    args = parser.parse_args()

    if args.maze == "grid":
        maze = GridMaze()
        move_probs = uniform_move_probabilities(maze)
        data = maze.random_walk_dataset(num_episodes=1000, episode_length=100, seed=args.seed)
        dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"])
    else:
        maze = GridMaze(RING)
        move_probs = ring_move_probabilities(maze, args.drift)
        dataset = walk_dataset(maze, move_probs, episodes=1000, length=100, seed=args.seed)
    hitting = hitting_times(maze, move_probs)
    _, bfs = all_pairs_distances(maze, lambda o, g: np.zeros(len(o)), 1.0)
    n = maze.num_cells
    s, g = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    hit = hitting[s[s != g], g[s != g]]
    euclid, _ = all_pairs_distances(maze, lambda o, g: np.linalg.norm(o - g, axis=-1), 1.0)
    print(f"{args.maze} maze: {n} cells, diameter {maze.diameter}; {dataset.size} rows of the behaviour walk")
    print(f"reference: Spearman(Euclidean, BFS) = {spearmanr(euclid, bfs).statistic:.4f}, "
          f"Spearman(hitting time, BFS) = {spearmanr(hit, bfs).statistic:.4f}")
    variants = {"mqe": ("mqe", []), "mqe one-step (p = 1)": ("mqe", ["next_state_prob=1.0"])}
    if args.bf16:
        variants["mqe bf16 matmuls"] = ("mqe", ["matmul_dtype=bfloat16"])
    variants.update({name: (name, []) for name in args.agents.split(",") if name and name != "mqe"})
    print(f"{'agent':22s} {'updates':>7s} {'seconds':>7s} {'updates/s':>9s}  {'vs BFS':>7s}  {'vs hitting time':>15s}")
    for label, (agent, overrides) in variants.items():
        config = make_config(agent, "gridmaze-xy", [f"train.steps={args.steps}", f"train.seed={args.seed}", *overrides])
        with tempfile.TemporaryDirectory() as run_dir:
            start = time.perf_counter()
            result = train(config, dataset, run_dir, progress=False)
            seconds = time.perf_counter() - start
        closeness, _ = all_pairs_distances(maze, lambda o, g: -np.asarray(result.agent.value_estimate(o, g)), 1.0)
        print(f"{label:22s} {args.steps:7d} {seconds:7.0f} {result.updates_per_second:9.1f}  "
              f"{spearmanr(closeness, bfs).statistic:7.4f}  "
              f"{spearmanr(closeness, hit).statistic:15.4f}", flush=True)


if __name__ == "__main__":
    main()
