"""The image encoders by name and the settings that choose them: plain data, no JAX, so that agent
configs (``mqe.agents.configs``) are checked without loading a network."""

from __future__ import annotations

# OGBench's names and sizes (impls/utils/encoders.py): impala_small is what every published pixel run uses.
# resnet34 is the MQE paper's Bridge backbone (mqe.encoders.resnet; ImageNet weights via agent.encoder_weights);
# resnet_debug is a tiny ResNet of the same structure for tests.
ENCODERS: dict[str, dict] = {
    "impala": dict(stack_channels=(16, 32, 32), num_blocks=2, mlp_dims=(512,)),
    "impala_small": dict(stack_channels=(16, 32, 32), num_blocks=1, mlp_dims=(512,)),
    "impala_large": dict(stack_channels=(64, 128, 128), num_blocks=2, mlp_dims=(1024,)),
    "impala_debug": dict(stack_channels=(4, 4), num_blocks=1, mlp_dims=(512,)),
    "resnet34": dict(kind="resnet", stage_sizes=(3, 4, 6, 3), widths=(64, 128, 256, 512)),
    "resnet_debug": dict(kind="resnet", stage_sizes=(1, 1, 1, 1), widths=(4, 4, 8, 8)),
}


def is_resnet(name: str) -> bool:
    return ENCODERS.get(name, {}).get("kind") == "resnet"


GOAL_CONDITIONINGS = ("concat", "film")


def encoder_settings_problem(agent_config) -> str | None:
    """What is wrong with an agent config's encoder, goal_conditioning and encoder_weights together, if
    anything (the agents' configs raise it)."""
    encoder = getattr(agent_config, "encoder", None)
    conditioning = getattr(agent_config, "goal_conditioning", "concat")
    weights = getattr(agent_config, "encoder_weights", None)
    if conditioning not in GOAL_CONDITIONINGS:
        return f"goal_conditioning must be one of {GOAL_CONDITIONINGS}, got {conditioning!r}"
    if conditioning == "film" and encoder is not None and not is_resnet(encoder):
        return f"goal_conditioning=film needs a ResNet encoder (resnet34, resnet_debug), not {encoder!r}"
    if weights and not is_resnet(encoder or ""):
        return f"encoder_weights={weights!r} holds ResNet weights; it needs encoder=resnet34 (got {encoder!r})"
    return None
