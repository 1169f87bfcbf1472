"""The GPU check: MQE at the paper's configuration, several seeds per program, in one call of a few minutes.

Prepared and run here on CPU with a tiny budget (tests/test_gpu_script.py), so that on a GPU it is the
script's first run on new hardware only. In one call it:

  1. measures the device's matmul rate (float32 and bfloat16 inputs) and prints the environment;
  2. times MQE's fused training loop with every candidate kernel set (``mqe.kernels``; 8 seeds in one
     vmapped program), plus the winner with bfloat16 matmuls, and picks the fastest float32 set;
  3. prints the throughput table with the chosen kernels: updates/s per seed and in total for 1, 8 and
     16 seeds in one program, GFLOP/s achieved and its fraction of the measured matmul rate;
  4. trains every agent given (``--agents``, MQE by default) on every dataset given (8 seeds per program,
     the paper's configuration and preset), all for the same number of updates: as many of the paper's
     1M as the time budget allows, checkpointing at 80/90/100% of that budget;
  5. optionally (``--eval-episodes N``, needs OGBench and MuJoCo there) evaluates the first
     ``--eval-seeds`` seeds of each (dataset, agent) at the paper's three points, plain and, with
     ``--eval-planner graph``, with the test-time planner on the same checkpoints, until the budget ends;
  6. writes to ``--out``: one ``runs_<dataset>_<agent>.tar`` per training (each seed's run directory:
     config, training log, provenance, evaluations, and for the first ``--export-seeds`` seeds float16
     policy checkpoints at the paper's three points, ~1 MB each for a paper-size actor), ``gpu.json``
     (every figure above) and ``gpu.log`` (this output). At most 8 files of 16 MiB each: what a lent
     GPU returns.

Training needs no simulator: nothing in steps 1-4 imports MuJoCo, OGBench or gymnasium. Evaluation can
also run later wherever they are installed:

    for t in OUT/runs_*.tar; do tar xf $t -C results; done
    mqe eval --paper results/runs/*/mqe/s*     # OGBench protocol, writes eval_<step>.json, final_eval.json
    mqe report results/runs                     # the table, beside MQE's Table 1

Usage: python benchmarks/gpu.py --data DIR --out OUT [--datasets a,b] [--agents mqe,gciql] [--seeds 8]
                                [--budget 480] [--eval-episodes 50 --eval-planner graph]
       python benchmarks/gpu.py ... --set encoder_hidden_dims=32,32 --steps 400   (a tiny CPU run)
       --set mqe:latent_dim=16 applies to one agent only; --set KEY=VALUE to every agent.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from mqe import checkpoint as ckpt
from mqe import driver
from mqe import kernels
from mqe.agents import AGENTS
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.provenance import collect
from mqe.sampling import DeviceData
from mqe.encoders import with_augmentation
from mqe.planning.graph import PlannerConfig
from mqe.protocol import evaluation_steps as paper_eval_steps
from mqe.train import chunk_dispatch, make_train_chunk, stack
from throughput import matmul_rate  # benchmarks/ (this script's folder is on sys.path)

DEFAULT_DATASETS = "pointmaze-giant-navigate-v0,pointmaze-giant-stitch-v0"
# Each candidate costs a compilation (tens of seconds on a GPU): the two named sets and the one choice
# most likely to matter on a GPU (the CPU's bit-key arg-max against XLA's arg-max reduction).
CANDIDATES = ("gpu", "cpu", "gpu,argmax=bits")


class Tee(io.TextIOBase):
    """Writes to the terminal and to the log file at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)


def update_flops(config, data: DeviceData) -> float:
    """FLOPs of one update (one seed), from XLA's cost analysis of the lowered update.

    The lowered program's count, not the compiled one's: no compilation to pay for it, and the two agree
    to 0.3% (MQE at the paper's configuration on the CPU: 12.44 against 12.48 GFLOP; the compiled count
    adds fusion bookkeeping, not matmuls)."""
    agent = _agents(config, data, 1)
    batch = config.agent.sampler().sample(jax.random.PRNGKey(0), data)
    single = jax.tree.map(lambda x: x[0], agent)
    lowered = jax.jit(lambda a, b: a.update(b)).lower(single, batch)
    flops = _flops(lowered.cost_analysis())
    if flops != flops:  # the GPU backend's lowered program has no cost analysis (H200, JAX 0.11.2): compile
        try:
            flops = _flops(lowered.compile().cost_analysis())
        except Exception as exc:  # a count is worth less than the rest of the call
            print(f"no FLOP count: {type(exc).__name__}: {str(exc)[:200]}")
    return flops


