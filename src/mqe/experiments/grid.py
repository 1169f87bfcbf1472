"""A sweep's grid: datasets x agents x grid values, each configuration one job that trains its seeds as
one program (``mqe train --seeds``).

A grid comes from flags or from a YAML/JSON file with the same keys::

    datasets: [pointmaze-medium-navigate-v0, pointmaze-large-stitch-v0]
    agents: [mqe, qrl]
    seeds: 0-2
    set: [train.steps=50000]            # every run
    grid:                               # every combination of these values
      next_state_prob: [0.1, 0.2, 0.5]
      waypoint_discount: [0.9, 0.95, 0.99]
    preset: pointmaze-demo              # optional (default: the paper's for a dataset name)
    eval_episodes: 50
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from typing import Any

from mqe.config import ConfigError, RunConfig, make_config, parse_seeds

GRID_KEYS = {"datasets", "agents", "seeds", "set", "grid", "preset", "eval_episodes", "dataset_dir",
             "no_download"}


@dataclasses.dataclass(frozen=True)
class Job:
    """One configuration of the grid: a dataset, an agent and grid values, all its seeds in one process."""

    dataset: str
    agent: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]  # --set values shared by the whole sweep, then this job's grid values
    grid_values: tuple[tuple[str, str], ...]  # (key, value) of the grid axes, for names and reports
    run_root: str  # the seeds' run directories are run_root/s<seed>
    config: RunConfig  # the resolved config (seed aside), to know steps and check the grid up front
    preset: str | None = None
    eval_episodes: int = 50
    dataset_dir: str | None = None
    no_download: bool = False

    @property
    def name(self) -> str:
        tag = ",".join(f"{k}={v}" for k, v in self.grid_values)
        return f"{_name(self.dataset)}/{self.agent}" + (f"/{tag}" if tag else "")

    @property
    def slug(self) -> str:
        """The job's name as one file name (its log file)."""
        return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", self.name.replace("/", "__"))

    def run_dir(self, seed: int) -> str:
        return os.path.join(self.run_root, f"s{seed}")

    def train_argv(self, seeds: list[int], eval_workers: int | None = None) -> list[str]:
        """``mqe train`` arguments that train ``seeds`` of this job (resuming whatever exists)."""
        argv = ["train", "--dataset", self.dataset, "--agent", self.agent,
                "--seeds", ",".join(map(str, seeds)), "--run-dir", os.path.join(self.run_root, "s{seed}"),
                "--eval-episodes", str(self.eval_episodes), "--no-progress"]
        argv += ["--preset", self.preset] if self.preset else []
        argv += ["--dataset-dir", self.dataset_dir] if self.dataset_dir else []
        argv += ["--no-download"] if self.no_download else []
        argv += ["--eval-workers", str(eval_workers)] if eval_workers is not None else []
        for override in self.overrides:
            argv.append(f"--set={override}")
        return argv


