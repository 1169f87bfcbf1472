"""Killing a real process mid-run, for the resume tests."""

import os
import signal
import time


def kill_at_first_checkpoint(proc, ckpt_dir, timeout=180.0):
    """SIGKILLs ``proc`` as soon as ``ckpt_dir`` holds a checkpoint (it must still be running then)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(ckpt_dir) and any(f.endswith(".msgpack") for f in os.listdir(ckpt_dir)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
