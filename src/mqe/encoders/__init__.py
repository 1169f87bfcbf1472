"""Image encoders for pixel observations: the IMPALA ResNet by name, how agents put it in front of their
networks, and random-crop augmentation inside the compiled step. Depends on nothing else in mqe."""

from mqe.encoders.augment import AugmentedSampler, augment_batch, random_crop
from mqe.encoders.compose import Encoded, GoalConcatEncoded, encoded, goal_concat_encoded
from mqe.encoders.impala import ENCODERS, ImpalaEncoder, feature_dim, make_encoder

__all__ = ["ENCODERS", "AugmentedSampler", "Encoded", "GoalConcatEncoded", "ImpalaEncoder", "augment_batch", "feature_dim",
           "check_encoder", "encoded", "goal_concat_encoded", "make_encoder", "random_crop", "with_augmentation"]


def check_encoder(agent_config, observation_shape: tuple[int, ...], source: str = "agent") -> None:
    """A clear error when the observations and ``agent.encoder`` do not fit together: images (H, W, C)
    need an encoder, vectors must not have one."""
    encoder = getattr(agent_config, "encoder", None)
    shape = tuple(observation_shape)
    if len(shape) == 3 and encoder is None:
        raise ValueError(f"{source}: observations are images of shape {shape}, so agent.encoder must name an "
                         f"image encoder (one of {sorted(ENCODERS)}; e.g. --set agent.encoder=impala_small)")
    if len(shape) != 3 and encoder is not None:
        raise ValueError(f"{source}: agent.encoder={encoder!r} needs image observations (H, W, C), but the "
                         f"observations have shape {shape}; leave agent.encoder unset for state observations")
    if encoder is not None and encoder not in ENCODERS:
        raise ValueError(f"{source}: agent.encoder={encoder!r} is not an encoder; expected one of {sorted(ENCODERS)}")


def with_augmentation(agent_config, sampler):
    """``sampler`` followed by random crops when the agent config asks for them (``crop_prob`` > 0)."""
    probability = getattr(agent_config, "crop_prob", 0.0)
    if probability <= 0.0:
        return sampler
    return AugmentedSampler(sampler, probability)