def load_grid_file(path: str) -> dict[str, Any]:
    """A grid from a YAML or JSON file; unknown keys are an error naming the file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"grid file {path}: {exc.strerror}") from None
    try:
        if path.endswith(".json"):
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise different types; the message is what matters
        raise ConfigError(f"grid file {path}: not valid {'JSON' if path.endswith('.json') else 'YAML'} ({exc})"
                          ) from None
    if not isinstance(spec, dict):
        raise ConfigError(f"grid file {path}: expected a mapping with keys {sorted(GRID_KEYS)}")
    unknown = sorted(set(spec) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"grid file {path}: unknown keys {unknown}; known: {sorted(GRID_KEYS)}")
    return spec


def merge_flags(spec: dict[str, Any], *, datasets: str | None = None, agents: str | None = None,
                seeds: str | None = None, preset: str | None = None, eval_episodes: int | None = None,
                dataset_dir: str | None = None, no_download: bool = False, overrides: list[str] = (),
                grid: list[str] = ()) -> dict[str, Any]:
    """A grid file's keys with the command line's flags on top (flags win; ``--set`` values are added to
    the file's ``set``; each ``--grid KEY=V1,V2`` adds or replaces one axis)."""
    spec = dict(spec)
    for key, value in (("datasets", datasets), ("agents", agents), ("seeds", seeds), ("preset", preset),
                       ("eval_episodes", eval_episodes), ("dataset_dir", dataset_dir)):
        if value is not None:
            spec[key] = value
    if no_download:
        spec["no_download"] = True
    if overrides:
        spec["set"] = list(spec.get("set") or []) + list(overrides)
    for axis in grid:
        if "=" not in axis:
            raise ConfigError(f"--grid {axis!r}: expected KEY=VALUE1,VALUE2,... (e.g. next_state_prob=0.1,0.2,0.5)")
        key, values = axis.split("=", 1)
        spec.setdefault("grid", {})[key.strip()] = split_values(values)
    for key in ("datasets", "agents"):
        if isinstance(spec.get(key), str):
            spec[key] = split_values(spec[key])
    return spec


def split_values(text: str) -> list[str]:
    """``"0.1,0.2"`` -> ["0.1", "0.2"]; commas inside brackets stay: ``"[256,256],[512,512]"``."""
    values, depth, current = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return [v for v in values if v]


def _as_list(value: Any, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return split_values(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(f"grid key {key!r}: expected a list or a comma-separated string, got {value!r}")


def _text(value: Any) -> str:
    """A grid value as ``--set`` reads it (lists as comma-separated elements)."""
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def expand(spec: dict[str, Any], sweep_dir: str) -> list[Job]:
    """Every job of a grid, checked: each configuration resolves (unknown agents, keys or values fail
    here, before anything runs)."""
    datasets = [str(d) for d in _as_list(spec.get("datasets"), "datasets")]
    agents = [str(a) for a in _as_list(spec.get("agents"), "agents")] or ["mqe"]
    if not datasets:
        raise ConfigError("a sweep needs at least one dataset (--datasets or 'datasets:' in the grid file)")
    seeds_spec = spec.get("seeds", "0")
    seeds = parse_seeds(",".join(map(str, seeds_spec)) if isinstance(seeds_spec, list) else str(seeds_spec),
                        "seeds")
    fixed = tuple(str(o) for o in _as_list(spec.get("set"), "set") if isinstance(o, str))
    if any(not isinstance(o, str) for o in _as_list(spec.get("set"), "set")):
        raise ConfigError("grid key 'set': expected KEY=VALUE strings")
    axes = spec.get("grid") or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"grid key 'grid': expected a mapping KEY: [values], got {axes!r}")
    axis_values = {str(k): [_text(v) for v in (v if isinstance(v, list) else split_values(str(v)))]
                   for k, v in axes.items()}
    jobs = []
    for dataset, agent in itertools.product(datasets, agents):
        for combo in itertools.product(*axis_values.values()) if axis_values else [()]:
            grid_values = tuple(zip(axis_values, combo))
            overrides = fixed + tuple(f"{k}={v}" for k, v in grid_values)
            try:
                config = make_config(agent, spec.get("preset"), list(overrides), dataset=_name(dataset))
            except ConfigError as exc:
                values = ", ".join(f"{k}={v}" for k, v in grid_values)
                raise ConfigError(f"sweep configuration {dataset} / {agent}" + (f" / {values}" if values else "")
                                  + f": {exc}") from None
            tag = ",".join(f"{k.split('.')[-1]}={v}" for k, v in grid_values)
            root = os.path.join(sweep_dir, "runs", _name(dataset), agent, *([tag] if tag else []))
            jobs.append(Job(dataset, agent, tuple(seeds), overrides, grid_values, root, config,
                            preset=spec.get("preset"), eval_episodes=int(spec.get("eval_episodes", 50)),
                            dataset_dir=spec.get("dataset_dir"), no_download=bool(spec.get("no_download"))))
    return jobs


def _name(dataset: str) -> str:
    """A dataset's label: its name, or a file's base name."""
    return os.path.basename(dataset).removesuffix(".npz")
