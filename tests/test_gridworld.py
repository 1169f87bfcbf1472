"""Tests for the grid-world maze: exact distances, action coding, data layout, evaluation."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from mqe.envs.gridworld import (
    DEFAULT_MAZE,
    DEFAULT_TASKS,
    MOVE_VECTORS,
    GridMaze,
    GridMazeEnv,
    decode_actions,
)


@pytest.fixture(scope="module")
def maze():
    return GridMaze(DEFAULT_MAZE)


def floyd_warshall(adj):
    n = len(adj)
    d = np.where(adj, 1.0, np.inf)
    np.fill_diagonal(d, 0.0)
    for k in range(n):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    return d


def adjacency_from_layout(layout):
    """Independent reference: adjacency straight from the strings, not from the class's tables."""
    cells = [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch == "."]
    pos = {cell: i for i, cell in enumerate(cells)}
    adj = np.zeros((len(cells), len(cells)), dtype=bool)
    for (r, c), i in pos.items():
        for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if nb in pos:
                adj[i, pos[nb]] = True
    return cells, adj


# ------------------------------------------------------------------ layout / distances

def test_default_maze_shape(maze):
    assert 9 <= maze.height <= 11 and 9 <= maze.width <= 11
    assert 35 <= maze.num_cells <= 55
    # border walls all round
    assert set(DEFAULT_MAZE[0]) == {"#"} and set(DEFAULT_MAZE[-1]) == {"#"}
    assert all(row[0] == "#" and row[-1] == "#" for row in DEFAULT_MAZE)
    cells, _ = adjacency_from_layout(DEFAULT_MAZE)
    assert [tuple(c) for c in maze.free_cells.tolist()] == cells  # row-major order
    for i, (r, c) in enumerate(cells):
        assert maze.cell_index[(r, c)] == i


@pytest.mark.parametrize("layout", [
    DEFAULT_MAZE,
    ("#####", "#...#", "#.#.#", "#...#", "#####"),  # a ring: two routes between opposite cells
    ("......", ".##.#.", "......"),                    # no border walls: moving off the grid stays put
])
def test_bfs_matches_floyd_warshall(layout):
    m = GridMaze(layout)
    cells, adj = adjacency_from_layout(layout)
    ref = floyd_warshall(adj)
    assert np.all(np.isfinite(ref))
    d = m.bfs_distances()
    assert d.shape == (len(cells), len(cells)) and np.issubdtype(d.dtype, np.integer)
    np.testing.assert_array_equal(d, ref.astype(np.int64))
    np.testing.assert_array_equal(m.adjacency(), adj)
    assert m.bfs_distances() is d  # cached


def test_distance_axioms(maze):
    d = maze.bfs_distances()
    n = maze.num_cells
    np.testing.assert_array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)
    assert np.all(d[~np.eye(n, dtype=bool)] > 0)
    # triangle inequality for every triple: d[i, k] <= d[i, j] + d[j, k]
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :])
    # one step changes distance to any fixed goal by at most 1 (and every non-goal cell has a move that decreases it)
    nxt = d[maze.next_cell]  # (n, 4, n): distance from each successor to each goal
    assert np.all(np.abs(nxt - d[:, None, :]) <= 1)
    best = nxt.min(axis=1)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_array_equal(best[off], d[off] - 1)


def test_euclid_is_a_poor_guide(maze):
    d = maze.bfs_distances()
    obs = maze.obs_of(np.arange(maze.num_cells)).astype(np.float64)
    eu = np.linalg.norm(obs[:, None] - obs[None], axis=-1)
    off = ~np.eye(maze.num_cells, dtype=bool)
    rho = spearmanr(eu[off], d[off]).statistic
    assert rho <= 0.5, rho  # requirement is <= 0.6; keep a margin
    # Euclid in observation space is proportional to Euclid between cell centres
    rc = maze.free_cells.astype(np.float64)
    grid_eu = np.linalg.norm(rc[:, None] - rc[None], axis=-1)
    np.testing.assert_allclose(eu[off] / grid_eu[off], eu[0, 1] / grid_eu[0, 1], rtol=1e-5)


