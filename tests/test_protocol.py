"""One protocol (``mqe.protocol``) for training, ``mqe eval --paper``, the report and the sweep's lines, and
the messages a user sees when something is missing: each checked where a user meets it."""

import csv
import json
import math
import os

import numpy as np
import pytest

from mqe import protocol
from mqe.cli import main
from mqe.config import make_config
from mqe.data.dataset import Dataset


def test_evaluation_points_and_the_one_scoring_rule():
    assert protocol.evaluation_steps(1_000_000, 100) == [800_000, 900_000, 1_000_000]
    assert protocol.evaluation_steps(500_000, 100, (0.6, 0.8, 1.0)) == [300_000, 400_000, 500_000]
    assert protocol.evaluation_steps(3, 1) == [2, 3]  # rounded to whole calls, the last at the end
    evals = {2400: {"task1": 0.2, "overall": 0.2}, 3000: {"task1": 0.8, "overall": 0.8}}
    assert protocol.score(evals, [2400, 2700, 3000]) is None, "a seed with a missing point is not scored"
    evals[2700] = {"task1": 0.5, "overall": 0.5}
    assert protocol.score(evals, [2400, 2700, 3000]) == pytest.approx({"task1": 0.5, "overall": 0.5})
    mean, se = protocol.mean_and_se([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and se == pytest.approx(0.2 / math.sqrt(3))
    assert math.isnan(protocol.mean_and_se([0.5])[1])


def test_write_final_only_when_every_point_exists(tmp_path):
    for step, rate in ((80, 0.25), (100, 0.75)):
        (tmp_path / f"eval_{step}.json").write_text(json.dumps({"step": step, "task1": rate, "overall": rate}))
    assert protocol.write_final(str(tmp_path), [80, 90, 100], 10) is None
    assert not (tmp_path / "final_eval.json").exists()
    (tmp_path / "eval_90.json").write_text(json.dumps({"step": 90, "task1": 0.5, "overall": 0.5}))
    assert protocol.write_final(str(tmp_path), [80, 90, 100], 10) == pytest.approx({"task1": 0.5, "overall": 0.5})
    final = json.loads((tmp_path / "final_eval.json").read_text())
    assert final["evaluated_at"] == [80, 90, 100] and final["episodes_per_task"] == 10


def _trained_without_evaluations(root, seed=0, steps=200, trained=None):
    """A run as `mqe train` leaves one on a user's file without --env: config.json and train.csv only."""
    run = os.path.join(root, f"s{seed}")
    os.makedirs(run)
    config = make_config("mqe", None, [f"train.seed={seed}", f"train.steps={steps}"], dataset="/data/mine.npz")
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    with open(os.path.join(run, "train.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "total_loss"])
        writer.writerows([[100, 1.0], [trained or steps, 0.5]])
    return run


def test_report_of_runs_without_evaluations_says_why_and_draws_no_task_columns(tmp_path, capsys):
    _trained_without_evaluations(str(tmp_path))
    assert main(["report", str(tmp_path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "s0 at 0" not in out
    assert "s0 trained 200 steps without evaluations" in out
    assert "task1" not in out and "## Per task" not in out


def test_a_still_training_seed_says_where_it_is(tmp_path):
    from mqe.experiments.report import read_run

    run = read_run(_trained_without_evaluations(str(tmp_path), steps=1000, trained=200))
    assert run.unscored_reason() == "s0 at 200 (of 1000 steps)"


def test_mistyped_dataset_name_gets_a_suggestion(tmp_path, capsys):
    assert main(["train", "--dataset", "antmaze-larg-navigate-v0", "--dataset-dir", str(tmp_path),
                 "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean antmaze-large-navigate-v0" in err
    assert main(["config", "--dataset", "pointmaze-medium-navigat-v0"]) == 2
    assert "Did you mean pointmaze-medium-navigate-v0" in capsys.readouterr().err


def test_eval_of_a_missing_run_names_the_run_not_a_checkpoint_file(tmp_path, capsys):
    missing = str(tmp_path / "no-such-run")
    assert main(["eval", missing]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such run directory or checkpoint file" in err
    assert "Traceback" not in err


def test_a_run_too_short_to_time_and_a_resumed_run_say_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(300, 2)), 0).astype(np.float32)
    path = str(tmp_path / "walk.npz")
    terminals = np.zeros(300, bool)
    terminals[99::100] = True
    Dataset.from_arrays(obs, rng.uniform(-1, 1, (300, 2)).astype(np.float32), terminals).save_npz(path)
    tiny = ["--set", "batch_size=8", "--set", "latent_dim=16", "--set", "encoder_hidden_dims=16,16",
            "--set", "actor_hidden_dims=16,16", "--set", "train.updates_per_call=1", "--set", "train.log_interval=1",
            "--set", "train.checkpoint_interval=1", "--no-progress"]
    run = str(tmp_path / "run")
    assert main(["train", "--dataset", path, "--run-dir", run, "--steps", "1", *tiny]) == 0
    out = capsys.readouterr().out
    assert "nan updates/s" not in out and "too few updates to time" in out
    assert main(["train", "--dataset", path, "--run-dir", run, "--steps", "2", *tiny]) == 0
    out = capsys.readouterr().out
    assert f"{run}: resuming from step 1" in out and "(resumed at step 1)" in out


def test_runs_from_before_and_after_the_discount_rename_are_one_configuration(tmp_path):
    from mqe.experiments.report import find_runs, group_runs

    for seed in (0, 1):
        run = os.path.join(tmp_path, f"s{seed}")
        os.makedirs(run)
        config = make_config("mqe", None, [f"train.seed={seed}", "train.steps=1000"],
                             dataset="pointmaze-medium-navigate-v0").to_dict()
        if seed == 0:  # written before the rename
            config["agent"]["gamma"] = config["agent"].pop("discount")
        with open(os.path.join(run, "config.json"), "w") as f:
            json.dump(config, f)
    groups = group_runs(find_runs([str(tmp_path)]))
    assert len(groups) == 1 and len(groups[0].runs) == 2 and not groups[0].variant
