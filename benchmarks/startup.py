"""Start-up time of the light commands (``mqe --help``, ``presets``, ``config``, ``report``), and which heavy
modules each one imports; with ``--against SRC`` the same commands of another source tree (e.g. a worktree
of an older commit) alternate with this one's in one run, and the ratios are printed.

    git worktree add /tmp/before 9433eb7
    python benchmarks/startup.py --against /tmp/before/src --repeats 5

Each command runs in a fresh interpreter; the best of ``--repeats`` wall times counts (the machine's other
work only ever adds time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "run-0.2.0-mqe")
HEAVY = ("jax", "flax", "mujoco")


def commands(out_dir: str) -> dict[str, list[str]]:
    return {"--help": ["--help"], "presets": ["presets"],
            "config": ["config", "--agent", "gciql", "--dataset", "scene-noisy-v0"],
            "report": ["report", FIXTURE, "--no-figures", "--out", os.path.join(out_dir, "report")]}


def run(src: str, argv: list[str]) -> tuple[float, list[str]]:
    """(wall seconds, heavy modules imported) of ``mqe <argv>`` with ``src`` first on the path."""
    code = ("import sys\nfrom mqe.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', ','.join(sorted({m.split('.')[0] for m in sys.modules} & set(%r))))" % (argv, HEAVY))
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"startup.py: mqe {' '.join(argv)} failed with {src}:\n{done.stderr[-2000:]}")
    heavy = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("HEAVY")]
    return seconds, [m for m in (heavy[-1] if heavy else "").split(",") if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="another tree's src/ folder to time beside this one")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = {"this": HERE} | ({"against": args.against} if args.against else {})
    best: dict[tuple[str, str], float] = {}
    heavy: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, src in trees.items():
                for label, argv in commands(os.path.join(tmp, name)).items():
                    seconds, modules = run(src, argv)
                    best[name, label] = min(seconds, best.get((name, label), float("inf")))
                    heavy[name, label] = modules
    for label in commands("").keys():
        line = f"mqe {label:8s} this tree {best['this', label]:.2f} s (imports: {', '.join(heavy['this', label]) or 'none heavy'})"
        if args.against:
            ratio = best["against", label] / best["this", label]
            line += (f"; against {best['against', label]:.2f} s (imports: {', '.join(heavy['against', label]) or 'none heavy'})"
                     f"; {ratio:.1f}x faster")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
