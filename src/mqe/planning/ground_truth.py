"""The planner against exact shortest paths on the built-in grid maze.

Every free cell is a landmark. For every ordered pair of distinct cells (s, g) the planner is followed as
a high-level controller: from the current cell it names a waypoint (a landmark, or the goal itself), the
walk moves to it by a BFS-shortest path, and the planner is asked again, until it names the goal. The
route's length in steps, over the BFS distance d*(s, g), is 1 exactly when every waypoint lies on a
shortest path; detours from errors in the learned distance make it larger. A route that names more
than ``max_hops`` waypoints counts as failed (it loops).
"""

from __future__ import annotations

import numpy as np

from mqe.envs.gridworld import GridMaze
from mqe.planning.graph import GraphPlanner, PlannerConfig, StepsFunctions


def route_lengths(maze: GridMaze, fns: StepsFunctions, config: PlannerConfig, max_hops: int = 100
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(route length, BFS distance, reached) per ordered pair of distinct cells, all pairs batched."""
    n = maze.num_cells
    cells = np.arange(n)
    planner = GraphPlanner(fns, maze.obs_of(cells).astype(np.float32), config)
    bfs = maze.bfs_distances()
    s, g = np.meshgrid(cells, cells, indexing="ij")
    s, g = s[s != g], g[s != g]
    goals = maze.obs_of(g).astype(np.float32)
    to_goal = planner.to_goal_costs(goals)
    current, length = s.copy(), np.zeros(len(s))
    running = np.ones(len(s), bool)
    for _ in range(max_hops):
        if not running.any():
            break
        target, use_goal = planner.targets(maze.obs_of(current).astype(np.float32), goals, to_goal)
        nxt = np.where(use_goal, g, maze.cell_of_obs(target))
        step = np.where(running, bfs[current, nxt], 0)
        length += step
        current = np.where(running, nxt, current)
        running &= ~use_goal
    return length, bfs[s, g].astype(np.float64), ~running


def bfs_steps_functions(maze: GridMaze) -> StepsFunctions:
    """The exact BFS distance as a planner's distance (the oracle row: every ratio is 1)."""
    import jax.numpy as jnp

    table = jnp.asarray(maze.bfs_distances(), jnp.float32)
    cell = lambda obs: jnp.asarray(maze.cell_of_obs(np.asarray(obs)))[:, None]  # rows on axis -2
    return StepsFunctions(cell, cell, lambda a, b: table[a[:, 0], b[:, 0]], "BFS (exact)")
