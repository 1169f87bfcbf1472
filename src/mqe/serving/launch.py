"""``mqe serve`` in a child process, for benchmarks, tests and demos that drive a robot through it.

    with ServedPolicy(run_dir, "--max-batch", "8") as served:
        client = PolicyClient(served.url)

The child listens on a free loopback port and prints one line once its model is compiled and the port is
open; that line (``served.banner``) names the URL. Its stderr goes to a temporary file (a pipe nobody reads
would fill with warnings and block the server); its end is shown if the server does not start.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading


class ServedPolicy:
    def __init__(self, run: str, *serve_args: str, start_timeout: float = 600.0):
        self.command = [sys.executable, "-m", "mqe", "serve", run, "--host", "127.0.0.1", "--port", "0", *serve_args]
        self.start_timeout = start_timeout  # seconds for the model to load and compile
        self.process: subprocess.Popen | None = None
        self.url = self.banner = ""
        self._stderr = None

    def __enter__(self) -> "ServedPolicy":
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        self.banner = lines[0].strip() if lines else ""
        match = re.search(r"at (https?://127\.0\.0\.1:\d+)", self.banner)
        if not match:
            stderr = self._stderr
            self._stderr = None  # read below, after the process is gone
            self._stop(kill=True)
            stderr.seek(0)
            why = "no banner" if lines else f"no banner within {self.start_timeout:.0f} s"
            message = f"mqe serve did not start ({why}): {self.banner!r}\n{stderr.read()[-3000:]}"
            stderr.close()
            raise RuntimeError(message)
        self.url = match.group(1)
        return self

    def _stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __exit__(self, *exc) -> None:
        self._stop()
