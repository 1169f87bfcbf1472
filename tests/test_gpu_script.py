"""benchmarks/gpu.py runs here end to end with a tiny budget, so that on a GPU it is only new hardware.

The script runs in a subprocess in which MuJoCo, OGBench, gymnasium and the other packages the GPU machine
lacks cannot be imported (training needs no simulator; its evaluation step runs in a child process that
imports them). It trains two agents, evaluates both plain and with the graph planner on the same
checkpoints; its tars then unpack into run directories with those evaluations and float16 policy
checkpoints that act like the full checkpoints they came from, and ``mqe report`` puts them beside MQE's
Table 1. (One episode per task: the point is the pipeline, not the success rate.)
"""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import mqe
import mqe.config
from mqe import checkpoint as ckpt
from mqe.cli import main
from mqe.data.dataset import Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABSENT_ON_THE_GPU_MACHINE = ("mujoco", "ogbench", "gymnasium", "dm_control", "matplotlib",
                             "imageio", "ray", "wandb", "tensorboardX", "pandas")
BLOCKER = f"""
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_ON_THE_GPU_MACHINE!r}:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
sys.path.insert(0, __import__("os").path.dirname(sys.argv[0]))  # as `python script.py` does
runpy.run_path(sys.argv[0], run_name="__main__")
"""
TINY = ["--set", "mqe:encoder_hidden_dims=16,16", "--set", "actor_hidden_dims=16,16", "--set", "mqe:latent_dim=16",
        "--set", "batch_size=16", "--set", "gciql:value_hidden_dims=16,16"]


def _walk_dataset(path):
    rng = np.random.default_rng(0)
    episodes, length = 10, 101
    pos = np.cumsum(rng.normal(scale=0.3, size=(episodes, length, 2)), axis=1) + 10.0
    act = np.clip(rng.normal(size=(episodes, length, 2)), -1, 1)
    terminals = np.zeros((episodes, length), bool)
    terminals[:, -1] = True
    Dataset.from_arrays(pos.reshape(-1, 2).astype(np.float32), act.reshape(-1, 2).astype(np.float32),
                        terminals.reshape(-1)).save_npz(path)


