"""A small goal-reaching grid-world maze (numpy only, no MuJoCo, no JAX).

It serves two purposes:

* **ground truth for quasimetric critics** -- every pair of cells has an exact
  shortest-path distance (:meth:`GridMaze.bfs_distances`), so a learned
  distance can be compared against the real one.  The default layout is a
  winding maze in which straight-line distance is a poor guide to path
  distance (Spearman correlation ~0.37 over all ordered pairs of distinct
  cells), so a critic that only learned geometry does badly;
* **the built-in quick demo** -- :meth:`GridMaze.random_walk_dataset` writes an
  offline dataset in OGBench's raw on-disk layout and :class:`GridMazeEnv`
  evaluates a goal-conditioned policy on five fixed tasks, batched over all
  episodes at once, so a full train/evaluate cycle runs in minutes on a CPU.

Conventions
-----------
Cells are ``(row, col)`` positions in the layout (row 0 is the top line of
the drawing).  Free cells are numbered in row-major order; that number is the
*cell index* used everywhere.

Observations are continuous 2-d vectors ``(x, y)``: ``x`` grows with the
column (rightwards) and ``y`` grows *upwards* in the drawing (decreasing row).
Both axes share one scale chosen so that the layout's outermost cells sit at
+-1 along its longer side, so Euclidean distance between observations is
proportional to the distance between cell centres.

Actions are continuous 2-d vectors in ``[-1, 1]^2`` in the same ``(x, y)``
frame, so an action points the way the observation moves.  The four moves
are, by move index::

    0 up    (0, +1)   row - 1
    1 down  (0, -1)   row + 1
    2 left  (-1, 0)   col - 1
    3 right (+1, 0)   col + 1

:func:`decode_actions` picks the dominant axis of an action and its sign;
ties (``|x| == |y|``, including the zero vector) go to the vertical axis and
a zero component counts as positive, so the zero action means "up".  A move
into a wall (or off the layout) leaves the agent where it is.

Default maze (``DEFAULT_MAZE``, 11 x 11 with the border, 50 free cells,
diameter 40)::

    ###########        ###########
    #.#.#.....#        #e#.#....a#
    #.#.#.###.#        #c#.#C###.#
    #.#...#.#.#        #.#...#E#.#
    #.#.###.#.#        #.#.###d#.#
    #.#.....#.#        #.#....B#.#
    #.#.#.###.#        #D#.#.###.#
    #.#...#...#        #.#...#...#
    #.#####.#.#        #.#####.#.#
    #.......#.#        #A......#b#
    ###########        ###########

The right-hand copy marks the five evaluation tasks of :data:`DEFAULT_TASKS`:
task k starts at the lower-case letter and its goal is the upper-case one
(a/A = task1 ... e/E = task5).

It is one long winding corridor between the dead ends e and E, with two short
dead-end side branches (top of column 3; bottom right, where b sits) and a loop
of eight cells near the centre, so some pairs have two shortest routes.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import numpy as np

__all__ = [
    "DEFAULT_MAZE",
    "DEFAULT_TASKS",
    "MOVE_NAMES",
    "MOVE_VECTORS",
    "decode_actions",
    "GridMaze",
    "GridMazeEnv",
]

DEFAULT_MAZE: tuple[str, ...] = (
    "###########",
    "#.#.#.....#",
    "#.#.#.###.#",
    "#.#...#.#.#",
    "#.#.###.#.#",
    "#.#.....#.#",
    "#.#.#.###.#",
    "#.#...#...#",
    "#.#####.#.#",
    "#.......#.#",
    "###########",
)

# Evaluation tasks of DEFAULT_MAZE as ((start_row, start_col), (goal_row, goal_col)):
# ten distinct cells spread over the maze, BFS distances 16, 22, 28, 34 and 40
# (the last is the maze's diameter).  Tasks 1 and 3 have goals that look close
# in a straight line (opposite corners joined by the outer corridor; four
# columns apart across two walls) but are not.  No goal can be reached by pushing
# one direction only, so a constant policy fails every task.
DEFAULT_TASKS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((1, 9), (9, 1)),  # task1: distance 16, top-right corner -> bottom-left corner
    ((9, 9), (5, 7)),  # task2: distance 22, bottom-right dead end -> inner corridor
    ((2, 1), (2, 5)),  # task3: distance 28, left column -> 4 columns right, across two walls
    ((4, 7), (6, 1)),  # task4: distance 34, inner dead-end branch -> left column
    ((1, 1), (3, 7)),  # task5: distance 40 (diameter), between the two far dead ends
)

MOVE_NAMES: tuple[str, ...] = ("up", "down", "left", "right")

# Action vector (x, y) of each move; see the module docstring for the frame.
MOVE_VECTORS: np.ndarray = np.array([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
MOVE_VECTORS.setflags(write=False)

# The same moves as (d_row, d_col) in the layout.
_MOVE_DELTAS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)


def decode_actions(actions) -> np.ndarray:
    """Maps continuous actions ``(..., 2)`` to move indices ``(...,)`` (int64).

    The axis with the larger magnitude wins (vertical on ties) and its sign
    picks the direction (0 counts as positive).  Raises ``ValueError`` on
    non-finite actions: a NaN policy is a bug, not a move.
    """
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim < 1 or a.shape[-1] != 2:
        raise ValueError(f"actions must have shape (..., 2), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("actions contain NaN or inf")
    x, y = a[..., 0], a[..., 1]
    vertical = np.abs(y) >= np.abs(x)
    return np.where(vertical, np.where(y >= 0, 0, 1), np.where(x < 0, 2, 3)).astype(np.int64)


def _validate_layout(layout: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layout, str):
        layout = layout.strip("\n").splitlines()
    rows = tuple(str(r) for r in layout)
    if not rows or not rows[0]:
        raise ValueError("maze layout is empty")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"maze layout is not rectangular: row {i} has {len(r)} characters, row 0 has {width}")
        bad = set(r) - {"#", "."}
        if bad:
            raise ValueError(f"maze layout row {i} has characters other than '#' and '.': {sorted(bad)}")
    return rows


class GridMaze:
    """A 4-connected grid maze built from a layout of ``'#'`` (wall) / ``'.'`` (free).

    Attributes
    ----------
    layout : tuple[str, ...]
    height, width : int
    free_cells : int64 array (n, 2)
        ``(row, col)`` of each free cell, row-major order; row ``i`` is cell ``i``.
    cell_index : dict[(row, col) -> int]
    num_cells : int
    next_cell : int64 array (n, 4)
        ``next_cell[i, m]`` is the cell reached from cell ``i`` by move ``m``.
    tasks : int64 array (T, 2)
        Evaluation tasks as ``[start_cell_index, goal_cell_index]``.
    task_distances : int64 array (T,)
        BFS distance of each task.

    ``tasks`` defaults to :data:`DEFAULT_TASKS` for :data:`DEFAULT_MAZE`; for
    other layouts five tasks are picked deterministically at about 100%, 85%,
    70%, 55% and 40% of the diameter (see :meth:`_auto_tasks`).  The maze must
    have at least two free cells, all connected.
    """

    def __init__(self, layout: Sequence[str] = DEFAULT_MAZE,
                 tasks: Sequence[tuple[tuple[int, int], tuple[int, int]]] | None = None,
                 observation: str = "xy"):
        if observation not in ("xy", "onehot"):
            raise ValueError(f"observation must be 'xy' or 'onehot', got {observation!r}")
        self.observation = observation
        self.layout = _validate_layout(layout)
        self.height = len(self.layout)
        self.width = len(self.layout[0])
        grid = np.array([[ch == "." for ch in r] for r in self.layout], dtype=bool)
        self.free_cells = np.argwhere(grid).astype(np.int64)  # argwhere is row-major
        self.free_cells.setflags(write=False)
        self.num_cells = int(len(self.free_cells))
        if self.num_cells < 2:
            raise ValueError("maze needs at least two free cells")
        self.cell_index = {(int(r), int(c)): i for i, (r, c) in enumerate(self.free_cells)}
        # (H, W) -> cell index or -1; used for the vectorised transition table and cell_of_obs.
        self._index_grid = np.full((self.height, self.width), -1, dtype=np.int64)
        self._index_grid[self.free_cells[:, 0], self.free_cells[:, 1]] = np.arange(self.num_cells)

        # Precomputed transition table: blocked moves (wall or off the layout) stay put.
        target = self.free_cells[:, None, :] + _MOVE_DELTAS[None, :, :]
        inside = ((target[..., 0] >= 0) & (target[..., 0] < self.height)
                  & (target[..., 1] >= 0) & (target[..., 1] < self.width))
        tr = np.clip(target[..., 0], 0, self.height - 1)
        tc = np.clip(target[..., 1], 0, self.width - 1)
        nbr = np.where(inside, self._index_grid[tr, tc], -1)
        self.next_cell = np.where(nbr >= 0, nbr, np.arange(self.num_cells)[:, None]).astype(np.int64)
        self.next_cell.setflags(write=False)

        # Observation frame: one scale for both axes, centred on the layout.
        self._scale = 2.0 / max(max(self.height, self.width) - 1, 1)
        self._cell_obs = self._raw_obs(self.free_cells[:, 0], self.free_cells[:, 1])
        if observation == "onehot":  # the tabular setting (paper Theorem 1): one float per cell
            self._cell_obs = np.eye(self.num_cells, dtype=np.float32)
        self._cell_obs.setflags(write=False)

        self._dist: np.ndarray | None = None
        if np.any(self.bfs_distances() < 0):
            raise ValueError("maze free cells are not all connected")

        if tasks is None:
            if self.layout == DEFAULT_MAZE:
                tasks = DEFAULT_TASKS
            else:
                tasks = self._auto_tasks()
        self.tasks = self._task_indices(tasks)
        self.tasks.setflags(write=False)
        d = self.bfs_distances()
        self.task_distances = d[self.tasks[:, 0], self.tasks[:, 1]].copy()
        self.task_distances.setflags(write=False)

    # ------------------------------------------------------------------ graph

    def bfs_distances(self) -> np.ndarray:
        """(n, n) int64 exact shortest-path step counts (4-connected); -1 = unreachable.

        Computed once by a BFS from every cell and cached (returned read-only).
        """
        if self._dist is None:
            n = self.num_cells
            dist = np.full((n, n), -1, dtype=np.int64)
            nxt = self.next_cell.tolist()  # plain lists: much faster in the Python loop
            for s in range(n):
                row = dist[s]
                row[s] = 0
                queue = deque([s])
                while queue:
                    u = queue.popleft()
                    du = row[u] + 1
                    for v in nxt[u]:
                        if row[v] < 0:
                            row[v] = du
                            queue.append(v)
            dist.setflags(write=False)
            self._dist = dist
        return self._dist

    @property
    def diameter(self) -> int:
        """Longest shortest-path distance between two cells."""
        return int(self.bfs_distances().max())

    def adjacency(self) -> np.ndarray:
        """(n, n) bool: cells one move apart (no self-loops)."""
        adj = np.zeros((self.num_cells, self.num_cells), dtype=bool)
        src = np.repeat(np.arange(self.num_cells), 4)
        adj[src, self.next_cell.reshape(-1)] = True
        np.fill_diagonal(adj, False)
        return adj

    def step_cells(self, cell_idx, move_idx) -> np.ndarray:
        """Vectorised transition: cell indices and move indices (broadcast) -> next cell indices."""
        return self.next_cell[np.asarray(cell_idx, dtype=np.int64), np.asarray(move_idx, dtype=np.int64)]

    # ------------------------------------------------------------ observations

    def _raw_obs(self, rows, cols) -> np.ndarray:
        x = (np.asarray(cols, dtype=np.float64) - (self.width - 1) / 2.0) * self._scale
        y = ((self.height - 1) / 2.0 - np.asarray(rows, dtype=np.float64)) * self._scale
        return np.stack([x, y], axis=-1).astype(np.float32)

    @property
    def observation_dim(self) -> int:
        return int(self._cell_obs.shape[1])

    def obs_of(self, cells) -> np.ndarray:
        """Cell indices ``(...)`` -> float32 observations: ``(..., 2)`` cell centres ``(x, y)``, or
        ``(..., num_cells)`` one-hot codes with ``observation="onehot"``."""
        idx = np.asarray(cells)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"obs_of expects integer cell indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_cells):
            raise IndexError(f"cell index out of range [0, {self.num_cells})")
        return self._cell_obs[idx]

    def cell_of_obs(self, obs) -> np.ndarray:
        """Observations ``(..., 2)`` -> index of the nearest free cell centre ``(...)`` (int64).

        Exact inverse of :meth:`obs_of`; other points go to the nearest free
        cell (ties to the lower index).
        """
        o = np.asarray(obs, dtype=np.float64)
        if self.observation == "onehot":
            if o.ndim < 1 or o.shape[-1] != self.num_cells:
                raise ValueError(f"observations must have shape (..., {self.num_cells}), got {o.shape}")
            return np.argmax(o, axis=-1).astype(np.int64)
        if o.ndim < 1 or o.shape[-1] != 2:
            raise ValueError(f"observations must have shape (..., 2), got {o.shape}")
        flat = o.reshape(-1, 2)
        # Fast path: round to the grid; only points that land on a wall or
        # outside the layout need the brute-force nearest-cell search.
        col = np.rint(flat[:, 0] / self._scale + (self.width - 1) / 2.0)
        row = np.rint((self.height - 1) / 2.0 - flat[:, 1] / self._scale)
        ok = np.isfinite(col) & np.isfinite(row)
        ok &= (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        out = np.full(len(flat), -1, dtype=np.int64)
        r = np.where(ok, row, 0).astype(np.int64)
        c = np.where(ok, col, 0).astype(np.int64)
        out[ok] = self._index_grid[r[ok], c[ok]]
        miss = np.flatnonzero(out < 0)
        if miss.size:
            if not np.all(np.isfinite(flat[miss])):
                raise ValueError("observations contain NaN or inf")
            for lo in range(0, miss.size, 4096):  # chunked to bound memory
                chunk = miss[lo:lo + 4096]
                d2 = ((flat[chunk, None, :] - self._cell_obs[None].astype(np.float64)) ** 2).sum(-1)
                out[chunk] = d2.argmin(axis=1)
        return out.reshape(o.shape[:-1])

    # ------------------------------------------------------------------ data

    def random_walk_dataset(self, num_episodes: int, episode_length: int, seed: int = 0,
                            action_noise: float = 0.0) -> dict[str, np.ndarray]:
        """Uniform random-walk episodes in OGBench's raw on-disk layout (see ``collect_dataset``)."""
        return self.collect_dataset(num_episodes, episode_length, seed, policy="random",
                                    action_noise=action_noise)

    def navigate_dataset(self, num_episodes: int, episode_length: int, seed: int = 0,
                         random_move_prob: float = 0.2, action_noise: float = 0.0) -> dict[str, np.ndarray]:
        """Goal-directed episodes like OGBench's ``navigate`` data (see ``collect_dataset``)."""
        return self.collect_dataset(num_episodes, episode_length, seed, policy="navigate",
                                    random_move_prob=random_move_prob, action_noise=action_noise)

    def collect_dataset(self, num_episodes: int, episode_length: int, seed: int = 0, *,
                        policy: str = "random", random_move_prob: float = 0.2,
                        action_noise: float = 0.0) -> dict[str, np.ndarray]:
        """Episodes in OGBench's raw on-disk layout, from a uniformly random start cell.

        ``policy="random"``: uniform random moves. ``policy="navigate"`` (OGBench's navigate recipe,
        in miniature): walk along a BFS shortest path to a uniformly random goal cell, replacing the
        move by a uniform random one with probability ``random_move_prob``; on reaching the goal,
        draw a new one.

        The recorded action is the move's unit vector plus optional Gaussian noise (std
        ``action_noise``), clipped to ``[-1, 1]``; the move actually executed is the one that the
        recorded action decodes to, so data and dynamics always agree.

        Returns ``observations`` float32 ``(N, 2)``, ``actions`` float32 ``(N, 2)`` and ``terminals``
        bool ``(N,)`` with ``N = num_episodes * (episode_length + 1)``: every episode stores the
        observation before each action plus its final observation; that last row repeats the
        previous action (it is never used for learning) and is the only row of the episode with
        ``terminals`` True. Vectorised over episodes; deterministic in ``seed``.
        """
        num_episodes = int(num_episodes)
        episode_length = int(episode_length)
        if num_episodes < 1 or episode_length < 1:
            raise ValueError("num_episodes and episode_length must be >= 1")
        if not np.isfinite(action_noise) or action_noise < 0:
            raise ValueError("action_noise must be a finite number >= 0")
        if policy not in ("random", "navigate"):
            raise ValueError(f"policy must be 'random' or 'navigate', got {policy!r}")
        if not 0.0 <= random_move_prob <= 1.0:
            raise ValueError("random_move_prob must be in [0, 1]")
        rng = np.random.default_rng(seed)
        cells = np.empty((num_episodes, episode_length + 1), dtype=np.int64)
        cells[:, 0] = rng.integers(0, self.num_cells, size=num_episodes)
        actions = np.empty((num_episodes, episode_length, 2), dtype=np.float32)
        goals = rng.integers(0, self.num_cells, size=num_episodes)
        dist = self.bfs_distances()
        for t in range(episode_length):  # vectorised over episodes
            here = cells[:, t]
            moves = rng.integers(0, 4, size=num_episodes)
            if policy == "navigate":
                reached = here == goals
                goals = np.where(reached, rng.integers(0, self.num_cells, size=num_episodes), goals)
                # Among the moves that shorten the BFS distance to the goal, pick one at random.
                to_goal = dist[self.next_cell[here], goals[:, None]]  # (episodes, 4)
                best = to_goal == to_goal.min(axis=1, keepdims=True)
                scores = np.where(best, rng.random((num_episodes, 4)), -1.0)
                greedy = np.argmax(scores, axis=1)
                explore = rng.random(num_episodes) < random_move_prob
                moves = np.where(explore | (here == goals), moves, greedy)
            act = MOVE_VECTORS[moves].astype(np.float64)
            if action_noise > 0:
                act = np.clip(act + action_noise * rng.standard_normal(act.shape), -1.0, 1.0)
            actions[:, t] = act
            taken = decode_actions(actions[:, t])  # decode the float32 values actually stored
            cells[:, t + 1] = self.next_cell[here, taken]

        all_actions = np.concatenate([actions, actions[:, -1:]], axis=1)
        terminals = np.zeros((num_episodes, episode_length + 1), dtype=bool)
        terminals[:, -1] = True
        n_rows = num_episodes * (episode_length + 1)
        return {
            "observations": self.obs_of(cells).reshape(n_rows, self.observation_dim).copy(),
            "actions": all_actions.reshape(n_rows, 2),
            "terminals": terminals.reshape(n_rows),
        }

    def _task_indices(self, tasks) -> np.ndarray:
        out = []
        for k, task in enumerate(tasks):
            try:
                (sr, sc), (gr, gc) = task
                out.append([self.cell_index[(int(sr), int(sc))], self.cell_index[(int(gr), int(gc))]])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"task {k} ({task!r}) must be ((row, col), (row, col)) of free cells") from exc
        if not out:
            raise ValueError("at least one task is needed")
        return np.array(out, dtype=np.int64)

    def _auto_tasks(self, fractions=(1.0, 0.85, 0.7, 0.55, 0.4)):
        """Deterministic tasks for a custom layout: for each fraction, the ordered
        pair whose distance is closest to ``fraction * diameter``, preferring
        cells not used by earlier tasks, then the lowest (start, goal) index."""
        d = self.bfs_distances()
        diam = int(d.max())
        used: set[int] = set()
        tasks = []
        for f in fractions:
            want = max(1, round(f * diam))
            reuse = np.zeros(self.num_cells, dtype=np.int64)
            reuse[list(used)] = 1
            # Lexicographic cost: distance error, then reuse count; argmin breaks remaining ties by index.
            cost = np.abs(d - want) * 4 + reuse[:, None] + reuse[None, :]
            np.fill_diagonal(cost, np.iinfo(np.int64).max)
            s, g = np.unravel_index(int(cost.argmin()), cost.shape)
            used.update((int(s), int(g)))
            tasks.append((tuple(int(v) for v in self.free_cells[s]), tuple(int(v) for v in self.free_cells[g])))
        return tuple(tasks)

    # --------------------------------------------------------------- display

    def render(self, marks: dict[int, str] | None = None) -> str:
        """ASCII drawing of the layout; ``marks`` maps cell index -> character(s) drawn there."""
        grid = [list(r) for r in self.layout]
        for idx, ch in (marks or {}).items():
            r, c = self.free_cells[int(idx)]
            grid[r][c] = str(ch)[0]
        return "\n".join("".join(r) for r in grid)

    def __repr__(self) -> str:
        return (f"GridMaze({self.height}x{self.width}, {self.num_cells} free cells, "
                f"diameter {self.diameter}, {len(self.tasks)} tasks)")


