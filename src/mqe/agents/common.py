"""What every agent shares: the parameter/optimiser/step container, one Adam step on the summed losses,
and Polyak-averaged target networks.

Agents subclass ``AgentState`` and define ``create``, ``total_loss(params, batch) -> (loss, metrics)``,
``sample_actions``, ``value_estimate`` (or ``distance``) if they learn a value, and, if they keep target
networks, ``TARGETS``: the names of the networks whose copies ``target_params`` tracks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.struct
import jax
import jax.numpy as jnp
import optax


def adam(learning_rate: float) -> optax.GradientTransformation:
    """One Adam over all parameters (default betas, eps 1e-8; no clipping, no weight decay)."""
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)


def polyak(target: Any, online: Any, tau: float) -> Any:
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


class AgentState(flax.struct.PyTreeNode):
    """Parameters (a dict of networks by name), target copies, optimiser state, step; static config."""

    params: dict[str, Any]
    target_params: dict[str, Any]
    opt_state: Any
    step: jax.Array
    config: Any = flax.struct.field(pytree_node=False)
    action_dim: int = flax.struct.field(pytree_node=False)

    TARGETS: ClassVar[tuple[str, ...]] = ()  # networks with a Polyak-averaged target copy

    @classmethod
    def from_params(cls, params: dict[str, Any], config: Any, action_dim: int):
        # Own buffers: the training loop donates the whole agent, and one buffer may be donated once.
        targets = {name: jax.tree.map(lambda x: jnp.array(x, copy=True), params[name]) for name in cls.TARGETS}
        return cls(params=params, target_params=targets, opt_state=adam(config.learning_rate).init(params),
                   step=jnp.zeros((), jnp.int32), config=config, action_dim=int(action_dim))

    def total_loss(self, params, batch):
        raise NotImplementedError

    def value_estimate(self, observations, goals):
        """How close each goal looks (higher is closer); from the learned distance where there is one."""
        if not hasattr(self, "distance"):
            raise NotImplementedError(f"{type(self).__name__} learns no value or distance")
        return -jnp.mean(self.distance(observations, goals), axis=0)

    def update(self, batch):
        """One Adam step on the summed losses, then the target update from the pre-step parameters
        (OGBench's order: the targets lag the online networks by one step)."""
        grads, metrics = jax.grad(self.total_loss, has_aux=True)(self.params, batch)
        updates, opt_state = adam(self.config.learning_rate).update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        tau = getattr(self.config, "tau", 0.0)
        targets = {name: polyak(self.target_params[name], self.params[name], tau) for name in self.TARGETS}
        metrics["grad_norm"] = optax.tree.norm(grads)
        return self.replace(params=params, target_params=targets, opt_state=opt_state, step=self.step + 1), metrics
