"""The commands a user runs to look things up start without the heavy stack: `mqe --help`, `mqe presets`,
`mqe config` and `mqe report` import neither JAX, Flax nor MuJoCo (each run in a fresh interpreter)."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "mujoco", "optax")


def _modules_after(argv: list[str]) -> set[str]:
    code = ("import sys, json\nfrom mqe.cli import main\n"
            "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (argv, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _a_scored_run(root) -> str:
    from mqe.config import make_config

    run = os.path.join(root, "s0")
    os.makedirs(run)
    config = make_config("qrl", None, ["train.steps=1000", "train.updates_per_call=100"],
                         dataset="pointmaze-medium-navigate-v0")
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    for step in (800, 900, 1000):
        with open(os.path.join(run, f"eval_{step}.json"), "w") as f:
            json.dump({"step": step, "task1": 0.5, "overall": 0.5}, f)
    return run


@pytest.mark.parametrize("argv", [["--help"], ["presets", "-v"], ["agents"],
                                  ["config", "--agent", "gciql", "--dataset", "scene-noisy-v0", "-v"],
                                  ["config", "--agent", "mqe", "--preset", "paper-pixel", "--dataset", "/x/frames.npz"]])
def test_lookups_stay_light(argv):
    assert _modules_after(argv) == set()


def test_report_stays_light(tmp_path):
    _a_scored_run(str(tmp_path))
    assert _modules_after(["report", str(tmp_path), "--no-figures", "--out", str(tmp_path / "report")]) == set()
    assert "50.0" in (tmp_path / "report" / "report.md").read_text()