def test_invalid_layouts():
    with pytest.raises(ValueError, match="rectangular"):
        GridMaze(("###", "#.", "###"))
    with pytest.raises(ValueError, match="connected"):
        GridMaze(("#####", "#.#.#", "#####"))
    with pytest.raises(ValueError, match="characters"):
        GridMaze(("#####", "#.x.#", "#####"))
    with pytest.raises(ValueError, match="tasks?"):
        GridMaze(DEFAULT_MAZE, tasks=[((0, 0), (1, 1))])  # (0, 0) is a wall


# ------------------------------------------------------------------ observations / actions

def test_obs_round_trip(maze):
    idx = np.arange(maze.num_cells)
    obs = maze.obs_of(idx)
    assert obs.dtype == np.float32 and obs.shape == (maze.num_cells, 2)
    assert np.all(np.abs(obs) <= 1.0)
    np.testing.assert_array_equal(maze.cell_of_obs(obs), idx)
    # batched shapes, and small perturbations map back to the same cell
    rng = np.random.default_rng(0)
    cells = rng.integers(0, maze.num_cells, size=(7, 3))
    o = maze.obs_of(cells)
    assert o.shape == (7, 3, 2)
    jitter = rng.uniform(-0.3, 0.3, size=o.shape) * maze._scale  # less than half a cell
    np.testing.assert_array_equal(maze.cell_of_obs(o + jitter), cells)
    # x grows with the column, y grows upwards (decreasing row)
    a, b = maze.cell_index[(1, 5)], maze.cell_index[(1, 6)]
    assert maze.obs_of(b)[0] > maze.obs_of(a)[0] and maze.obs_of(b)[1] == maze.obs_of(a)[1]
    a, b = maze.cell_index[(2, 1)], maze.cell_index[(1, 1)]
    assert maze.obs_of(b)[1] > maze.obs_of(a)[1]


def test_cell_of_obs_off_grid_goes_to_nearest_free_cell(maze):
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1.5, 1.5, size=(500, 2))
    centres = maze.obs_of(np.arange(maze.num_cells)).astype(np.float64)
    d2 = ((pts[:, None] - centres[None]) ** 2).sum(-1)
    got = maze.cell_of_obs(pts)
    np.testing.assert_allclose(d2[np.arange(len(pts)), got], d2.min(axis=1), rtol=1e-9, atol=1e-12)


def test_decode_unit_vectors_and_noise():
    np.testing.assert_array_equal(decode_actions(MOVE_VECTORS), [0, 1, 2, 3])
    rng = np.random.default_rng(0)
    moves = rng.integers(0, 4, size=(1000,))
    noisy = np.clip(MOVE_VECTORS[moves] + rng.uniform(-0.45, 0.45, size=(1000, 2)), -1, 1)
    np.testing.assert_array_equal(decode_actions(noisy), moves)  # noise below the dominance margin
    # scaled-down actions keep their meaning; batch dimensions are preserved
    np.testing.assert_array_equal(decode_actions(0.01 * MOVE_VECTORS[None, None]), [[[0, 1, 2, 3]]])
    # deterministic tie-breaking: vertical wins, zero counts as positive
    np.testing.assert_array_equal(
        decode_actions(np.array([[0.0, 0.0], [0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5], [0.2, 0.0]])),
        [0, 0, 1, 0, 1, 3])
    with pytest.raises(ValueError):
        decode_actions(np.array([[np.nan, 0.0]]))


def test_step_cells_matches_layout(maze):
    deltas = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}
    for i, (r, c) in enumerate(maze.free_cells.tolist()):
        for m, (dr, dc) in deltas.items():
            target = (r + dr, c + dc)
            expected = maze.cell_index.get(target, i)  # walls leave the agent in place
            assert maze.step_cells(i, m) == expected
    # vectorised with broadcasting
    cells = np.arange(maze.num_cells)
    out = maze.step_cells(cells[:, None], np.arange(4)[None, :])
    np.testing.assert_array_equal(out, maze.next_cell)


# ------------------------------------------------------------------ dataset

