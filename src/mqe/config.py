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

from mqe.errors import ConfigError


SEED_BATCHINGS = ("auto", "vmap", "map")  # train.seed_batching (mqe.train.resolve_seed_batching)


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
    # The paper's final number: the mean of the evaluations at these fractions of train.steps
    # (800k/900k/1M of 1M for states; 300k/400k/500k of 500k for pixels, preset paper-pixel).
    eval_fractions: tuple[float, ...] = (0.8, 0.9, 1.0)
    tensorboard: bool = False  # also write TensorBoard event files (needs tensorboardX)
    wandb_project: str = ""  # also log to Weights & Biases under this project ("" = off; needs wandb)
    # Several seeds in one program (mqe train --seeds): "vmap" batches them into wider kernels (the fast
    # way on a GPU), "map" runs them one after another inside the program (bit-identical to single-seed
    # runs), "auto" takes vmap on an accelerator and map on CPU (where batching gains nothing).
    seed_batching: str = "auto"

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
        if self.seed_batching not in SEED_BATCHINGS:
            raise ConfigError(f"train.seed_batching must be one of {', '.join(SEED_BATCHINGS)}, got {self.seed_batching!r}")
        if not self.eval_fractions or not all(0.0 < f <= 1.0 for f in self.eval_fractions):
            raise ConfigError(f"train.eval_fractions must be fractions in (0, 1], got {self.eval_fractions}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"train.keep_checkpoints must be >= 1, got {self.keep_checkpoints}")


# Config fields that were renamed, per agent: old name -> new name. Old run directories, checkpoints and
# `--set old=...` still read (MQE called its discount `gamma` before every agent's became `discount`).
RENAMED_FIELDS = {"mqe": {"gamma": "discount"}}

# Train fields that change neither what a run computes nor its results (logging, checkpoint cadence, how
# seeds are laid out in one program): a resumed run may change them, and runs that differ only in them
# are one configuration in a report.
BOOKKEEPING = frozenset({"log_interval", "checkpoint_interval", "keep_checkpoints", "eval_interval", "tensorboard",
                         "wandb_project", "seed_batching"})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; saved as ``config.json`` and inside every checkpoint."""

    agent_name: str
    agent: Any  # the agent's config dataclass, e.g. MQEConfig
    train: TrainConfig
    dataset: str = ""  # what the run trains on: an OGBench name, or a file path
    env: str = ""  # the OGBench dataset name whose environment evaluates it ("" = none)
    preset: str = ""  # the preset applied ("" = the agent's defaults)
    # Every field whose value differs from the agent's (or training's) default, with where it came from:
    # {"agent.alpha": {"default": 0.3, "value": 0.03, "source": "..."}}.
    changed: dict = dataclasses.field(default_factory=dict, compare=False)
    dataset_fingerprint: str = ""  # content fingerprint of the training data (mqe.data.fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_name": self.agent_name,
            "agent": dataclasses.asdict(self.agent),
            "train": dataclasses.asdict(self.train),
            "dataset": self.dataset,
            "env": self.env,
            "preset": self.preset,
            "changed_from_defaults": self.changed,
            "dataset_fingerprint": self.dataset_fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        name = data["agent_name"]
        agent_cls = _agent_config_class(name)
        dataset = data.get("dataset", "")
        renamed = RENAMED_FIELDS.get(name, {})
        agent_fields = {renamed.get(k, k): v for k, v in data.get("agent", {}).items()}
        return cls(
            agent_name=name,
            agent=_build(agent_cls, agent_fields, "agent"),
            train=_build(TrainConfig, data.get("train", {}), "train"),
            dataset=dataset,
            # Runs from before `env` existed evaluated on their dataset's name.
            env=data.get("env", dataset if dataset and not dataset.endswith(".npz") else ""),
            preset=data.get("preset", ""),
            changed=data.get("changed_from_defaults", {}),
            dataset_fingerprint=data.get("dataset_fingerprint", ""),
        )

    def describe_changes(self) -> str:
        """One line per value that differs from the defaults, with its source (printed at a run's start)."""
        if not self.changed:
            return "  (none: every value is the agent's default)"
        return "\n".join(f"  {key} = {entry['value']!r} (default {entry['default']!r}; {entry['source']})"
                         for key, entry in sorted(self.changed.items()))


@functools.cache
def load_presets() -> dict[str, Any]:
    text = resources.files("mqe.presets").joinpath("presets.json").read_text()
    return json.loads(text)


NO_PRESET = "none"


def preset_names() -> list[str]:
    return sorted(load_presets()["presets"])


def default_preset(env: str) -> str | None:
    """The preset a run gets when none is named: the paper's settings for an OGBench dataset name
    (``paper-pixel`` for ``visual-*``), nothing otherwise."""
    from mqe.data.names import is_known

    if not env or not is_known(env):
        return None
    return "paper-pixel" if env.startswith("visual-") else "paper"


def _settings_name(dataset_name: str) -> str:
    from mqe.data.names import base_name

    return base_name(dataset_name.rsplit("/", 1)[-1].removesuffix(".npz"))


def alpha_for_dataset(dataset_name: str) -> float | None:
    """The MQE paper's BC coefficient (Table 3) for a dataset name, or None if no row matches."""
    row = _table3_row(dataset_name)
    return None if row is None else row[0]


def _table3_row(dataset_name: str) -> tuple[float, str] | None:
    base = _settings_name(dataset_name)
    for pattern, alpha in load_presets()["alpha_by_dataset"]:
        if fnmatch.fnmatch(base, pattern):
            return float(alpha), pattern
    return None


def dataset_overrides(agent_name: str, dataset_name: str) -> dict[str, tuple[Any, str]]:
    """An agent's per-dataset settings (presets.json ``dataset_overrides``; later matches win), each
    with its source: ``{field: (value, source)}``. A ``visual-*`` name also matches the patterns of its
    state counterpart: OGBench runs both with the same per-dataset values (plus the visual-* entries)."""
    base = _settings_name(dataset_name)
    names = [base, base.removeprefix("visual-")]
    fields: dict[str, tuple[Any, str]] = {}
    for entry in load_presets()["dataset_overrides"].get(agent_name, []):
        if any(fnmatch.fnmatch(name, entry["match"]) for name in names):
            for key, value in entry["set"].items():
                fields[key] = (value, f"{entry['source']}; {entry['match']}")
    return fields


def pixel_overrides(agent_name: str) -> dict[str, tuple[Any, str]]:
    """The per-dataset settings every ``visual-*`` dataset gets (the entries matching ``visual-*`` itself),
    each with its source: a pixel preset applies them to image data of any name."""
    fields: dict[str, tuple[Any, str]] = {}
    for entry in load_presets()["dataset_overrides"].get(agent_name, []):
        if entry["match"] == "visual-*":
            for key, value in entry["set"].items():
                fields[key] = (value, f"{entry['source']}; every pixel run (preset on image data)")
    return fields


def make_config(
    agent_name: str = "mqe",
    preset: str | None = None,
    overrides: typing.Sequence[str] | dict[str, Any] = (),
    dataset: str = "",
    env: str | None = None,
) -> RunConfig:
    """Defaults, then the preset, then overrides (``"alpha=0.1"``, ``"train.steps=1000"``, or a dict).

    ``env`` is the OGBench dataset name the run is evaluated on and whose per-dataset settings it gets;
    it defaults to ``dataset`` when that is a known name. ``preset=None`` picks the paper's preset for a
    known name (see ``default_preset``) and none otherwise; ``preset="none"`` asks for the agent's defaults.
    """
    from mqe.data.names import is_known

    agent_cls = _agent_config_class(agent_name)
    if env is None:
        env = _settings_name(dataset) if dataset and is_known(_settings_name(dataset)) else ""
    if preset is None:
        preset = default_preset(env)
    elif preset == NO_PRESET:
        preset = None
    settings_name = env  # per-dataset settings come from the name only, never from a file name
    agent_fields: dict[str, Any] = {}
    train_fields: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(fields: dict, section: str, values: dict, source: str) -> None:
        for key, value in values.items():
            fields[key] = value
            sources[f"{section}.{key}"] = source

    if preset is not None:
        presets = load_presets()["presets"]
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(sorted(presets))}, "
                              f"or {NO_PRESET!r} for the agent's defaults")
        entry = presets[preset]
        per_agent = entry.get("agents", {})
        if agent_name in per_agent:  # a preset may carry the same budget under each agent's field names
            put(agent_fields, "agent", per_agent[agent_name], f"preset {preset}")
        elif agent_name == "mqe" or not entry.get("agent"):
            put(agent_fields, "agent", entry.get("agent", {}), f"preset {preset}")
        else:
            raise ConfigError(f"preset {preset!r} has no settings for agent {agent_name!r} "
                              f"(it covers: mqe{', ' if per_agent else ''}{', '.join(per_agent)})")
        put(train_fields, "train", entry.get("train", {}), f"preset {preset}")
        if entry.get("alpha_from_dataset") and settings_name and agent_name == "mqe":
            found = _table3_row(settings_name)
            if found is not None:
                put(agent_fields, "agent", {"alpha": found[0]}, f"MQE paper Table 3; {found[1]}")
        if entry.get("pixel_overrides") and not settings_name.startswith("visual-"):
            # Image data under another name (a user's file, a robot dataset): what every visual-* run gets
            # (the encoder, its batch size), before any per-dataset value of the name it is evaluated on.
            for key, (value, source) in pixel_overrides(agent_name).items():
                put(agent_fields, "agent", {key: value}, source)
        if entry.get("dataset_overrides") and settings_name:
            for key, (value, source) in dataset_overrides(agent_name, settings_name).items():
                put(agent_fields, "agent", {key: value}, source)
    items = overrides.items() if isinstance(overrides, dict) else (_split(o) for o in overrides)
    renamed = RENAMED_FIELDS.get(agent_name, {})
    for key, raw in items:
        section, field = _resolve_key(_renamed_key(key, renamed), agent_cls)
        target_cls = agent_cls if section == "agent" else TrainConfig
        value = _coerce(raw, _field_types(target_cls)[field], f"{section}.{field}")
        put(agent_fields if section == "agent" else train_fields, section, {field: value}, "--set")
    agent = _build(agent_cls, agent_fields, "agent")
    train = _build(TrainConfig, train_fields, "train")
    changed = {}
    for section, built, defaults in (("agent", agent, agent_cls()), ("train", train, TrainConfig())):
        for f in dataclasses.fields(built):
            value, default = getattr(built, f.name), getattr(defaults, f.name)
            if value != default:
                changed[f"{section}.{f.name}"] = {"default": _jsonable(default), "value": _jsonable(value),
                                                  "source": sources.get(f"{section}.{f.name}", "?")}
    return RunConfig(agent_name=agent_name, agent=agent, train=train, dataset=dataset, env=env,
                     preset=preset or "", changed=changed)


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``"0-7"``, ``"0,2,5"`` or ``"0-3,8"`` -> the seeds, in order, each once."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (None, None)
                first, last = int(lo), int(hi)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} {text!r}: expected seeds like 0-7, 0,2,5 or 0-3,8 "
                              f"(non-negative integers; a range low-high with low <= high)") from None
    if any(seed < 0 for seed in seeds):
        raise ConfigError(f"{flag} {text!r}: seeds are non-negative integers")
    return list(dict.fromkeys(seeds))


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _agent_config_class(name: str):
    from mqe.agents import AGENTS  # the agents' code loads only when a config is built

    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; available: {', '.join(sorted(AGENTS))}")
    return AGENTS[name].config_class


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. alpha=0.1 or train.steps=1000)")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _renamed_key(key: str, renamed: dict[str, str]) -> str:
    """An override's key under a field's current name (``gamma`` -> ``discount`` for MQE), with a warning."""
    section, _, field = key.rpartition(".")
    if field in renamed and section in ("", "agent"):
        import warnings

        warnings.warn(f"--set {key}: {field!r} is now called {renamed[field]!r}", stacklevel=3)
        return (section + "." if section else "") + renamed[field]
    return key


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
