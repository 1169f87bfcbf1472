"""The dataset names we know: OGBench's own, and those ``mqe generate`` makes beyond them.

A known name selects the evaluation environment and the per-dataset settings of every agent; anything
else is a file of the user's. OGBench's name variants (``-singletask-task3``, ``-oraclerep``) share their
base dataset and settings, so lookups strip them first.
"""

from __future__ import annotations

import difflib
import itertools
import re

_MAZES = ("medium", "large", "giant", "teleport")


def _names(*parts) -> list[str]:
    return ["-".join(p) + "-v0" for p in itertools.product(*parts)]


# OGBench's state-based datasets (its README's list and impls/hyperparameters.sh, commit 1d41409).
OGBENCH_STATE = tuple(
    _names(("pointmaze",), _MAZES, ("navigate", "stitch"))
    + _names(("antmaze",), _MAZES, ("navigate", "stitch"))
    + _names(("antmaze",), ("medium", "large", "teleport"), ("explore",))
    + _names(("humanoidmaze",), ("medium", "large", "giant"), ("navigate", "stitch"))
    + _names(("antsoccer",), ("arena", "medium"), ("navigate", "stitch"))
    + _names(("cube",), ("single", "double", "triple", "quadruple"), ("play", "noisy"))
    + _names(("scene",), ("play", "noisy"))
    + _names(("puzzle",), ("3x3", "4x4", "4x5", "4x6"), ("play", "noisy"))
)
# OGBench's pixel datasets: the visual twins of the locomotion and manipulation sets above.
OGBENCH_VISUAL = tuple("visual-" + n for n in OGBENCH_STATE
                       if n.split("-")[0] in ("antmaze", "humanoidmaze", "cube", "scene", "puzzle"))
# What `mqe generate` makes that OGBench never published: the MQE paper's colossal maze, and explore
# data for the mazes OGBench has none for (the ant-maze explore recipe).
OURS = tuple(sorted(
    set(_names(("pointmaze", "antmaze"), _MAZES + ("colossal",), ("navigate", "stitch", "explore")))
    - set(OGBENCH_STATE)))

KNOWN = frozenset(OGBENCH_STATE + OGBENCH_VISUAL + OURS)

_VARIANT = re.compile(r"-(singletask(-task\d+)?|oraclerep)(?=-v\d+$)")


def base_name(name: str) -> str:
    """OGBench's dataset behind a name: ``cube-double-play-singletask-task2-v0`` -> ``cube-double-play-v0``."""
    return _VARIANT.sub("", name)


def is_known(name: str) -> bool:
    return base_name(name) in KNOWN


def known_names_text() -> str:
    """The known names, grouped by family, for error messages."""
    groups: dict[str, list[str]] = {}
    for name in sorted(KNOWN):
        family = name.split("-")[1] if name.startswith("visual-") else name.split("-")[0]
        groups.setdefault(("visual-" if name.startswith("visual-") else "") + family, []).append(name)
    return "\n".join(f"  {family}: {', '.join(names)}" for family, names in sorted(groups.items()))


def suggestions(name: str, n: int = 3) -> list[str]:
    """The known names closest to a mistyped one (``antmaze-larg-navigate-v0`` -> ``antmaze-large-navigate-v0``)."""
    return difflib.get_close_matches(name, sorted(KNOWN), n=n, cutoff=0.75)