def test_random_walk_layout_and_consistency(maze):
    E, L = 64, 30
    data = maze.random_walk_dataset(E, L, seed=3, action_noise=0.3)
    assert set(data) == {"observations", "actions", "terminals"}
    obs, act, term = data["observations"], data["actions"], data["terminals"]
    assert obs.shape == (E * (L + 1), 2) and obs.dtype == np.float32
    assert act.shape == (E * (L + 1), 2) and act.dtype == np.float32
    assert term.shape == (E * (L + 1),) and term.dtype == np.bool_
    np.testing.assert_array_equal(np.flatnonzero(term), np.arange(1, E + 1) * (L + 1) - 1)
    assert np.all(np.abs(act) <= 1.0)

    cells = maze.cell_of_obs(obs).reshape(E, L + 1)
    np.testing.assert_array_equal(maze.obs_of(cells).reshape(-1, 2), obs)  # exactly cell centres
    moves = decode_actions(act).reshape(E, L + 1)[:, :L]
    # every transition is exactly what the recorded action does in the maze
    np.testing.assert_array_equal(maze.step_cells(cells[:, :-1], moves), cells[:, 1:])
    # consecutive observations are the same cell or neighbours
    d = maze.bfs_distances()[cells[:, :-1], cells[:, 1:]]
    assert set(np.unique(d).tolist()) <= {0, 1}
    assert (d == 1).mean() > 0.3
    # where the agent moved, the recorded action names the move between the two cells
    rc = maze.free_cells[cells]
    step = rc[:, 1:] - rc[:, :-1]
    moved = np.any(step != 0, axis=-1)
    vec = np.stack([step[..., 1], -step[..., 0]], axis=-1)  # (d_row, d_col) -> (x, y)
    np.testing.assert_array_equal(MOVE_VECTORS[moves][moved], vec[moved])
    # the final row repeats the last action
    a = act.reshape(E, L + 1, 2)
    np.testing.assert_array_equal(a[:, -1], a[:, -2])


def test_random_walk_without_noise_records_unit_vectors(maze):
    data = maze.random_walk_dataset(10, 5, seed=0)
    assert np.all(np.isin(data["actions"], [-1.0, 0.0, 1.0]))
    assert np.all(np.abs(data["actions"]).sum(axis=1) == 1.0)


def test_random_walk_determinism_and_coverage(maze):
    a = maze.random_walk_dataset(200, 20, seed=7, action_noise=0.2)
    b = maze.random_walk_dataset(200, 20, seed=7, action_noise=0.2)
    c = maze.random_walk_dataset(200, 20, seed=8, action_noise=0.2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["observations"], c["observations"])
    # uniform starts: every cell visited
    assert len(np.unique(maze.cell_of_obs(a["observations"]))) == maze.num_cells
    with pytest.raises(ValueError):
        maze.random_walk_dataset(0, 5, seed=0)


# ------------------------------------------------------------------ tasks / env

def test_tasks(maze):
    assert len(maze.tasks) == 5 == len(DEFAULT_TASKS)
    d = maze.task_distances
    assert len(set(d.tolist())) == 5  # varied
    assert d.max() == maze.diameter
    assert d.min() >= maze.diameter // 3
    assert len(set(maze.tasks.reshape(-1).tolist())) == 10  # spread: ten distinct cells
    for (s, g), (sc, gc) in zip(maze.tasks.tolist(), DEFAULT_TASKS):
        assert tuple(maze.free_cells[s]) == sc and tuple(maze.free_cells[g]) == gc


def oracle_policy(maze):
    d = maze.bfs_distances()

    def policy(obs, goals):
        cells, goal_cells = maze.cell_of_obs(obs), maze.cell_of_obs(goals)
        succ = maze.next_cell[cells]                                # (B, 4)
        best = np.argmin(d[succ, goal_cells[:, None]], axis=1)      # greedy on exact distance
        return MOVE_VECTORS[best] * 0.7                             # scale must not matter
    return policy


