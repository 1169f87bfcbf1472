"""RLDS codec: mqe's hand-written CRC-32C, TFRecord framing and tf.train.Example codec against the libraries
that replaced them (google-crc32c, protobuf), on a realistic shard, plus the install size of each library.

The hand-written code is read from git at BASELINE (the last commit that had it: the section of
src/mqe/data/rlds.py between its "CRC-32C and TFRecord framing" and "the TFDS folder" headings) and run
with its pure-Python CRC (google-crc32c was not a dependency then). Every time is the best of
``--repeats`` runs in one process, so the ratios compare like with like on one machine. The shard is made
by mqe.data.rlds.write_rlds: by default 100 episodes of 50 steps, 64x64x3 JPEG frames (a smooth scene, a
moving block and sensor noise), 7-d actions and a 7-d state, the layout of BridgeData V2.

    python benchmarks/rlds_codec.py            # writes benchmarks/results/rlds_codec-<date>.json

Libraries that are not installed (crc32c, an alternative to google-crc32c) are reported as such.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from typing import Iterator

import numpy as np

from mqe.data import rlds
from mqe.data.dataset import DatasetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "9433eb7ea9f1a36793a224776446077a2b043d35"  # rlds.py with its own CRC-32C and Example codec
LIBRARIES = ("google-crc32c", "crc32c", "protobuf", "safetensors")


def hand_written_codec() -> dict:
    """The hand-written functions of rlds.py at BASELINE, as a namespace, with the pure-Python CRC."""
    source = subprocess.run(["git", "show", f"{BASELINE}:src/mqe/data/rlds.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    start = source.index("# --- CRC-32C and TFRecord framing")
    end = source.index("# --- the TFDS folder")
    namespace = {"__name__": "rlds_hand_written", "np": np, "struct": struct, "Iterator": Iterator,
                 "DatasetError": DatasetError}
    exec(compile(source[start:end], f"{BASELINE[:7]}:src/mqe/data/rlds.py", "exec"), namespace)
    namespace["crc32c"] = namespace["_crc32c_python"]  # masked_crc looks it up at call time
    namespace["source_lines"] = source[start:end].count("\n")
    return namespace


def episodes(count: int, steps: int, size: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    scene = np.stack([x * 255.0 / size, y * 255.0 / size, (x + y) * 127.0 / size], axis=-1)
    block = max(size // 5, 2)
    out = []
    for e in range(count):
        frames = np.empty((steps, size, size, 3), np.uint8)
        for t in range(steps):
            frame = scene.copy()
            cx, cy = (e * 7 + t) % (size - block), (e * 3 + 2 * t) % (size - block)
            frame[cy:cy + block, cx:cx + block] = (200.0, 40.0, 30.0)
            frames[t] = np.clip(frame + rng.normal(0.0, 6.0, frame.shape), 0, 255)
        out.append({"images": frames, "actions": rng.standard_normal((steps, 7)).astype(np.float32),
                    "proprio": rng.standard_normal((steps, 7)).astype(np.float32)})
    return out


def best(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


@contextlib.contextmanager
def hand_written_rlds(hand: dict):
    """mqe.data.rlds with its codec functions swapped for the hand-written ones (read_rlds and write_rlds
    look them up at call time)."""
    names = ("read_records", "frame_record", "parse_example", "serialize_example")
    saved = {name: getattr(rlds, name) for name in names}
    for name in names:
        setattr(rlds, name, hand[name])
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(rlds, name, value)


def same_features(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(
        a[k][0] == b[k][0] and (a[k][1] == b[k][1] if a[k][0] == "bytes" else np.array_equal(a[k][1], b[k][1]))
        for k in a)


def installed(name: str) -> dict:
    """Installed size (the files its RECORD lists), version, and which installed distributions require it."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return {"installed": False}
    size = 0
    for file in dist.files or ():
        path = file.locate()
        if os.path.isfile(path):
            size += os.path.getsize(path)
    wanted = name.lower().replace("_", "-")
    required_by = set()
    for other in importlib.metadata.distributions():
        for requirement in other.requires or ():
            if "extra ==" in requirement:
                continue
            base = requirement.split(";")[0].strip()
            for stop in "<>=!~[ (":
                base = base.split(stop)[0]
            if base.lower().replace("_", "-") == wanted:
                required_by.add(other.metadata["Name"])
    return {"installed": True, "version": dist.version, "installed_bytes": size,
            "required_by": sorted(required_by - {"mqe-gcrl"})}


