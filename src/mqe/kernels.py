"""How the hot path is computed, chosen per backend: the same math, different XLA programs.

Several forms in the MQE update were picked by measuring XLA's CPU backend; a GPU may prefer others.
A ``Kernels`` value names one choice per place; ``resolve`` turns the agent config's ``kernels`` string
into one, at trace time, so the choice is a static part of the compiled program.

Choices (all give the same values up to float reordering; tests check each against the CPU set):

  ensemble  unroll | vmap   E ensemble members as E separate matmul chains (stacked), or one batched
                            chain over member parameters stacked at apply time. Same parameter layout.
  argmax    bits | xla      the MRN asymmetric part's arg-max: one integer max over order-preserving keys
                            with the index in the low bits (``quasimetric._fast_argmax``), or XLA's
                            arg-max reduction.
  barrier   on | off        an optimisation barrier between the MRN's two reductions, which keeps XLA on
                            CPU from fusing them into one slow multi-output reduction.

Spec strings: ``auto`` (this backend's set), ``cpu``, ``gpu``, or ``name=value`` pairs over a base set,
e.g. ``gpu,argmax=bits`` or ``ensemble=vmap`` (over ``auto``).
"""

from __future__ import annotations

import dataclasses

CHOICES = {"ensemble": ("unroll", "vmap"), "argmax": ("bits", "xla"), "barrier": ("on", "off")}


@dataclasses.dataclass(frozen=True)
class Kernels:
    ensemble: str = "unroll"
    argmax: str = "bits"
    barrier: str = "on"

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"kernels: {name} must be one of {'|'.join(allowed)}, got {getattr(self, name)!r}")

    def describe(self) -> str:
        return ",".join(f"{name}={getattr(self, name)}" for name in CHOICES)


# Measured on XLA's CPU backend (2 and 16 cores): unrolled ensembles ~15% faster than batched matmuls and
# ~1.5x for the custom-gradient MRN kernel; the bit-key arg-max ~15x faster than XLA's arg-max reduce; the
# barrier avoids a fused multi-output reduction an order of magnitude slower.
CPU = Kernels("unroll", "bits", "on")
# The plain forms, for accelerators. NOT yet measured on a GPU: benchmarks/gpu.py times every set on the
# device and trains with the fastest; its table says which won, and this default follows that table.
GPU = Kernels("vmap", "xla", "off")
NAMED = {"cpu": CPU, "gpu": GPU}


def backend_default(platform: str | None = None) -> Kernels:
    """The set for a backend (``jax.default_backend()`` when not given): CPU's on cpu, GPU's otherwise."""
    if platform is None:
        import jax  # only here: resolving a named set (config validation) needs no JAX

        platform = jax.default_backend()
    return CPU if platform == "cpu" else GPU


def resolve(spec: str | Kernels, platform: str | None = None) -> Kernels:
    """``auto`` | ``cpu`` | ``gpu`` | ``[base,]name=value,...`` -> Kernels (see the module docstring)."""
    if isinstance(spec, Kernels):
        return spec
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    base = backend_default(platform)
    if parts and "=" not in parts[0]:
        head = parts.pop(0)
        if head == "auto":
            pass
        elif head in NAMED:
            base = NAMED[head]
        else:
            raise ValueError(f"kernels: {head!r} is not a kernel set; expected auto, cpu, gpu or name=value pairs")
    changes = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or name not in CHOICES:
            raise ValueError(f"kernels: {part!r} is not name=value with a name in {', '.join(CHOICES)}")
        changes[name] = value
    return dataclasses.replace(base, **changes)


def all_sets() -> list[Kernels]:
    """Every combination of choices (what benchmarks/gpu.py times on a device)."""
    sets = [Kernels()]
    for name, allowed in CHOICES.items():
        sets = [dataclasses.replace(k, **{name: v}) for k in sets for v in allowed]
    return sets


MATMUL_DTYPES = ("float32", "bfloat16")
