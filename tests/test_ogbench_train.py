"""`mqe train --dataset <OGBench name>` end to end on generated data, the paper's evaluation points, and
`mqe eval`."""

import json
import os

import pytest

pytest.importorskip("ogbench")

from mqe.cli import main  # noqa: E402
from mqe.protocol import evaluation_steps as paper_eval_steps  # noqa: E402
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


def test_a_file_with_env_is_evaluated_like_the_name(tmp_path, capsys):
    data = tmp_path / "data"
    train_path, _, _ = generate(NAME, str(data), num_episodes=2, progress=False)
    mine = tmp_path / "mine.npz"
    os.rename(train_path, mine)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(mine), "--env", NAME, "--steps", "40", "--eval-episodes", "1",
                 "--run-dir", str(run), "--no-progress", *TINY]) == 0
    out = capsys.readouterr().out
    assert f"evaluated on {NAME}" in out and "success rate:" in out
    assert json.load(open(run / "final_eval.json"))["evaluated_at"] == [40]
    config = json.load(open(run / "config.json"))
    assert config["dataset"] == str(mine) and config["env"] == NAME and config["preset"] == "paper"
    assert main(["eval", str(run), "--episodes", "1", "--no-progress"]) == 0  # the run's own environment


def test_unknown_name_is_refused_before_any_search(tmp_path, capsys):
    argv = ["train", "--dataset", "pointmaze-medium-navigate-v1", "--dataset-dir", str(tmp_path), "--no-download"]
    assert main(argv) == 2
    assert "not a dataset name we know" in capsys.readouterr().err
