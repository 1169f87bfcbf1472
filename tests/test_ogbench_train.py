"""`mqe train --dataset <OGBench name>` end to end on generated data, the paper's evaluation points, and
`mqe eval`."""

import json
import os

import pytest

pytest.importorskip("ogbench")

from mqe.cli import main, paper_eval_steps  # noqa: E402
from mqe.data.generate import generate  # noqa: E402

NAME = "pointmaze-medium-navigate-v0"
TINY = ["--set", "batch_size=32", "--set", "latent_dim=32", "--set", "encoder_hidden_dims=32,32",
        "--set", "actor_hidden_dims=32,32", "--set", "train.updates_per_call=20"]


def test_paper_eval_steps_scale_with_the_budget():
    assert paper_eval_steps(1_000_000, 100) == [800_000, 900_000, 1_000_000]
    assert paper_eval_steps(3000, 100) == [2400, 2700, 3000]


def test_train_by_name_evaluates_the_paper_way(tmp_path, capsys):
    data = tmp_path / "data"
    generate(NAME, str(data), num_episodes=3, progress=False)
    run = tmp_path / "run"
    argv = ["train", "--dataset", NAME, "--dataset-dir", str(data), "--no-download", "--steps", "200",
            "--eval-episodes", "1", "--run-dir", str(run), "--no-progress", *TINY,
            "--set", "train.eval_interval=100"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "success rate:" in out and "evaluating 1 episodes per task at steps [160, 180, 200] (and every 100)" in out
    assert os.path.exists(run / "eval_100.json")  # an extra evaluation, outside the paper's mean
    final = json.load(open(run / "final_eval.json"))
    assert final["evaluated_at"] == [160, 180, 200]
    assert set(final) >= {f"task{i}" for i in range(1, 6)} | {"overall"}
    expected = sum(json.load(open(run / f"eval_{s}.json"))["overall"] for s in (160, 180, 200)) / 3
    assert final["overall"] == pytest.approx(expected)
    # The same command on the finished run evaluates once more but reports the paper's mean from disk.
    assert main(argv) == 0
    assert "success at steps [160, 180, 200]" in capsys.readouterr().out
    assert json.load(open(run / "final_eval.json"))["overall"] == pytest.approx(expected)
    assert main(["eval", str(run), "--episodes", "1", "--no-progress"]) == 0
    assert os.path.exists(run / "reeval_200.json")


def test_missing_dataset_that_cannot_be_generated(tmp_path, capsys):
    argv = ["train", "--dataset", "cube-double-play-v0", "--dataset-dir", str(tmp_path), "--no-download"]
    assert main(argv) == 2
    assert "mqe generate cube-double-play-v0" in capsys.readouterr().err
