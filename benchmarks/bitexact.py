"""Fixed-seed fingerprints of training, to check that a refactoring changes no result bit for bit.

For every agent (the ``tiny`` preset, a synthetic dataset) it trains one seed through the Python API, two seeds
as one program for MQE, and one seed through ``mqe train`` in a subprocess; it records each logged loss
(``train.csv`` as written, minus timing columns) and a SHA-256 of the final parameters.

    python benchmarks/bitexact.py --out before.json            # at the commit before the change
    python benchmarks/bitexact.py --check before.json          # after it: exits 1 naming what differs

Bit-for-bit holds on one machine and one locked set of versions (XLA's CPU kernels differ between
instruction sets), so compare files made on the same machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402
import numpy as np  # noqa: E402

TRAIN = ["train.steps=60", "train.updates_per_call=20", "train.log_interval=20", "train.checkpoint_interval=60"]
TIMING = ("time", "seconds", "updates_per_second", "wall")


def dataset(n: int = 600):
    from mqe.data.dataset import Dataset

    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(n, 3)), 0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[99::100] = True
    return Dataset.from_arrays(obs, act, terminals, source="bitexact synthetic")


def params_hash(params) -> str:
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return digest.hexdigest()


def losses(run_dir: str) -> list[dict[str, str]]:
    with open(os.path.join(run_dir, "train.csv")) as f:
        return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in csv.DictReader(f)]


def fingerprints() -> dict:
    from mqe.agents import AGENTS
    from mqe.config import make_config
    from mqe.train import train, train_seeds

    ds = dataset()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(AGENTS):
            config = make_config(name, "tiny", TRAIN)
            run = os.path.join(tmp, name)
            result = train(config, ds, run, progress=False)
            out[f"api/{name}"] = {"params": params_hash(result.agent.params), "losses": losses(run)}
            print(f"api/{name}: {out[f'api/{name}']['params'][:16]}", flush=True)
        config = make_config("mqe", "tiny", TRAIN)
        runs = {0: os.path.join(tmp, "pair-0"), 1: os.path.join(tmp, "pair-1")}
        for result in train_seeds(config, ds, runs, progress=False):
            key = f"api-seeds/mqe/s{result.seed}"
            out[key] = {"params": params_hash(result.agent.params), "losses": losses(result.run_dir)}
            print(f"{key}: {out[key]['params'][:16]}", flush=True)
        path = os.path.join(tmp, "data.npz")
        ds.save_npz(path)
        run = os.path.join(tmp, "cli")
        argv = [sys.executable, "-m", "mqe.cli", "train", "--dataset", path, "--agent", "mqe", "--preset", "tiny",
                "--seed", "3", "--run-dir", run, "--no-progress"] + [f"--set={o}" for o in TRAIN]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        import mqe

        out["cli/mqe/s3"] = {"params": params_hash(mqe.load(run).agent.params), "losses": losses(run)}
        print(f"cli/mqe/s3: {out['cli/mqe/s3']['params'][:16]}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", help="write the fingerprints here")
    group.add_argument("--check", help="compare with fingerprints written before")
    args = parser.parse_args()
    found = fingerprints()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"jax": jax.__version__, "fingerprints": found}, f, indent=1)
        print(f"wrote {len(found)} fingerprints to {args.out}")
        return 0
    with open(args.check) as f:
        expected = json.load(f)["fingerprints"]
    differ = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
    for key in differ:
        print(f"DIFFERS: {key}")
    print(f"{len(expected) - len(differ)} of {len(expected)} fingerprints identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
