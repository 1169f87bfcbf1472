"""A policy served by another Python process over its stdin/stdout (length-prefixed pickles of numpy arrays).

Used by the cross-evaluation: each side's evaluator runs in its own environment (our package, or the reference's
virtual environment) and asks the other side's checkpoint for actions. Needs only numpy and the standard library,
so it runs in both environments.

Request: (observations (B, ...), goals (B, ...)) float32; reply: actions (B, A) float32 (deterministic, clipped).
A request of None ends the server.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from typing import Callable, Sequence

import numpy as np


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=4)
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _read(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("policy pipe closed")
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError("policy pipe closed mid-message")
    return pickle.loads(data)


def serve(act: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Answer requests on this process's stdin/stdout; anything printed goes to stderr instead."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    inp = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the protocol
    _write(out, "ready")
    while True:
        req = _read(inp)
        if req is None:
            break
        obs, goals = req
        _write(out, np.asarray(act(obs, goals), dtype=np.float32))


class PipePolicy:
    """Starts ``command`` (a server calling ``serve``) and calls it like a batched policy function."""

    def __init__(self, command: Sequence[str], env: dict | None = None):
        self.proc = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        hello = _read(self.proc.stdout)
        if hello != "ready":
            raise RuntimeError(f"policy server said {hello!r}")

    def __call__(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations, np.float32)
        g = np.asarray(goals, np.float32)
        single = obs.ndim == 1
        if single:
            obs, g = obs[None], g[None]
        _write(self.proc.stdin, (obs, g))
        actions = _read(self.proc.stdout)
        return actions[0] if single else actions

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                _write(self.proc.stdin, None)
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
