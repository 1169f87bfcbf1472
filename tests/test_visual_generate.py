"""`mqe generate visual-<name>`: frames rendered from a state dataset's stored states.

The reference for every frame is OGBench's visual environment itself, driven here through its own
public methods (``set_state``, then ``get_ob`` / ``compute_observation``) in a separate environment
instance: a stored frame must equal it exactly. Both render with the same MuJoCo build and GL backend in
one process tree, so exact equality is the right bar (no rasterisation differences to tolerate).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
ogbench = pytest.importorskip("ogbench")

from mqe.data.dataset import Dataset  # noqa: E402
from mqe.data.generate import GenerationError  # noqa: E402
from mqe.data.visual import generate_visual, split_visual_name  # noqa: E402


def write_state_dataset(directory, name: str, env_id: str, steps: tuple[int, int], seed: int = 0) -> None:
    """A small state dataset in `mqe generate`'s layout (qpos/qvel float32, button states for scene and
    puzzle), collected with random actions: one episode per file, ``steps`` rows (train, val)."""
    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    for suffix, rows in zip(("", "-val"), steps):
        ob, _ = env.reset(seed=seed + len(suffix))
        cols = {"observations": [], "actions": [], "qpos": [], "qvel": [], "button_states": []}
        for _ in range(rows):
            action = env.action_space.sample()
            next_ob, _, _, _, info = env.step(action)
            cols["observations"].append(ob)
            cols["actions"].append(action)
            cols["qpos"].append(info["prev_qpos"])
            cols["qvel"].append(info["prev_qvel"])
            if "prev_button_states" in info:
                cols["button_states"].append(info["prev_button_states"])
            ob = next_ob
        terminals = np.zeros(rows, bool)
        terminals[-1] = True
        extras = {"qpos": np.asarray(cols["qpos"], np.float32), "qvel": np.asarray(cols["qvel"], np.float32)}
        if cols["button_states"]:
            extras["button_states"] = np.asarray(cols["button_states"], np.int64)
        Dataset.from_arrays(np.asarray(cols["observations"], np.float32), np.asarray(cols["actions"], np.float32),
                            terminals, **extras).save_npz(directory / f"{name}{suffix}.npz")
    env.close()


def env_observations(visual_env_id: str, extras: dict[str, np.ndarray]) -> np.ndarray:
    """The visual environment's own observation in each stored state (a fresh instance, reset once)."""
    env = gymnasium.make(visual_env_id)
    env.reset(seed=123)
    u = env.unwrapped
    frames = []
    for i in range(extras["qpos"].shape[0]):
        if "button_states" in extras:
            u.set_state(extras["qpos"][i], extras["qvel"][i], extras["button_states"][i])
        else:
            u.set_state(extras["qpos"][i], extras["qvel"][i])
        frames.append(u.get_ob() if "maze" in visual_env_id else u.compute_observation())
    env.close()
    return np.asarray(frames)


def check_against_state_data(directory, name: str, visual_env_id: str) -> None:
    for suffix in ("", "-val"):
        state = Dataset.load_npz(directory / f"{name}{suffix}.npz")
        pixels = Dataset.load_npz(directory / f"visual-{name}{suffix}.npz")
        assert pixels.observations.dtype == np.uint8 and pixels.observations.shape == (state.size, 64, 64, 3)
        # The same episodes, row for row.
        np.testing.assert_array_equal(pixels.actions, state.actions)
        np.testing.assert_array_equal(pixels.terminals, state.terminals)
        assert sorted(pixels.extras) == sorted(state.extras)
        for key in state.extras:
            np.testing.assert_array_equal(pixels.extras[key], state.extras[key])
        # Each frame is the visual environment's own observation in that row's stored state.
        np.testing.assert_array_equal(pixels.observations, env_observations(visual_env_id, state.extras))
        # ...and frames carry the state: not blank, and they change as the state changes.
        assert pixels.observations.mean() > 20
        assert len({frame.tobytes() for frame in pixels.observations}) > 1


def test_frames_equal_the_visual_environment_in_the_stored_state(tmp_path):
    """Manipulation, in this process (puzzle: frames also depend on the stored button states). The maze
    family is checked the same way by the resume test below, through the command line."""
    name, state_env, visual_env = "puzzle-3x3-play-v0", "puzzle-3x3-v0", "visual-puzzle-3x3-v0"
    write_state_dataset(tmp_path, name, state_env, steps=(3, 2))
    train, val, stats = generate_visual(f"visual-{name}", str(tmp_path), shard_rows=2, progress=False)
    assert (train, val) == (str(tmp_path / f"visual-{name}.npz"), str(tmp_path / f"visual-{name}-val.npz"))
    assert stats["frames"] == 3 and stats["val_frames"] == 2 and stats["shards"] == 2 + 1
    assert not (tmp_path / f".visual-{name}.shards").exists()  # shards removed once the files are written
    check_against_state_data(tmp_path, name, visual_env)
    # OGBench's own loader reads the file as one of its visual datasets.
    loaded = ogbench.utils.load_dataset(train, ob_dtype=np.uint8, compact_dataset=True, add_info=True)
    assert loaded["observations"].shape == (3, 64, 64, 3) and loaded["qpos"].dtype == np.float32


def test_killed_rendering_resumes_from_its_shards_in_parallel_workers(tmp_path):
    name = "antmaze-medium-navigate-v0"
    write_state_dataset(tmp_path, name, "antmaze-medium-v0", steps=(16, 2))
    command = [sys.executable, "-m", "mqe", "generate", f"visual-{name}", "--dataset-dir", str(tmp_path),
               "--shard-rows", "2", "--workers", "2", "--no-progress"]
    shards = tmp_path / f".visual-{name}.shards"
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    deadline = time.time() + 300
    def finished_shards() -> int:  # complete shard files only (a shard being written has a hidden temporary name)
        return len(list(shards.glob("part*.npy"))) if shards.exists() else 0

    while not finished_shards():
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)  # the command and its render workers
    first.wait()
    kept = finished_shards()
    assert kept >= 1 and not (tmp_path / f"visual-{name}.npz").exists()

    done = subprocess.run(command[:-2] + ["1", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"shards 9, shards_reused {kept}," in done.stdout  # 8 + 1 shards of 2 rows; the kept ones reused
    check_against_state_data(tmp_path, name, "visual-antmaze-medium-v0")


@pytest.mark.parametrize("name,message", [
    ("visual-pointmaze-medium-navigate-v0", "no visual point maze"),
    ("visual-antmaze-colossal-navigate-v0", "colossal maze exists for states only"),
    ("visual-antsoccer-arena-navigate-v0", "no visual environment 'visual-antsoccer-arena-v0'"),
    ("visual-cube", "not a state dataset name"),
])
def test_names_without_a_visual_environment_get_a_clear_error(name, message):
    with pytest.raises(GenerationError, match=message):
        split_visual_name(name)


def test_a_state_file_without_simulator_state_is_named(tmp_path):
    rng = np.random.default_rng(0)
    for suffix in ("", "-val"):
        Dataset.from_arrays(rng.normal(size=(4, 29)).astype(np.float32), np.zeros((4, 8), np.float32),
                            np.array([0, 0, 0, 1], bool)).save_npz(tmp_path / f"antmaze-medium-navigate-v0{suffix}.npz")
    with pytest.raises(GenerationError, match=r"antmaze-medium-navigate-v0.npz: has no 'qpos', 'qvel'"):
        generate_visual("visual-antmaze-medium-navigate-v0", str(tmp_path), progress=False)
