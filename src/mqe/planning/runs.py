"""A planner attached to a saved or training run: its landmark pool (the run's own training data) and the
settings file beside its evaluations (``RUN/<PlannerConfig.folder()>/planner.json``)."""

from __future__ import annotations

import dataclasses
import json
import os

from mqe.errors import ConfigError
from mqe.planning.graph import PlannerConfig


def planner_for_run(planner_config: PlannerConfig, config, dataset_dir: str | None = None, observations=None):
    """``(agent name, planner_config, landmark pool)`` for a run of ``config`` (a ``RunConfig``). The pool is
    ``observations`` when given, else the run's training data, found in ``dataset_dir`` and checked against
    the fingerprint the run recorded."""
    from mqe.data.dataset import Dataset
    from mqe.data.resolve import dataset_files, search_dirs

    if observations is not None:
        return config.agent_name, planner_config, observations
    source = config.dataset
    path = source if source.endswith(".npz") and os.path.exists(source) else None
    if path is None:
        found = [dataset_files(d, source)[0] for d in search_dirs(dataset_dir)]
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            raise ConfigError(f"the planner takes its landmarks from the run's training data {source!r}, which is not "
                              f"in {', '.join(search_dirs(dataset_dir))}; pass --dataset-dir DIR")
        path = found[0]
    data = Dataset.load_npz(path)
    if config.dataset_fingerprint and data.fingerprint != config.dataset_fingerprint:
        raise ConfigError(f"{path} is not the data the run was trained on (fingerprint {data.fingerprint}, the run's "
                          f"{config.dataset_fingerprint}); pass --dataset-dir with the run's data")
    return config.agent_name, planner_config, data.observations


def write_planner_settings(run_dir: str, planner_config: PlannerConfig) -> None:
    """``RUN/<planner_config.folder()>/planner.json``; a folder holding other settings' evaluations is not
    mixed into."""
    from mqe.io import atomic_write_text

    settings = {"name": "graph", **dataclasses.asdict(planner_config)}
    path = os.path.join(run_dir, planner_config.folder(), "planner.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f).get("settings") != settings:
                raise ConfigError(f"{path} holds evaluations with other planner settings; move that folder away "
                                  "to evaluate with these")
    atomic_write_text(path, json.dumps({"settings": settings}, indent=2))
