"""Worker processes for CPU-bound side work (environment stepping, dataset generation).

A worker is a fresh ``python -m mqe.parallel`` process that runs pickled calls sent over a pipe. Unlike
``multiprocessing``'s spawn start method it never re-imports the caller's main module, so a user's
script without an ``if __name__ == "__main__"`` guard still works; unlike fork it never copies a process
in which JAX's threads are running. Functions and arguments must pickle (module-level functions,
``functools.partial`` of them, plain data).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator


class WorkerError(RuntimeError):
    """A call failed inside a worker; the message carries the worker's traceback."""


class Worker:
    """One worker process. ``submit`` a call, then collect its ``result``; or ``call`` both at once."""

    def __init__(self):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mqe.parallel", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._out = Connection(to_child_w, readable=False)
        self._in = Connection(from_child_r, writable=False)
        self._out.send(list(sys.path))  # so the worker imports what the caller can import

    @property
    def connection(self) -> Connection:
        return self._in

    def submit(self, fn: Callable, *args: Any) -> None:
        self._out.send((fn, args))

    def result(self) -> Any:
        try:
            ok, value = self._in.recv()
        except EOFError:
            raise WorkerError(f"worker process {self.process.pid} died (exit code {self.process.poll()})") from None
        if not ok:
            raise WorkerError(value)
        return value

    def call(self, fn: Callable, *args: Any) -> Any:
        self.submit(fn, *args)
        return self.result()

    def close(self) -> None:
        try:
            self._out.send(None)
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._out.close()
        self._in.close()


def imap_unordered(fn: Callable, jobs: Iterable[Any], workers: int) -> Iterator[Any]:
    """``fn(job)`` for every job, in ``workers`` processes; yields results as they finish."""
    pending = list(jobs)
    pool = [Worker() for _ in range(min(workers, len(pending)))]
    try:
        busy: dict[Connection, Worker] = {}
        for worker in pool:
            if pending:
                worker.submit(fn, pending.pop(0))
                busy[worker.connection] = worker
        while busy:
            for conn in wait(list(busy)):
                worker = busy.pop(conn)
                yield worker.result()
                if pending:
                    worker.submit(fn, pending.pop(0))
                    busy[worker.connection] = worker
    finally:
        for worker in pool:
            worker.close()


def _serve(read_fd: int, write_fd: int) -> None:
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    sys.path[:] = inbox.recv()
    while True:
        try:
            message = inbox.recv()
        except EOFError:
            return
        if message is None:
            return
        fn, args = message
        try:
            outbox.send((True, fn(*args)))
        except BaseException:  # report, never die silently: the caller re-raises it
            try:
                outbox.send((False, traceback.format_exc()))
            except (pickle.PicklingError, OSError):
                return


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
