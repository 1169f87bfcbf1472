"""The paper's evaluation protocol, written once: where a run is evaluated, how a seed is scored, and how
seeds are summarised. Training, ``mqe eval --paper``, ``mqe report`` and a sweep's status lines all use it.

The rule (MQE paper, Appendix B.4; OGBench's protocol):

* a run of ``T`` updates is evaluated at the fractions ``f`` of ``train.eval_fractions`` (0.8, 0.9, 1.0:
  800k/900k/1M of 1M), each rounded to whole compiled calls, the last at ``T`` (``evaluation_steps``);
* a seed's score is the mean of its evaluations at those steps, per task and overall, and it exists only
  once **every** one of them exists (``score``): a seed with a missing point is not scored, and the reason
  is given (``unscored_reason``), never a mean over fewer points;
* a configuration's score is the mean over its scored seeds with the standard error
  ``sd / sqrt(n)`` (``mean_and_se``).

This module reads and writes only small JSON files, and imports neither JAX nor an environment.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Iterable, Sequence

PAPER_FRACTIONS = (0.8, 0.9, 1.0)
FINAL_FILE = "final_eval.json"


def evaluation_steps(total: int, every: int, fractions: Iterable[float] = PAPER_FRACTIONS) -> list[int]:
    """The steps a run of ``total`` updates is evaluated at.

    ``s_f = max(every, round(f * total / every) * every)`` for each fraction ``f < 1`` (a whole number of
    compiled calls of ``every`` updates), plus ``total`` itself; sorted, each once, none beyond ``total``.
    """
    steps = sorted({max(every, round(total * f / every) * every) for f in fractions if f < 1.0} | {total})
    return [min(s, total) for s in steps]


def eval_path(folder: str, step: int) -> str:
    """Where the evaluation at ``step`` lives: ``FOLDER/eval_<step>.json``."""
    return os.path.join(folder, f"eval_{step}.json")


def read_evaluations(folder: str) -> dict[int, dict[str, float]]:
    """step -> success rates (``overall`` and ``taskN``, fractions) from the folder's ``eval_<step>.json``
    files; unreadable files are skipped (a partial write never exists: they are written atomically)."""
    evals: dict[int, dict[str, float]] = {}
    if not os.path.isdir(folder):
        return evals
    for name in os.listdir(folder):
        if name.startswith("eval_") and name.endswith(".json"):
            try:
                with open(os.path.join(folder, name)) as f:
                    data = json.load(f)
                evals[int(data["step"])] = {k: float(v) for k, v in data.items()
                                            if k == "overall" or k.startswith("task")}
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return evals


def score(evals: dict[int, dict[str, float]], steps: Sequence[int]) -> dict[str, float] | None:
    """A seed's score: ``mean_{s in steps} evals[s][k]`` for every key ``k``; None unless every step of
    ``steps`` was evaluated."""
    if not steps or any(s not in evals for s in steps):
        return None
    found = [evals[s] for s in steps]
    return {k: sum(e[k] for e in found) / len(found) for k in found[0]}


def missing_steps(evals: dict[int, dict[str, float]], steps: Sequence[int]) -> list[int]:
    return [s for s in steps if s not in evals]


def trained_steps(run_dir: str) -> int:
    """How far a run has trained, from its training log (``train.csv``'s last row; 0 without one)."""
    path = os.path.join(run_dir, "train.csv")
    last = 0
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    last = max(last, int(float(row.get("step") or 0)))
                except ValueError:
                    continue
    except OSError:
        pass
    return last


def unscored_reason(seed: int, evals: dict[int, dict[str, float]], steps: Sequence[int], total: int,
                    trained: int) -> str:
    """Why seed ``seed`` has no score: still training, trained without evaluations, or trained with some
    of the evaluation points missing."""
    missing = missing_steps(evals, steps)
    done = max(trained, max(evals, default=0)) >= total
    if done and not evals:
        return (f"s{seed} trained {total} steps without evaluations (no environment or --eval-episodes 0; "
                "mqe eval --paper evaluates its checkpoints)")
    if done and missing:
        return (f"s{seed} finished without the evaluation at {', '.join(map(str, missing))} "
                "(mqe eval --paper re-evaluates kept checkpoints)")
    return f"s{seed} at {max(trained, max(evals, default=0))} (of {total} steps)"


def write_final(folder: str, steps: Sequence[int], episodes: int | None) -> dict[str, float] | None:
    """Scores the folder's evaluations at ``steps`` and writes ``final_eval.json`` (the score, the steps
    it averaged, episodes per task); returns the score, or None (nothing written) while points are missing."""
    from mqe.io import atomic_write_text
    import time

    evals = read_evaluations(folder)
    final = score(evals, steps)
    if final is None:
        return None
    record = {"step": max(steps), **final, "evaluated_at": sorted(steps), "episodes_per_task": episodes,
              "time": time.time()}
    atomic_write_text(os.path.join(folder, FINAL_FILE), json.dumps(record, indent=2))
    return final


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error ``sqrt(sum (v - mean)^2 / (n - 1) / n)`` (NaN for one value)."""
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))
