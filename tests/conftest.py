"""Test-session setup: one JAX compilation cache shared by the session's processes, and one XLA compute
thread per process.

Many tests compile the same programs in different processes: the xdist workers, and the ``mqe train`` /
``mqe sweep`` subprocesses that resume killed runs or run a sweep's jobs. A persistent cache directory
made for this session (and removed after it) lets each program compile once. It changes no result: a
cached executable is the program the same computation compiles to. A cache directory set by the caller
(``JAX_COMPILATION_CACHE_DIR``) is used as it is and kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_CREATED = "MQE_TEST_JAX_CACHE_CREATED"


def pytest_configure(config):
    # One compute thread per process: the xdist workers already fill the cores, and each with a full
    # Eigen thread pool would oversubscribe them. Workers and subprocesses inherit the setting.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return  # the caller's, or the one the controlling process made for its workers
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="mqe-test-jax-cache-")
    os.environ[_CREATED] = "1"
    # Cache every program that takes a noticeable time to compile (JAX's default threshold is 1 s).
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


def pytest_unconfigure(config):
    if os.environ.pop(_CREATED, None) and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ.pop("JAX_COMPILATION_CACHE_DIR"), ignore_errors=True)