def test_env_oracle_succeeds_in_exactly_the_distance(maze):
    env = GridMazeEnv(maze)
    assert env.max_steps == max(20, 2 * int(maze.task_distances.max()))
    calls = []
    policy = oracle_policy(maze)

    def counting(obs, goals):
        calls.append(obs.shape)
        return policy(obs, goals)

    res = env.evaluate(counting, episodes_per_task=4)
    assert res == {"task1": 1.0, "task2": 1.0, "task3": 1.0, "task4": 1.0, "task5": 1.0, "overall": 1.0}
    # batched: every call sees all 5 * 4 episodes; the run stops once all succeeded (longest task = diameter)
    assert all(shape == (20, 2) for shape in calls)
    assert len(calls) == maze.diameter

    # step-level: success first becomes True exactly at the task's BFS distance, then stays (frozen)
    obs, goals = env.reset(np.arange(5))
    first = np.full(5, -1)
    for t in range(1, env.max_steps + 1):
        obs, success = env.step(policy(obs, goals))
        first[(first < 0) & success] = t
        assert np.all(success[first > 0])
    np.testing.assert_array_equal(first, maze.task_distances)
    np.testing.assert_array_equal(maze.cell_of_obs(obs), maze.tasks[:, 1])
    with pytest.raises(RuntimeError):
        env.step(np.zeros((5, 2)))


def test_env_freezes_finished_episodes(maze):
    """A policy that walks off the goal right after reaching it still counts as a success."""
    env = GridMazeEnv(maze)
    d = maze.bfs_distances()
    oracle = oracle_policy(maze)

    def restless(obs, goals):
        cells, goal_cells = maze.cell_of_obs(obs), maze.cell_of_obs(goals)
        away = np.argmax(d[maze.next_cell[cells], goal_cells[:, None]], axis=1)
        return np.where((cells == goal_cells)[:, None], MOVE_VECTORS[away], oracle(obs, goals))

    assert env.evaluate(restless, episodes_per_task=1)["overall"] == 1.0
    obs, goals = env.reset(np.arange(5))
    reached = np.zeros(5, dtype=bool)
    for _ in range(env.max_steps):
        obs, success = env.step(restless(obs, goals))
        assert np.all(success[reached])  # once there, it stays there
        reached |= success
    assert success.all()
    np.testing.assert_array_equal(maze.cell_of_obs(obs), maze.tasks[:, 1])


def test_env_constant_and_random_policies_fail(maze):
    env = GridMazeEnv(maze)
    for vec in [np.zeros(2), *MOVE_VECTORS]:
        res = env.evaluate(lambda o, g, v=vec: np.broadcast_to(v, o.shape).copy(), episodes_per_task=2)
        assert res["overall"] == 0.0, (vec, res)
    rng = np.random.default_rng(0)
    res = env.evaluate(lambda o, g: rng.uniform(-1, 1, size=o.shape), episodes_per_task=50)
    assert res["overall"] <= 0.05 and res["task5"] == 0.0
    # a too-short horizon defeats even the oracle on the long tasks
    res = env.evaluate(oracle_policy(maze), episodes_per_task=1, max_steps=int(maze.task_distances[2]))
    assert [res[f"task{k}"] for k in range(1, 6)] == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_env_reset_validation(maze):
    env = GridMazeEnv(maze, max_steps=5)
    with pytest.raises(RuntimeError):
        env.step(np.zeros((1, 2)))
    with pytest.raises(ValueError):
        env.reset(np.array([5]))  # 0-based ids
    obs, goals = env.reset(np.array([0, 4, 4]))
    assert obs.shape == goals.shape == (3, 2) and obs.dtype == goals.dtype == np.float32
    np.testing.assert_array_equal(maze.cell_of_obs(goals), maze.tasks[[0, 4, 4], 1])
    with pytest.raises(ValueError):
        env.step(np.zeros((2, 2)))


def test_custom_layout_auto_tasks():
    layout = ("#######", "#.....#", "#.###.#", "#.#...#", "#.#.###", "#.....#", "#######")
    m = GridMaze(layout)
    assert len(m.tasks) == 5
    assert m.task_distances[0] == m.diameter
    assert np.all(m.task_distances > 0)
    np.testing.assert_array_equal(m.tasks, GridMaze(layout).tasks)  # deterministic
    env = GridMazeEnv(m)
    assert env.evaluate(oracle_policy(m), episodes_per_task=2)["overall"] == 1.0
