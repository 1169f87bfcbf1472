"""MQE training throughput at the paper's configuration, against this machine's own matmul rate.

Prints, all measured in this one run:
  - updates/s of the fused training loop (sampling + update inside one lax.scan call);
  - FLOPs per update, as counted by XLA's cost analysis of the compiled update;
  - this machine's float32 matmul rate (a large square matmul through the same XLA backend);
  - the fraction of that FLOP bound the update reaches;
  - the all-pairs MRN kernel (distance + gradient, ensemble of 2) with our custom gradient vs plain
    autodiff: time and XLA's temporary-buffer size.

With ``--agents all`` it prints instead one row per agent at its own default configuration (its
paper's batch size and networks): updates/s, FLOPs per update and the fraction of the matmul bound.

With ``--pixels DATASET`` it prints MQE's updates/s at the paper's pixel configuration for that visual
dataset (preset paper-pixel with its per-dataset settings: impala-small encoder, batch, crop augmentation),
on synthetic 64x64x3 uint8 frames, with and without the crops, and the FLOPs per update.

With ``--kernels`` it prints MQE's updates/s at the paper's configuration for each kernel set
(``mqe.kernels``) in float32 and for the CPU set with bfloat16 matmuls, each as a ratio to the CPU set
measured in the same run.

Every ratio printed is between figures measured in this run. (Comparing with the authors' code needs their
code timed beside ours on the same machine; this benchmark does not quote a figure from elsewhere.)

Usage: python benchmarks/throughput.py [--obs-dim 29] [--action-dim 8] [--calls 5] [--updates-per-call 10]
       python benchmarks/throughput.py --agents all [--calls 2 --updates-per-call 5]
       python benchmarks/throughput.py --kernels [--calls 3 --updates-per-call 10]
       python benchmarks/throughput.py --pixels visual-antmaze-giant-stitch-v0 [--calls 3 --updates-per-call 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mqe import kernels
from mqe.agents import AGENTS
from mqe.agents.mqe import MQEConfig
from mqe.encoders import with_augmentation
from mqe.quasimetric import ensemble_pairwise, mrn_pairwise, mrn_pairwise_reference
from mqe.sampling import DeviceData
from mqe.train import chunk_dispatch, make_train_chunk


def _timeit(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats


def matmul_rate(n: int = 2048, repeats: int = 10, dtype=jnp.float32) -> float:
    """Sustained GFLOP/s of an n x n matmul with ``dtype`` inputs and float32 accumulation, default device."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n)).astype(dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n)).astype(dtype)
    matmul = jax.jit(lambda x, y: jax.lax.dot(x, y, preferred_element_type=jnp.float32))
    seconds = _timeit(matmul, a, b, repeats=repeats)
    return 2 * n**3 / seconds / 1e9


def synthetic_data(obs_dim: int, action_dim: int, episodes: int = 100, length: int = 1001) -> DeviceData:
    """Random trajectories with the paper's episode layout (the sampler's cost does not depend on values)."""
    rng = np.random.default_rng(0)
    n = episodes * length
    obs = np.cumsum(rng.normal(size=(n, obs_dim)), axis=0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)
    final = np.repeat(np.arange(length - 1, n, length), length).astype(np.int32)
    return DeviceData.from_arrays(obs, act, final)


def kernel_comparison(batch: int, latent: int, ensemble: int, repeats: int = 5) -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (ensemble, batch, latent))
    y = jax.random.normal(jax.random.PRNGKey(1), (ensemble, batch, latent))
    w = jax.random.normal(jax.random.PRNGKey(2), (ensemble, batch, batch))
    print(f"\nall-pairs MRN distance + gradient, E={ensemble}, B={batch}, D={latent}:")
    results = {}
    for name, fn in (("custom gradient (ours)", mrn_pairwise), ("plain autodiff", mrn_pairwise_reference)):
        grad = jax.jit(jax.grad(lambda a, b: jnp.sum(w * ensemble_pairwise(fn, a, b)), argnums=(0, 1)))
        compiled = grad.lower(x, y).compile()
        memory = compiled.memory_analysis()
        temp = getattr(memory, "temp_size_in_bytes", float("nan")) if memory is not None else float("nan")
        seconds = _timeit(grad, x, y, repeats=repeats)
        results[name] = (seconds, temp)
        print(f"  {name:24s} {seconds * 1e3:8.1f} ms   temporary buffers {temp / 2**20:8.1f} MiB")
    (t_ours, m_ours), (t_ref, m_ref) = results.values()
    print(f"  gain: {t_ref / t_ours:.1f}x faster, {m_ref / max(m_ours, 1):.1f}x less temporary memory")


