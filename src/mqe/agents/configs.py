"""Every agent's hyperparameters: one frozen dataclass per agent, every field commented, defaults from the
agent's paper (OGBench's for GCBC/GCIVL/GCIQL/QRL/CRL/HIQL; Table 2 of the MQE paper for MQE). Each agent's
file (``mqe/agents/<name>.py``) trains with its config; presets and per-dataset values are data
(``mqe/presets/presets.json``, resolved by ``mqe.config``).

This module imports no JAX (only the names and settings the configs are checked against), so resolving and
printing a run's settings (``mqe config``, ``mqe report``) starts in a fraction of a second.
"""

from __future__ import annotations

import dataclasses

from mqe import kernels as kernel_sets
from mqe.encoders.names import ENCODERS, encoder_settings_problem
from mqe.settings import DISTANCE_SCALES, QUASIMETRICS, GoalSamplerConfig, SamplerConfig


# ----- the samplers the configs describe -----


def value_goal_sampler(config, **extra) -> GoalSamplerConfig:
    """OGBench's value-agent batches (GCIVL, GCIQL, HIQL): value goals the current state, a geometric future
    state or a random one (``value_p_*``), actor goals uniform future or random (``actor_p_randomgoal``)."""
    return GoalSamplerConfig(
        batch_size=config.batch_size, discount=config.discount, value_p_curgoal=config.value_p_curgoal,
        value_p_trajgoal=config.value_p_trajgoal, value_p_randomgoal=config.value_p_randomgoal,
        actor_p_trajgoal=1.0 - config.actor_p_randomgoal, actor_p_randomgoal=config.actor_p_randomgoal, **extra)


def future_goal_sampler(config) -> GoalSamplerConfig:
    """The contrastive agents' batches (CRL, CMD, TMD): every value goal a geometric future state of
    the trajectory (discount ``config.discount``), actor goals future or random (``actor_p_randomgoal``)."""
    return GoalSamplerConfig(
        batch_size=config.batch_size, discount=config.discount, value_p_curgoal=0.0, value_p_trajgoal=1.0,
        value_p_randomgoal=0.0, actor_p_trajgoal=1.0 - config.actor_p_randomgoal,
        actor_p_randomgoal=config.actor_p_randomgoal, gc_negative=False)


# ----- mqe -----

INVARIANCE_LOSSES = ("exp_squared", "squared", "all_pairs", "expectile", "none")


