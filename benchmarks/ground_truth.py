"""Ground truth on the built-in grid maze: how well learned distances track exact shortest paths.

Trains MQE on uniform random walks (the "gridmaze-xy" preset), the one-step variant (next_state_prob
p = 1: every waypoint is s') and every baseline that learns a distance or value, all at an equal budget
(updates, batch, network sizes, learning rate, discount). For each it prints the Spearman correlation
of its goal-closeness estimate (-d(s, g), or V(s, g) / Q(s, pi(s, g), g)) with
  - the exact BFS (optimal) distance, and
  - the random walk's expected hitting time (the behaviour policy's distance, solved exactly),
over all ordered pairs of distinct cells, plus the training time.

Usage: python benchmarks/ground_truth.py [--steps 4000] [--seed 0] [--agents mqe,qrl,...]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from scipy.stats import spearmanr

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.envs.gridworld import GridMaze, all_pairs_distances
from mqe.train import train


def random_walk_hitting_times(maze: GridMaze) -> np.ndarray:
    """h[s, g]: expected steps for the uniform random walk from s to first reach g (exact solve)."""
    n = maze.num_cells
    transition = np.zeros((n, n))
    for move in range(4):
        transition[np.arange(n), maze.next_cell[:, move]] += 0.25
    hitting = np.zeros((n, n))
    for g in range(n):
        keep = np.arange(n) != g
        a = np.eye(n - 1) - transition[np.ix_(keep, keep)]
        hitting[keep, g] = np.linalg.solve(a, np.ones(n - 1))
    return hitting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agents", default="qrl,crl,cmd,tmd,gcivl,gciql,hiql",
                        help="baselines to compare with MQE (comma-separated)")
    args = parser.parse_args()

    maze = GridMaze()
    data = maze.random_walk_dataset(num_episodes=1000, episode_length=100, seed=args.seed)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"])
    hitting = random_walk_hitting_times(maze)
    _, bfs = all_pairs_distances(maze, lambda o, g: np.zeros(len(o)), 1.0)
    n = maze.num_cells
    s, g = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    hit = hitting[s[s != g], g[s != g]]
    euclid, _ = all_pairs_distances(maze, lambda o, g: np.linalg.norm(o - g, axis=-1), 1.0)
    print(f"grid maze: {n} cells, diameter {maze.diameter}; {dataset.size} random-walk rows")
    print(f"reference: Spearman(Euclidean, BFS) = {spearmanr(euclid, bfs).statistic:.4f}, "
          f"Spearman(hitting time, BFS) = {spearmanr(hit, bfs).statistic:.4f}")
    variants = {"mqe": ("mqe", []), "mqe one-step (p = 1)": ("mqe", ["next_state_prob=1.0"])}
    variants.update({name: (name, []) for name in args.agents.split(",") if name and name != "mqe"})
    print(f"{'agent':22s} {'updates':>7s} {'seconds':>7s}  {'vs BFS':>7s}  {'vs hitting time':>15s}")
    for label, (agent, overrides) in variants.items():
        config = make_config(agent, "gridmaze-xy", [f"train.steps={args.steps}", f"train.seed={args.seed}", *overrides])
        with tempfile.TemporaryDirectory() as run_dir:
            start = time.perf_counter()
            result = train(config, dataset, run_dir, progress=False)
            seconds = time.perf_counter() - start
        closeness, _ = all_pairs_distances(maze, lambda o, g: -np.asarray(result.agent.value_estimate(o, g)), 1.0)
        print(f"{label:22s} {args.steps:7d} {seconds:7.0f}  {spearmanr(closeness, bfs).statistic:7.4f}  "
              f"{spearmanr(closeness, hit).statistic:15.4f}", flush=True)


if __name__ == "__main__":
    main()