class GridMazeEnv:
    """Batched evaluation environment: ``B`` independent copies of one maze.

    ``reset(task_ids)`` starts one episode per entry of ``task_ids`` (0-based
    indices into ``maze.tasks``; the result keys of :meth:`evaluate` are
    1-based, ``"task1"`` ...).  ``step(actions)`` moves every copy that has
    not yet reached its goal; a copy that has reached it stays there and
    ignores further actions, so ``success`` (current cell == goal cell) means
    "reached the goal at some point".  An episode lasts ``max_steps`` steps
    (default: twice the longest task distance, at least 20); stepping past
    that raises ``RuntimeError``.
    """

    def __init__(self, maze: GridMaze | None = None, max_steps: int | None = None):
        self.maze = maze if maze is not None else GridMaze()
        default = max(20, 2 * int(self.maze.task_distances.max()))
        self.max_steps = int(max_steps) if max_steps is not None else default
        if self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")
        self.num_tasks = int(len(self.maze.tasks))
        self.task_ids: np.ndarray | None = None
        self.cells: np.ndarray | None = None
        self.goal_cells: np.ndarray | None = None
        self.t = 0
        self._limit = self.max_steps

    def reset(self, task_ids, max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Starts episodes for 0-based ``task_ids`` (B,); returns (observations (B, 2), goals (B, 2))."""
        ids = np.asarray(task_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError("task_ids must be a 1-d integer array")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_tasks):
            raise ValueError(f"task ids must lie in [0, {self.num_tasks}) (0-based)")
        self.task_ids = ids.astype(np.int64)
        self.cells = self.maze.tasks[self.task_ids, 0].copy()
        self.goal_cells = self.maze.tasks[self.task_ids, 1].copy()
        self.t = 0
        self._limit = self.max_steps if max_steps is None else int(max_steps)
        return self.maze.obs_of(self.cells), self.maze.obs_of(self.goal_cells)

    @property
    def success(self) -> np.ndarray:
        """(B,) bool: the copy is on its goal cell."""
        self._check_started()
        return self.cells == self.goal_cells

    def step(self, actions) -> tuple[np.ndarray, np.ndarray]:
        """Applies actions (B, 2); returns (observations (B, 2), success (B,) bool)."""
        self._check_started()
        if self.t >= self._limit:
            raise RuntimeError(f"episode is over ({self._limit} steps); call reset()")
        a = np.asarray(actions)
        if a.shape != (len(self.cells), 2):
            raise ValueError(f"actions must have shape ({len(self.cells)}, 2), got {a.shape}")
        moves = decode_actions(a)
        active = self.cells != self.goal_cells  # finished copies are frozen on their goal
        self.cells = np.where(active, self.maze.step_cells(self.cells, moves), self.cells)
        self.t += 1
        return self.maze.obs_of(self.cells), self.cells == self.goal_cells

    def evaluate(self, policy_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], episodes_per_task: int,
                 max_steps: int | None = None) -> dict[str, float]:
        """Runs ``episodes_per_task`` episodes of every task at once.

        ``policy_fn(observations (B, 2), goals (B, 2)) -> actions (B, 2)`` is
        called once per time step for all ``B = num_tasks * episodes_per_task``
        episodes together (stopping early once every episode has succeeded).
        Returns ``{"task1": rate, ..., "overall": rate}``, rates in [0, 1].
        """
        episodes_per_task = int(episodes_per_task)
        if episodes_per_task < 1:
            raise ValueError("episodes_per_task must be >= 1")
        task_ids = np.repeat(np.arange(self.num_tasks), episodes_per_task)
        obs, goals = self.reset(task_ids, max_steps=max_steps)
        success = self.cells == self.goal_cells
        for _ in range(self._limit):
            if success.all():
                break
            actions = np.asarray(policy_fn(obs, goals.copy()))
            obs, success = self.step(actions)
        per_task = success.reshape(self.num_tasks, episodes_per_task).mean(axis=1)
        result = {f"task{k + 1}": float(r) for k, r in enumerate(per_task)}
        result["overall"] = float(success.mean())
        return result

    def _check_started(self) -> None:
        if self.cells is None:
            raise RuntimeError("call reset() first")


def all_pairs_distances(maze: GridMaze, distance_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                        step_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """(learned, exact) step distances over all ordered pairs of distinct cells.

    ``distance_fn(observations, goals) -> (N,)`` is a learned distance (e.g. ``LoadedAgent.distance``);
    dividing by ``step_distance`` (|log gamma|) converts it to steps. ``exact`` is the BFS distance.
    """
    n = maze.num_cells
    s, g = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off_diagonal = s != g
    s, g = s[off_diagonal], g[off_diagonal]
    learned = np.asarray(distance_fn(maze.obs_of(s), maze.obs_of(g)), dtype=np.float64) / step_distance
    return learned, maze.bfs_distances()[s, g].astype(np.float64)