def _flops(cost) -> float:
    cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _agents(config, data: DeviceData, seeds: int):
    cls = AGENTS[config.agent_name].agent_class
    return stack([cls.create(jax.random.PRNGKey(s), data.observations[:1], data.actions[:1], config.agent)
                  for s in range(seeds)])


def time_loop(config, data: DeviceData, seeds: int, updates: int, calls: int) -> tuple[float, float]:
    """(compile seconds, updates/s per seed) of the fused loop: ``seeds`` vmapped, ``updates`` per call."""
    agents = _agents(config, data, seeds)
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    # The call training makes (train_seeds with seed_batching=vmap), so that training reuses this program.
    sampler = with_augmentation(config.agent, config.agent.sampler())
    chunk = make_train_chunk(sampler, updates, seeds, "vmap" if seeds > 1 else "map", chunk_dispatch(config.agent))
    start = time.perf_counter()
    agents, keys, metrics = chunk(agents, keys, data)
    jax.block_until_ready(agents.step)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(calls):
        agents, keys, metrics = chunk(agents, keys, data)
    jax.block_until_ready(agents.step)
    rate = updates * calls / (time.perf_counter() - start)
    if not np.all(np.isfinite(np.asarray(metrics["total_loss"]))):
        raise RuntimeError(f"non-finite loss while timing kernels {config.agent.kernels!r}")
    return compile_s, rate


def with_agent(config, **changes):
    return dataclasses.replace(config, agent=dataclasses.replace(config.agent, **changes))


