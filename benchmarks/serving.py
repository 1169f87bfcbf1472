"""Policy-server latency: p50/p99 per request, one client at a time and many at once, through `mqe serve`.

Starts `mqe serve` on loopback in its own process (as a robot would reach it, over TCP, JSON and base64
frames both ways) and times requests from client threads in this process:

  - sequential: one client, one request after another (a robot's control loop): p50, p99, mean;
  - concurrent: C clients at once (several robots, or a batched caller): p50, p99 per request, and
    requests/s in total, with the batches the server formed.

Without ``--run`` it serves MQE at initialisation (latency does not depend on what was learned) in one of
two configurations (``--config``):

  - ``pixel`` (default): OGBench's pixel configuration, 64x64x3 uint8 frames, impala_small encoder
    on the stacked observation and goal, 3x512 actor;
  - ``bridge``: the paper-bridge preset, a ResNet-34 actor with FiLM goal conditioning (two backbone
    passes per request: the goal, then the observation) and a 3x256 policy MLP, on 128x128x3 frames
    (``--frame``; BridgeData V2's released frames are 256x256, the RAIL training code squashes them to
    128x128).

Usage: python benchmarks/serving.py [--run RUN | --config pixel|bridge] [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import threading
import time

import numpy as np

from mqe import checkpoint as ckpt
from mqe.agents import AGENTS
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.serving import PolicyClient
from mqe.serving.launch import ServedPolicy
from mqe.train import initial_state


def pixel_policy_run(directory: str, shape=(64, 64, 3), action_dim: int = 5, preset: str | None = None,
                     overrides=("encoder=impala_small",)) -> str:
    """A policy checkpoint of MQE at the pixel preset's networks (or ``preset``'s), at initialisation."""
    config = make_config("mqe", preset, list(overrides))
    frames = np.zeros((2, *shape), np.uint8)
    dataset = Dataset.from_arrays(frames, np.zeros((2, action_dim), np.float32), np.array([False, True]))
    agent, _ = initial_state(config, dataset)
    ckpt.save_policy(directory, step=0, config=config.to_dict(), stored_dtype="float32",
                     params={k: agent.params[k] for k in AGENTS["mqe"].agent_class.POLICY_NETWORKS},
                     observation_shape=shape, action_dim=action_dim)
    return directory


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.2f} ms   p99 {np.percentile(a, 99):7.2f} ms   mean {a.mean():7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="run directory or checkpoint to serve (default: MQE at the pixel configuration)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per measurement (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads in the concurrent part (default 8)")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--config", choices=["pixel", "bridge"], default="pixel", help="without --run: what to serve")
    parser.add_argument("--frame", type=int, default=128, help="bridge: frame height and width (default 128)")
    args = parser.parse_args()

    where = tempfile.mkdtemp(prefix="mqe-serve-bench-")
    if args.run:
        run = args.run
    elif args.config == "bridge":
        run = pixel_policy_run(where, shape=(args.frame, args.frame, 3), action_dim=7, preset="paper-bridge",
                               overrides=())
    else:
        run = pixel_policy_run(where)
    start = time.perf_counter()
    with ServedPolicy(run, "--max-batch", str(args.max_batch)) as served:
        print(served.banner)
        print(f"server up in {time.perf_counter() - start:.1f} s (load, compile, bind)")
        url = served.url
        with PolicyClient(url) as client:
            health = client.health()
            shape, dtype = tuple(health["observation_shape"]), health["observation_dtype"]
            rng = np.random.default_rng(0)
            frame = lambda: (rng.integers(0, 256, shape, dtype=np.uint8) if dtype == "uint8"
                             else rng.normal(size=shape).astype(np.float32))
            inputs = [(frame(), frame()) for _ in range(args.requests)]
            for o, g in inputs[:10]:  # warm the connection and the server's code paths
                client.act(o, g)
            times = []
            for o, g in inputs:
                t = time.perf_counter()
                client.act(o, g)
                times.append((time.perf_counter() - t) * 1000)
        print(f"\n{health['agent']} step {health['step']}, observation {shape} {dtype}, {health['action_dim']} "
              f"actions, device {health['device']}, {os.cpu_count()} CPU cores")
        print(f"sequential, 1 client, {args.requests} requests:   {percentiles(times)}")

        local = threading.local()

        def ask(pair):
            if not hasattr(local, "client"):
                local.client = PolicyClient(url)
            t = time.perf_counter()
            local.client.act(*pair)
            return (time.perf_counter() - t) * 1000

        with PolicyClient(url) as client:
            before = client.health()["served"]
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            times = list(pool.map(ask, inputs))
        wall = time.perf_counter() - t0
        with PolicyClient(url) as client:
            after = client.health()["served"]
        batches = after["batches"] - before["batches"]
        print(f"concurrent, {args.concurrency} clients, {args.requests} requests: {percentiles(times)}   "
              f"{args.requests / wall:.0f} requests/s, {args.requests / max(batches, 1):.1f} requests per device call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
