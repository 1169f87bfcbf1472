"""Versioned, atomic checkpoints that carry the full resolved config (``load`` needs nothing else).

A checkpoint is one msgpack file ``ckpt_<step>.msgpack`` holding::

    {"format": "mqe-checkpoint", "version": 2, "sha256": <hex digest of body>, "body": <msgpack bytes of
     {"config": <RunConfig.to_dict() as JSON>, "step": int, "observation_shape": [...], "action_dim": int,
      "state": {"agent": <agent state dict>, "rng": <uint32 key>}, "extra": <JSON>}>}

Every read checks the digest, so a damaged file (a flipped bit, a truncated write from a crashed disk) is
refused by name instead of training on garbage; ``newest_good_checkpoint`` skips such files. Version-1
files (the same fields at the top level, no digest) are still read.

A policy checkpoint ``policies/policy_<step>.msgpack`` is the compact kind a run ships for evaluation
elsewhere: the same header with ``"contents": "policy"``, and in ``state`` only the networks the agent's
``sample_actions`` reads (its ``POLICY_NETWORKS``), stored as ``stored_dtype`` (float16 by default: a
paper-size actor is 1 MB instead of the 48 MB of a full checkpoint with critics and Adam moments).
It can be evaluated (``mqe eval``, ``mqe.load(...).act``) but not resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from typing import Any

import flax.serialization
import jax
import numpy as np

from mqe.errors import MQEError
from mqe.io import atomic_write_bytes

FORMAT = "mqe-checkpoint"
VERSION = 2  # 2: the fields inside a SHA-256-checked body; 1: the same fields at the top level, unchecked
CORRUPT_DIR = "corrupt"  # damaged checkpoints are moved here (kept, never deleted) when a resume skips them
_NAME = re.compile(r"^ckpt_(\d+)\.msgpack$")
_POLICY_NAME = re.compile(r"^policy_(\d+)\.msgpack$")
POLICY_DIR = "policies"


class CheckpointError(MQEError, ValueError):
    """A checkpoint that cannot be read; the message names the file and what is wrong."""


def checkpoint_path(directory: str, step: int) -> str:
    return os.path.join(directory, f"ckpt_{step:010d}.msgpack")


def policy_path(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, POLICY_DIR, f"policy_{step:010d}.msgpack")


def list_checkpoints(directory: str, policies: bool = False) -> list[tuple[int, str]]:
    """(step, path) of every checkpoint in ``directory`` (``policies``: every policy checkpoint),
    oldest first."""
    if not os.path.isdir(directory):
        return []
    pattern = _POLICY_NAME if policies else _NAME
    found = []
    for name in os.listdir(directory):
        match = pattern.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def checkpoint_at(run_dir: str, step: int) -> str | None:
    """The run's full checkpoint at ``step`` if it has one, else its policy checkpoint, else None."""
    for path in (checkpoint_path(os.path.join(run_dir, "checkpoints"), step), policy_path(run_dir, step)):
        if os.path.exists(path):
            return path
    return None


