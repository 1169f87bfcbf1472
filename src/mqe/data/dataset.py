"""Offline dataset container in OGBench's on-disk ("raw") layout.

Internal layout
---------------
A :class:`Dataset` always holds the *raw* layout that ``ogbench`` writes to
disk: one row per environment step, episodes stored back to back, so that the
successor of row ``t`` inside a trajectory is row ``t + 1``.  ``terminals`` is
True on the last row of every trajectory and ``final_index[t]`` is the index of
the last row of row ``t``'s trajectory.  A row ``t`` is a usable transition
(``t -> t + 1``) exactly when ``t < final_index[t]``; the last row of a
trajectory only ever serves as a successor / goal, so its action and extras are
never used for learning.

Accepted input forms
--------------------
* raw: ``observations``, ``actions``, ``terminals`` (True on each episode's
  last row), optional extras ``qpos`` / ``qvel`` / ``button_states``;
* OGBench loader "compact" form: raw rows plus ``valids`` (0 on each episode's
  last row).  Its ``terminals`` are 1 on the last *two* rows of an episode, so
  episode ends are taken from ``valids == 0`` and ``terminals`` is ignored
  (after validation);
* OGBench loader "regular" form: each episode's last row dropped and
  ``next_observations`` added; ``terminals`` is 1 on the last transition of an
  episode.  The raw layout is rebuilt by inserting ``next_observations[t]``
  after every such row.

If the last row is not marked as an episode end, the end of the arrays is
taken as the end of the last trajectory (a truncated final episode is still
usable data).

Everything is validated once, at construction; every failure raises
:class:`DatasetError` naming the file (``"<arrays>"`` for in-memory input), the
key, and what was expected versus found.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqe.errors import MQEError
from mqe.io import atomic_writer

__all__ = ["Dataset", "DatasetError"]

REQUIRED_KEYS = ("observations", "actions", "terminals")
# Extras whose values are physical quantities and must therefore be finite.
_FLOAT_EXTRAS = ("qpos", "qvel")
_INT_EXTRAS = ("button_states",)
# Work on roughly this many array elements at a time when scanning large
# (e.g. pixel) arrays, so validation never materialises a full-size temporary.
_CHUNK_ELEMENTS = 1 << 22


class DatasetError(MQEError, ValueError):
    """A dataset file or array set is malformed."""


def _fail(source: str, key: str, message: str) -> DatasetError:
    return DatasetError(f"{source}: key {key!r} {message}")


def _chunk_rows(arr: np.ndarray) -> int:
    per_row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)))
    return max(1, _CHUNK_ELEMENTS // per_row)


def _first_row_where(n: int, step: int, row_mask_fn) -> int | None:
    """Index of the first row in [0, n) for which ``row_mask_fn(lo, hi)`` is True."""
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        bad = row_mask_fn(lo, hi)
        if bad.any():
            return lo + int(np.argmax(bad))
    return None


def _check_finite(source: str, key: str, arr: np.ndarray) -> None:
    if not np.issubdtype(arr.dtype, np.floating) or arr.shape[0] == 0:
        return
    n = arr.shape[0]

    def bad_rows(lo: int, hi: int) -> np.ndarray:
        return ~np.isfinite(arr[lo:hi]).reshape(hi - lo, -1).all(axis=1)

    row = _first_row_where(n, _chunk_rows(arr), bad_rows)
    if row is not None:
        values = arr[row].reshape(-1)
        first = values[~np.isfinite(values)][0]
        raise _fail(source, key, f"has a non-finite value ({first}) at row {row}; expected only finite values")


class DatasetWarning(UserWarning):
    """Data that loads but is probably not what the user meant."""


def _warn_outside_unit_box(source: str, actions: np.ndarray) -> None:
    """OGBench's actions lie in [-1, 1] (its generators clip them; the agents' policies are squashed or
    clipped to that box), so values outside it cannot be imitated: say how many there are."""
    step = _chunk_rows(actions)
    outside_rows = outside_values = 0
    largest = 0.0
    for lo in range(0, actions.shape[0], step):
        mag = np.abs(actions[lo:lo + step])
        bad = mag > 1.0
        if bad.any():
            outside_values += int(bad.sum())
            outside_rows += int(bad.any(axis=1).sum())
            largest = max(largest, float(mag.max()))
    if outside_values:
        warnings.warn(
            f"{source}: 'actions' has {outside_values} values in {outside_rows} of {actions.shape[0]} rows outside "
            f"[-1, 1] (largest |a| = {largest:.4g}); OGBench's actions lie in [-1, 1] and the policies act in "
            "that box, so rescale the actions or clip them", DatasetWarning, stacklevel=4)


def _as_array(source: str, key: str, value: Any) -> np.ndarray:
    if value is None:
        raise _fail(source, key, "is missing; required keys are " + ", ".join(repr(k) for k in REQUIRED_KEYS))
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists etc.
        raise _fail(source, key, f"cannot be converted to an array ({exc})") from exc


def _check_observations(source: str, key: str, obs: np.ndarray) -> np.ndarray:
    if obs.dtype == np.uint8:
        if obs.ndim not in (2, 4):
            raise _fail(source, key, f"has rank {obs.ndim} (shape {obs.shape}); expected uint8 observations of rank 2 (N, dim) or rank 4 (N, H, W, C)")
        return obs
    if np.issubdtype(obs.dtype, np.floating):
        if obs.ndim != 2:
            raise _fail(source, key, f"has rank {obs.ndim} (shape {obs.shape}); expected floating observations of rank 2 (N, dim)")
        return obs.astype(np.float32, copy=False)
    raise _fail(source, key, f"has dtype {obs.dtype}; expected a floating dtype (stored as float32) or uint8 pixels")


def _check_binary(source: str, key: str, arr: np.ndarray, meaning: str) -> np.ndarray:
    """Validate a per-row 0/1 flag array and return it as bool."""
    if arr.ndim != 1:
        raise _fail(source, key, f"has rank {arr.ndim} (shape {arr.shape}); expected rank 1 (N,)")
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise _fail(source, key, f"has dtype {arr.dtype}; expected bool or numeric 0/1 {meaning} flags")
    not_binary = (arr != 0) & (arr != 1)
    if not_binary.any():
        row = int(np.argmax(not_binary))
        raise _fail(source, key, f"has value {arr[row]} at row {row}; expected only 0/1 {meaning} flags")
    return arr != 0


def _check_extra(source: str, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim < 1:
        raise _fail(source, key, f"is a scalar (shape {arr.shape}); expected one row per step")
    if key in _FLOAT_EXTRAS and not np.issubdtype(arr.dtype, np.floating):
        raise _fail(source, key, f"has dtype {arr.dtype}; expected a floating dtype")
    if key in _INT_EXTRAS and not np.issubdtype(arr.dtype, np.integer):
        raise _fail(source, key, f"has dtype {arr.dtype}; expected an integer dtype")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        raise _fail(source, key, f"has dtype {arr.dtype}; expected a numeric or bool dtype")
    return arr


def _final_index(ends: np.ndarray) -> np.ndarray:
    """For every row, the index of the first episode end at or after it.

    ``ends[-1]`` must be True so every row has such an end.
    """
    end_rows = np.flatnonzero(ends)
    return end_rows[np.searchsorted(end_rows, np.arange(ends.shape[0]), side="left")].astype(np.int32)


# Arrays we allocate start on this boundary: XLA's CPU client then uses them in place (no device copy).
ALIGNMENT = 64
_READ_CHUNK = 1 << 22  # bytes per read when filling an array from a (compressed) archive member


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialised C-order array whose data starts on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def read_npz_member(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """One ``.npy`` member of an ``.npz`` read in chunks straight into one preallocated, aligned array:
    the peak memory is the array itself plus one chunk (no second copy, even for compressed members)."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError(f"member {member!r} holds Python objects (pickled data), which are not loaded")
        arr = aligned_empty(shape[::-1] if fortran_order else shape, dtype)
        view = memoryview(arr.reshape(-1).view(np.uint8))
        pos, total = 0, arr.nbytes
        while pos < total:
            chunk = f.read(min(_READ_CHUNK, total - pos))
            if not chunk:
                raise EOFError(f"member {member!r} ends after {pos} of {total} bytes")
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
        return arr.T if fortran_order else arr


