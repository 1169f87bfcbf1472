"""`mqe sweep` for real: local processes and a Ray started by the test, a failing job that does not stop
the others, a second run that does nothing, a killed sweep that resumes without redoing finished runs,
and `mqe report` on what it produced."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mqe
from processes import kill_at_first_checkpoint
from mqe.cli import main
from mqe.config import ConfigError
from mqe.data.dataset import Dataset
from mqe.experiments.grid import expand, load_grid_file, split_values

PRESET = "gridmaze-xy"  # small networks for every agent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sweepdata")
    rng = np.random.default_rng(0)
    n = 2000
    obs = np.cumsum(rng.normal(size=(n, 3)), axis=0).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[199::200] = True
    Dataset.from_arrays(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), terminals).save_npz(
        str(directory / "walk.npz"))
    (directory / "broken.npz").write_bytes(b"not a dataset")
    return directory


def _argv(data_dir, out, *extra):
    return ["sweep", "--datasets", f"{data_dir}/walk.npz,{data_dir}/broken.npz", "--agents", "mqe,gcbc",
            "--seeds", "0-1", "--preset", PRESET, "--set", "train.steps=100", "--set", "train.updates_per_call=50",
            "--set", "train.log_interval=50", "--out", str(out), "--status-interval", "1", *extra]


def _alive(pid):
    """Whether a process runs (an exited one nobody reaped yet is a zombie: state Z)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _log(out):
    with open(os.path.join(out, "sweep.log")) as f:
        return f.read()


def test_local_sweep_reports_a_failure_goes_on_and_a_second_run_does_nothing(data_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(_argv(data_dir, out, "--parallel", "2")) == 1  # one configuration fails: exit code 1
    printed = capsys.readouterr().out
    assert "summary: 2 finished, 2 failed" in printed
    assert "[FAILED] broken/mqe (exit code 2):" in printed and "broken.npz" in printed
    for agent in ("mqe", "gcbc"):
        for seed in (0, 1):
            run = mqe.load(str(out / "runs" / "walk" / agent / f"s{seed}"))
            assert run.step == 100 and run.config.train.seed == seed
    assert main(_argv(data_dir, out, "--parallel", "2")) == 1
    again = capsys.readouterr().out
    assert "4 jobs, 2 already finished, 2 to run" in again
    assert "[start] walk/" not in again  # nothing finished is started again
    assert "summary: 2 skipped, 2 failed" in again
    assert "4 jobs, 2 already finished" in _log(out)

    report_dir = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report_dir), "--no-figures"]) == 0
    text = (report_dir / "report.md").read_text()
    assert "| walk (ours) |" in text  # no evaluation environment: listed, no score
    rows = (report_dir / "report.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,agent,variant")


def test_a_killed_sweep_resumes_without_redoing_finished_runs(data_dir, tmp_path):
    out = tmp_path / "killed"
    argv = ["sweep", "--datasets", f"{data_dir}/walk.npz", "--agents", "gcbc,mqe", "--seeds", "0-1",
            "--preset", PRESET, "--set", "train.steps=300", "--set", "train.updates_per_call=50",
            "--set", "train.checkpoint_interval=50", "--set", "train.log_interval=50", "--out", str(out),
            "--status-interval", "1"]
    # Started as `nohup mqe sweep ... &` would be: SIGINT ignored, which its jobs inherit.
    sweep = subprocess.Popen([sys.executable, "-m", "mqe", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    mqe_ckpt = out / "runs" / "walk" / "mqe" / "s1" / "checkpoints"
    kill_at_first_checkpoint(sweep, mqe_ckpt, timeout=240)  # the sweep dies at once; its job checkpoints and exits
    job_pid = int((out / "runs" / "walk" / "mqe" / "s1" / ".lock").read_text().split()[1])
    deadline = time.time() + 60
    while time.time() < deadline and _alive(job_pid):
        time.sleep(0.1)  # the orphaned job saves its last chunk and exits
    assert not _alive(job_pid), "the sweep's job outlived it"
    at_kill = mqe.load(str(out / "runs" / "walk" / "mqe" / "s1")).step
    assert 0 < at_kill < 300
    assert main(argv) == 0
    log = _log(out)
    assert "2 jobs, 1 already finished, 1 to run" in log  # gcbc finished before the kill
    assert "[start] walk/mqe: s0 from step" in log and f"s1 from step {at_kill}" in log
    for seed in (0, 1):
        assert mqe.load(str(out / "runs" / "walk" / "mqe" / f"s{seed}")).step == 300
        steps = [json.loads(line)["step"] for line in open(out / "runs" / "walk" / "mqe" / f"s{seed}" / "train.jsonl")]
        assert steps == list(range(50, 301, 50))  # each step logged once across the kill


def test_ray_sweep_on_a_local_ray(data_dir, tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    argv = _argv(data_dir, out, "--backend", "ray", "--cpus-per-run", "1")
    argv[argv.index("mqe,gcbc")] = "gcbc"
    code = main(argv)
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "(ray backend)" in printed
    assert "summary: 1 finished, 1 failed" in printed
    assert "[FAILED] broken/gcbc (exit code 2):" in printed
    for seed in (0, 1):
        assert mqe.load(str(out / "runs" / "walk" / "gcbc" / f"s{seed}")).step == 100


def test_grid_files_and_values(tmp_path):
    assert split_values("[256,256],[512,512]") == ["[256,256]", "[512,512]"]
    assert split_values("0.1, 0.2") == ["0.1", "0.2"]
    grid = tmp_path / "grid.yaml"
    grid.write_text("datasets: [pointmaze-medium-navigate-v0]\nagents: [mqe]\nseeds: 0-2\n"
                    "set: [train.steps=3000]\ngrid:\n  next_state_prob: [0.1, 0.5]\n"
                    "  encoder_hidden_dims: [[64, 64], [128, 128]]\n")
    jobs = expand(load_grid_file(str(grid)), str(tmp_path / "out"))
    assert len(jobs) == 4 and jobs[0].seeds == (0, 1, 2)
    assert {j.config.agent.next_state_prob for j in jobs} == {0.1, 0.5}
    assert {j.config.agent.encoder_hidden_dims for j in jobs} == {(64, 64), (128, 128)}
    assert all(j.config.train.steps == 3000 for j in jobs)
    assert len({j.run_root for j in jobs}) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [x]\nagent: [mqe]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown keys \['agent'\]"):
        load_grid_file(str(bad))
    with pytest.raises(ConfigError, match="qrl / next_state_prob=0.1: unknown config key 'next_state_prob'"):
        expand({"datasets": ["pointmaze-medium-navigate-v0"], "agents": ["qrl"],
                "grid": {"next_state_prob": [0.1]}}, str(tmp_path))
