"""The graph planner against exact shortest paths on the built-in grid maze (mqe.planning.ground_truth).

Trains MQE and QRL on the maze's uniform random walks (preset "gridmaze-xy", equal budget) and follows
the planner over each one's learned distance, every free cell a landmark, for every ordered pair of
cells: the route's length over the BFS distance (1 = every waypoint on a shortest path), the fraction
of pairs routed optimally, and the fraction reached; beside the same for the exact BFS distance (the
oracle). Two graphs: a local one whose edges are at most 3 learned steps (routes must chain nearby
landmarks, so the route is the learned distance's shortest path) and the default long-edge penalty.

Usage: python benchmarks/planning.py [--steps 4000] [--agents mqe,qrl] [--edge-power 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.envs.gridworld import GridMaze
from mqe.planning import PlannerConfig, steps_functions
from mqe.planning.ground_truth import bfs_steps_functions, route_lengths
from mqe.train import train


def describe(label: str, lengths, bfs, reached, seconds: float) -> str:
    ratio = lengths[reached] / bfs[reached]
    return (f"{label:44s} {np.mean(ratio):10.3f} {np.max(ratio):6.2f} {np.mean(ratio <= 1 + 1e-9):8.1%} "
            f"{np.mean(reached):8.1%} {seconds:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--agents", default="mqe,qrl")
    parser.add_argument("--edge-power", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    maze = GridMaze()
    data = maze.random_walk_dataset(num_episodes=1000, episode_length=100, seed=args.seed)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"])
    # Cells are one step apart: skip only the cell the walk is in.
    # Cells are one step apart: skip only the cell the walk is in. Two graphs: a local one (raw
    # distances, edges of at most 3 learned steps: routes must chain nearby landmarks) and the default
    # long-edge penalty (c = d^2, no cut-off).
    base = PlannerConfig(landmarks=maze.num_cells, goal_radius=0.0, skip_radius=0.5)
    configs = {"local (power 1, max edge 3)": dataclasses.replace(base, edge_power=1.0, max_edge=3.0),
               f"power {args.edge_power:g}": dataclasses.replace(base, edge_power=args.edge_power)}
    print(f"grid maze: {maze.num_cells} cells, {maze.num_cells * (maze.num_cells - 1)} ordered pairs, every cell a "
          "landmark")
    print(f"{'distance, graph':44s} {'length/BFS':>10s} {'worst':>6s} {'optimal':>8s} {'reached':>8s} {'seconds':>8s}")
    distances = {"BFS (oracle)": bfs_steps_functions(maze)}
    for name in [a for a in args.agents.split(",") if a]:
        run_config = make_config(name, "gridmaze-xy", [f"train.steps={args.steps}", f"train.seed={args.seed}"])
        with tempfile.TemporaryDirectory() as run_dir:
            distances[f"{name} ({args.steps} updates)"] = steps_functions(train(run_config, dataset, run_dir,
                                                                                progress=False).agent, name)
    for label, fns in distances.items():
        for graph, config in configs.items():
            start = time.perf_counter()
            result = route_lengths(maze, fns, config)
            print(describe(f"{label}, {graph}", *result, time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