@dataclass(frozen=True)
class ChunkedArray:
    """An array written piece by piece (``write_npz``): its full shape and dtype, and an iterable of
    C-ordered row blocks whose concatenation along axis 0 is the array. Lets a file far larger than
    memory (a rendered visual dataset) be written from shards without assembling it first."""

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: Any


def write_npz(fh, members: dict[str, "np.ndarray | ChunkedArray"], *, compress: bool) -> None:
    """An ``.npz`` (``np.load``'s format: one ``.npy`` per key in a zip) written to the open binary file
    ``fh``, each member streamed from its array or its ``ChunkedArray`` blocks; zip64 throughout, so
    members above 4 GiB are fine."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fh, "w", compression=method, allowZip64=True) as archive:
        for key, value in members.items():
            if isinstance(value, ChunkedArray):
                shape, dtype, blocks = tuple(value.shape), np.dtype(value.dtype), value.blocks
            else:
                value = np.asarray(value)
                shape, dtype, blocks = value.shape, value.dtype, (value,)
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            expected, written = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 0
            with archive.open(key + ".npy", "w", force_zip64=True) as out:
                np.lib.format.write_array_header_1_0(out, header)
                for block in blocks:
                    block = np.ascontiguousarray(block, dtype=dtype)
                    out.write(memoryview(block.reshape(-1).view(np.uint8)))
                    written += block.nbytes
            if written != expected:
                raise ValueError(f"npz member {key!r}: blocks hold {written} bytes; shape {shape} needs {expected}")


def _readonly(arr: np.ndarray) -> np.ndarray:
    # A read-only *view*: the frozen dataclass should not be mutated through
    # its arrays, but the caller's own arrays must stay writeable.
    view = arr.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Dataset:
    """Offline trajectories in OGBench's raw layout (see module docstring).

    Build with :meth:`from_arrays` or :meth:`load_npz`, which validate; the
    plain constructor trusts its arguments.
    """

    observations: np.ndarray  # (N, dim) float32 or (N, dim) / (N, H, W, C) uint8
    actions: np.ndarray  # (N, A) float32
    terminals: np.ndarray  # (N,) bool, True on each trajectory's last row
    final_index: np.ndarray  # (N,) int32, last row of row t's trajectory
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "<arrays>"
    file_fingerprint: str = ""  # the loaded file's content fingerprint (load_npz); "" for in-memory data

    @property
    def fingerprint(self) -> str:
        """What identifies this data in a run's config: the file's fingerprint (``mqe.data.fingerprint``),
        or a hash of the arrays for data built in memory."""
        if self.file_fingerprint:
            return self.file_fingerprint
        from mqe.data.fingerprint import fingerprint_arrays

        return fingerprint_arrays({"observations": self.observations, "actions": self.actions,
                                   "terminals": self.terminals, **self.extras})

    # ------------------------------------------------------------------ info
    @property
    def size(self) -> int:
        return int(self.observations.shape[0])

    def __len__(self) -> int:
        return self.size

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.observations.shape[1:])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def trajectory_ends(self) -> np.ndarray:
        return np.flatnonzero(self.terminals)

    @property
    def trajectory_starts(self) -> np.ndarray:
        ends = self.trajectory_ends
        return np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)

    @property
    def trajectory_lengths(self) -> np.ndarray:
        """Rows (steps) per trajectory, including the final row."""
        return self.trajectory_ends - self.trajectory_starts + 1

    @property
    def num_trajectories(self) -> int:
        return int(np.count_nonzero(self.terminals))

    @property
    def num_transitions(self) -> int:
        """Rows t with a successor in their trajectory (t < final_index[t])."""
        # Every trajectory has exactly one row without a successor: its last.
        return self.size - self.num_trajectories

    def __repr__(self) -> str:
        return (
            f"Dataset(source={self.source!r}, size={self.size}, observation_shape={self.observation_shape}, "
            f"observation_dtype={self.observations.dtype}, action_dim={self.action_dim}, "
            f"num_trajectories={self.num_trajectories}, extras={sorted(self.extras)})"
        )

    # ----------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        observations: Any,
        actions: Any,
        terminals: Any,
        *,
        valids: Any = None,
        next_observations: Any = None,
        source: str = "<arrays>",
        **extras: Any,
    ) -> Dataset:
        """Validate arrays in raw, compact (``valids``) or regular (``next_observations``) form.

        In regular form the raw layout is rebuilt by inserting
        ``next_observations[t]`` after each row ``t`` that ends an episode; the
        inserted final row gets a copy of row ``t``'s action and extras (a
        final row's action/extras are never used for learning).
        """
        src = str(source)
        obs = _check_observations(src, "observations", _as_array(src, "observations", observations))
        act = _as_array(src, "actions", actions)
        if not np.issubdtype(act.dtype, np.floating):
            raise _fail(src, "actions", f"has dtype {act.dtype}; expected a floating dtype (stored as float32)")
        if act.ndim != 2:
            raise _fail(src, "actions", f"has rank {act.ndim} (shape {act.shape}); expected rank 2 (N, action_dim)")
        act = act.astype(np.float32, copy=False)
        term = _check_binary(src, "terminals", _as_array(src, "terminals", terminals), "terminal")

        if valids is not None and next_observations is not None:
            raise _fail(src, "valids", "was given together with 'next_observations'; expected either the compact form (valids) or the regular form (next_observations), not both")
        val = None
        if valids is not None:
            val = _check_binary(src, "valids", np.asarray(valids), "valid")
        next_obs = None
        if next_observations is not None:
            next_obs = _check_observations(src, "next_observations", np.asarray(next_observations))
            if next_obs.dtype != obs.dtype or next_obs.shape[1:] != obs.shape[1:]:
                raise _fail(src, "next_observations", f"has per-row shape {next_obs.shape[1:]} and dtype {next_obs.dtype}; expected {obs.shape[1:]} and {obs.dtype} like 'observations'")
        ext = {str(k): _check_extra(src, str(k), np.asarray(v)) for k, v in extras.items()}

        # One row per step for every key.
        n = obs.shape[0]
        keyed = [("actions", act), ("terminals", term), ("valids", val), ("next_observations", next_obs), *ext.items()]
        for key, arr in keyed:
            if arr is not None and arr.shape[0] != n:
                raise _fail(src, key, f"has {arr.shape[0]} rows but 'observations' has {n}; every key must have one row per step")
        if n == 0:
            raise _fail(src, "observations", "has 0 rows; expected at least one trajectory with two or more steps")

        _check_finite(src, "observations", obs)
        _check_finite(src, "actions", act)
        _warn_outside_unit_box(src, act)
        if next_obs is not None:
            _check_finite(src, "next_observations", next_obs)
        for key, arr in ext.items():
            if key in _FLOAT_EXTRAS or np.issubdtype(arr.dtype, np.floating):
                _check_finite(src, key, arr)

        # Episode ends in the given layout; the array end always ends one.
        if val is None and next_obs is None and term.shape[0] > 1 and not term.any():
            warnings.warn(f"{src}: 'terminals' marks no row as an episode's end, so its {term.shape[0]} rows are read "
                          "as one trajectory (goals and waypoints then cross any episode boundaries in it); set "
                          "terminals to True on the last row of each episode", stacklevel=3)
        ends = (~val if val is not None else term).copy()
        ends[-1] = True

        if next_obs is not None:
            _check_successors(src, obs, next_obs, ends)
            obs, act, ext, ends = _regular_to_raw(obs, act, next_obs, ext, ends)

        if ends.shape[0] > np.iinfo(np.int32).max:
            raise _fail(src, "observations", f"has {ends.shape[0]} rows; expected fewer than 2**31 (final_index is int32)")
        final_index = _final_index(ends)
        if not np.any(final_index > np.arange(final_index.shape[0])):
            raise _fail(src, "terminals", f"marks every one of the {ends.shape[0]} rows as a trajectory end; expected at least one trajectory with two or more steps, otherwise there is no transition and nothing can be learned from it")

        return cls(
            observations=_readonly(obs),
            actions=_readonly(act),
            terminals=_readonly(ends),
            final_index=_readonly(final_index),
            extras={k: _readonly(v) for k, v in ext.items()},
            source=src,
        )

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> Dataset:
        """Load an ``.npz`` in raw, compact or regular OGBench form.

        Each array is read in chunks into one preallocated array (``read_npz_member``), so loading a
        visual dataset peaks at about its own size, compressed or not.

        The form is detected from the keys: ``next_observations`` means
        regular, ``valids`` compact, neither raw.  Keys other than the
        required ones, ``valids`` and ``next_observations`` become extras.
        """
        src = os.fspath(path)
        if not os.path.exists(src):
            raise DatasetError(f"{src}: no such file; expected an OGBench .npz dataset at this path")
        if os.path.isdir(src):
            raise DatasetError(f"{src}: is a directory; expected an OGBench .npz dataset file")
        # We own the file handle (np.load leaks its own on a damaged zip), and
        # sniff the magic bytes first: np.load would report a text file as
        # "pickled data", which misleads more than it helps.
        try:
            fh = open(src, "rb")
        except OSError as exc:
            raise DatasetError(f"{src}: cannot be read: {exc}") from exc
        with fh:
            magic = fh.read(6)
            if magic.startswith(b"\x93NUMPY"):
                raise DatasetError(f"{src}: is a single .npy array, not an .npz archive; expected keys " + ", ".join(repr(k) for k in REQUIRED_KEYS))
            if not magic.startswith(b"PK"):
                raise DatasetError(f"{src}: is not an .npz archive (no zip signature; starts with {magic!r})")
            fh.seek(0)
            key = None
            try:
                with zipfile.ZipFile(fh) as archive:
                    arrays = {}
                    for member in archive.namelist():
                        if not member.endswith(".npy"):
                            continue
                        key = member[:-4]
                        arrays[key] = read_npz_member(archive, member)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                # Truncated/damaged zip, or members holding pickled (object) arrays.
                where = "" if key is None else f" (while reading key {key!r})"
                raise DatasetError(f"{src}: is not a readable .npz archive{where}: {exc}") from exc

        for required in REQUIRED_KEYS:
            if required not in arrays:
                found = ", ".join(repr(k) for k in sorted(arrays)) or "none"
                raise _fail(src, required, f"is missing; required keys are {', '.join(repr(k) for k in REQUIRED_KEYS)} (found {found})")
        observations = arrays.pop("observations")
        actions = arrays.pop("actions")
        terminals = arrays.pop("terminals")
        valids = arrays.pop("valids", None)
        next_observations = arrays.pop("next_observations", None)
        from mqe.data.fingerprint import fingerprint_file

        dataset = cls.from_arrays(
            observations,
            actions,
            terminals,
            valids=valids,
            next_observations=next_observations,
            source=src,
            **arrays,
        )
        return dataclasses.replace(dataset, file_fingerprint=fingerprint_file(src))

    # ----------------------------------------------------------------- saving
    def save_npz(self, path: str | os.PathLike, *, compress: bool = False) -> None:
        """Write the raw OGBench layout to exactly ``path``, atomically.

        Data goes to a temporary ``.npz`` in the same directory, is fsynced,
        then renamed over ``path``, so readers never see a partial file.
        """
        dst = os.path.abspath(os.fspath(path))
        arrays = {
            "observations": self.observations,
            "actions": self.actions,
            "terminals": np.asarray(self.terminals, dtype=bool),
            **self.extras,
        }
        # Suffix .npz so numpy never appends one to the temporary name.
        with atomic_writer(dst, suffix=".tmp.npz") as fh:
            write_npz(fh, arrays, compress=compress)


def _check_successors(src: str, obs: np.ndarray, next_obs: np.ndarray, ends: np.ndarray) -> None:
    """Regular form: inside an episode, next_observations[t] must equal observations[t + 1]."""
    n = obs.shape[0]
    inner = ~ends[:-1]  # rows t whose successor row t + 1 is in the same episode

    def bad_rows(lo: int, hi: int) -> np.ndarray:
        differs = (next_obs[lo:hi] != obs[lo + 1 : hi + 1]).reshape(hi - lo, -1).any(axis=1)
        return differs & inner[lo:hi]

    row = _first_row_where(n - 1, _chunk_rows(obs), bad_rows)
    if row is not None:
        raise _fail(src, "next_observations", f"row {row} differs from 'observations' row {row + 1} although row {row} is not an episode end; expected next_observations[t] == observations[t + 1] within an episode")


def _regular_to_raw(
    obs: np.ndarray,
    act: np.ndarray,
    next_obs: np.ndarray,
    extras: dict[str, np.ndarray],
    ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Insert each episode's final observation after its last transition."""
    n = obs.shape[0]
    end_rows = np.flatnonzero(ends)
    # Row t moves down by the number of episode ends strictly before it.
    shift = np.cumsum(ends, dtype=np.int64) - ends
    new_pos = np.arange(n, dtype=np.int64) + shift
    inserted = new_pos[end_rows] + 1
    m = n + end_rows.shape[0]

    def spread(arr: np.ndarray, fill: np.ndarray) -> np.ndarray:
        out = np.empty((m,) + arr.shape[1:], dtype=arr.dtype)
        out[new_pos] = arr
        out[inserted] = fill
        return out

    raw_ends = np.zeros(m, dtype=bool)
    raw_ends[inserted] = True
    return (
        spread(obs, next_obs[end_rows]),
        spread(act, act[end_rows]),
        {k: spread(v, v[end_rows]) for k, v in extras.items()},
        raw_ends,
    )
