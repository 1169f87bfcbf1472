"""Worker processes (``mqe.parallel``): results come back, errors carry the worker's traceback, and
work spreads over several processes."""

import functools
import os

import pytest

from mqe.parallel import Worker, WorkerError, imap_unordered


def test_call_returns_and_errors_carry_the_traceback():
    worker = Worker()
    try:
        assert worker.call(functools.partial(pow, 3), 4) == 81
        assert worker.call(os.getpid) != os.getpid()
        with pytest.raises(WorkerError, match="ZeroDivisionError"):
            worker.call(divmod, 1, 0)
        assert worker.call(divmod, 7, 2) == (3, 1), "a failed call leaves the worker usable"
    finally:
        worker.close()


def test_imap_unordered_runs_every_job_across_processes():
    results = list(imap_unordered(_pid_and_square, range(12), workers=2))
    assert sorted(r[1] for r in results) == [i * i for i in range(12)]
    assert len({r[0] for r in results}) == 2 and os.getpid() not in {r[0] for r in results}


def _pid_and_square(x):
    import time

    time.sleep(0.05)  # long enough that both workers get jobs
    return os.getpid(), x * x