def test_gpu_script_tiny_run_without_a_simulator(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _walk_dataset(data / "pointmaze-giant-navigate-v0.npz")
    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, "-c", BLOCKER, os.path.join(ROOT, "benchmarks", "gpu.py"), "--data", str(data),
               "--datasets", "pointmaze-giant-navigate-v0", "--agents", "mqe,gciql", "--out", str(out),
               "--work", str(work), "--seeds", "2", "--export-seeds", "1",
               "--steps", "100", "--updates-per-call", "10", "--measure-calls", "1", "--throughput-seeds", "1,2",
               "--candidates", "cpu", "--matmul-size", "256", *TINY,
               # the evaluation runs in a child process, which may import the simulator
               "--eval-episodes", "1", "--eval-fractions", "1.0", "--eval-seconds", "300", "--eval-workers", "0", "--eval-planner", "graph", "--budget", "3000",
               "--planner-set", "landmarks=16", "--planner-set", "replan_every=100"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["gpu.json", "gpu.log", "runs_pointmaze-giant-navigate-v0_gciql.tar",
                                       "runs_pointmaze-giant-navigate-v0_mqe.tar"]
    summary = json.loads((out / "gpu.json").read_text())
    assert summary["steps"] == 100
    assert [(t["kernels"], t["matmul_dtype"]) for t in summary["kernel_timings"]] == [
        ("ensemble=unroll,argmax=bits,barrier=on", "float32"), ("ensemble=unroll,argmax=bits,barrier=on", "bfloat16")]
    assert [row["seeds"] for row in summary["throughput"]] == [1, 2]
    assert all(row["updates_per_s_per_seed"] > 0 for row in summary["throughput"])
    assert set(summary["agent_rates"]) == {"mqe", "gciql"}
    assert [(t["agent"], t["dataset"]) for t in summary["training"]] == [
        ("mqe", "pointmaze-giant-navigate-v0"), ("gciql", "pointmaze-giant-navigate-v0")]
    assert "chosen:" in (out / "gpu.log").read_text()
    # Both agents, plain and planned, on the same checkpoints; every seed scored at its last checkpoint
    # (--eval-fractions 1.0, as on a short GPU call).
    assert [(e["agent"], e["planner"], e["status"]) for e in summary["evaluation"]] == [
        ("mqe", "none", "finished"), ("mqe", "graph", "finished"),
        ("gciql", "none", "finished"), ("gciql", "graph", "finished")]
    for entry in summary["evaluation"]:
        assert [s["final"]["evaluated_at"] for s in entry["seeds"]] == [[100]] * 2
        assert 0.0 <= entry["mean"] <= 1.0
        if entry["planner"] == "graph":
            assert all(s["cost"]["replans"] >= 10 and s["cost"]["episodes"] == 10 for s in entry["seeds"])

    results = tmp_path / "results"
    for agent in ("mqe", "gciql"):
        with tarfile.open(out / f"runs_pointmaze-giant-navigate-v0_{agent}.tar") as tar:
            tar.extractall(results, filter="data")
    for seed in (0, 1):
        run = results / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / f"s{seed}"
        config = json.loads((run / "config.json").read_text())
        assert config["train"]["seed"] == seed and config["env"] == "pointmaze-giant-navigate-v0"
        assert config["agent"]["kernels"] == summary["kernels"]
        assert not (run / "checkpoints").exists(), "only the compact policies travel back"
        # the evaluations travel back beside the policies
        assert json.loads((run / "final_eval.json").read_text())["evaluated_at"] == [100]
        assert json.loads((run / "planner_graph-landmarks=16,replan_every=100" / "planner.json").read_text())[
            "settings"]["landmarks"] == 16
        policies = [s for s, _ in ckpt.list_checkpoints(str(run / "policies"), policies=True)]
        assert policies == ([80, 90, 100] if seed == 0 else []), "--export-seeds 1: seed 0's policies only"
    # The float16 policy acts like the full checkpoint it was made from.
    policy = mqe.load(ckpt.checkpoint_at(str(results / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / "s0"), 100))
    full = mqe.load(work / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / "s0")
    assert policy.policy_only and full.step == policy.step == 100
    obs = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32) + 10
    goals = obs[::-1].copy()
    np.testing.assert_allclose(policy.act(obs, goals), full.act(obs, goals), atol=1e-2)

    assert main(["report", str(results / "runs"), "--no-figures", "--fractions", "1.0"]) == 0
    report = (results / "runs" / "report" / "report.md").read_text()
    # columns gciql (graph), gciql, mqe (graph), mqe; MQE's Table 1 and OGBench's GCIQL row beside ours
    assert "| pointmaze-giant-navigate-v0 (published) | 0 ± 0 | 0 ± 0 | 72.8 ± 2.5 | 72.8 ± 2.5 |" in report
    assert "mqe (planner=graph (K 16..3000 to 90% joined, uniform, power 1.0, max edge 50.0, radius 10.0, replan 100))" in report
    assert "mqe (planner=none)" in report and "gciql (planner=none)" in report
    assert "100 updates (paper 1M)" in report and "2 seeds (paper 8)" in report

    seed0 = str(results / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / "s0")
    with pytest.raises(SystemExit):
        main(["eval", "--paper", seed0, "--fractions", "0.5,1.5"])
    assert main(["eval", seed0, "--fractions", "1.0"]) == 2  # --fractions belongs to --paper


def test_eval_paper_names_the_missing_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    config = mqe.config.make_config("mqe", None, ["train.steps=100", "train.updates_per_call=10"],
                                    dataset="pointmaze-giant-navigate-v0")
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    assert main(["eval", "--paper", str(run), "--episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{run}: no checkpoint at step 80" in err and "[80, 90, 100]" in err
    assert main(["eval", "--paper", str(tmp_path), "--no-progress"]) == 2
    assert "not a run directory (no config.json)" in capsys.readouterr().err
