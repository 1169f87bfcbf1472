"""Generated OGBench datasets: OGBench's own loader reads them, and their statistics match the recipe."""

import numpy as np
import pytest

ogbench = pytest.importorskip("ogbench")

from mqe.cli import main  # noqa: E402
from mqe.data.dataset import Dataset  # noqa: E402
from mqe.data.generate import GenerationError, generate, recipe_for  # noqa: E402
from mqe.data.maze_collector import MazeOracle  # noqa: E402


@pytest.fixture(scope="module")
def navigate(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return out, generate("pointmaze-medium-navigate-v0", str(out), num_episodes=20, progress=False)


def test_loads_through_ogbench_and_our_loader(navigate):
    out, (train_path, val_path, stats) = navigate
    env, train, val = ogbench.make_env_and_datasets("pointmaze-medium-navigate-v0", dataset_dir=str(out))
    assert train["observations"].shape == (20 * 1000, 2)  # regular form: 1000 transitions per episode
    assert val["observations"].shape == (2 * 1000, 2)  # the 10% validation split
    _, compact, _ = ogbench.make_env_and_datasets("pointmaze-medium-navigate-v0", dataset_dir=str(out),
                                                  compact_dataset=True, add_info=True)
    assert compact["qpos"].shape == (20 * 1001, 2) and compact["qvel"].dtype == np.float32
    ours = Dataset.load_npz(train_path)
    assert ours.num_trajectories == 20 and set(ours.trajectory_lengths) == {1001}
    assert ours.observations.dtype == np.float32 and ours.terminals.dtype == bool
    raw = np.load(train_path)
    assert sorted(raw.files) == ["actions", "observations", "qpos", "qvel", "terminals"]
    assert np.abs(raw["actions"]).max() <= 1.0
    np.testing.assert_array_equal(raw["observations"], raw["qpos"])  # point: the observation is qpos


def test_navigate_statistics(navigate):
    _, (_, _, stats) = navigate
    # The noisy BFS oracle reaches many goals per 1000-step episode and covers the whole maze.
    assert stats["goals_reached"] / (stats["episodes"] + stats["val_episodes"]) >= 4
    assert stats["cells_visited"] == stats["free_cells"] == 26


def test_stitch_goal_is_four_cells_away_and_reached(tmp_path):
    _, _, stats = generate("pointmaze-large-stitch-v0", str(tmp_path), num_episodes=30, progress=False)
    assert stats["episode_steps"] == 201
    assert stats["episodes_reaching_goal"] >= 0.9 * 33
    # One goal per stitch episode: an agent that stays on it counts once, not once per step.
    assert stats["goals_reached"] == stats["episodes_reaching_goal"]
    oracle = MazeOracle(ogbench.make_env_and_datasets("pointmaze-large-navigate-v0", env_only=True).unwrapped.maze_map)
    for start in oracle.free_cells[:10]:
        for goal in oracle.cells_at_distance(start, 4):
            assert oracle.distances_to(start)[goal] == 4


def test_deterministic_by_seed(tmp_path):
    a = generate("pointmaze-medium-stitch-v0", str(tmp_path / "a"), num_episodes=5, seed=3, progress=False)
    b = generate("pointmaze-medium-stitch-v0", str(tmp_path / "b"), num_episodes=5, seed=3, progress=False)
    c = generate("pointmaze-medium-stitch-v0", str(tmp_path / "c"), num_episodes=5, seed=4, progress=False)
    load = lambda p: dict(np.load(p))
    for key, value in load(a[0]).items():
        np.testing.assert_array_equal(value, load(b[0])[key])
    assert not np.array_equal(load(a[0])["observations"], load(c[0])["observations"])


def test_recipes_and_bad_names(capsys):
    assert recipe_for("pointmaze-giant-navigate-v0")[1].num_episodes == 500
    assert recipe_for("pointmaze-giant-navigate-v0")[1].episode_steps == 2001
    assert recipe_for("pointmaze-teleport-stitch-v0")[1].num_episodes == 5000
    with pytest.raises(GenerationError, match="supported names"):
        recipe_for("pointmaze-huge-navigate-v0")
    ant = recipe_for("antmaze-large-navigate-v0")
    assert ant[0] == "antmaze-large-v0" and (ant[1].num_episodes, ant[1].episode_steps, ant[1].noise) == (1000, 1001, 0.2)
    assert recipe_for("antmaze-large-explore-v0")[1].noise == 1.0
    assert recipe_for("antmaze-colossal-navigate-v0")[1].episode_steps == 2001
    triple = recipe_for("cube-triple-noisy-v0")
    assert triple[0] == "cube-triple-v0" and triple[1].num_episodes == 3000 and triple[1].p_random_action == 0.1
    assert recipe_for("puzzle-4x4-noisy-v0")[1].p_random_action == 0.2
    assert recipe_for("scene-play-v0")[1].p_random_action == 0.0
    with pytest.raises(GenerationError, match="humanoid locomotion expert"):
        recipe_for("humanoidmaze-giant-navigate-v0")
    assert main(["generate", "cube-quadruple-play-v0", "--dataset-dir", "/tmp/x"]) == 2
    assert "cannot generate" in capsys.readouterr().err
    assert main(["generate", "antmaze-large-navigate-v0", "--expert", "/nonexistent/actor.npz",
                 "--dataset-dir", "/tmp/x"]) == 2
    assert "no ant expert at /nonexistent/actor.npz" in capsys.readouterr().err


def _load(path):
    return dict(np.load(path))


def test_workers_do_not_change_the_output(tmp_path):
    # 10 + 1 episodes in shards of 4: 3 shards over 1 or 2 processes
    kw = dict(num_episodes=10, seed=1, shard_episodes=4, progress=False)
    one = generate("pointmaze-medium-navigate-v0", str(tmp_path / "one"), **kw)
    two = generate("pointmaze-medium-navigate-v0", str(tmp_path / "two"), workers=2, **kw)
    assert one[2]["shards"] == 3 and one[2] == two[2]
    for i in (0, 1):
        a, b = _load(one[i]), _load(two[i])
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not any(name.startswith(".") for name in __import__("os").listdir(tmp_path / "two")), "shards removed"


def test_interrupted_generation_resumes_from_finished_shards(tmp_path, monkeypatch):
    import mqe.data.generate as gen

    kw = dict(num_episodes=6, shard_episodes=4, progress=False)
    full = generate("pointmaze-medium-navigate-v0", str(tmp_path / "full"), seed=2, **kw)
    calls = []
    real = gen._collect_shard

    def dies_on_second_shard(*args):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(gen, "_collect_shard", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        generate("pointmaze-medium-navigate-v0", str(tmp_path / "cut"), seed=2, **kw)
    shard_dir = tmp_path / "cut" / ".pointmaze-medium-navigate-v0.shards"
    assert sorted(p.name for p in shard_dir.iterdir() if p.name.startswith("shard-")) == ["shard-00000.npz"]
    assert not any(p.name.endswith(".tmp.npz") or p.name.endswith(".tmp") for p in shard_dir.iterdir())
    monkeypatch.setattr(gen, "_collect_shard", real)
    resumed = generate("pointmaze-medium-navigate-v0", str(tmp_path / "cut"), seed=2, **kw)
    assert resumed[2]["shards_reused"] == 1 and resumed[2]["shards"] == 2
    for i in (0, 1):
        a, b = _load(full[i]), _load(resumed[i])
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # A different seed does not reuse another run's shards.
    monkeypatch.setattr(gen, "_collect_shard", dies_on_second_shard)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        generate("pointmaze-medium-navigate-v0", str(tmp_path / "cut"), seed=2, **kw)
    monkeypatch.setattr(gen, "_collect_shard", real)
    other = generate("pointmaze-medium-navigate-v0", str(tmp_path / "cut"), seed=3, **kw)
    assert other[2]["shards_reused"] == 0