def machine() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    from google.protobuf.internal import api_implementation

    import google_crc32c

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "src/mqe/data/rlds.py", "benchmarks/rlds_codec.py")),
            "protobuf_backend": api_implementation.Type(), "google_crc32c_implementation": google_crc32c.implementation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="frame height and width")
    parser.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--repeats", type=int, default=3)
    default_out = os.path.join(ROOT, "benchmarks", "results", f"rlds_codec-{datetime.date.today().isoformat()}.json")
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args()

    hand = hand_written_codec()
    data = episodes(args.episodes, args.steps, args.size)
    tmp = tempfile.mkdtemp(prefix="rlds_codec-")
    folder = rlds.write_rlds(data, tmp, image_format=args.image_format, episodes_per_shard=args.episodes)
    (shard, _), = rlds.shard_files(folder, "train")
    with open(shard, "rb") as f:
        shard_bytes = f.read()
    records = list(rlds.read_records(shard))
    features = [rlds.parse_example(r) for r in records]

    # Same results first: a speed ratio between two codecs that disagree would mean nothing.
    assert list(hand["read_records"](shard)) == records
    assert all(same_features(hand["parse_example"](r), f) for r, f in zip(records, features))
    assert all(hand["serialize_example"](f) == rlds.serialize_example(f) for f in features), "bytes differ"
    assert all(hand["frame_record"](r) == rlds.frame_record(r) for r in records[:3])

    times: dict[str, dict[str, float]] = {}

    def measure(task: str, variant: str, function) -> None:
        times.setdefault(task, {})[variant] = best(function, args.repeats)
        print(f"{task:>24} {variant:<28} {times[task][variant] * 1e3:10.2f} ms", flush=True)

    crcs = {"hand-written (pure Python)": hand["_crc32c_python"]}
    import google_crc32c
    import google_crc32c.python as google_crc32c_python

    crcs["google-crc32c"] = google_crc32c.value
    crcs["google-crc32c pure-Python fallback"] = google_crc32c_python.value
    try:
        crc32c_package = importlib.import_module("crc32c")
        crcs["crc32c"] = crc32c_package.crc32c
    except ImportError:
        print("crc32c (PyPI) is not installed: left out")
    for variant, crc in crcs.items():
        assert crc(b"123456789") == 0xE3069283, variant
        measure("crc32c(shard)", variant, lambda crc=crc: crc(shard_bytes))
    measure("read_records", "hand-written", lambda: list(hand["read_records"](shard)))
    measure("read_records", "google-crc32c", lambda: list(rlds.read_records(shard)))
    measure("parse_example x all", "hand-written", lambda: [hand["parse_example"](r) for r in records])
    measure("parse_example x all", "protobuf", lambda: [rlds.parse_example(r) for r in records])
    measure("serialize_example x all", "hand-written", lambda: [hand["serialize_example"](f) for f in features])
    measure("serialize_example x all", "protobuf", lambda: [rlds.serialize_example(f) for f in features])
    measure("frame_record x all", "hand-written", lambda: [hand["frame_record"](r) for r in records])
    measure("frame_record x all", "google-crc32c", lambda: [rlds.frame_record(r) for r in records])
    with hand_written_rlds(hand):
        measure("read_rlds", "hand-written", lambda: rlds.read_rlds(folder))
        measure("write_rlds", "hand-written", lambda: rlds.write_rlds(data, tmp, image_format=args.image_format,
                                                                     episodes_per_shard=args.episodes))
    measure("read_rlds", "libraries", lambda: rlds.read_rlds(folder))
    measure("write_rlds", "libraries", lambda: rlds.write_rlds(data, tmp, image_format=args.image_format,
                                                              episodes_per_shard=args.episodes))

    pairs = {"crc32c(shard)": ("hand-written (pure Python)", "google-crc32c"),
             "read_records": ("hand-written", "google-crc32c"),
             "parse_example x all": ("hand-written", "protobuf"),
             "serialize_example x all": ("hand-written", "protobuf"),
             "frame_record x all": ("hand-written", "google-crc32c"),
             "read_rlds": ("hand-written", "libraries"), "write_rlds": ("hand-written", "libraries")}
    ratios = {task: times[task][a] / times[task][b] for task, (a, b) in pairs.items()}
    if "crc32c" in times["crc32c(shard)"]:
        ratios["crc32c(shard): google-crc32c / crc32c"] = (times["crc32c(shard)"]["google-crc32c"]
                                                           / times["crc32c(shard)"]["crc32c"])
    crc_times = times["crc32c(shard)"]
    ratios["crc32c(shard): hand-written / google-crc32c pure-Python fallback"] = (
        crc_times["hand-written (pure Python)"] / crc_times["google-crc32c pure-Python fallback"])
    print("\nratios (time of the first / time of the second; > 1: the second is faster)")
    for task, ratio in ratios.items():
        print(f"  {task:<66} {ratio:8.2f}")
    libraries = {name: installed(name) for name in LIBRARIES}
    print("\ninstalled")
    for name, info in libraries.items():
        print(f"  {name:<14} " + (f"{info['version']:<10} {info['installed_bytes'] / 1e6:6.2f} MB  required by: "
                                  f"{', '.join(info['required_by']) or 'nothing else'}" if info["installed"]
                                  else "not installed"))
    info = machine()
    shard_mb = len(shard_bytes) / 1e6
    sig = lambda x: float(f"{x:.3g}")  # three significant figures
    rows = [[task, sig(times[task][a] * 1e3), sig(times[task][b] * 1e3), b, sig(ratios[task])]
            for task, (a, b) in pairs.items()]
    crc_rows = [[variant, sig(seconds * 1e3), sig(shard_mb / seconds)]
                for variant, seconds in times["crc32c(shard)"].items()]
    library_rows = [[name, info_["version"], round(info_["installed_bytes"] / 1e6, 2),
                     ", ".join(info_["required_by"]) or "nothing else"] if info_["installed"]
                    else [name, "not installed", None, None] for name, info_ in libraries.items()]
    result = {
        # the results page's format (benchmarks/results/README.md) ...
        "schema": "mqe-results/1",
        "title": "RLDS codec: hand-written CRC-32C, TFRecord framing and tf.train.Example against the libraries",
        "topic": "Data formats", "date": datetime.date.today().isoformat(),
        "machine": (f"{info['cpu_count']} CPU cores ({info['machine']}, {info['platform']}), "
                    f"Python {info['python']}; often shared with other jobs"),
        "software": (f"protobuf {libraries['protobuf'].get('version')} ({info['protobuf_backend']}), "
                     f"google-crc32c {libraries['google-crc32c'].get('version')} "
                     f"({info['google_crc32c_implementation']})"),
        "commit": info["commit"][:7] + (" with local changes" if info["dirty"] else ""), "commit_role": "measured",
        "command": "python benchmarks/rlds_codec.py" + ("" if args.out == default_out else f" --out {args.out}"),
        "summary": (f"One shard written by mqe.data.rlds.write_rlds: {args.episodes} episodes of {args.steps} steps, "
                    f"{args.size}x{args.size}x3 {args.image_format.upper()} frames, 7-d actions and state "
                    f"({shard_mb:.1f} MB). The hand-written code is rlds.py at {BASELINE[:7]} with its "
                    "pure-Python CRC; the libraries are google-crc32c (CRCs) and protobuf (the Example, its "
                    f"classes built at run time). Best of {args.repeats} runs in one process; both give the "
                    "same records, features and bytes (checked before timing)."),
        "tables": [
            {"caption": "Time per shard (ms) and ratio hand-written / library (> 1: the library is faster)",
             "columns": ["operation", "hand-written ms", "library ms", "library", "ratio"], "rows": rows,
             "notes": "read_rlds and write_rlds include decoding and encoding the frames with Pillow."},
            {"caption": "CRC-32C of the whole shard", "columns": ["implementation", "ms", "MB/s"], "rows": crc_rows},
            {"caption": "Install size (the files each distribution installed)",
             "columns": ["distribution", "version", "installed MB", "already required by"], "rows": library_rows},
        ],
        # ... and the raw measurements
        "machine_info": info, "baseline_commit": BASELINE, "hand_written_source_lines": hand["source_lines"],
        "shard": {"episodes": args.episodes, "steps": args.steps, "frame": [args.size, args.size, 3],
                  "image_format": args.image_format, "bytes": len(shard_bytes), "records": len(records)},
        "repeats": args.repeats, "seconds_best_of_repeats": times, "ratios": ratios, "libraries": libraries,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