def steps_that_fit(rate: float, seconds: float, max_steps: int, every: int) -> int:
    """The most updates (a multiple of 10 * ``every``, so 80/90/100% fall on compiled calls) that ``rate``
    updates/s fit in ``seconds``, at most ``max_steps``."""
    unit = 10 * every
    return int(max(1, min(max_steps, rate * seconds) // unit) * unit)


def agent_overrides(overrides: list[str], agent: str) -> list[str]:
    """``--set KEY=VALUE`` applies to every agent, ``--set AGENT:KEY=VALUE`` to that agent only."""
    chosen = []
    for item in overrides:
        head, colon, rest = item.partition(":")
        if colon and "=" not in head:
            if head not in AGENTS:
                raise SystemExit(f"gpu.py: error: --set {item}: {head!r} is not an agent ({', '.join(sorted(AGENTS))})")
            if head == agent:
                chosen.append(rest)
        else:
            chosen.append(item)
    return chosen


def export_runs(run_dirs: dict[int, str], steps: int, every: int, work: str, export_root: str,
                policy_seeds: int) -> list[str]:
    """Copies each run's small files (``work/X`` to ``export_root/X``) and, for the first ``policy_seeds``
    runs, writes float16 policy checkpoints at the paper's evaluation points."""
    points = paper_eval_steps(steps, every)
    written = []
    for index, run_dir in enumerate(run_dirs.values()):
        out = os.path.join(export_root, os.path.relpath(run_dir, work))
        copy_small_files(run_dir, out)
        if index >= policy_seeds:
            continue
        for step in points:
            payload = ckpt.read_checkpoint(ckpt.checkpoint_path(os.path.join(run_dir, "checkpoints"), step))
            cls = AGENTS[payload["config"]["agent_name"]].agent_class
            params = payload["state"]["agent"]["params"]
            written.append(ckpt.save_policy(
                out, step=step, config=payload["config"], params={k: params[k] for k in cls.POLICY_NETWORKS},
                observation_shape=payload["observation_shape"], action_dim=payload["action_dim"]))
    return written


SMALL_FILES = ("config.json", "train.csv", "train.jsonl", "provenance.jsonl")


def copy_small_files(run_dir: str, out: str) -> None:
    """The run's logs and evaluations (``eval_*.json``, ``final_eval.json``, ``planner_graph*/``)."""
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(run_dir)):
        source = os.path.join(run_dir, name)
        if name in SMALL_FILES or (name.endswith(".json") and name.startswith(("eval_", "final_eval"))):
            shutil.copy2(source, out)
        elif name.startswith("planner_graph") and os.path.isdir(source):
            shutil.copytree(source, os.path.join(out, name), dirs_exist_ok=True)


def tar_name(dataset: str, agent: str) -> str:
    return f"runs_{dataset}_{agent}.tar"


def write_tar(out: str, export_root: str, dataset: str, agent: str) -> str:
    """``OUT/runs_<dataset>_<agent>.tar`` holding ``runs/<dataset>/<agent>/s*``, written atomically."""
    path = os.path.join(out, tar_name(dataset, agent))
    with tarfile.open(path + ".part", "w") as tar:
        tar.add(os.path.join(export_root, "runs", dataset, agent), arcname=f"runs/{dataset}/{agent}")
    os.replace(path + ".part", path)
    return path


def evaluate(args, name: str, agent: str, run_dirs: list[str], planner: bool, seconds: float) -> dict:
    """``mqe eval --paper`` of ``run_dirs`` (plain, or with ``--eval-planner``) in a child process that
    gets at most ``seconds``; returns what it wrote (per seed: overall success, per task, planner cost)."""
    command = [sys.executable, "-m", "mqe", "eval", "--paper", *run_dirs, "--episodes", str(args.eval_episodes),
               "--no-progress", "--dataset-dir", args.data]
    if args.eval_fractions:
        command += ["--fractions", args.eval_fractions]
    if args.eval_workers is not None:
        command += ["--eval-workers", str(args.eval_workers)]
    if planner:
        command += ["--planner", args.eval_planner] + [x for kv in args.planner_set for x in ("--planner-set", kv)]
    # The parent holds most of the device's memory (JAX preallocates it); the child takes what it uses.
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    label = f"{name} {agent} {'planner=' + args.eval_planner if planner else 'plain'}"
    print(f"evaluating {label}: {len(run_dirs)} seed(s), {args.eval_episodes} episodes per task "
          f"(at most {seconds:.0f} s)", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds, env=env)
        output, status = done.stdout + done.stderr, "finished" if done.returncode == 0 else f"failed ({done.returncode})"
    except subprocess.TimeoutExpired as stopped:
        output = (stopped.stdout or b"").decode() + (stopped.stderr or b"").decode()
        status = "stopped at the budget"
    print("\n".join("  | " + line for line in output.strip().splitlines()[-40:]))
    record = {"dataset": name, "agent": agent, "planner": args.eval_planner if planner else "none",
              "status": status, "seconds": time.perf_counter() - start, "seeds": []}
    for run in run_dirs:
        where = os.path.join(run, PlannerConfig.from_overrides(args.planner_set).folder()) if planner else run
        entry = {"run": os.path.basename(run)}
        if os.path.exists(os.path.join(where, "final_eval.json")):
            entry["final"] = json.load(open(os.path.join(where, "final_eval.json")))
        costs = sorted((int(f[5:-5]), f) for f in os.listdir(where) if f.startswith("cost_")) if planner else []
        if costs:  # the last evaluation point's cost
            entry["cost"] = json.load(open(os.path.join(where, costs[-1][1])))
        record["seeds"].append(entry)
    finals = [e["final"]["overall"] for e in record["seeds"] if "final" in e]
    if finals:
        record["mean"] = float(np.mean(finals))
        record["se"] = float(np.std(finals, ddof=1) / np.sqrt(len(finals))) if len(finals) > 1 else 0.0
    print(f"{label}: {status} in {record['seconds']:.0f} s; success per seed "
          + (" ".join(f"{100 * x:.1f}" for x in finals) or "none")
          + (f", mean {100 * record['mean']:.1f} ± {100 * record['se']:.1f}" if finals else ""), flush=True)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with the datasets' .npz files (OGBench layout)")
    parser.add_argument("--datasets", default=DEFAULT_DATASETS, help=f"comma-separated names (default {DEFAULT_DATASETS})")
    parser.add_argument("--out", required=True, help="output folder: runs.tar, gpu.json, gpu.log")
    parser.add_argument("--work", help="where the full run directories go (default: OUT/../gpu-work)")
    parser.add_argument("--agents", default="mqe", help="comma-separated agents to train, each on every dataset "
                        "for the same number of updates (default mqe; the kernel timing is always MQE's)")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per program for training (default 8)")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds for the whole call; training gets what measuring leaves (default 480)")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="the paper's budget (default 1M)")
    parser.add_argument("--steps", type=int, help="train exactly this many updates (skips the budget estimate)")
    parser.add_argument("--updates-per-call", type=int, default=1000, help="updates per compiled call (default 1000)")
    parser.add_argument("--measure-updates", type=int,
                        help="updates per call when timing (default: --updates-per-call, so that training reuses "
                             "the timed program instead of compiling another)")
    parser.add_argument("--measure-calls", type=int, default=3, help="timed calls per measurement (default 3)")
    parser.add_argument("--candidates", default=";".join(CANDIDATES),
                        help="kernel sets to time, separated by ';' (default: %(default)s)")
    parser.add_argument("--throughput-seeds", default="1,8,16", help="program sizes for the table (default 1,8,16)")
    parser.add_argument("--matmul-size", type=int, default=0, help="matmul rate size (default 8192 on GPU, 1024 on CPU)")
    parser.add_argument("--train-matmul-dtype", choices=["float32", "bfloat16", "auto"], default="float32",
                        help="MQE's matmul inputs in training (default float32, the paper's); auto: bfloat16 when "
                             "it measured at least 1.3x faster (the grid-maze ground truth is the same to 0.002 "
                             "Spearman: benchmarks/ground_truth.py --bf16)")
    parser.add_argument("--export-seeds", type=int, default=3,
                        help="seeds per training whose float16 policy checkpoints travel back (default 3; every "
                             "seed's logs and evaluations do)")
    parser.add_argument("--eval-episodes", type=int, default=0,
                        help="after training, mqe eval --paper with this many episodes per task (0: none; the "
                             "paper: 50); needs OGBench and MuJoCo")
    parser.add_argument("--eval-seeds", type=int, default=8, help="seeds evaluated per training (default 8)")
    parser.add_argument("--eval-seconds", type=float, default=0.0,
                        help="seconds of --budget kept for evaluation (training gets the rest)")
    parser.add_argument("--eval-fractions", help="as mqe eval --fractions (default: the paper's 0.8,0.9,1.0)")
    parser.add_argument("--eval-workers", type=int, help="as in mqe eval (default: one per CPU core)")
    parser.add_argument("--eval-planner", choices=["graph"], help="also evaluate with this test-time planner")
    parser.add_argument("--planner-set", action="append", default=[], metavar="KEY=VALUE",
                        help="planner settings, as in mqe eval")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run (as in mqe train)")
    args = parser.parse_args()
    args.measure_updates = args.measure_updates or args.updates_per_call
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "gpu.log"), "w")
    with contextlib.redirect_stdout(Tee(sys.__stdout__, log)):
        return run(args)


