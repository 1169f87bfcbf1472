"""`mqe report`: the paper's protocol computed exactly, published numbers beside ours, budgets that differ
marked everywhere, and the figures drawn by matplotlib for real."""

import csv
import dataclasses
import io
import json
import math
import os

import numpy as np
import pytest

from mqe.cli import main
from mqe.config import make_config
from mqe.experiments.report import build_report, published_cell


def _run(root, agent, dataset, seed, evals, *, preset=None, overrides=(), episodes=50, steps=None):
    """A run directory as `mqe train` leaves it: config.json, eval_<step>.json files, final_eval.json."""
    config = make_config(agent, preset, [f"train.seed={seed}", *overrides], dataset=dataset).to_dict()
    config["dataset_fingerprint"] = "npz-crc:test"
    run_dir = os.path.join(root, f"{dataset}-{agent}-{len(overrides)}-{'_'.join(overrides)}-s{seed}")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config, f)
    for step, overall in evals.items():
        with open(os.path.join(run_dir, f"eval_{step}.json"), "w") as f:
            tasks = {f"task{t}": overall for t in range(1, 6)}
            json.dump({"step": step, **tasks, "overall": overall}, f)
    if len(evals) == 3:
        with open(os.path.join(run_dir, "final_eval.json"), "w") as f:
            json.dump({"step": max(evals), "overall": float(np.mean(list(evals.values()))),
                       "episodes_per_task": episodes}, f)
    return run_dir


def test_the_papers_protocol_published_numbers_and_budget_marks(tmp_path):
    root = str(tmp_path / "runs")
    small = ["train.steps=3000", "train.updates_per_call=100"]
    per_seed = {0: (0.2, 0.4, 0.6), 1: (0.5, 0.5, 0.5), 2: (0.1, 0.3, 0.2)}
    for seed, (a, b, c) in per_seed.items():
        _run(root, "qrl", "pointmaze-medium-navigate-v0", seed, {2400: a, 2700: b, 3000: c}, preset="pointmaze-demo",
             overrides=small)
    _run(root, "qrl", "pointmaze-medium-navigate-v0", 3, {2400: 0.9}, preset="pointmaze-demo", overrides=small)
    # trained to the end, but its 90% evaluation was lost (a kill between checkpoint and evaluation)
    _run(root, "qrl", "pointmaze-medium-navigate-v0", 4, {2400: 0.9, 3000: 0.9}, preset="pointmaze-demo", overrides=small)
    # the paper's budget: 1M updates, 8 seeds, 50 episodes, the paper's networks: no mark
    for seed in range(8):
        _run(root, "mqe", "pointmaze-giant-stitch-v0", seed, {800_000: 0.25, 900_000: 0.3, 1_000_000: 0.35})
    report = build_report([root], str(tmp_path / "out"))

    qrl = next(g for g in report.groups if g.agent == "qrl")
    scores = [100 * np.mean(v) for v in per_seed.values()]
    mean, se = qrl.summary()["overall"]
    assert mean == pytest.approx(np.mean(scores)) and se == pytest.approx(np.std(scores, ddof=1) / math.sqrt(3))
    assert qrl.summary()["task3"] == pytest.approx((mean, se))
    assert len(qrl.scored) == 3 and len(qrl.runs) == 5  # seeds 3 and 4 lack evaluations: not counted
    notes = qrl.budget_notes()
    assert "3k updates (paper 1M)" in notes and "3 seeds (paper 8)" in notes
    assert any(n.startswith("batch_size 128 (paper 1024)") for n in notes)
    mqe = next(g for g in report.groups if g.agent == "mqe")
    assert mqe.budget_notes() == [] and mqe.summary()["overall"] == pytest.approx((30.0, 0.0))

    text = report.markdown
    assert "| dataset | mqe | qrl |" in text
    assert f"| pointmaze-medium-navigate-v0 (ours) |  | {mean:.1f} ± {se:.1f}† [1] (3/5 seeds) |" in text
    assert "82 ± 5 (OG)" in text  # OGBench's QRL number: the MQE paper has no pointmaze-medium row
    assert "| pointmaze-giant-stitch-v0 (ours) | 30.0 ± 0.0 |  |" in text  # the paper's budget: no mark
    assert "| pointmaze-giant-stitch-v0 (published) | 28.3 ± 1.1 |  |" in text
    assert "1. † 3k updates (paper 1M); 3 seeds (paper 8)" in text
    assert "s3 at 2400" in text  # what is still missing is said
    assert "s4 finished without the evaluation at 2700 (mqe eval --paper re-evaluates kept checkpoints)" in text
    rows = list(csv.DictReader(io.StringIO(open(tmp_path / "out" / "report.csv").read())))
    overall = next(r for r in rows if r["agent"] == "qrl" and r["metric"] == "overall")
    assert overall["published_mean"] == "82.0" and overall["published_source"] == "ogbench"
    assert overall["budget_differs"] == "1" and float(overall["mean"]) == pytest.approx(mean, abs=0.01)
    latex = open(tmp_path / "out" / "report.tex").read()
    assert r"$\pm$" in latex and r"\dagger1" in latex and "(82)" in latex
    import matplotlib.image

    png = matplotlib.image.imread(str(tmp_path / "out" / "curves_pointmaze-medium-navigate-v0.png"))
    assert png.ndim == 3 and png.shape[0] > 300
    assert published_cell("pointmaze-giant-stitch-v0", "qrl") == (49.7, 2.3, "mqe_paper")


