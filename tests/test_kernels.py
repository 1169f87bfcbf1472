"""Kernel sets (mqe.kernels) change the compiled program, never the math: every set gives the CPU set's
loss and gradients; the bfloat16 switch stays close, and parses, validates and round-trips like any field."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mqe import kernels
from mqe.agents.mqe import MQEAgent, MQEConfig
from mqe.networks import bf16_matmul

SMALL = MQEConfig(batch_size=32, encoder_hidden_dims=(32, 32), actor_hidden_dims=(32, 32), latent_dim=32)


def _batch(b=32, obs_dim=4, action_dim=2):
    rng = np.random.default_rng(0)
    batch = {k: jnp.asarray(rng.normal(size=(b, obs_dim)), jnp.float32)
             for k in ("observations", "goals", "waypoints", "actor_goals")}
    batch["actions"] = jnp.asarray(rng.uniform(-1, 1, (b, action_dim)), jnp.float32)
    batch["waypoint_steps"] = jnp.asarray(rng.integers(1, 20, b), jnp.float32)
    return batch


def _loss_and_grads(config, batch):
    agent = MQEAgent.create(jax.random.PRNGKey(0), batch["observations"][:1], batch["actions"][:1], config)
    (loss, _), grads = jax.jit(jax.value_and_grad(agent.total_loss, has_aux=True))(agent.params, batch)
    return float(loss), grads


def test_resolve():
    assert kernels.resolve("auto", "cpu") == kernels.CPU and kernels.resolve("auto", "gpu") == kernels.GPU
    assert kernels.resolve("gpu,argmax=bits") == dataclasses.replace(kernels.GPU, argmax="bits")
    assert kernels.resolve("ensemble=vmap", "cpu") == dataclasses.replace(kernels.CPU, ensemble="vmap")
    assert kernels.resolve(kernels.CPU.describe(), "gpu") == kernels.CPU  # a described set is explicit
    assert len(kernels.all_sets()) == 8
    with pytest.raises(ValueError, match="'tpu' is not a kernel set"):
        kernels.resolve("tpu")
    with pytest.raises(ValueError, match="argmax must be one of bits|xla"):
        kernels.resolve("argmax=fast")
    with pytest.raises(ValueError, match="MQEConfig: kernels: 'colour=red' is not name=value"):
        MQEConfig(kernels="colour=red")
    with pytest.raises(ValueError, match="matmul_dtype must be one of"):
        MQEConfig(matmul_dtype="float16")


@functools.cache
def _cpu_reference():
    return _loss_and_grads(dataclasses.replace(SMALL, kernels="cpu"), _batch())


# Every choice flipped at once (the GPU set), and the ensemble alone (the one that changes the networks).
@pytest.mark.parametrize("kernel_set", ["cpu,ensemble=vmap", "gpu"])
def test_every_kernel_choice_gives_the_cpu_sets_loss_and_gradients(kernel_set):
    batch = _batch()
    ref_loss, ref_grads = _cpu_reference()
    loss, grads = _loss_and_grads(dataclasses.replace(SMALL, kernels=kernel_set), batch)
    # The same parameters (one layout for every set); values equal up to float summation order.
    assert jax.tree.structure(grads) == jax.tree.structure(ref_grads)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(r))))


def test_bf16_matmul_is_a_rounded_float32_matmul_forward_and_backward():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 64, 48))
    w = jax.random.normal(jax.random.PRNGKey(1), (48, 40))
    g = jax.random.normal(jax.random.PRNGKey(2), (3, 64, 40))
    out, vjp = jax.vjp(bf16_matmul, x, w)
    ref, ref_vjp = jax.vjp(jnp.matmul, x, w)
    assert out.dtype == jnp.float32
    rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))
    assert 0 < rel(out, ref) < 1e-2  # bfloat16 rounds inputs to 8 mantissa bits: ~0.3% error, not 0
    for got, want in zip(vjp(g), ref_vjp(g)):
        assert got.dtype == jnp.float32 and got.shape == want.shape and 0 < rel(got, want) < 1e-2


def test_bf16_switch_keeps_the_loss_and_gradient_directions():
    ref_loss, ref_grads = _cpu_reference()
    loss, grads = _loss_and_grads(dataclasses.replace(SMALL, kernels="cpu", matmul_dtype="bfloat16"), _batch())
    assert loss == pytest.approx(ref_loss, rel=1e-2)
    flat = lambda t: jnp.concatenate([x.ravel() for x in jax.tree.leaves(t)])
    cosine = float(jnp.dot(flat(grads), flat(ref_grads)) / (jnp.linalg.norm(flat(grads)) * jnp.linalg.norm(flat(ref_grads))))
    assert cosine > 0.99
