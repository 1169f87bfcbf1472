"""A sweep job's process: ``python -m mqe.experiments.job SWEEP_PID mqe-arguments...``.

It runs the ``mqe`` command line after two things a job needs from its own process: SIGINT raises
KeyboardInterrupt (a sweep started as ``nohup ... &`` hands its children SIGINT ignored), and on Linux
the job gets SIGINT when the sweep dies, even by SIGKILL, so it writes a checkpoint of its last
completed chunk and exits, and the next sweep resumes it. Doing this here rather than between fork
and exec keeps the sweep's own (multithreaded, JAX-importing) process from running Python in a child.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    sweep_pid, args = int(argv[0]), argv[1:]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != sweep_pid:  # the sweep died before the request above took effect
        return 130
    from mqe.cli import main as mqe_main

    sys.argv = ["mqe", *args]  # what the run's provenance records: the mqe command itself
    return mqe_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