@dataclasses.dataclass(frozen=True)
class MQEConfig:
    """Every hyperparameter of MQE. Defaults: the paper's state-based configuration (Table 2)."""

    # --- batch sampling (section 2) ---
    batch_size: int = 256  # transitions per update
    discount: float = 0.995  # gamma; value goal K ~ Geom(1 - gamma); one step = |log gamma| of distance
    waypoint_discount: float = 0.95  # lambda: waypoint offset k ~ Geom(1 - lambda)
    next_state_prob: float = 0.2  # p: waypoint replaced by s' (k' = 1) with this probability
    waypoint_distribution: str = "geometric"  # geometric | uniform_to_goal | uniform | fixed (Table 6)
    waypoint_steps: int = 50  # n for the "uniform" (U{1..n}) and "fixed" (k = n) ablations
    # --- critic (sections 1, 3) ---
    latent_dim: int = 512  # D: size of phi(s, a) and psi(x)
    encoder_hidden_dims: tuple[int, ...] = (512, 512, 512)  # hidden widths of phi and psi
    encoder_layer_norm: bool = True  # LayerNorm after each hidden GELU of phi and psi
    ensemble_size: int = 2  # E: independent (phi_e, psi_e) pairs; the actor uses the min over e
    quasimetric: str = "mrn"  # mrn | iqe
    num_components: int = 8  # C: quasimetric components (MRN chunks / IQE components)
    distance_scale: str = "c_sqrt_d"  # c_sqrt_d: 1/(C sqrt D) (MRN); c: 1/C; none: plain sum
    iqe_alpha: float = 0.5  # IQE only: weight of max vs mean over components
    pair_weight: float = 0.5  # omega: weight of the matched (diagonal) pairs in L_T
    linex_clip: float = 5.0  # t: LINEX is linear beyond delta = d - d^w > t
    invariance: str = "exp_squared"  # exp_squared | squared | all_pairs | expectile | none (Table 7)
    invariance_weight: float = 1.0  # weight of L_I
    invariance_expectile: float = 0.7  # kappa of the "expectile" invariance variant
    # --- actor (section 3) ---
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    alpha: float = 0.03  # BC coefficient (Table 3; dataset-dependent, see presets)
    policy_std: float = 1.0  # constant std of the Gaussian policy (log-likelihood of the BC term)
    actor_mean_init_scale: float = 1e-2  # init scale of the policy's mean head
    # --- optimisation ---
    learning_rate: float = 3e-4  # Adam, default betas, eps 1e-8; no clipping, no weight decay
    # --- pixels (paper B.3) ---
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS; impala_small in the paper); None: states
    invariance_encoder_grad: bool = False  # pixels: False stops L_I's gradient at the encoder (paper Eq. 17)
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)
    # --- Bridge (paper appendix C.1) ---
    goal_conditioning: str = "concat"  # actor, images: goal by channel stacking (concat, OGBench) or FiLM (film, ResNets)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights file loaded into every backbone
    # --- numerics and compiled form (not in the paper) ---
    matmul_dtype: str = "float32"  # float32 | bfloat16: network matmuls with bf16 inputs, float32 accumulation
    kernels: str = "auto"  # compiled form of the hot path per backend: auto | cpu | gpu | name=value,... (mqe.kernels)

    def __post_init__(self):
        checks = [
            (self.quasimetric in QUASIMETRICS, f"quasimetric must be one of {QUASIMETRICS}"),
            (self.distance_scale in DISTANCE_SCALES, f"distance_scale must be one of {DISTANCE_SCALES}"),
            (self.invariance in INVARIANCE_LOSSES, f"invariance must be one of {INVARIANCE_LOSSES}"),
            (0.0 <= self.pair_weight <= 1.0, "pair_weight must be in [0, 1]"),
            (0.0 < self.invariance_expectile < 1.0, "invariance_expectile must be in (0, 1)"),
            (self.ensemble_size >= 1, "ensemble_size must be >= 1"),
            (self.linex_clip > 0, "linex_clip must be > 0"),
            (self.policy_std > 0, "policy_std must be > 0"),
            (self.latent_dim % (2 * self.num_components) == 0,
             "latent_dim must be divisible by 2 * num_components"),
            (self.encoder is None or self.encoder in ENCODERS, f"encoder must be None or one of {sorted(ENCODERS)}"),
            (0.0 <= self.crop_prob <= 1.0, "crop_prob must be in [0, 1]"),
            (self.matmul_dtype in kernel_sets.MATMUL_DTYPES,
             f"matmul_dtype must be one of {kernel_sets.MATMUL_DTYPES}"),
        ]
        checks.append((encoder_settings_problem(self) is None, encoder_settings_problem(self)))
        for ok, message in checks:
            if not ok:
                raise ValueError(f"MQEConfig: {message}")
        self.sampler()  # validates the sampling fields
        try:
            kernel_sets.resolve(self.kernels, "cpu")
        except ValueError as exc:
            raise ValueError(f"MQEConfig: {exc}") from None

    def sampler(self) -> SamplerConfig:
        return SamplerConfig(
            batch_size=self.batch_size,
            gamma=self.discount,
            waypoint_discount=self.waypoint_discount,
            next_state_prob=self.next_state_prob,
            waypoint_distribution=self.waypoint_distribution,
            waypoint_steps=self.waypoint_steps,
        )


# ----- gcbc -----

@dataclasses.dataclass(frozen=True)
class GCBCConfig:
    """OGBench's GCBC defaults."""

    batch_size: int = 1024  # transitions per update
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # fraction of random (instead of future) actor goals
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)
    goal_conditioning: str = "concat"  # images: goal by channel stacking (concat, OGBench) or FiLM (film, ResNets; Bridge)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights file loaded into every backbone

    def __post_init__(self):
        problem = encoder_settings_problem(self)
        if problem:
            raise ValueError(f"GCBCConfig: {problem}")

    def sampler(self) -> GoalSamplerConfig:
        return GoalSamplerConfig(batch_size=self.batch_size, actor_p_trajgoal=1.0 - self.actor_p_randomgoal,
                                 actor_p_randomgoal=self.actor_p_randomgoal)


# ----- gcivl -----

