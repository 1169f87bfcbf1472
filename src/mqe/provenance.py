"""Where a result came from: the code, the libraries, the machine and the command that produced it.

``mqe train`` appends one record per invocation to ``<run dir>/provenance.jsonl`` (a resumed run has one
line per session); ``mqe report`` prints them beside the numbers.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "ogbench", "mujoco")


@functools.cache
def code_version() -> dict[str, Any]:
    """The installed mqe version, and the git commit (with a dirty flag) when it runs from a checkout."""
    out: dict[str, Any] = {}
    try:
        out["mqe"] = metadata.version("mqe-gcrl")
    except metadata.PackageNotFoundError:
        out["mqe"] = "unknown"
    source = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", source, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", source, "status", "--porcelain", "--untracked-files=no", "."],
                                    capture_output=True, text=True, timeout=5)
            out["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


def collect() -> dict[str, Any]:
    """A provenance record for this process, now."""
    import jax

    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    device = jax.devices()[0]
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": ["mqe" if sys.argv[0].endswith(("__main__.py", "mqe")) else os.path.basename(sys.argv[0]),
                    *sys.argv[1:]],
        **code_version(),
        "python": platform.python_version(),
        "libraries": libraries,
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "devices": jax.device_count(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
    }
