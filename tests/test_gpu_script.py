"""benchmarks/gpu.py runs here end to end with a tiny budget, so that on a GPU it is only new hardware.

The script runs in a subprocess in which MuJoCo, OGBench, gymnasium and the other packages the GPU machine
lacks cannot be imported (training needs no simulator). Its runs.tar then unpacks into run directories
whose float16 policy checkpoints act like the full checkpoints they came from; ``mqe eval --paper``
evaluates them at the paper's points on OGBench's environment, and ``mqe report`` puts them beside
MQE's Table 1. (One episode per task: the point is the pipeline, not the success rate.)
"""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np

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
TINY = ["--set", "encoder_hidden_dims=16,16", "--set", "actor_hidden_dims=16,16", "--set", "latent_dim=16",
        "--set", "batch_size=16"]


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
               "--datasets", "pointmaze-giant-navigate-v0", "--out", str(out), "--work", str(work), "--seeds", "2",
               "--steps", "100", "--updates-per-call", "10", "--measure-calls", "1", "--throughput-seeds", "1,2",
               "--candidates", "cpu", "--matmul-size", "256", *TINY]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["gpu.json", "gpu.log", "runs.tar"]
    summary = json.loads((out / "gpu.json").read_text())
    assert summary["steps"] == 100
    assert [(t["kernels"], t["matmul_dtype"]) for t in summary["kernel_timings"]] == [
        ("ensemble=unroll,argmax=bits,barrier=on", "float32"), ("ensemble=unroll,argmax=bits,barrier=on", "bfloat16")]
    assert [row["seeds"] for row in summary["throughput"]] == [1, 2]
    assert all(row["updates_per_s_per_seed"] > 0 for row in summary["throughput"])
    assert "chosen:" in (out / "gpu.log").read_text()

    with tarfile.open(out / "runs.tar") as tar:
        tar.extractall(tmp_path / "results", filter="data")
    for seed in (0, 1):
        run = tmp_path / "results" / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / f"s{seed}"
        config = json.loads((run / "config.json").read_text())
        assert config["train"]["seed"] == seed and config["env"] == "pointmaze-giant-navigate-v0"
        assert config["agent"]["kernels"] == summary["kernels"]
        assert [s for s, _ in ckpt.list_checkpoints(str(run / "policies"), policies=True)] == [80, 90, 100]
        assert not (run / "checkpoints").exists(), "only the compact policies travel back"
        # The float16 policy acts like the full checkpoint it was made from.
        policy = mqe.load(ckpt.checkpoint_at(str(run), 100))
        full = mqe.load(work / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / f"s{seed}")
        assert policy.policy_only and full.step == policy.step == 100
        obs = np.random.default_rng(seed).normal(size=(32, 2)).astype(np.float32) + 10
        goals = obs[::-1].copy()
        np.testing.assert_allclose(policy.act(obs, goals), full.act(obs, goals), atol=1e-2)

    runs = [str(tmp_path / "results" / "runs" / "pointmaze-giant-navigate-v0" / "mqe" / f"s{seed}") for seed in (0, 1)]
    # In this process (--eval-workers 0): the workers' own path is tests/test_eval_determinism.py's.
    assert main(["eval", "--paper", *runs, "--episodes", "1", "--no-progress", "--eval-workers", "0"]) == 0
    for run in runs:
        assert sorted(f for f in os.listdir(run) if f.endswith(".json")) == [
            "config.json", "eval_100.json", "eval_80.json", "eval_90.json", "final_eval.json"]
        final = json.loads(open(os.path.join(run, "final_eval.json")).read())
        assert final["evaluated_at"] == [80, 90, 100] and 0.0 <= final["overall"] <= 1.0
    # The same checkpoints with the graph planner: its results beside the plain ones, its cost recorded.
    assert main(["eval", "--paper", *runs, "--episodes", "1", "--no-progress", "--eval-workers", "0",
                 "--planner", "graph", "--landmarks",
                 "16", "--planner-set", "replan_every=100", "--dataset-dir", str(data)]) == 0
    for run in runs:
        planned = os.path.join(run, "planner_graph")
        assert json.loads(open(os.path.join(planned, "planner.json")).read())["settings"]["landmarks"] == 16
        cost = json.loads(open(os.path.join(planned, "cost_100.json")).read())
        assert cost["replans"] >= 10 and cost["seconds_per_replan"] > 0 and cost["episodes"] == 10
        assert json.loads(open(os.path.join(planned, "final_eval.json")).read())["evaluated_at"] == [80, 90, 100]
    assert main(["report", str(tmp_path / "results" / "runs"), "--no-figures"]) == 0
    report = (tmp_path / "results" / "runs" / "report" / "report.md").read_text()
    assert "| pointmaze-giant-navigate-v0 (published) | 72.8 ± 2.5 | 72.8 ± 2.5 |" in report  # MQE Table 1
    assert "mqe (planner=graph (K 16, uniform, power 1.0, max edge 50.0, radius 10.0, replan 100))" in report
    assert "mqe (planner=none)" in report
    assert "100 updates (paper 1M)" in report and "2 seeds (paper 8)" in report


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
