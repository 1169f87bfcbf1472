"""What every agent shares: the parameter/optimiser/step container, one Adam step on the summed losses,
and Polyak-averaged target networks.

Agents subclass ``AgentState`` and define ``create``, ``total_loss(params, batch) -> (loss, metrics)``,
``sample_actions``, ``value_estimate`` (or ``distance``) if they learn a value, and, if they keep target
networks, ``TARGETS``: the names of the networks whose copies ``target_params`` tracks; and
``POLICY_NETWORKS``, the networks ``sample_actions`` reads, if not just ``actor``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar

import flax.struct
import jax
import jax.numpy as jnp
import optax

from mqe import losses
from mqe.encoders import encoded, feature_dim, goal_concat_encoded, make_encoder
from mqe.networks import EnsembleMLP, GaussianPolicy, StateActionEncoder, jitted_init


@dataclasses.dataclass
class StepsFunctions:
    """How far a goal is in environment steps, as an agent learned it (``agent.steps_functions()``; the
    planner and ``mqe.load(...).steps`` use it): embeddings computed once per state, and the steps between
    embeddings. For value agents the "embedding" is the state itself and the steps run the value network
    on the pair."""

    embed_state: Callable[[jax.Array], object]
    embed_goal: Callable[[jax.Array], object]
    steps: Callable[[object, object], jax.Array]  # matched rows of embeddings -> (N,) steps
    units: str  # how the steps were obtained, for the record
    # all pairs of embeddings -> (N, M) steps, where the agent has a kernel for it (MRN's never stores
    # the (N, M, D) differences); None: matched rows of repeated and tiled embeddings
    pairwise: Callable[[object, object], jax.Array] | None = None


def quasimetric_steps(agent, step_distance: float) -> StepsFunctions:
    """Steps of an agent whose backups make one step worth ``step_distance`` of its ensemble distance
    ``d(psi_e(s), psi_e(g))``: ``mean_e d / step_distance``."""
    from mqe.quasimetric import ensemble_pairwise

    matched, pairwise = agent._distances()
    psi = lambda x: agent.psi(agent.params, x)
    scale = 1.0 / step_distance
    return StepsFunctions(psi, psi, lambda a, b: jnp.mean(matched(a, b), axis=0) * scale,
                          "d(psi(s), psi(g)) / |log gamma|",
                          lambda a, b: jnp.mean(ensemble_pairwise(pairwise, a, b), axis=0) * scale)


def value_steps(agent, discount: float) -> StepsFunctions:
    """Steps from a value ``V(s, g)`` of reward -1 per step until the goal: ``V = -(1 - gamma^k) / (1 - gamma)``,
    so ``k = log(1 + (1 - gamma) V) / log gamma`` (V clipped into range)."""
    from mqe.errors import ConfigError

    if not agent.config.sampler().gc_negative:
        raise ConfigError(f"{type(agent).__name__} with gc_negative=False has no steps-to-goal value")

    def steps(s, g):
        v = agent.value_estimate(s, g)
        inner = jnp.clip(1.0 + (1.0 - discount) * v, 1e-6, 1.0)
        return jnp.log(inner) / math.log(discount)

    identity = lambda x: x
    return StepsFunctions(identity, identity, steps, "value V converted: log(1 + (1 - gamma) V) / log gamma")


def adam(learning_rate: float) -> optax.GradientTransformation:
    """One Adam over all parameters (default betas, eps 1e-8; no clipping, no weight decay)."""
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)


def polyak(target: Any, online: Any, tau: float) -> Any:
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def phi_psi_actor_networks(config, action_dim: int, shared_encoder: bool = False) -> dict[str, Any]:
    """phi(s, a) and psi(g) ensembles plus a Gaussian policy (CRL's and TMD's networks).

    Pixels: with ``shared_encoder`` one network ``encoder`` feeds both phi and psi (TMD's reference; read
    it through ``AgentState.features``); otherwise phi encodes states and psi goals, each with its own
    encoder (CRL's reference). The actor always has its own encoder on the stacked images.
    """
    c = config
    own = None if shared_encoder else c.encoder
    networks = {"phi": encoded(own, StateActionEncoder(c.value_hidden_dims, c.latent_dim, c.ensemble_size,
                                                       c.layer_norm)),
                "psi": encoded(own, EnsembleMLP(c.value_hidden_dims, c.latent_dim, c.ensemble_size, c.layer_norm)),
                "actor": goal_concat_encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, action_dim))}
    if shared_encoder and c.encoder is not None:
        networks["encoder"] = make_encoder(c.encoder)
    return networks


def phi_psi_actor_inputs(obs, act, config, shared_encoder: bool = False) -> dict[str, tuple]:
    """``example_inputs`` for ``phi_psi_actor_networks``."""
    if not (shared_encoder and config.encoder is not None):
        return {"phi": (obs, act), "psi": (obs,), "actor": (obs, obs)}
    features = jnp.zeros((obs.shape[0], feature_dim(config.encoder)))
    return {"encoder": (obs,), "phi": (features, act), "psi": (features,), "actor": (obs, obs)}


class AgentState(flax.struct.PyTreeNode):
    """Parameters (a dict of networks by name), target copies, optimiser state, step; static config."""

    params: dict[str, Any]
    target_params: dict[str, Any]
    opt_state: Any
    step: jax.Array
    config: Any = flax.struct.field(pytree_node=False)
    action_dim: int = flax.struct.field(pytree_node=False)

    TARGETS: ClassVar[tuple[str, ...]] = ()  # networks with a Polyak-averaged target copy
    POLICY_NETWORKS: ClassVar[tuple[str, ...]] = ("actor",)  # what sample_actions reads (policy checkpoints)
    SCALARS: ClassVar[tuple[str, ...]] = ()  # learned scalar parameters (initialised to 0), e.g. log multipliers
    LOSSES: ClassVar[tuple[str, ...]] = ("critic_loss", "actor_loss")  # methods summed by total_loss

    @staticmethod
    def build_networks(config: Any, action_dim: int) -> dict[str, Any]:
        """The agent's Flax modules by name."""
        raise NotImplementedError

    @staticmethod
    def example_inputs(observations: jax.Array, actions: jax.Array, config: Any) -> dict[str, tuple]:
        """For each network name, example call arguments (they fix the parameter shapes)."""
        raise NotImplementedError

    @property
    def networks(self) -> dict[str, Any]:
        return self.build_networks(self.config, self.action_dim)

    @classmethod
    def create(cls, key, example_observations, example_actions, config):
        """Initialises every network (one key each) and the optimiser from one key and example batch
        (``example_observations`` may be a tuple of arrays; ``example_inputs`` unpacks it)."""
        obs = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), example_observations)
        act = jnp.asarray(example_actions, jnp.float32)
        action_dim = int(act.shape[-1])
        networks = cls.build_networks(config, action_dim)
        inputs = cls.example_inputs(obs, act, config)
        keys = jax.random.split(key, len(inputs))
        params = {name: jitted_init(networks[name])(k, *args)["params"] for k, (name, args) in zip(keys, inputs.items())}
        params.update({name: jnp.zeros(()) for name in cls.SCALARS})
        return cls.from_params(params, config, action_dim)

    @classmethod
    def from_params(cls, params: dict[str, Any], config: Any, action_dim: int):
        # Own buffers: the training loop donates the whole agent, and one buffer may be donated once.
        targets = {name: jax.tree.map(lambda x: jnp.array(x, copy=True), params[name]) for name in cls.TARGETS}
        return cls(params=params, target_params=targets, opt_state=adam(config.learning_rate).init(params),
                   step=jnp.zeros((), jnp.int32), config=config, action_dim=int(action_dim))

    def total_loss(self, params, batch):
        """The sum of the ``LOSSES`` methods, each ``(params, batch) -> (loss, metrics)``."""
        total, metrics = 0.0, {}
        for name in self.LOSSES:
            loss, terms = getattr(self, name)(params, batch)
            total, metrics = total + loss, {**metrics, **terms}
        return total, {**metrics, "total_loss": total}

    def features(self, params, x):
        """The shared image encoder's features of ``x`` (agents with a network ``encoder``); else ``x``."""
        if "encoder" not in params:
            return x
        return self.networks["encoder"].apply({"params": params["encoder"]}, x)

    def policy_mean(self, params, observations, goals):
        return self.networks["actor"].apply({"params": params["actor"]}, observations, goals)

    def sample_actions(self, observations, goals):
        """Deterministic action: the policy mean clipped to [-1, 1]."""
        return jnp.clip(self.policy_mean(self.params, observations, goals), -1.0, 1.0)

    def ddpg_bc_actor_loss(self, params, batch, q_fn):
        """DDPG+BC on the actor goals: ``q_fn(frozen_params, observations, actions, goals) -> (B,)`` is the
        critic's Q at the clipped policy mean (no gradient reaches the critic's parameters)."""
        obs, goals = batch["observations"], batch["actor_goals"]
        mean = self.policy_mean(params, obs, goals)
        q = q_fn(jax.lax.stop_gradient(params), obs, jnp.clip(mean, -1.0, 1.0), goals)
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, self.config.policy_std)
        q_loss, bc_loss = losses.ddpg_bc_loss(q, log_prob, self.config.alpha)
        return q_loss + bc_loss, {
            "actor/loss": q_loss + bc_loss, "actor/q_loss": q_loss, "actor/q_mean": jnp.mean(q),
            "actor/bc_log_prob": jnp.mean(log_prob),
            "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1.0, 1.0) - batch["actions"]))}

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


class QuasimetricAgent(AgentState):
    """An agent whose critic is an ensemble of quasimetric distances ``d(phi_e(s, a), psi_e(g))`` trained so
    that one environment step is worth ``|log gamma|`` of distance (MQE, TMD). Subclasses define ``phi``,
    ``psi`` and ``_distances() -> (matched, pairwise)``; this class gives the actor's loss and what the agent
    answers about distances."""

    def actor_loss(self, params, batch):
        """DDPG+BC (``AgentState.ddpg_bc_actor_loss``) with ``Q = min_e -d(phi_e(s, a), psi_e(g))``, pessimistic
        over the ensemble."""
        matched, _ = self._distances()
        return self.ddpg_bc_actor_loss(
            params, batch, lambda p, o, a, g: jnp.min(-matched(self.phi(p, o, a), self.psi(p, g)), axis=0))

    def distance(self, observations, goals):
        """Learned d(psi_e(s), psi_e(g)) per ensemble member: (E, ...)."""
        matched, _ = self._distances()
        return matched(self.psi(self.params, observations), self.psi(self.params, goals))

    def step_distance(self) -> float:
        """The distance of one environment step: |log gamma| (the LINEX backups' discount makes it so)."""
        return abs(math.log(self.config.discount))

    def steps_functions(self) -> StepsFunctions:
        """Steps to the goal: mean_e d(psi_e(s), psi_e(g)) / |log gamma|."""
        return quasimetric_steps(self, self.step_distance())
