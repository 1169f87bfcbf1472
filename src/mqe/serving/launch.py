"""``mqe serve`` in a child process, for benchmarks, tests and demos that drive a robot through it.

    with ServedPolicy(run_dir, "--max-batch", "8") as served:
        client = PolicyClient(served.url)

The child listens on a free loopback port and prints one line once its model is compiled and the port is
open; that line (``served.banner``) names the URL.
"""

from __future__ import annotations

import re
import subprocess
import sys


class ServedPolicy:
    def __init__(self, run: str, *serve_args: str):
        self.command = [sys.executable, "-m", "mqe", "serve", run, "--host", "127.0.0.1", "--port", "0", *serve_args]
        self.process: subprocess.Popen | None = None
        self.url = self.banner = ""

    def __enter__(self) -> "ServedPolicy":
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = self.process.stdout.readline().strip()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", self.banner)
        if not match:
            self.process.kill()
            raise RuntimeError(f"mqe serve did not start: {self.banner!r} {self.process.stderr.read()[-3000:]}")
        self.url = match.group(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
