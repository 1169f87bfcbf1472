"""Typed run configuration shared by the CLI and the Python API, presets, and ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import json
import types
import typing
from importlib import resources
from typing import Any

from mqe.agents import AGENTS


class ConfigError(ValueError):
    """A bad preset name, override key or value; the message names it and what was expected."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how a run trains, logs and checkpoints."""

    steps: int = 1_000_000  # total gradient updates
    seed: int = 0  # the one seed: parameter init, batch sampling, everything random
    updates_per_call: int = 100  # K updates fused into one compiled lax.scan call
    log_interval: int = 1000  # steps between log rows (a multiple of updates_per_call)
    checkpoint_interval: int = 50_000  # steps between checkpoints (a multiple of updates_per_call)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    eval_interval: int = 0  # steps between evaluations when an evaluator exists (0: only at the end)
    tensorboard: bool = False  # also write TensorBoard event files (needs tensorboardX)

    def __post_init__(self):
        k = self.updates_per_call
        if k < 1:
            raise ConfigError(f"train.updates_per_call must be >= 1, got {k}")
        if self.steps < 1:
            raise ConfigError(f"train.steps must be >= 1, got {self.steps}")
        for name in ("log_interval", "checkpoint_interval", "eval_interval"):
            value = getattr(self, name)
            if value < 0 or (value and value % k):
                raise ConfigError(
                    f"train.{name}={value} must be a non-negative multiple of "
                    f"train.updates_per_call={k} (work happens between compiled calls)"
                )
        if self.keep_checkpoints < 1:
            raise ConfigError(f"train.keep_checkpoints must be >= 1, got {self.keep_checkpoints}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; saved as ``config.json`` and inside every checkpoint."""

    agent_name: str
    agent: Any  # the agent's config dataclass, e.g. MQEConfig
    train: TrainConfig
    dataset: str = ""  # dataset path or name the run was trained on

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_name": self.agent_name,
            "agent": dataclasses.asdict(self.agent),
            "train": dataclasses.asdict(self.train),
            "dataset": self.dataset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        name = data["agent_name"]
        agent_cls = _agent_config_class(name)
        return cls(
            agent_name=name,
            agent=_build(agent_cls, data.get("agent", {}), "agent"),
            train=_build(TrainConfig, data.get("train", {}), "train"),
            dataset=data.get("dataset", ""),
        )


@functools.cache
def load_presets() -> dict[str, Any]:
    text = resources.files("mqe.presets").joinpath("presets.json").read_text()
    return json.loads(text)


def preset_names() -> list[str]:
    return sorted(load_presets()["presets"])


def alpha_for_dataset(dataset_name: str) -> float | None:
    """The paper's BC coefficient (Table 3) for a dataset name, or None if no pattern matches."""
    base = dataset_name.rsplit("/", 1)[-1].removesuffix(".npz")
    for pattern, alpha in load_presets()["alpha_by_dataset"]:
        if fnmatch.fnmatch(base, pattern):
            return float(alpha)
    return None


def dataset_overrides(agent_name: str, dataset_name: str) -> dict[str, Any]:
    """The per-dataset settings of an agent (presets.json ``dataset_overrides``); later matches win."""
    base = dataset_name.rsplit("/", 1)[-1].removesuffix(".npz")
    fields: dict[str, Any] = {}
    for pattern, values in load_presets()["dataset_overrides"].get(agent_name, []):
        if fnmatch.fnmatch(base, pattern):
            fields.update(values)
    return fields


def make_config(
    agent_name: str = "mqe",
    preset: str | None = None,
    overrides: typing.Sequence[str] | dict[str, Any] = (),
    dataset: str = "",
) -> RunConfig:
    """Defaults, then the preset, then overrides (``"alpha=0.1"``, ``"train.steps=1000"``, or a dict)."""
    agent_cls = _agent_config_class(agent_name)
    agent_fields: dict[str, Any] = {}
    train_fields: dict[str, Any] = {}
    if preset is not None:
        presets = load_presets()["presets"]
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(sorted(presets))}")
        entry = presets[preset]
        per_agent = entry.get("agents", {})
        if agent_name in per_agent:  # a preset may carry the same budget under each agent's field names
            agent_fields.update(per_agent[agent_name])
        elif agent_name == "mqe" or not entry.get("agent"):
            agent_fields.update(entry.get("agent", {}))
        else:
            raise ConfigError(f"preset {preset!r} has no settings for agent {agent_name!r} "
                              f"(it covers: mqe{', ' if per_agent else ''}{', '.join(per_agent)})")
        train_fields.update(entry.get("train", {}))
        if entry.get("alpha_from_dataset") and dataset:
            alpha = alpha_for_dataset(dataset)
            if alpha is not None and agent_name == "mqe":
                agent_fields["alpha"] = alpha
        if entry.get("dataset_overrides") and dataset:
            agent_fields.update(dataset_overrides(agent_name, dataset))
    items = overrides.items() if isinstance(overrides, dict) else (_split(o) for o in overrides)
    for key, raw in items:
        section, field = _resolve_key(key, agent_cls)
        target_cls = agent_cls if section == "agent" else TrainConfig
        value = _coerce(raw, _field_types(target_cls)[field], f"{section}.{field}")
        (agent_fields if section == "agent" else train_fields)[field] = value
    return RunConfig(
        agent_name=agent_name,
        agent=_build(agent_cls, agent_fields, "agent"),
        train=_build(TrainConfig, train_fields, "train"),
        dataset=dataset,
    )