def test_figure5_heatmap_from_a_p_lambda_grid(tmp_path, capsys):
    root = str(tmp_path / "sweep" / "runs")
    ps, lams = (0.1, 0.2, 0.5), (0.5, 0.9, 0.95)
    for i, p in enumerate(ps):
        for j, lam in enumerate(lams):
            for seed in (0, 1):
                value = 0.1 * i + 0.3 * j + 0.01 * seed
                _run(root, "mqe", "pointmaze-medium-navigate-v0", seed, {2400: value, 2700: value, 3000: value},
                     preset="pointmaze-demo", overrides=["train.steps=3000", f"next_state_prob={p}",
                                                         f"waypoint_discount={lam}"])
    assert main(["report", str(tmp_path / "sweep")]) == 0
    out = tmp_path / "sweep" / "report"
    assert (out / "heatmap_pointmaze-medium-navigate-v0_mqe.png").exists()
    printed = capsys.readouterr().out
    assert "mqe (next_state_prob=0.5, waypoint_discount=0.95)" in printed
    assert "70.5 ± 0.5†" in printed  # 100 * (0.1 * 2 + 0.3 * 2 + 0.005)
    import matplotlib.image

    image = matplotlib.image.imread(str(out / "heatmap_pointmaze-medium-navigate-v0_mqe.png"))
    assert image.shape[2] in (3, 4) and image.std() > 0.05


def test_the_sweeps_own_summary_scores_seeds_by_the_reports_rule(tmp_path):
    """A seed that finished without one of the paper's points is not averaged into the sweep's [done] line."""
    from mqe.experiments.grid import Job
    from mqe.experiments.sweep import _success_text

    small = ["train.steps=3000", "train.updates_per_call=100"]
    root = tmp_path / "job"
    for seed, evals in ((0, {2400: 0.2, 2700: 0.4, 3000: 0.6}), (1, {2400: 0.9, 3000: 0.9})):
        made = _run(str(tmp_path), "mqe", "pointmaze-medium-navigate-v0", seed, evals, overrides=small)
        os.makedirs(root, exist_ok=True)
        os.rename(made, root / f"s{seed}")
    # as the resume bug left it: a final_eval.json averaged over the two points it had
    (root / "s1" / "final_eval.json").write_text(json.dumps({"step": 3000, "overall": 0.9,
                                                             "evaluated_at": [2400, 3000]}))
    job = Job(dataset="pointmaze-medium-navigate-v0", agent="mqe", seeds=(0, 1), overrides=tuple(small),
              grid_values=(), run_root=str(root), config=make_config("mqe", None, small,
                                                                     dataset="pointmaze-medium-navigate-v0"))
    text = _success_text(job)
    assert text.startswith("success 40.0% (1 seed)")
    assert "not scored: s1 finished without the evaluation at 2700" in text


def test_report_fractions_scores_the_last_checkpoint_and_says_so(tmp_path, capsys):
    """After mqe eval --paper --fractions 1.0: a seed with only its last evaluation is scored, and marked."""
    small = ["train.steps=3000", "train.updates_per_call=100"]
    root = str(tmp_path / "runs")
    _run(root, "qrl", "pointmaze-large-stitch-v0", 0, {3000: 0.5}, overrides=small)
    _run(root, "qrl", "pointmaze-large-stitch-v0", 1, {2400: 0.1, 2700: 0.2, 3000: 0.7}, overrides=small)
    assert main(["report", root, "--no-figures", "--out", str(tmp_path / "a")]) == 0
    assert "s0 finished without the evaluation at 2400, 2700" in (tmp_path / "a" / "report.md").read_text()
    assert main(["report", root, "--no-figures", "--fractions", "1.0", "--out", str(tmp_path / "b")]) == 0
    text = (tmp_path / "b" / "report.md").read_text()
    assert "| pointmaze-large-stitch-v0 (ours) | 60.0 ± 10.0† [1] |" in text  # s0 50, s1 70
    assert "scored at 100% of training (paper 80/90/100%)" in text
    with pytest.raises(SystemExit):
        main(["report", root, "--fractions", "0,1"])


def test_planner_settings_on_the_same_checkpoints_are_columns_of_their_own(tmp_path):
    """mqe eval --paper --planner graph with two max_edge values writes two folders; the report keeps the
    plain evaluations and each setting apart."""
    from mqe.planning.graph import PlannerConfig

    small = ["train.steps=3000", "train.updates_per_call=100"]
    root = str(tmp_path / "runs")
    for seed in (0, 1):
        run = _run(root, "qrl", "pointmaze-large-stitch-v0", seed, {2400: 0.2, 2700: 0.2, 3000: 0.2}, overrides=small)
        for max_edge, rate in ((50.0, 0.6), (20.0, 0.4)):
            config = PlannerConfig(max_edge=max_edge)
            folder = os.path.join(run, config.folder())
            os.makedirs(folder)
            with open(os.path.join(folder, "planner.json"), "w") as f:
                json.dump({"settings": {"name": "graph", **dataclasses.asdict(config)}}, f)
            for step in (2400, 2700, 3000):
                with open(os.path.join(folder, f"eval_{step}.json"), "w") as f:
                    json.dump({"step": step, **{f"task{t}": rate + 0.1 * seed for t in range(1, 6)},
                               "overall": rate + 0.1 * seed}, f)
    report = build_report([root], str(tmp_path / "out"), figures=False)
    scores = {g.label: round(g.summary()["overall"][0], 6) for g in report.groups}
    assert len(scores) == 3 and sorted(scores.values()) == [20.0, 45.0, 65.0], scores  # plain, max_edge 20, 50
    assert scores["qrl (planner=none)"] == 20.0
    assert scores["qrl (planner=graph (K 500..3000 to 90% joined, uniform, power 1.0, max edge 20.0, radius 10.0, "
                  "replan 10))"] == 45.0
