"""Tests for mqe.data.dataset: layout reconstruction, round trips and validation errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mqe.data.dataset import Dataset, DatasetError


# --------------------------------------------------------------------------- helpers
def make_raw(rng: np.random.Generator, lengths, *, obs_dim=3, act_dim=2, pixels=False) -> dict[str, np.ndarray]:
    """Episodes back to back in OGBench's raw on-disk layout."""
    n = int(sum(lengths))
    if pixels:
        obs = rng.integers(0, 256, size=(n, 4, 5, 3), dtype=np.uint8)
    else:
        obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    terminals = np.zeros(n, dtype=bool)
    terminals[np.cumsum(lengths) - 1] = True
    return {
        "observations": obs,
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "terminals": terminals,
        "qpos": rng.standard_normal((n, 4)).astype(np.float32),
        "qvel": rng.standard_normal((n, 4)).astype(np.float32),
        "button_states": rng.integers(0, 2, size=(n, 3)).astype(np.int64),
    }


def to_regular(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """OGBench loader's regular form: drop each episode's last row, add next_observations."""
    term = raw["terminals"]
    has_next = ~term  # rows with a successor in their episode
    is_successor = np.concatenate([[False], has_next[:-1]])
    out = {k: v[has_next] for k, v in raw.items() if k != "terminals"}
    out["next_observations"] = raw["observations"][is_successor]
    # 1 on the transition whose successor is the episode's final row.
    out["terminals"] = np.concatenate([term[1:], [True]])[has_next].astype(np.float32)
    return out


def to_compact(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """OGBench loader's compact form: all rows, valids, terminals on the last two rows."""
    term = raw["terminals"]
    out = dict(raw)
    out["valids"] = (~term).astype(np.float32)
    out["terminals"] = (term | np.concatenate([term[1:], [False]])).astype(np.float32)
    return out


def brute_force_final_index(terminals: np.ndarray) -> np.ndarray:
    n = len(terminals)
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        j = t
        while j < n - 1 and not terminals[j]:
            j += 1
        out[t] = j
    return out


def assert_same_raw(ds: Dataset, raw: dict[str, np.ndarray], *, final_rows_exact: bool) -> None:
    np.testing.assert_array_equal(ds.observations, raw["observations"])
    assert ds.observations.dtype == raw["observations"].dtype
    np.testing.assert_array_equal(ds.terminals, raw["terminals"])
    assert ds.terminals.dtype == np.bool_
    keys = ["actions", "qpos", "qvel", "button_states"]
    got = {"actions": ds.actions, **ds.extras}
    assert sorted(got) == sorted(keys)
    learnable = ~raw["terminals"]
    for k in keys:
        assert got[k].dtype == raw[k].dtype
        if final_rows_exact:
            np.testing.assert_array_equal(got[k], raw[k])
        else:
            # A final row's action/extras are copies of the previous row's.
            np.testing.assert_array_equal(got[k][learnable], raw[k][learnable])
            ends = np.flatnonzero(raw["terminals"])
            np.testing.assert_array_equal(got[k][ends], raw[k][ends - 1])


def write_npz(path, arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def assert_error_names(excinfo, path, key=None) -> str:
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    if key is not None:
        assert repr(key) in msg, msg
    return msg


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("seed", range(5))
def test_final_index_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=rng.integers(1, 12))
    lengths[0] = max(lengths[0], 2)  # at least one learnable transition
    raw = make_raw(rng, lengths)
    if seed % 2:  # truncated last episode: array end ends it
        raw["terminals"][-1] = False
    ds = Dataset.from_arrays(**raw)
    expected_terminals = raw["terminals"].copy()
    expected_terminals[-1] = True
    np.testing.assert_array_equal(ds.terminals, expected_terminals)
    np.testing.assert_array_equal(ds.final_index, brute_force_final_index(raw["terminals"]))
    assert ds.final_index.dtype == np.int32
    assert ds.num_trajectories == len(lengths)
    np.testing.assert_array_equal(ds.trajectory_lengths, lengths)
    np.testing.assert_array_equal(ds.trajectory_starts, np.concatenate([[0], np.cumsum(lengths)[:-1]]))


def test_num_transitions_and_shapes():
    rng = np.random.default_rng(0)
    lengths = [3, 1, 5, 2]
    ds = Dataset.from_arrays(**make_raw(rng, lengths, obs_dim=7, act_dim=4))
    brute = sum(1 for t in range(ds.size) if t < ds.final_index[t])
    assert ds.num_transitions == brute == sum(lengths) - len(lengths)
    assert ds.size == len(ds) == 11
    assert ds.observation_shape == (7,)
    assert ds.action_dim == 4
    assert ds.source == "<arrays>"


def test_float64_cast_to_float32_and_binary_terminals_accepted():
    rng = np.random.default_rng(1)
    raw = make_raw(rng, [4, 3])
    ds = Dataset.from_arrays(
        raw["observations"].astype(np.float64),
        raw["actions"].astype(np.float64),
        raw["terminals"].astype(np.int32),
    )
    assert ds.observations.dtype == np.float32 and ds.actions.dtype == np.float32
    np.testing.assert_array_equal(ds.observations, raw["observations"])
    np.testing.assert_array_equal(ds.terminals, raw["terminals"])


def test_arrays_read_only_but_callers_arrays_untouched():
    raw = make_raw(np.random.default_rng(2), [3, 3])
    ds = Dataset.from_arrays(**raw)
    with pytest.raises(ValueError):
        ds.observations[0, 0] = 1.0
    raw["observations"][0, 0] = 1.0  # caller's array stays writeable


# --------------------------------------------------------------------------- OGBench forms
@pytest.mark.parametrize("pixels", [False, True])
def test_regular_form_reconstructs_raw(tmp_path, pixels):
    rng = np.random.default_rng(3)
    raw = make_raw(rng, rng.integers(2, 10, size=8), pixels=pixels)
    path = write_npz(tmp_path / "regular.npz", to_regular(raw))
    ds = Dataset.load_npz(path)
    assert_same_raw(ds, raw, final_rows_exact=False)
    np.testing.assert_array_equal(ds.final_index, brute_force_final_index(raw["terminals"]))
    assert ds.source == path


def test_compact_form_reconstructs_raw(tmp_path):
    rng = np.random.default_rng(4)
    raw = make_raw(rng, rng.integers(1, 10, size=8))
    path = write_npz(tmp_path / "compact.npz", to_compact(raw))
    ds = Dataset.load_npz(path)
    assert_same_raw(ds, raw, final_rows_exact=True)
    np.testing.assert_array_equal(ds.final_index, brute_force_final_index(raw["terminals"]))


def test_regular_form_inconsistent_next_observations(tmp_path):
    raw = make_raw(np.random.default_rng(5), [4, 4])
    regular = to_regular(raw)
    regular["next_observations"][1] += 1.0  # row 1 is mid-episode
    path = write_npz(tmp_path / "bad_next.npz", regular)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    msg = assert_error_names(excinfo, path, "next_observations")
    assert "row 1" in msg


def test_valids_and_next_observations_together_rejected():
    raw = make_raw(np.random.default_rng(6), [3, 3])
    regular = to_regular(raw)
    with pytest.raises(DatasetError, match="<arrays>"):
        Dataset.from_arrays(**regular, valids=np.ones(len(regular["actions"])))


# --------------------------------------------------------------------------- saving
@pytest.mark.parametrize("pixels", [False, True])
def test_save_load_round_trip_exact(tmp_path, pixels):
    raw = make_raw(np.random.default_rng(7), [5, 2, 6], pixels=pixels)
    ds = Dataset.from_arrays(**raw)
    path = tmp_path / "out.npz"
    ds.save_npz(path)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(raw)
        for k in raw:
            assert f[k].dtype == raw[k].dtype
            np.testing.assert_array_equal(f[k], raw[k])
    back = Dataset.load_npz(path)
    assert_same_raw(back, raw, final_rows_exact=True)
    np.testing.assert_array_equal(back.final_index, ds.final_index)


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path):
    rng = np.random.default_rng(8)
    first = Dataset.from_arrays(**make_raw(rng, [3, 4]))
    path = tmp_path / "data.npz"
    first.save_npz(path)
    Dataset.from_arrays(**make_raw(rng, [2, 2])).save_npz(path)  # overwrite
    assert os.listdir(tmp_path) == ["data.npz"]
    assert Dataset.load_npz(path).size == 4

    class Unsavable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("boom")

    broken = Dataset(first.observations, first.actions, first.terminals, first.final_index, {"bad": Unsavable()})
    with pytest.raises(RuntimeError, match="boom"):
        broken.save_npz(path)
    assert os.listdir(tmp_path) == ["data.npz"]
    assert Dataset.load_npz(path).size == 4  # previous contents intact


# --------------------------------------------------------------------------- malformed files
def test_missing_key(tmp_path):
    raw = make_raw(np.random.default_rng(9), [3, 3])
    del raw["actions"]
    path = write_npz(tmp_path / "missing.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    assert "missing" in assert_error_names(excinfo, path, "actions")


@pytest.mark.parametrize("key", ["actions", "terminals", "qpos", "valids"])
def test_length_mismatch(tmp_path, key):
    raw = make_raw(np.random.default_rng(10), [3, 3])
    if key == "valids":
        raw = to_compact(raw)
    raw[key] = raw[key][:-1]
    path = write_npz(tmp_path / "short.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    msg = assert_error_names(excinfo, path, key)
    assert "5 rows" in msg and "6" in msg


@pytest.mark.parametrize(
    "key, value",
    [
        ("observations", lambda r: r["observations"] > 0),  # bool
        ("observations", lambda r: r["observations"].astype(np.int64)),
        ("observations", lambda r: r["observations"].astype(str)),
        ("actions", lambda r: np.zeros(r["actions"].shape, np.int32)),
        ("terminals", lambda r: r["terminals"].astype(str)),
        ("terminals", lambda r: r["terminals"] * 2.0),  # numeric but not 0/1
        ("qpos", lambda r: r["qpos"].astype(np.int32)),
    ],
)
def test_wrong_dtype(tmp_path, key, value):
    raw = make_raw(np.random.default_rng(11), [3, 3])
    raw[key] = value(raw)
    path = write_npz(tmp_path / "dtype.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    msg = assert_error_names(excinfo, path, key)
    assert "expected" in msg


@pytest.mark.parametrize(
    "key, value",
    [
        ("observations", lambda r: r["observations"][:, :, None]),  # float rank 3
        ("observations", lambda r: np.zeros((6, 4, 4), np.uint8)),  # uint8 rank 3
        ("actions", lambda r: r["actions"][:, 0]),
        ("terminals", lambda r: r["terminals"][:, None]),
    ],
)
def test_wrong_rank(tmp_path, key, value):
    raw = make_raw(np.random.default_rng(12), [3, 3])
    raw[key] = value(raw)
    path = write_npz(tmp_path / "rank.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    assert "rank" in assert_error_names(excinfo, path, key)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["observations", "actions", "qpos", "qvel", "next_observations"])
def test_non_finite_value(tmp_path, bad, key):
    raw = make_raw(np.random.default_rng(13), [6, 6])
    if key == "next_observations":
        raw = to_regular(raw)
        raw[key][4, 1] = bad  # row 4 ends episode 0: only its own value is checked
    else:
        raw[key][4, 1] = bad
    path = write_npz(tmp_path / "nonfinite.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    msg = assert_error_names(excinfo, path, key)
    assert "row 4" in msg and "finite" in msg


def test_no_trajectory_with_two_steps(tmp_path):
    raw = make_raw(np.random.default_rng(14), [1, 1, 1, 1])
    assert raw["terminals"].all()
    path = write_npz(tmp_path / "all_terminal.npz", raw)
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    assert "nothing can be learned" in assert_error_names(excinfo, path, "terminals")


def test_nonexistent_path(tmp_path):
    path = tmp_path / "does_not_exist.npz"
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    assert "no such file" in assert_error_names(excinfo, path)


@pytest.mark.parametrize("content", ["text", "truncated", "npy", "object_array"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    if content == "text":
        path.write_bytes(b"this is not a zip archive\n" * 10)
    elif content == "truncated":
        np.savez(path, **make_raw(np.random.default_rng(15), [50, 50]))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "npy":
        with open(path, "wb") as fh:  # a lone .npy array under an .npz name
            np.save(fh, np.zeros(3))
    else:
        np.savez(path, **make_raw(np.random.default_rng(15), [3, 3]), junk=np.array([None, 1], dtype=object))
    with pytest.raises(DatasetError) as excinfo:
        Dataset.load_npz(path)
    assert "npz" in assert_error_names(excinfo, path)


@pytest.mark.parametrize("compress", [False, True])
def test_frames_load_in_place_aligned_and_equal(tmp_path, compress):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (300, 16, 16, 3), dtype=np.uint8)
    terminals = np.zeros(300, bool)
    terminals[99::100] = True
    Dataset.from_arrays(frames, rng.uniform(-1, 1, (300, 2)).astype(np.float32), terminals).save_npz(
        tmp_path / "v.npz", compress=compress)
    loaded = Dataset.load_npz(tmp_path / "v.npz")
    np.testing.assert_array_equal(loaded.observations, frames)
    assert loaded.observations.dtype == np.uint8 and loaded.observations.ctypes.data % 64 == 0
    from mqe.sampling import DeviceData

    device = DeviceData.from_dataset(loaded)
    assert device.observations.dtype == np.uint8  # only sampled batches ever become float


# VmHWM (this program's peak RSS), not getrusage's ru_maxrss: that one survives exec, so a child forked
# from a big test process starts with the parent's size as its "peak".
PEAK_SCRIPT = """
import sys
import numpy as np
from mqe.data.dataset import Dataset
from mqe.sampling import DeviceData
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(key))
DeviceData.from_arrays(np.zeros((2, 1), np.uint8), np.zeros((2, 1)), [1, 1])  # the device is up
before = status('VmRSS')
data = DeviceData.from_dataset(Dataset.load_npz(sys.argv[1]))
print((status('VmHWM') - before) / data.observations.nbytes)
"""


def test_loading_a_compressed_visual_file_peaks_below_1_2x_its_frames(tmp_path):
    """Read in chunks into one array, used in place by the CPU device: peak RSS rise < 1.2x the frames."""
    import subprocess
    import sys

    n = 12000  # 147 MB of 64x64x3 frames: large against the fixed costs (about 12 MB), small for a test
    frames = np.zeros((n, 64, 64, 3), np.uint8)
    frames[:, 20:30, 20:30] = np.arange(n, dtype=np.uint32)[:, None, None, None] % 251
    terminals = np.zeros(n, bool)
    terminals[499::500] = True
    Dataset.from_arrays(frames, np.zeros((n, 2), np.float32), terminals).save_npz(tmp_path / "v.npz", compress=True)
    del frames
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "v.npz")], capture_output=True,
                         text=True, check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    ratio = float(out.stdout.strip().splitlines()[-1])
    assert ratio < 1.2, f"peak RSS rose by {ratio:.2f}x the frame bytes"