def synthetic_frames(action_dim: int, episodes: int = 20, length: int = 1001, size: int = 64) -> DeviceData:
    """uint8 frames in the visual datasets' layout (the encoder's and the sampler's cost do not depend on
    the pixel values)."""
    rng = np.random.default_rng(0)
    n = episodes * length
    obs = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    act = rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)
    final = np.repeat(np.arange(length - 1, n, length), length).astype(np.int32)
    return DeviceData.from_arrays(obs, act, final)


def measure(agent_name: str, config, data: DeviceData, calls: int, updates_per_call: int) -> tuple[float, float]:
    """(updates/s of the fused training loop, FLOPs per update) for one agent configuration."""
    spec = AGENTS[agent_name]
    agent = spec.agent_class.create(jax.random.PRNGKey(0), data.observations[:1], data.actions[:1], config)
    sampler = with_augmentation(config, config.sampler())
    batch = sampler.sample(jax.random.PRNGKey(0), data)
    cost = jax.jit(lambda a, b: a.update(b)).lower(agent, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    chunk = make_train_chunk(sampler, updates_per_call, dispatch=chunk_dispatch(config))
    key = jax.random.PRNGKey(1)
    agent, key, _ = chunk(agent, key, data)  # compile
    jax.block_until_ready(agent.step)
    start = time.perf_counter()
    for _ in range(calls):
        agent, key, metrics = chunk(agent, key, data)
    jax.block_until_ready(agent.step)
    seconds = time.perf_counter() - start
    assert np.isfinite(float(metrics["total_loss"])), f"{agent_name} diverged during the benchmark"
    return calls * updates_per_call / seconds, float(cost["flops"])


def agents_table(names: list[str], data: DeviceData, calls: int, updates_per_call: int) -> None:
    """Every agent at its default configuration (its paper's batch size and networks)."""
    peak = matmul_rate()
    print(f"\nmatmul rate of this machine (2048^2 float32): {peak:.1f} GFLOP/s")
    print(f"{'agent':7s} {'batch':>6s} {'updates/s':>10s} {'GFLOP/update':>13s} {'of matmul bound':>16s}")
    for name in names:
        config = AGENTS[name].config_class()
        ups, flops = measure(name, config, data, calls, updates_per_call)
        print(f"{name:7s} {config.batch_size:6d} {ups:10.2f} {flops / 1e9:13.2f} {flops * ups / 1e9 / peak:16.0%}",
              flush=True)


def kernels_table(data: DeviceData, calls: int, updates_per_call: int) -> None:
    """MQE at the paper's configuration: each kernel set, and bfloat16 matmuls, against the CPU set."""
    rows = [(k, "float32") for k in ("cpu", "cpu,ensemble=vmap", "cpu,argmax=xla", "cpu,barrier=off", "gpu")]
    rows.append(("cpu", "bfloat16"))
    print(f"\nMQE, paper configuration, {calls} calls x {updates_per_call} updates, on {jax.default_backend()}:")
    print(f"{'kernels':40s} {'matmuls':9s} {'updates/s':>10s} {'vs cpu set':>11s}")
    reference = None
    for spec, dtype in rows:
        config = dataclasses.replace(MQEConfig(), kernels=kernels.resolve(spec).describe(), matmul_dtype=dtype)
        ups, _ = measure("mqe", config, data, calls, updates_per_call)
        reference = reference or ups
        print(f"{config.kernels:40s} {dtype:9s} {ups:10.2f} {ups / reference:10.2f}x", flush=True)


def pixels_table(dataset: str, calls: int, updates_per_call: int) -> None:
    """MQE at the paper's pixel configuration for ``dataset``, with and without its crop augmentation."""
    from mqe.config import make_config

    run = make_config("mqe", dataset=dataset)
    config = run.agent
    action_dim = 8 if dataset.startswith("visual-antmaze") else 21 if dataset.startswith("visual-humanoidmaze") else 5
    data = synthetic_frames(action_dim)
    print(f"\nMQE, preset {run.preset} on {dataset}: encoder {config.encoder}, batch {config.batch_size}, "
          f"crop_prob {config.crop_prob}, latent {config.latent_dim}, ensemble {config.ensemble_size}, "
          f"{calls} calls x {updates_per_call} updates, on {jax.default_backend()}")
    rows = [("as configured", config)]
    if config.crop_prob > 0:
        rows.append(("no crops", dataclasses.replace(config, crop_prob=0.0)))
    for label, cfg in rows:
        ups, flops = measure("mqe", cfg, data, calls, updates_per_call)
        print(f"  {label:14s} {ups:8.3f} updates/s   {flops / 1e9:8.2f} GFLOP/update   "
              f"{1 / ups:7.2f} s/update   paper budget 500k updates: {500_000 / ups / 3600:8.1f} h", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs-dim", type=int, default=29, help="observation size (29: OGBench antmaze)")
    parser.add_argument("--action-dim", type=int, default=8, help="action size (8: OGBench antmaze)")
    parser.add_argument("--updates-per-call", type=int, default=10)
    parser.add_argument("--calls", type=int, default=5, help="timed compiled calls")
    parser.add_argument("--skip-kernel", action="store_true", help="skip the all-pairs kernel comparison")
    parser.add_argument("--kernels", action="store_true",
                        help="MQE per kernel set and with bfloat16 matmuls, instead of the detailed report")
    parser.add_argument("--pixels", metavar="DATASET",
                        help="MQE at the paper's pixel configuration for this visual-* dataset, on synthetic frames")
    parser.add_argument("--agents", help="'all' or comma-separated names: a table of every agent at its defaults "
                                         "instead of MQE's detailed report")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores visible")
    if args.pixels:
        pixels_table(args.pixels, args.calls, args.updates_per_call)
        return
    data = synthetic_data(args.obs_dim, args.action_dim)
    if args.kernels:
        kernels_table(data, args.calls, args.updates_per_call)
        return
    if args.agents:
        names = list(AGENTS) if args.agents == "all" else args.agents.split(",")
        agents_table(names, data, args.calls, args.updates_per_call)
        return

    config = MQEConfig()  # the paper's state configuration: B 256, 3x512 + LN, D 512, E 2, C 8
    print(f"config: batch {config.batch_size}, encoders {config.encoder_hidden_dims} + LayerNorm, "
          f"latent {config.latent_dim}, ensemble {config.ensemble_size}, policy {config.actor_hidden_dims}, "
          f"obs {args.obs_dim}, action {args.action_dim}")
    ups, flops = measure("mqe", config, data, args.calls, args.updates_per_call)
    gflops_peak = matmul_rate()
    achieved = flops * ups / 1e9
    print(f"\nupdates/s (fused loop, {args.calls} calls x {args.updates_per_call} updates): {ups:.2f}")
    print(f"FLOPs per update (XLA cost analysis):            {flops / 1e9:.2f} GFLOP")
    print(f"matmul rate of this machine (2048^2 float32):    {gflops_peak:.1f} GFLOP/s")
    print(f"achieved by the update:                          {achieved:.1f} GFLOP/s "
          f"= {achieved / gflops_peak:.0%} of the matmul bound")
    print(f"FLOP-bound ceiling:                              {gflops_peak * 1e9 / flops:.2f} updates/s")
    if not args.skip_kernel:
        kernel_comparison(config.batch_size, config.latent_dim, config.ensemble_size)


if __name__ == "__main__":
    main()
