"""Weights & Biases beside the local logs, for real (offline mode: everything stays in the run directory)."""

import glob
import json
import os
import time

import numpy as np
import pytest

from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.train import train_seeds


def test_wandb_logs_what_the_csv_logs_for_every_seed(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(1000, 3)), axis=0).astype(np.float32)
    terminals = np.zeros(1000, bool)
    terminals[99::100] = True
    dataset = Dataset.from_arrays(obs, rng.uniform(-1, 1, (1000, 2)).astype(np.float32), terminals)
    config = make_config("gcbc", "gridmaze-xy", ["train.steps=100", "train.updates_per_call=50",
                                                 "train.log_interval=50", "train.wandb_project=mqe-test"])
    results = train_seeds(config, dataset, {s: str(tmp_path / f"s{s}") for s in (0, 1)}, progress=False)
    for result in results:
        files = glob.glob(os.path.join(result.run_dir, "wandb", "offline-run-*", "run-*.wandb"))
        assert len(files) == 1, os.listdir(os.path.join(result.run_dir, "wandb"))
        with open(os.path.join(result.run_dir, "train.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        assert [r["step"] for r in rows] == [50, 100]
        # W&B's run file: protobuf records holding each value as JSON text. wandb-core writes it from its own
        # process; once in about ten CI runs (wandb 0.31) finish() returned while the file held only its
        # header, so the file gets a few seconds to fill before the values are looked for.
        wanted = [json.dumps(row["total_loss"]).encode() for row in rows]
        deadline = time.monotonic() + 20.0
        while True:
            with open(files[0], "rb") as f:
                record = f.read()
            if all(w in record for w in wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert record.startswith(b":W&B")
        for row in rows:  # every logged value reached W&B exactly
            assert json.dumps(row["total_loss"]).encode() in record
        assert os.path.basename(result.run_dir).encode() in record  # the run's name