def _agent_config_class(name: str):
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; available: {', '.join(sorted(AGENTS))}")
    return AGENTS[name].config_class


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. alpha=0.1 or train.steps=1000)")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _resolve_key(key: str, agent_cls) -> tuple[str, str]:
    sections = {"agent": _field_types(agent_cls), "train": _field_types(TrainConfig)}
    if "." in key:
        section, field = key.split(".", 1)
        if section not in sections:
            raise ConfigError(f"override key {key!r}: section must be 'agent' or 'train'")
        candidates = [section]
    else:
        section, field = None, key
        candidates = [s for s in sections if key in sections[s]]
    for s in candidates:
        if field in sections[s]:
            return s, field
    known = [f"agent.{k}" for k in sections["agent"]] + [f"train.{k}" for k in sections["train"]]
    close = difflib.get_close_matches(key, known + list(sections["agent"]) + list(sections["train"]), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(known)}"
    raise ConfigError(f"unknown config key {key!r}{hint}")


@functools.cache
def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(raw: Any, annotation: Any, name: str) -> Any:
    """Parses a CLI string (or checks a Python value) against a field's type annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        return _coerce(raw, args[0], name)
    if origin is tuple:
        (elem, *_rest) = typing.get_args(annotation)
        if isinstance(raw, str):
            text = raw.strip().strip("[]()")
            parts = [p for p in text.replace(" ", "").split(",") if p]
        else:
            parts = list(raw)
        return tuple(_coerce(p, elem, name) for p in parts)
    try:
        if annotation is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(float(raw)) if isinstance(raw, str) and "e" in raw.lower() else int(raw)
        if annotation is float:
            return float(raw)
        if annotation is str:
            return str(raw)
    except (TypeError, ValueError):
        pass
    else:
        return raw
    raise ConfigError(f"{name}: cannot read {raw!r} as {getattr(annotation, '__name__', annotation)}")


def _build(cls, fields: dict[str, Any], section: str):
    types_ = _field_types(cls)
    unknown = sorted(set(fields) - set(types_))
    if unknown:
        raise ConfigError(f"{section}: unknown keys {unknown}; known: {sorted(types_)}")
    values = {k: _coerce(v, types_[k], f"{section}.{k}") for k, v in fields.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{section}: {exc}") from None
