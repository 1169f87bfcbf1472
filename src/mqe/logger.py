"""Local run logs: one CSV and one JSONL file per stream (``train``, ``eval``); TensorBoard and Weights &
Biases optional, beside them.

On resume, rows past the resumed step are dropped so a killed-and-resumed run logs each step once.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any

from mqe.errors import ConfigError


class RunLogger:
    def __init__(self, run_dir: str, resume_step: int = 0, tensorboard: bool = False, wandb_project: str = "",
                 config: dict | None = None):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        for stream in ("train", "eval"):
            self._truncate(stream, resume_step)
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "train.tensorboard=true needs tensorboardX: pip install 'mqe-gcrl[tensorboard]'"
                ) from None
            self._tb = SummaryWriter(os.path.join(run_dir, "tensorboard"))
        self._wandb = _start_wandb(wandb_project, run_dir, config) if wandb_project else None

    def path(self, stream: str, ext: str) -> str:
        return os.path.join(self.run_dir, f"{stream}.{ext}")

    def log(self, stream: str, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in sorted(metrics.items())}}
        with open(self.path(stream, "jsonl"), "a") as fh:
            fh.write(json.dumps(row) + "\n")
        csv_path = self.path(stream, "csv")
        header = _csv_header(csv_path)
        if header is None or set(header) != set(row):
            # New columns (rare: e.g. an evaluator adding a task): rewrite with the union of columns.
            rows = _read_csv(csv_path)
            header = list(dict.fromkeys((header or []) + list(row)))
            with open(csv_path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=header)
                writer.writeheader()
                writer.writerows(rows)
        with open(csv_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=header).writerow(row)
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{stream}/{key}", value, step)
        if self._wandb is not None:
            self._wandb.log({f"{stream}/{k}": v for k, v in row.items()
                             if k != "step" and isinstance(v, (int, float))}, step=int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def _truncate(self, stream: str, resume_step: int) -> None:
        jsonl = self.path(stream, "jsonl")
        if os.path.exists(jsonl):
            with open(jsonl) as fh:
                keep = [line for line in fh if line.strip() and json.loads(line)["step"] <= resume_step]
            with open(jsonl, "w") as fh:
                fh.writelines(keep)
        csv_path = self.path(stream, "csv")
        if os.path.exists(csv_path):
            header = _csv_header(csv_path)
            rows = [r for r in _read_csv(csv_path) if int(float(r["step"])) <= resume_step]
            with open(csv_path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=header)
                writer.writeheader()
                writer.writerows(rows)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _csv_header(path: str) -> list[str] | None:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path, newline="") as fh:
        return next(csv.reader(fh), None)


def _read_csv(path: str) -> list[dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _start_wandb(project: str, run_dir: str, config: dict | None):
    """A Weights & Biases run for this run directory: its id is derived from the directory, so a resumed
    run continues the same W&B run. ``WANDB_MODE=offline`` keeps everything under ``run_dir/wandb``."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("train.wandb_project needs wandb: pip install 'mqe-gcrl[wandb]'") from None
    import hashlib

    path = os.path.abspath(run_dir)
    run_id = os.path.basename(path)[:40] + "-" + hashlib.sha1(path.encode()).hexdigest()[:8]
    return wandb.init(project=project, id="".join(c if c.isalnum() or c in "-_" else "-" for c in run_id),
                      name=os.path.basename(path), dir=path, config=config or {}, resume="allow",
                      reinit="create_new")