def save_policy(run_dir: str, *, step: int, config: dict[str, Any], params: dict[str, Any],
                observation_shape: tuple[int, ...], action_dim: int, stored_dtype: str = "float16") -> str:
    """Writes a policy checkpoint (see the module docstring) of ``params``: {network name: parameters}."""
    if stored_dtype not in ("float16", "float32"):
        raise ValueError(f"stored_dtype must be float16 or float32, got {stored_dtype!r}")
    payload = {
        "contents": "policy",
        "stored_dtype": stored_dtype,
        "config": json.dumps(config),
        "step": int(step),
        "observation_shape": list(observation_shape),
        "action_dim": int(action_dim),
        "state": {"agent": {"params": jax.tree.map(lambda x: np.asarray(x, stored_dtype), params)}},
        "extra": "{}",
    }
    path = policy_path(run_dir, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_bytes(path, _checked_bytes(payload))
    return path


def _checked_bytes(fields: dict[str, Any]) -> bytes:
    """The file's bytes: ``fields`` serialised as the body, beside its SHA-256."""
    body = flax.serialization.msgpack_serialize(fields)
    return flax.serialization.msgpack_serialize(
        {"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(body).hexdigest(), "body": body})


def save_checkpoint(
    directory: str, *, step: int, config: dict[str, Any], state: Any,
    observation_shape: tuple[int, ...], action_dim: int, keep: int = 2, extra: dict | None = None,
) -> str:
    """Writes ``state`` (any pytree of arrays) atomically, then prunes all but the newest ``keep``.

    ``extra`` holds small JSON-able bookkeeping (e.g. the partially filled log window).
    """
    payload = {
        "config": json.dumps(config),
        "step": int(step),
        "observation_shape": list(observation_shape),
        "action_dim": int(action_dim),
        "state": jax.tree.map(np.asarray, flax.serialization.to_state_dict(state)),
        "extra": json.dumps(extra or {}),
    }
    path = checkpoint_path(directory, step)
    atomic_write_bytes(path, _checked_bytes(payload))
    for _, old in list_checkpoints(directory)[:-keep]:
        os.remove(old)
    return path


def read_checkpoint(path: str) -> dict[str, Any]:
    """Reads and checks a checkpoint file; ``state`` stays a raw state dict (see ``restore_state``)."""
    try:
        with open(path, "rb") as fh:
            payload = flax.serialization.msgpack_restore(fh.read())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CheckpointError(f"{path}: not a readable mqe checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mqe checkpoint (missing format marker {FORMAT!r})")
    if payload.get("version") not in (1, VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format version {payload.get('version')} is not supported "
            f"(this mqe reads versions 1 and {VERSION})"
        )
    if payload["version"] == VERSION:
        body = payload.get("body")
        if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != payload.get("sha256"):
            raise CheckpointError(f"{path}: damaged checkpoint (its contents do not match the SHA-256 written "
                                  "with them)")
        try:
            payload = {"format": FORMAT, "version": VERSION, **flax.serialization.msgpack_restore(body)}
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable mqe checkpoint ({type(exc).__name__})") from None
    payload["config"] = json.loads(payload["config"])
    payload["extra"] = json.loads(payload.get("extra", "{}"))
    payload["observation_shape"] = tuple(payload["observation_shape"])
    return payload


def restore_state(template: Any, state_dict: Any, path: str = "<checkpoint>") -> Any:
    """Loads a raw state dict into a pytree shaped like ``template``, checking every array's shape."""
    state_dict = _with_empty_fields(flax.serialization.to_state_dict(template), state_dict)
    try:
        restored = flax.serialization.from_state_dict(template, state_dict)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: state does not match the config's networks ({exc})") from None
    for ref, got in zip(jax.tree.leaves(template), jax.tree.leaves(restored)):
        if np.shape(ref) != np.shape(got):
            raise CheckpointError(
                f"{path}: array of shape {np.shape(got)} where the config's networks need {np.shape(ref)}"
            )
    return jax.tree.map(lambda ref, got: jax.numpy.asarray(got, dtype=np.asarray(ref).dtype), template, restored)


def _with_empty_fields(template: Any, state: Any) -> Any:
    """``state`` with the template's fields that hold no arrays added where absent, at any depth: an agent's
    empty ``target_params`` is missing from checkpoints written before the agent had the field (MQE's, before
    it shared ``AgentState``)."""
    if not (isinstance(template, dict) and isinstance(state, dict)):
        return state
    out = dict(state)
    for key, value in template.items():
        if key in out:
            out[key] = _with_empty_fields(value, out[key])
        elif not jax.tree.leaves(value):
            out[key] = value
    return out


def newest_good_checkpoint(directory: str, *, set_aside: bool = False) -> tuple[str | None, dict | None]:
    """(path, payload) of the newest checkpoint in ``directory`` that reads (digest and all), else
    (None, None). Newer damaged ones are reported in a warning that names them and the one used; with
    ``set_aside`` they are moved into ``directory/corrupt/`` (kept for inspection, out of the way of
    resumption and pruning)."""
    damaged = []
    for _, path in reversed(list_checkpoints(directory)):
        try:
            payload = read_checkpoint(path)
        except CheckpointError as exc:
            damaged.append((path, str(exc)))
            continue
        break
    else:
        path, payload = None, None
    if damaged:
        moved = []
        for bad, _ in damaged:
            if set_aside:
                os.makedirs(os.path.join(directory, CORRUPT_DIR), exist_ok=True)
                target = os.path.join(directory, CORRUPT_DIR, os.path.basename(bad))
                os.replace(bad, target)
                moved.append(target)
        using = f"using the newest good one, {path}" if path else "no good checkpoint is left"
        aside = f"; moved to {', '.join(moved)}" if moved else ""
        warnings.warn("; ".join(message for _, message in damaged) + f"; {using}{aside}", stacklevel=2)
    return path, payload


def latest_checkpoint(directory: str) -> str | None:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None
