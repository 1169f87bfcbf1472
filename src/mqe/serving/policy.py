"""One loaded policy, batched: what the server runs for every group of requests.

Inference pads each group of rows to the next of a few fixed batch sizes (1, 2, 4, ... ``max_batch``), so
the device runs one compiled program per size, all compiled at start (``warm_up``) and none while a robot
waits. Groups larger than ``max_batch`` run in ``max_batch`` chunks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mqe.api import LoadedAgent, load
from mqe.data.robot import NORMALIZATION_FILE, ActionNormalization


def batch_sizes(max_batch: int) -> list[int]:
    """Powers of two below ``max_batch``, then ``max_batch``: the padded sizes (one compiled program each)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return [*sizes, max_batch]


class Policy:
    """A run's policy: ``act(observations, goals) -> actions``, rows (N, *observation_shape) in, (N, A) out."""

    def __init__(self, model: LoadedAgent, max_batch: int = 32, normalization: ActionNormalization | None = None):
        self.model = model
        self.normalization = normalization  # the run's action statistics: actions go out in the robot's units
        self.sizes = batch_sizes(max_batch)
        self.max_batch = max_batch
        # Frames travel and stay uint8 (the encoder scales them); state vectors are float32.
        self.dtype = "uint8" if getattr(model.config.agent, "encoder", None) else "float32"
        agent = model.agent
        self._act = jax.jit(lambda o, g: agent.sample_actions(o, g))

    @classmethod
    def from_run(cls, path: str | os.PathLike, max_batch: int = 32) -> "Policy":
        """The newest checkpoint of a run (or a checkpoint file), with the run's action normalisation
        (``RUN/action_normalization.json``) when it was trained on normalised actions."""
        model = load(path)
        return cls(model, max_batch, ActionNormalization.load(run_directory(model.path)))

    @property
    def action_units(self) -> str:
        if self.normalization is None:
            return "as trained, in [-1, 1]"
        return f"de-normalised with {NORMALIZATION_FILE} ({self.normalization.kind})"

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.model.observation_shape

    def warm_up(self) -> float:
        """Compiles every padded size; returns the seconds it took."""
        start = time.perf_counter()
        zeros = np.zeros((1, *self.observation_shape), self.dtype)
        for size in self.sizes:
            rows = np.repeat(zeros, size, axis=0)
            jax.block_until_ready(self._act(rows, rows))
        return time.perf_counter() - start

    def act(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Deterministic actions (the policy's mean, in [-1, 1]) for matched rows."""
        n = len(observations)
        out = []
        for start in range(0, n, self.max_batch):
            o, g = observations[start:start + self.max_batch], goals[start:start + self.max_batch]
            size = next(s for s in self.sizes if s >= len(o))
            pad = size - len(o)
            if pad:
                o = np.concatenate([o, np.repeat(o[-1:], pad, axis=0)])
                g = np.concatenate([g, np.repeat(g[-1:], pad, axis=0)])
            out.append(np.asarray(self._act(jnp.asarray(o), jnp.asarray(g)))[:size - pad])
        actions = np.concatenate(out).astype(np.float32)
        return actions if self.normalization is None else self.normalization.denormalize(actions)


def run_directory(checkpoint_path: str) -> str:
    """The run a checkpoint file belongs to: RUN/checkpoints/ckpt_N or RUN/policies/policy_N -> RUN."""
    parent = os.path.dirname(os.path.abspath(checkpoint_path))
    return os.path.dirname(parent) if os.path.basename(parent) in ("checkpoints", "policies") else parent


class MicroBatcher:
    """Requests that arrive while the device is busy run together as one batch.

    ``submit`` queues a request's rows and awaits its actions. One task takes the first waiting request,
    then every request queued behind it (up to ``max_batch`` rows, waiting at most ``max_wait_s`` for more;
    0 waits for nothing, so a lone request never pays for batching), runs them in one call on a worker
    thread (the event loop keeps accepting requests meanwhile) and hands each request its rows back."""

    def __init__(self, policy: Policy, max_wait_s: float = 0.0):
        self.policy, self.max_wait_s = policy, max_wait_s
        self.queue: asyncio.Queue | None = None
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqe-infer")
        self.batches = 0  # calls made, and the requests and rows they held (the health endpoint reports them)
        self.requests = 0
        self.rows = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False)

    async def submit(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((observations, goals, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.queue.get()]
            rows = len(group[0][0])
            deadline = loop.time() + self.max_wait_s
            while rows < self.policy.max_batch:
                try:
                    if self.queue.empty() and self.max_wait_s > 0 and loop.time() < deadline:
                        item = await asyncio.wait_for(self.queue.get(), deadline - loop.time())
                    else:
                        item = self.queue.get_nowait()
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                group.append(item)
                rows += len(item[0])
            group = [item for item in group if not item[2].cancelled()]  # clients that hung up
            if not group:
                continue
            try:  # inside: a failure here must reach the waiting requests, not end this loop
                observations = np.concatenate([o for o, _, _ in group])
                goals = np.concatenate([g for _, g, _ in group])
                actions = await loop.run_in_executor(self.executor, self.policy.act, observations, goals)
            except Exception as exc:  # the model failed: every waiting request gets the error, the server stays up
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches, self.requests = self.batches + 1, self.requests + len(group)
            self.rows += len(observations)  # rows computed (a request whose client hung up is not counted)
            start = 0
            for o, _, future in group:
                if not future.done():
                    future.set_result(actions[start:start + len(o)])
                start += len(o)
