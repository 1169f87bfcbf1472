"""Image encoders for pixel observations: the IMPALA ResNet by name, how agents put it in front of their
networks, and random-crop augmentation inside the compiled step. Depends on nothing else in mqe.

The names and settings (``mqe.encoders.names``) load without JAX; the networks and augmentation load on
first use (``from mqe.encoders import make_encoder`` imports ``mqe.encoders.impala`` then)."""

import importlib
import os

from mqe.encoders.names import ENCODERS, GOAL_CONDITIONINGS, encoder_settings_problem, is_resnet

# name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {**dict.fromkeys(("AugmentedSampler", "augment_batch", "random_crop"), "augment"),
         **dict.fromkeys(("Encoded", "FiLMConditioned", "FiLMGoalEncoded", "GoalConcatEncoded", "encoded",
                          "goal_concat_encoded", "goal_encoded"), "compose"),
         **dict.fromkeys(("ImpalaEncoder", "feature_dim", "make_encoder"), "impala")}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"mqe.encoders.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mqe.encoders' has no attribute {name!r}")

__all__ = ["ENCODERS", "GOAL_CONDITIONINGS", "AugmentedSampler", "Encoded", "FiLMConditioned", "FiLMGoalEncoded",
           "GoalConcatEncoded", "ImpalaEncoder", "augment_batch", "feature_dim", "check_encoder", "encoded", "goal_concat_encoded",
           "goal_encoded", "encoder_settings_problem", "is_resnet", "load_encoder_weights", "read_encoder_weights", "make_encoder", "random_crop", "with_augmentation"]


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


def read_encoder_weights(agent_config) -> dict | None:
    """The ResNet parameters in ``agent_config.encoder_weights`` (a torchvision/timm ResNet-34 file), checked
    against the configured encoder; None when no file is named. Read before the agent is built, so a
    wrong file fails at once."""
    path = getattr(agent_config, "encoder_weights", None)
    if not path:
        return None
    from mqe.encoders.resnet import ResNetEncoder, load_pretrained

    if not is_resnet(agent_config.encoder):
        raise ValueError(f"agent.encoder_weights={path!r} holds ResNet weights, but agent.encoder is "
                         f"{agent_config.encoder!r}; use resnet34")
    if not os.path.isfile(path):
        raise ValueError(f"agent.encoder_weights={path!r}: no such file")
    spec = {k: v for k, v in ENCODERS[agent_config.encoder].items() if k != "kind"}
    return load_pretrained(path, ResNetEncoder(**spec))


def load_encoder_weights(agent, pretrained: dict | None, source: str = "agent.encoder_weights"):
    """``agent`` with ``pretrained`` (``read_encoder_weights``) in every ResNet backbone of its parameters
    and target parameters; unchanged when ``pretrained`` is None."""
    if pretrained is None:
        return agent
    from mqe.encoders.resnet import load_into_backbones

    changes, total = {}, 0
    for name in ("params", "target_params"):
        if isinstance(getattr(agent, name, None), dict):
            changes[name], found = load_into_backbones(getattr(agent, name), pretrained)
            total += found
    if not total:
        raise ValueError(f"{source}: the agent has no ResNet backbone to load the weights into")
    return agent.replace(**changes)


def with_augmentation(agent_config, sampler):
    """``sampler`` followed by random crops when the agent config asks for them (``crop_prob`` > 0)."""
    probability = getattr(agent_config, "crop_prob", 0.0)
    if probability <= 0.0:
        return sampler
    from mqe.encoders.augment import AugmentedSampler

    return AugmentedSampler(sampler, probability)
