"""Flags that several commands share, each defined once (argparse parent parsers), and the small parsers
of their values. Importing this module loads neither JAX nor an environment."""

from __future__ import annotations

import argparse
import os

from mqe.config import parse_seeds, preset_names
from mqe.errors import ConfigError

CPUS = os.cpu_count() or 1


def parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def dataset_dir(download: bool = True, help_text: str | None = None) -> argparse.ArgumentParser:
    """--dataset-dir (and --no-download)."""
    p = parent()
    p.add_argument("--dataset-dir", help=help_text or "where OGBench datasets live (default: $MQE_DATASET_DIR, "
                                                      "else ~/.ogbench/data)")
    if download:
        p.add_argument("--no-download", action="store_true", help="never try OGBench's download server")
    return p


def progress() -> argparse.ArgumentParser:
    p = parent()
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def eval_workers(help_text: str | None = None) -> argparse.ArgumentParser:
    """--eval-workers; unset is None (``workers`` turns it into this machine's core count), so the parser and
    its generated reference do not depend on the machine."""
    p = parent()
    p.add_argument("--eval-workers", type=int,
                   help=help_text or "processes that step the evaluation environments (default: one per CPU core; "
                                     "0 = in this process)")
    return p


def overrides(help_text: str = "override a config field, e.g. --set alpha=0.1 --set train.log_interval=1000"
              ) -> argparse.ArgumentParser:
    p = parent()
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text)
    return p


def settings(default_preset: str | None) -> argparse.ArgumentParser:
    """What decides a run's config: --agent, --preset, --steps, --seed and --set."""
    p = parent()
    p.add_argument("--agent", default="mqe", help="agent name (default: mqe; mqe agents lists them)")
    p.add_argument("--preset", default=default_preset,
                   help=f"hyperparameter preset ({', '.join(preset_names())}, or none for the agent's defaults); "
                        f"default: {default_preset or 'paper for an OGBench dataset name, else none'}")
    p.add_argument("--steps", type=int, help="total gradient updates (overrides the preset)")
    p.add_argument("--seed", type=int, help="the run's one seed (default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set alpha=0.1 --set train.log_interval=1000")
    return p


def training(default_preset: str | None) -> argparse.ArgumentParser:
    """A run's settings plus its seeds, run directory and resumption."""
    p = argparse.ArgumentParser(add_help=False, parents=[settings(default_preset), progress()])
    p.add_argument("--seeds", help="several seeds trained as one program, e.g. 0-7 or 0,2,5; each gets "
                                   "its own run directory (RUN_DIR/s<seed>, or RUN_DIR with {seed} in it)")
    p.add_argument("--run-dir", help="where logs and checkpoints go (default: runs/<dataset>-<agent>-s<seed>)")
    p.add_argument("--no-resume", action="store_true",
                   help="refuse to continue a run directory that already has checkpoints")
    return p


def planner(where: str) -> argparse.ArgumentParser:
    """--planner, --landmarks, --planner-set."""
    p = parent()
    p.add_argument("--planner", choices=("none", "graph"), default="none",
                   help="graph: plan over the agent's learned distance between dataset landmarks and hand the policy "
                        f"the next waypoint (mqe.planning); {where}")
    p.add_argument("--landmarks", type=int, help="graph planner: landmarks, the first K and the step by which K "
                   "grows until the graph joins up (same as --planner-set landmarks=K; connect=0 keeps K fixed)")
    p.add_argument("--planner-set", action="append", default=[], metavar="KEY=VALUE",
                   help="graph planner settings: landmarks, selection, candidates, edge_power, max_edge, goal_radius, "
                        "skip_radius, replan_every, seed, connect, max_landmarks")
    return p


def workers(value: int | None) -> int:
    """A worker-count flag's value: one per CPU core when unset."""
    return CPUS if value is None else value


def fractions(text: str) -> tuple[float, ...]:
    """--fractions: comma-separated fractions in (0, 1]."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0.0 < f <= 1.0 for f in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions in (0, 1], e.g. 0.8,0.9,1.0; got {text!r}")
    return values


def override_list(args) -> list[str]:
    """--set values, then --steps and --seed as the overrides they stand for."""
    extra = []
    if args.steps is not None:
        extra.append(f"train.steps={args.steps}")
    if args.seed is not None:
        extra.append(f"train.seed={args.seed}")
    return list(args.overrides) + extra


def seeds(args) -> list[int] | None:
    """The seeds of --seeds, or None for one run (--seed, or the config's seed)."""
    if getattr(args, "seeds", None) is None:
        return None
    if args.seed is not None:
        raise ConfigError("give either --seed (one run) or --seeds (several seeds in one program), not both")
    return parse_seeds(args.seeds)


def planner_config(args):
    """The PlannerConfig of --planner graph (with --planner-set and --landmarks), else None."""
    if args.planner == "none":
        if args.planner_set or args.landmarks:
            raise ConfigError("--planner-set and --landmarks need --planner graph")
        return None
    from mqe.planning import PlannerConfig, PlannerError

    try:
        return PlannerConfig.from_overrides(
            list(args.planner_set) + ([f"landmarks={args.landmarks}"] if args.landmarks else []))
    except PlannerError as exc:
        raise ConfigError(f"--planner-set: {exc}") from None
