"""Peak RAM of loading a visual dataset against its raw frame bytes (issue: frames stay uint8 end to end).

Writes (once, or reuses) a compressed ``.npz`` in OGBench's visual layout: ``--frames`` 64x64x3 uint8
observations (a coloured square moving over a shaded floor, episodes of 500 steps, so the file compresses
like rendered frames rather than noise), float32 actions, bool terminals, qpos/qvel. Then, in a fresh
process for each stage, it measures how far the resident set rises above what the process held just
before the stage (the VmHWM high-water mark minus the RSS before), for:

- ``load``: ``Dataset.load_npz`` (reads each member in chunks into one preallocated array, validates);
- ``load+device``: the same, then ``DeviceData.from_dataset`` (what training puts on the device).

and prints each peak as a multiple of the raw frame bytes (frames x 64 x 64 x 3). Measured in one run.

Usage: python benchmarks/visual_memory.py [--frames 200000] [--file /tmp/visual-bench.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZE = 64


def write_file(path: str, frames: int, episode: int = 500) -> None:
    """Synthetic frames in OGBench's raw visual layout, written atomically by ``Dataset.save_npz``."""
    from mqe.data.dataset import Dataset

    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    floor = np.stack([(ys * 2) % 256, (xs * 3) % 256, np.full_like(ys, 90)], -1).astype(np.uint8)
    obs = np.empty((frames, SIZE, SIZE, 3), np.uint8)
    pos = np.clip(np.cumsum(rng.integers(-1, 2, (frames, 2)), 0) % (SIZE - 8), 0, SIZE - 8)
    for i in range(frames):
        obs[i] = floor
        y, x = pos[i]
        obs[i, y:y + 8, x:x + 8] = (250, 40, 40)
    terminals = np.zeros(frames, bool)
    terminals[episode - 1::episode] = True
    ds = Dataset.from_arrays(obs, rng.uniform(-1, 1, (frames, 8)).astype(np.float32), terminals,
                             qpos=rng.normal(size=(frames, 15)).astype(np.float32),
                             qvel=rng.normal(size=(frames, 14)).astype(np.float32), source="synthetic")
    ds.save_npz(path, compress=True)


def _status_bytes(key: str) -> int:
    """VmRSS (resident now) or VmHWM (this program's peak; unlike getrusage's ru_maxrss it does not carry
    the forking parent's size across exec) from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def measure(path: str, stage: str) -> dict:
    """Runs in a fresh process: the stage's peak RSS above the RSS before it."""
    import jax  # noqa: F401  (imported before the baseline: its own memory is not the dataset's)

    from mqe.data.dataset import Dataset
    from mqe.sampling import DeviceData

    jax.numpy.zeros(1).block_until_ready()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    ds = Dataset.load_npz(path)
    out = {"seconds_load": time.perf_counter() - start, "frame_bytes": int(ds.observations.nbytes),
           "dtype": str(ds.observations.dtype)}
    if stage == "load+device":
        data = DeviceData.from_dataset(ds)
        data.observations.block_until_ready()
        out["device_dtype"] = str(data.observations.dtype)
    peak = _status_bytes("VmHWM")
    out.update(stage=stage, rss_before=before, peak=peak, rise=peak - before)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--file", default="/tmp/visual-bench.npz")
    parser.add_argument("--measure", choices=["load", "load+device"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.file, args.measure)))
        return
    if not os.path.exists(args.file):
        start = time.perf_counter()
        write_file(args.file, args.frames)
        print(f"wrote {args.file} ({os.path.getsize(args.file) / 2**30:.2f} GiB compressed) "
              f"in {time.perf_counter() - start:.0f}s")
    raw = args.frames * SIZE * SIZE * 3
    print(f"{args.frames} frames of {SIZE}x{SIZE}x3 uint8: {raw / 2**30:.2f} GiB raw frame bytes")
    print(f"{'stage':<12} {'peak rise':>10} {'x raw':>7} {'load s':>7}  frames")
    for stage in ("load", "load+device"):
        proc = subprocess.run([sys.executable, __file__, "--file", args.file, "--measure", stage],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        assert r["frame_bytes"] == raw, (r["frame_bytes"], raw)
        print(f"{stage:<12} {r['rise'] / 2**30:>8.2f}G {r['rise'] / raw:>7.2f} {r['seconds_load']:>7.1f}  "
              f"{r['dtype']}{' -> device ' + r['device_dtype'] if 'device_dtype' in r else ''}")


if __name__ == "__main__":
    main()