def run(args) -> int:
    t0 = time.perf_counter()
    summary: dict = {"provenance": collect(), "args": vars(args)}
    device = jax.devices()[0]
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, device {device.device_kind}, "
          f"{os.cpu_count()} CPU cores")
    n = args.matmul_size or (8192 if jax.default_backend() != "cpu" else 1024)
    rates = {"float32": matmul_rate(n, dtype=jnp.float32), "bfloat16": matmul_rate(n, dtype=jnp.bfloat16)}
    summary["matmul_gflops"] = {"size": n, **rates}
    print(f"matmul {n}x{n}: float32 {rates['float32']:.0f} GFLOP/s, bfloat16 inputs {rates['bfloat16']:.0f} GFLOP/s")

    names = [d for d in args.datasets.split(",") if d]
    agents = [a for a in args.agents.split(",") if a]
    for agent in agents:
        if agent not in AGENTS:
            raise SystemExit(f"gpu.py: error: --agents: {agent!r} is not an agent ({', '.join(sorted(AGENTS))})")
    if args.eval_episodes and args.eval_seconds <= 0:
        raise SystemExit("gpu.py: error: --eval-episodes needs --eval-seconds (the part of --budget kept for it)")
    datasets, paths = {}, {}
    for name in names:
        paths[name] = os.path.join(args.data, f"{name}.npz")
        if not os.path.exists(paths[name]):
            raise SystemExit(f"gpu.py: error: --data {args.data} has no {name}.npz")
        datasets[name] = Dataset.load_npz(paths[name])
    first = names[0]
    base = make_config("mqe", None, agent_overrides(args.overrides, "mqe"), dataset=first)
    data = DeviceData.from_dataset(datasets[first])

    # 2. kernel sets, 8 seeds per program (what training will run)
    print(f"\nkernel sets, {args.seeds} seeds in one program, {args.measure_updates} updates per call "
          f"(updates/s per seed):")
    timings = []
    for spec in [c for c in args.candidates.split(";") if c]:
        config = with_agent(base, kernels=kernels.resolve(spec).describe())
        compile_s, rate = time_loop(config, data, args.seeds, args.measure_updates, args.measure_calls)
        timings.append({"kernels": config.agent.kernels, "matmul_dtype": "float32", "compile_s": compile_s,
                        "updates_per_s_per_seed": rate})
        print(f"  {config.agent.kernels:40s} float32   {rate:9.1f}   (compiled in {compile_s:.0f} s)", flush=True)
    best = max(timings, key=lambda t: t["updates_per_s_per_seed"])
    bf16 = with_agent(base, kernels=best["kernels"], matmul_dtype="bfloat16")
    try:
        compile_s, rate = time_loop(bf16, data, args.seeds, args.measure_updates, args.measure_calls)
    except Exception as exc:  # e.g. a CPU backend without bf16 x bf16 -> f32 dots for this kernel set
        compile_s, rate = float("nan"), 0.0
        print(f"  {best['kernels']:40s} bfloat16  failed: {type(exc).__name__}: {str(exc)[:200]}")
    else:
        print(f"  {best['kernels']:40s} bfloat16  {rate:9.1f}   (compiled in {compile_s:.0f} s)")
    timings.append({"kernels": best["kernels"], "matmul_dtype": "bfloat16", "compile_s": compile_s,
                    "updates_per_s_per_seed": rate})
    print(f"chosen: {best['kernels']} (float32; bfloat16 is {rate / best['updates_per_s_per_seed']:.2f}x of it)")
    summary["kernel_timings"], summary["kernels"] = timings, best["kernels"]
    train_dtype = args.train_matmul_dtype
    if train_dtype == "auto":
        train_dtype = "bfloat16" if rate >= 1.3 * best["updates_per_s_per_seed"] else "float32"
    summary["train_matmul_dtype"] = train_dtype
    mqe_speed = (compile_s, rate) if train_dtype == "bfloat16" else (best["compile_s"], best["updates_per_s_per_seed"])
    write_outputs(args.out, summary)
    base = with_agent(base, kernels=best["kernels"])

    # 3. throughput table with the chosen kernels
    flops = update_flops(base, data)
    print(f"\nthroughput, {best['kernels']}, float32; {flops / 1e9:.2f} GFLOP per update (XLA cost analysis):")
    print(f"{'seeds':>5s} {'per seed':>10s} {'total':>10s} {'GFLOP/s':>9s} {'of matmul':>10s}")
    table = []
    for seeds in [int(s) for s in args.throughput_seeds.split(",") if s]:
        if seeds == args.seeds:
            rate = best["updates_per_s_per_seed"]
        else:
            rate = time_loop(base, data, seeds, args.measure_updates, args.measure_calls)[1]
        achieved = flops * rate * seeds / 1e9
        table.append({"seeds": seeds, "updates_per_s_per_seed": rate, "updates_per_s_total": rate * seeds,
                      "gflops": achieved, "fraction_of_matmul_float32": achieved / rates["float32"]})
        print(f"{seeds:5d} {rate:10.1f} {rate * seeds:10.1f} {achieved:9.0f} {achieved / rates['float32']:10.1%}",
              flush=True)
    summary["throughput"], summary["flops_per_update"] = table, flops
    write_outputs(args.out, summary)

    # every other agent's rate in the program training runs (its compilation is reused by training)
    speed = {"mqe": mqe_speed}
    for agent in agents:
        if agent not in speed:
            config = make_config(agent, None, agent_overrides(args.overrides, agent), dataset=first)
            speed[agent] = time_loop(config, data, args.seeds, args.measure_updates, args.measure_calls)
            print(f"{agent}: {speed[agent][1]:.1f} updates/s per seed, {args.seeds} seeds in one program "
                  f"(compiled in {speed[agent][0]:.0f} s)", flush=True)
    summary["agent_rates"] = {a: {"compile_s": c, "updates_per_s_per_seed": r} for a, (c, r) in speed.items()}
    del data

    # 4. training, as many of the paper's updates as the budget leaves
    work = args.work or os.path.join(os.path.dirname(os.path.abspath(args.out)), "gpu-work")
    every = args.updates_per_call
    if args.steps:
        steps = args.steps
    else:
        left = args.budget - args.eval_seconds - (time.perf_counter() - t0)
        # per dataset: its share of what is left, less each agent's checkpoint writes and, except on the
        # dataset the rates were timed on (whose programs training reuses), a compilation
        compiles = sum(speed[a][0] for a in agents) * (len(names) - 1) / len(names)
        seconds = left / len(names) - compiles - 15 * len(agents)
        seconds_per_update = sum(1.0 / speed[a][1] for a in agents)  # one update of every agent
        steps = steps_that_fit(1.0 / seconds_per_update, seconds, args.max_steps, every)
    if steps % (10 * every):
        raise SystemExit(f"gpu.py: error: --steps {steps} must be a multiple of 10 x --updates-per-call ({10 * every})")
    print(f"\nMQE trains with {train_dtype} matmul inputs")
    print(f"training {len(agents)} agent(s) x {len(names)} dataset(s) x {args.seeds} seeds for {steps} updates "
          f"each ({steps / args.max_steps:.1%} of the paper's budget), {every} updates per call")
    summary["steps"], summary["training"], summary["evaluation"] = steps, [], []
    export_root = os.path.join(work, "export")
    shutil.rmtree(export_root, ignore_errors=True)
    trained = {}
    for name in names:
        for agent in agents:
            extra = [f"kernels={best['kernels']}", f"matmul_dtype={train_dtype}"] if agent == "mqe" else []
            config = make_config(agent, None, [*agent_overrides(args.overrides, agent), *extra, f"train.steps={steps}",
                                               f"train.updates_per_call={every}", f"train.log_interval={steps // 10}",
                                               f"train.checkpoint_interval={steps // 10}", "train.keep_checkpoints=3",
                                               "train.seed_batching=vmap"], dataset=name)
            run_dirs = {s: os.path.join(work, "runs", name, agent, f"s{s}") for s in range(args.seeds)}
            start = time.perf_counter()
            # The library's driver, as mqe train runs it; evaluation comes later (mqe eval --paper, step 5).
            data = driver.TrainingData(datasets[name], paths[name], name, name, name)
            results = [o.result for o in driver.run(config, data, run_dirs, eval_episodes=0, progress=False)]
            seconds = time.perf_counter() - start
            losses = [r.train_metrics.get("total_loss", float("nan")) for r in results]
            print(f"{name} {agent}: {steps} updates x {args.seeds} seeds in {seconds:.0f} s "
                  f"({results[0].updates_per_second:.0f} updates/s per seed); final losses "
                  + " ".join(f"{x:.3g}" for x in losses), flush=True)
            summary["training"].append({"dataset": name, "agent": agent, "seconds": seconds,
                                        "final_total_loss": losses,
                                        "updates_per_s_per_seed": results[0].updates_per_second})
            export_runs(run_dirs, steps, every, work, export_root, args.export_seeds)
            write_tar(args.out, export_root, name, agent)
            write_outputs(args.out, summary)
            trained[name, agent] = list(run_dirs.values())

    # 5. evaluation on the device's machine, plain then planned, until the budget ends
    if args.eval_episodes:
        deadline = t0 + args.budget
        points = args.eval_fractions or "0.8,0.9,1.0 (the paper's)"
        print(f"\nevaluation: {args.eval_episodes} episodes per task at {points} of training, "
              f"first {args.eval_seeds} seed(s)")
        for (name, agent), run_dirs in trained.items():
            for planner in (False, True) if args.eval_planner else (False,):
                seconds = deadline - time.perf_counter() - 10
                if seconds < 20:
                    print(f"no time left to evaluate {name} {agent}{' with the planner' if planner else ''}")
                    continue
                summary["evaluation"].append(evaluate(args, name, agent, run_dirs[:args.eval_seeds], planner, seconds))
                for run in run_dirs:
                    copy_small_files(run, os.path.join(export_root, os.path.relpath(run, work)))
                write_tar(args.out, export_root, name, agent)
                write_outputs(args.out, summary)

    summary["seconds"] = time.perf_counter() - t0
    write_outputs(args.out, summary)
    sizes = ", ".join(f"{f} ({os.path.getsize(os.path.join(args.out, f)) / 2**20:.1f} MiB)"
                      for f in sorted(os.listdir(args.out)) if f.endswith(".tar"))
    print(f"\nwrote to {args.out}: {sizes}, gpu.json, gpu.log in {summary['seconds']:.0f} s")
    return 0


def write_outputs(out: str, summary: dict) -> None:
    """gpu.json, rewritten after each step so that a call cut short keeps what it did."""
    with open(os.path.join(out, "gpu.json.part"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    os.replace(os.path.join(out, "gpu.json.part"), os.path.join(out, "gpu.json"))


if __name__ == "__main__":
    sys.exit(main())