@dataclasses.dataclass(frozen=True)
class GCIVLConfig:
    """OGBench's GCIVL defaults."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # V network widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    layer_norm: bool = True  # LayerNorm in the value network
    discount: float = 0.99  # gamma; also the geometric value-goal horizon
    tau: float = 0.005  # Polyak rate of the target value network
    expectile: float = 0.9  # kappa of the expectile value loss
    alpha: float = 10.0  # AWR inverse temperature
    policy_std: float = 1.0  # constant std of the Gaussian policy
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: future state of the trajectory (geometric)
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return value_goal_sampler(self)


# ----- gciql -----

ACTOR_LOSSES = ("ddpgbc", "awr")


@dataclasses.dataclass(frozen=True)
class GCIQLConfig:
    """OGBench's GCIQL defaults (per-dataset alpha in the presets)."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # V and Q widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    layer_norm: bool = True  # LayerNorm in V and Q
    discount: float = 0.99  # gamma; also the geometric value-goal horizon
    tau: float = 0.005  # Polyak rate of the target critic
    expectile: float = 0.9  # kappa of the expectile value loss
    actor_loss: str = "ddpgbc"  # ddpgbc | awr
    alpha: float = 0.3  # BC coefficient (ddpgbc) or AWR inverse temperature (awr)
    policy_std: float = 1.0  # constant std of the Gaussian policy
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: future state of the trajectory (geometric)
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)
    goal_conditioning: str = "concat"  # images: goal by channel stacking (concat, OGBench) or FiLM (film, ResNets; Bridge)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights file loaded into every backbone

    def __post_init__(self):
        if self.actor_loss not in ACTOR_LOSSES:
            raise ValueError(f"actor_loss must be one of {ACTOR_LOSSES}, got {self.actor_loss!r}")
        problem = encoder_settings_problem(self)
        if problem:
            raise ValueError(f"GCIQLConfig: {problem}")

    def sampler(self) -> GoalSamplerConfig:
        return value_goal_sampler(self)


# ----- crl -----

@dataclasses.dataclass(frozen=True)
class CRLConfig:
    """OGBench's CRL defaults (per-dataset alpha in the presets)."""

    batch_size: int = 1024  # transitions per update (B^2 contrastive pairs)
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # phi and psi widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    latent_dim: int = 512  # D: size of phi(s, a) and psi(g)
    layer_norm: bool = True  # LayerNorm in phi and psi
    ensemble_size: int = 2  # independent (phi_e, psi_e) pairs; the actor uses the min over e
    discount: float = 0.99  # geometric horizon of the positive (future) goals
    alpha: float = 0.1  # BC coefficient
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return future_goal_sampler(self)


# ----- hiql -----

@dataclasses.dataclass(frozen=True)
class HIQLConfig:
    """OGBench's HIQL defaults (subgoal_steps 25 for locomotion, 10 for manipulation)."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # value heads and goal representation widths
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # both policies' widths (no LayerNorm)
    layer_norm: bool = True  # LayerNorm in the value and goal representation
    rep_dim: int = 10  # size of the goal representation r(s, g)
    discount: float = 0.99  # gamma; also the geometric value-goal horizon
    tau: float = 0.005  # Polyak rate of the target value heads
    expectile: float = 0.7  # kappa of the expectile value loss
    low_alpha: float = 3.0  # AWR inverse temperature of the low actor
    high_alpha: float = 3.0  # AWR inverse temperature of the high actor
    subgoal_steps: int = 25  # k: how far ahead subgoals are
    low_actor_rep_grad: bool = False  # the low actor's loss also trains r(s, w) (OGBench: True for pixels)
    policy_std: float = 1.0  # constant std of both Gaussian policies
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: future state of the trajectory (geometric)
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.0  # high-level goals: random state (else uniform future)
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return value_goal_sampler(self, subgoal_steps=self.subgoal_steps)


# ----- qrl -----

@dataclasses.dataclass(frozen=True)
class QRLConfig:
    """OGBench's QRL defaults (per-dataset alpha in the presets)."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # phi widths (GELU + LayerNorm)
    dynamics_hidden_dims: tuple[int, ...] = (512, 512, 512)  # latent model widths
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    latent_dim: int = 512  # size of phi
    component_dim: int = 8  # IQE dims per component (latent_dim / component_dim components)
    layer_norm: bool = True  # LayerNorm in phi and the latent model
    eps: float = 0.05  # allowed mean squared excess of one-step distances over 1
    alpha: float = 0.003  # BC coefficient
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def __post_init__(self):
        if self.latent_dim % self.component_dim:
            raise ValueError(f"latent_dim {self.latent_dim} must be divisible by component_dim {self.component_dim}")

    def sampler(self) -> GoalSamplerConfig:
        return GoalSamplerConfig(
            batch_size=self.batch_size, value_p_curgoal=0.0, value_p_trajgoal=0.0, value_p_randomgoal=1.0,
            actor_p_trajgoal=1.0 - self.actor_p_randomgoal, actor_p_randomgoal=self.actor_p_randomgoal,
            gc_negative=False)


# ----- sacbc -----

