"""The GPU check: MQE at the paper's configuration, several seeds per program, in one call of a few minutes.

Prepared and run here on CPU with a tiny budget (tests/test_gpu_script.py), so that on a GPU it is the
script's first run on new hardware only. In one call it:

  1. measures the device's matmul rate (float32 and bfloat16 inputs) and prints the environment;
  2. times MQE's fused training loop with every candidate kernel set (``mqe.kernels``; 8 seeds in one
     vmapped program), plus the winner with bfloat16 matmuls, and picks the fastest float32 set;
  3. prints the throughput table with the chosen kernels: updates/s per seed and in total for 1, 8 and
     16 seeds in one program, GFLOP/s achieved and its fraction of the measured matmul rate;
  4. trains every dataset given (8 seeds per program, the paper's configuration and preset) for as many
     of the paper's 1M updates as the time budget allows, checkpointing at 80/90/100% of that budget;
  5. writes to ``--out``: ``runs.tar`` (one run directory per seed: config, training log, provenance and
     float16 policy checkpoints at the paper's three evaluation points, ~1 MB each), ``gpu.json`` (every
     figure above) and ``gpu.log`` (this output). Few files, well under 64 MiB: what a lent GPU returns.

Training needs no simulator: nothing here imports MuJoCo, OGBench or gymnasium. The evaluation runs
later wherever they are installed:

    tar xf OUT/runs.tar -C results
    mqe eval --paper results/runs/*/mqe/s*     # OGBench protocol, writes eval_<step>.json, final_eval.json
    mqe report results/runs                     # the table, beside MQE's Table 1

Usage: python benchmarks/gpu.py --data DIR --out OUT [--datasets a,b] [--seeds 8] [--budget 480]
       python benchmarks/gpu.py ... --set encoder_hidden_dims=32,32 --steps 400   (a tiny CPU run)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import sys
import tarfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from mqe import checkpoint as ckpt
from mqe import kernels
from mqe.agents import AGENTS
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.provenance import collect
from mqe.sampling import DeviceData
from mqe.encoders import with_augmentation
from mqe.train import chunk_dispatch, make_train_chunk, paper_eval_steps, stack, train_seeds
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
    cost = jax.jit(lambda a, b: a.update(b)).lower(single, batch).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
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


def export_runs(run_dirs: dict[int, str], steps: int, every: int, work: str, export_root: str) -> list[str]:
    """Copies each run's small files (``work/X`` to ``export_root/X``) and writes float16 policy
    checkpoints at the paper's evaluation points."""
    points = paper_eval_steps(steps, every)
    written = []
    for run_dir in run_dirs.values():
        out = os.path.join(export_root, os.path.relpath(run_dir, work))
        os.makedirs(out, exist_ok=True)
        for name in ("config.json", "train.csv", "train.jsonl", "provenance.jsonl"):
            if os.path.exists(os.path.join(run_dir, name)):
                shutil.copy2(os.path.join(run_dir, name), out)
        for step in points:
            payload = ckpt.read_checkpoint(ckpt.checkpoint_path(os.path.join(run_dir, "checkpoints"), step))
            cls = AGENTS[payload["config"]["agent_name"]].agent_class
            params = payload["state"]["agent"]["params"]
            written.append(ckpt.save_policy(
                out, step=step, config=payload["config"], params={k: params[k] for k in cls.POLICY_NETWORKS},
                observation_shape=payload["observation_shape"], action_dim=payload["action_dim"]))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with the datasets' .npz files (OGBench layout)")
    parser.add_argument("--datasets", default=DEFAULT_DATASETS, help=f"comma-separated names (default {DEFAULT_DATASETS})")
    parser.add_argument("--out", required=True, help="output folder: runs.tar, gpu.json, gpu.log")
    parser.add_argument("--work", help="where the full run directories go (default: OUT/../gpu-work)")
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
    datasets = {}
    for name in names:
        path = os.path.join(args.data, f"{name}.npz")
        if not os.path.exists(path):
            raise SystemExit(f"gpu.py: error: --data {args.data} has no {name}.npz")
        datasets[name] = Dataset.load_npz(path)
    first = names[0]
    base = make_config("mqe", None, args.overrides, dataset=first)
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
    compile_s, rate = time_loop(bf16, data, args.seeds, args.measure_updates, args.measure_calls)
    timings.append({"kernels": best["kernels"], "matmul_dtype": "bfloat16", "compile_s": compile_s,
                    "updates_per_s_per_seed": rate})
    print(f"  {best['kernels']:40s} bfloat16  {rate:9.1f}   (compiled in {compile_s:.0f} s)")
    print(f"chosen: {best['kernels']} (float32; bfloat16 is {rate / best['updates_per_s_per_seed']:.2f}x of it)")
    summary["kernel_timings"], summary["kernels"] = timings, best["kernels"]
    write_outputs(args.out, None, summary)
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
    write_outputs(args.out, None, summary)
    del data

    # 4. training, as many of the paper's updates as the budget leaves
    work = args.work or os.path.join(os.path.dirname(os.path.abspath(args.out)), "gpu-work")
    every = args.updates_per_call
    if args.steps:
        steps = args.steps
    else:
        left = args.budget - (time.perf_counter() - t0)
        # per dataset: its share of what is left, less a compile and the checkpoint writes
        seconds = left / len(names) - 2 * best["compile_s"] - 15
        steps = steps_that_fit(best["updates_per_s_per_seed"], seconds, args.max_steps, every)
    if steps % (10 * every):
        raise SystemExit(f"gpu.py: error: --steps {steps} must be a multiple of 10 x --updates-per-call ({10 * every})")
    print(f"\ntraining {len(names)} dataset(s) x {args.seeds} seeds for {steps} updates each "
          f"({steps / args.max_steps:.1%} of the paper's budget), {every} updates per call")
    summary["steps"], summary["training"] = steps, []
    export_root = os.path.join(work, "export")
    shutil.rmtree(export_root, ignore_errors=True)
    for name in names:
        config = make_config("mqe", None, [*args.overrides, f"kernels={best['kernels']}", f"train.steps={steps}",
                                           f"train.updates_per_call={every}", f"train.log_interval={steps // 10}",
                                           f"train.checkpoint_interval={steps // 10}", "train.keep_checkpoints=3",
                                           "train.seed_batching=vmap"], dataset=name)
        run_dirs = {s: os.path.join(work, "runs", name, "mqe", f"s{s}") for s in range(args.seeds)}
        start = time.perf_counter()
        results = train_seeds(config, datasets[name], run_dirs, progress=False)
        seconds = time.perf_counter() - start
        losses = [r.train_metrics.get("total_loss", float("nan")) for r in results]
        print(f"{name}: {steps} updates x {args.seeds} seeds in {seconds:.0f} s "
              f"({results[0].updates_per_second:.0f} updates/s per seed); final losses "
              + " ".join(f"{x:.3g}" for x in losses), flush=True)
        summary["training"].append({"dataset": name, "seconds": seconds, "final_total_loss": losses,
                                    "updates_per_s_per_seed": results[0].updates_per_second})
        export_runs(run_dirs, steps, every, work, export_root)
        write_outputs(args.out, export_root, summary)

    summary["seconds"] = time.perf_counter() - t0
    write_outputs(args.out, export_root, summary)
    size = os.path.getsize(os.path.join(args.out, "runs.tar")) / 2**20
    print(f"\nwrote {args.out}/runs.tar ({size:.1f} MiB), gpu.json, gpu.log in {summary['seconds']:.0f} s")
    return 0


def write_outputs(out: str, export_root: str | None, summary: dict) -> None:
    """The few files that come back, rewritten after each dataset so a call cut short keeps what it did."""
    with open(os.path.join(out, "gpu.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    if export_root and os.path.isdir(os.path.join(export_root, "runs")):
        with tarfile.open(os.path.join(out, "runs.tar.part"), "w") as tar:
            tar.add(os.path.join(export_root, "runs"), arcname="runs")
        os.replace(os.path.join(out, "runs.tar.part"), os.path.join(out, "runs.tar"))


if __name__ == "__main__":
    sys.exit(main())