Q_AGGREGATIONS = ("min", "mean")


@dataclasses.dataclass(frozen=True)
class SACBCConfig:
    """The horizon-reduction repository's n-step SAC+BC defaults."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)  # critic widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)  # actor widths (GELU + LayerNorm)
    layer_norm: bool = True  # LayerNorm in critic and actor
    discount: float = 0.999  # gamma
    nstep: int = 25  # n: backup window (1 = one-step SAC+BC)
    tau: float = 0.005  # Polyak rate of the target critic
    q_aggregation: str = "min"  # min | mean over the two target heads
    alpha: float = 0.1  # BC coefficient (scaled by the batch's mean |Q|)
    entropy_scale: float = 0.5  # target entropy = -entropy_scale * action_dim
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: uniform future state of the trajectory
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.5  # actor goals: random state (else a future state of the trajectory)
    actor_geom_sample: bool = True  # future actor goals: geometric (discount) if True, else uniform
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def __post_init__(self):
        if self.q_aggregation not in Q_AGGREGATIONS:
            raise ValueError(f"q_aggregation must be one of {Q_AGGREGATIONS}, got {self.q_aggregation!r}")
        if self.nstep < 1:
            raise ValueError(f"nstep must be >= 1, got {self.nstep}")

    def sampler(self) -> GoalSamplerConfig:
        # OGBench's value-goal mix, but uniform (not geometric) future goals and n-step success targets
        return value_goal_sampler(self, value_geom_sample=False, actor_geom_sample=self.actor_geom_sample,
                                  gc_negative=False, nstep=self.nstep)


# ----- cmd -----

@dataclasses.dataclass(frozen=True)
class CMDConfig:
    """CMD's released defaults (the OGBench fork)."""

    batch_size: int = 1024  # transitions per update (B^2 contrastive pairs)
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # c widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    latent_dim: int = 512  # D
    layer_norm: bool = True  # LayerNorm in c
    ensemble_size: int = 2  # independent members of c
    num_components: int = 8  # MRN components
    discount: float = 0.99  # geometric horizon of the positive (future) goals
    alpha: float = 0.1  # BC coefficient
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future)
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return future_goal_sampler(self)


# ----- tmd -----

@dataclasses.dataclass(frozen=True)
class TMDConfig:
    """TMD's released defaults (the 2026 version: zeta on both auxiliary terms)."""

    batch_size: int = 512  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # phi and psi widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    latent_dim: int = 512  # D
    layer_norm: bool = True  # LayerNorm in phi and psi
    ensemble_size: int = 2  # independent (phi_e, psi_e) pairs
    num_components: int = 8  # MRN components
    discount: float = 0.99  # gamma of the backup and the geometric goal horizon
    zeta: float = 0.05  # weight of the invariance and backup terms
    linex_clip: float = 3.0  # t: LINEX is linear beyond delta > t
    pair_weight: float = 0.5  # w: weight of the matched pairs in the backup
    alpha: float = 0.1  # BC coefficient
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future)
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return future_goal_sampler(self)


# ----- tra -----

@dataclasses.dataclass(frozen=True)
class TRAConfig:
    """TRA-g's settings (TRA's OGBench code where it states them; our baselines' widths otherwise)."""

    batch_size: int = 1024  # transitions per update (B^2 contrastive pairs); TRA's OGBench code
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # phi and psi widths (GELU + LayerNorm); CRL's, ours
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm); TRA's OGBench code
    latent_dim: int = 512  # D: size of phi and psi (TRA's code ties it to the observation size; ours, as CRL)
    layer_norm: bool = True  # LayerNorm in phi and psi
    ensemble_size: int = 2  # independent (phi_e, psi_e) pairs; the policy reads their mean
    discount: float = 0.99  # gamma: the future state s+ = s_{t+k}, k ~ Geom(1 - gamma)
    repr_reg: float = 1e-6  # weight of mean phi^2 + mean psi^2
    alignment: float = 1.0  # weight of L_NCE (averaged over all B x B pairs, as TRA's code) against L_BC
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future)
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder for phi and psi each (mqe.encoders.ENCODERS); None for states
    # images: concat, the policy reads (phi(s), psi(g)); film, its own ResNet on s, FiLM-conditioned on psi(g)
    goal_conditioning: str = "concat"
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (pixels only)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights for every backbone

    def __post_init__(self):
        problem = encoder_settings_problem(self)
        if problem:
            raise ValueError(f"TRAConfig: {problem}")

    def sampler(self) -> GoalSamplerConfig:
        return future_goal_sampler(self)
