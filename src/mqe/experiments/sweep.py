"""``mqe sweep``: a grid of independent runs on a local process pool or on Ray.

Each job (one dataset, agent and set of grid values) is one ``mqe train --seeds ...`` process that trains
its seeds as one program. Before starting anything the sweep reads every seed's run directory: finished
seeds are skipped, interrupted ones resume from their newest checkpoint, so running the same sweep again
does only what is missing. A job that fails is reported with the end of its log, and the others go on.
Everything the sweep prints also goes to ``<sweep dir>/sweep.log``; each job's output goes to
``<sweep dir>/logs/<job>.log``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

from mqe.errors import ConfigError
from mqe.experiments.grid import Job
from mqe.io import atomic_write_text

BACKENDS = ("local", "ray")  # where jobs run (make_backend)


@dataclasses.dataclass
class Outcome:
    """How a job ended in this sweep."""

    job: Job
    status: str  # "finished" (trained now), "skipped" (already finished), "failed"
    seconds: float = 0.0
    message: str = ""


def seed_progress(job: Job, seed: int) -> tuple[int, bool]:
    """(newest checkpoint's step, finished?) of one seed's run directory. A seed is finished when it
    reached ``train.steps`` and, if the job evaluates, its paper-protocol summary exists."""
    from mqe import checkpoint as ckpt

    run_dir = job.run_dir(seed)
    found = ckpt.list_checkpoints(os.path.join(run_dir, "checkpoints"))
    step = found[-1][0] if found else 0
    done = step >= job.config.train.steps
    if done and job.config.env and job.eval_episodes > 0:
        done = os.path.exists(os.path.join(run_dir, "final_eval.json"))
    return step, done


def start_job(argv: list[str], log_path: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Starts ``mqe <argv>`` with its output appended to ``log_path``."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ mqe {' '.join(argv)}\n".encode())
        log.flush()
        # mqe.experiments.job: the job checkpoints and exits if this process dies, however it dies.
        return subprocess.Popen([sys.executable, "-m", "mqe.experiments.job", str(os.getpid()), *argv],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})


def run_job(argv: list[str], log_path: str) -> int:
    """Runs ``mqe <argv>`` to the end (the unit of work a Ray task does); returns its exit code."""
    process = start_job(argv, log_path)
    try:
        return process.wait()
    except BaseException:
        process.send_signal(signal.SIGINT)
        process.wait()
        raise


def make_backend(name: str, *, parallel: int | None = None, address: str | None = None, cpus: float = 1.0,
                 gpus: float = 0.0):
    """The backend called ``name`` (one of ``BACKENDS``)."""
    if name == "ray":
        return RayBackend(address, cpus=cpus, gpus=gpus, parallel=parallel)
    if name == "local":
        return LocalBackend(parallel or 1)
    raise ConfigError(f"unknown sweep backend {name!r}; expected one of {', '.join(BACKENDS)}")


class LocalBackend:
    """At most ``parallel`` jobs at once, each a process on this machine."""

    def __init__(self, parallel: int = 1):
        if parallel < 1:
            raise ConfigError(f"--parallel must be >= 1, got {parallel}")
        self.parallel = parallel
        self.running: dict[Any, subprocess.Popen] = {}

    def has_room(self) -> bool:
        return len(self.running) < self.parallel

    def submit(self, handle: Any, argv: list[str], log_path: str) -> None:
        self.running[handle] = start_job(argv, log_path)

    def finished(self, timeout: float) -> list[tuple[Any, int]]:
        """Jobs that ended within ``timeout`` seconds, with their exit codes."""
        deadline = time.monotonic() + timeout
        while True:
            done = [(h, p.returncode) for h, p in self.running.items() if p.poll() is not None]
            if done or time.monotonic() >= deadline or not self.running:
                for h, _ in done:
                    del self.running[h]
                return done
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # the job checkpoints its last chunk and exits
        for process in self.running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def close(self) -> None:
        pass


class RayBackend:
    """Jobs as Ray tasks: on the cluster at ``address``, or on a Ray started here for the sweep. Each
    task reserves ``cpus`` CPUs and ``gpus`` GPUs (fractions share a device) and runs the job's process
    on whichever node Ray picks; the sweep directory must be on a file system every node sees."""

    def __init__(self, address: str | None = None, cpus: float = 1.0, gpus: float = 0.0, parallel: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'mqe-gcrl[ray]'") from None
        self.ray = ray
        self.started_here = address is None
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        self.task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(run_job)
        self.parallel = parallel
        self.running: dict[Any, Any] = {}  # ObjectRef -> handle

    def has_room(self) -> bool:
        return self.parallel is None or len(self.running) < self.parallel  # else Ray queues by resources

    def submit(self, handle: Any, argv: list[str], log_path: str) -> None:
        self.running[self.task.remote(argv, log_path)] = handle

    def finished(self, timeout: float) -> list[tuple[Any, int]]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=timeout)
        out = []
        for ref in ready:
            handle = self.running.pop(ref)
            try:
                out.append((handle, int(self.ray.get(ref))))
            except Exception as exc:  # the task itself died (node lost, worker killed)
                out.append((handle, -1 if not isinstance(exc, KeyboardInterrupt) else 130))
        return out

    def stop(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref)  # a KeyboardInterrupt in the task: its job checkpoints and exits

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


class SweepLog:
    """Prints a line and appends it, time-stamped, to ``sweep.log``."""

    def __init__(self, sweep_dir: str, echo: Callable[[str], None] = print):
        self.path = os.path.join(sweep_dir, "sweep.log")
        self.echo = echo

    def __call__(self, line: str) -> None:
        self.echo(line)
        with open(self.path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def run_sweep(jobs: list[Job], sweep_dir: str, backend: LocalBackend | RayBackend, *, spec: dict | None = None,
              command: str = "", eval_workers: int | None = None, status_interval: float = 60.0,
              report: bool = True, echo: Callable[[str], None] = print) -> list[Outcome]:
    """Runs every unfinished job; returns one outcome per job, in grid order. With ``report`` the
    sweep's report (``<sweep dir>/report``, see ``mqe.experiments.report``) is rewritten after every job."""
    os.makedirs(sweep_dir, exist_ok=True)
    log = SweepLog(sweep_dir, echo)
    atomic_write_text(os.path.join(sweep_dir, "sweep.json"), json.dumps({
        "command": command, "grid": spec or {}, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "jobs": [{"name": j.name, "dataset": j.dataset, "agent": j.agent, "seeds": list(j.seeds),
                  "overrides": list(j.overrides), "grid_values": dict(j.grid_values), "run_root": j.run_root,
                  "steps": j.config.train.steps} for j in jobs]}, indent=2))
    outcomes: dict[int, Outcome] = {}
    todo: list[tuple[int, list[int]]] = []
    for index, job in enumerate(jobs):
        pending = [seed for seed in job.seeds if not seed_progress(job, seed)[1]]
        if pending:
            todo.append((index, pending))
        else:
            outcomes[index] = Outcome(job, "skipped", message="finished before")
    log(f"sweep {sweep_dir}: {len(jobs)} jobs, {len(jobs) - len(todo)} already finished, {len(todo)} to run "
        f"({type(backend).__name__.removesuffix('Backend').lower()} backend)")
    started: dict[int, float] = {}
    last_status = time.monotonic()
    interrupted = False
    try:
        while todo or started:
            while todo and backend.has_room():
                index, seeds = todo.pop(0)
                job = jobs[index]
                resumed = {s: seed_progress(job, s)[0] for s in seeds}
                log_path = os.path.join(sweep_dir, "logs", f"{job.slug}.log")
                backend.submit(index, job.train_argv(seeds, eval_workers), log_path)
                started[index] = time.monotonic()
                where = ", ".join(f"s{s}" + (f" from step {resumed[s]}" if resumed[s] else "") for s in seeds)
                log(f"[start] {job.name}: {where} (log: {os.path.relpath(log_path, sweep_dir)})")
            for index, code in backend.finished(timeout=1.0):
                job, seconds = jobs[index], time.monotonic() - started.pop(index)
                if report:
                    _write_report(sweep_dir, log)
                if code == 0:
                    outcomes[index] = Outcome(job, "finished", seconds)
                    log(f"[done] {job.name} in {_duration(seconds)}: {_success_text(job)}")
                else:
                    tail = _log_tail(os.path.join(sweep_dir, "logs", f"{job.slug}.log"))
                    outcomes[index] = Outcome(job, "failed", seconds, f"exit code {code}: {tail}")
                    log(f"[FAILED] {job.name} (exit code {code}): {tail}")
            if started and time.monotonic() - last_status >= status_interval:
                last_status = time.monotonic()
                for index in started:
                    log(f"[running] {jobs[index].name}: {_step_text(jobs[index])}, "
                        f"{_duration(time.monotonic() - started[index])} so far")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping the running jobs (each writes a checkpoint); run the same sweep again to "
            "resume")
        backend.stop()
    finally:
        backend.close()
    result = [outcomes.get(i, Outcome(job, "interrupted" if interrupted else "failed")) for i, job in enumerate(jobs)]
    _summary(result, log)
    if report:
        _write_report(sweep_dir, log, announce=True)
    if interrupted:
        raise KeyboardInterrupt
    return result


def _write_report(sweep_dir: str, log: SweepLog, announce: bool = False) -> None:
    """Rewrites the sweep's report from what is finished so far; a failure is logged, never fatal."""
    from mqe.experiments.report import build_report

    runs = os.path.join(sweep_dir, "runs")
    if not os.path.isdir(runs):
        return
    try:
        built = build_report([runs], os.path.join(sweep_dir, "report"))
    except Exception as exc:  # the report must never stop the training it reports on
        log(f"report not written: {type(exc).__name__}: {exc}")
        return
    if announce:
        log(f"report: {built.files[0]} (and .csv, .tex, figures); regenerate it any time with mqe report {sweep_dir}")


def _summary(outcomes: list[Outcome], log: SweepLog) -> None:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("finished", "skipped", "failed", "interrupted")}
    log("summary: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    width = max(len(o.job.name) for o in outcomes)
    for o in outcomes:
        note = o.message if o.status == "failed" else _success_text(o.job)
        log(f"  {o.job.name:<{width}}  {o.status:<11} {note}")


def _success_text(job: Job) -> str:
    """Success over the job's seeds by the protocol's rule (``mqe.protocol.score``: each seed's mean over
    its evaluation points, all of them present), mean ± standard error; seeds without a score say why."""
    from mqe.experiments.report import read_run
    from mqe.protocol import mean_and_se

    rates, pending = [], []
    for seed in job.seeds:
        run = read_run(job.run_dir(seed))
        score = run.score() if run is not None else None
        if score is not None:
            rates.append(float(score["overall"]))
        elif run is not None:
            pending.append(run.unscored_reason())
    if not rates:
        return "; ".join(pending) or "no evaluation"
    mean, se = mean_and_se(rates)
    text = f"success {mean:.1%} (1 seed)" if len(rates) == 1 else f"success {mean:.1%} ± {se:.1%} ({len(rates)} seeds)"
    return text + (f"; not scored: {'; '.join(pending)}" if pending else "")


def _step_text(job: Job) -> str:
    steps = []
    for seed in job.seeds:
        path = os.path.join(job.run_dir(seed), "train.jsonl")
        step = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                lines = f.read().splitlines()
            for line in reversed(lines):
                try:
                    step = int(json.loads(line)["step"])
                    break
                except (ValueError, KeyError):
                    continue
        steps.append(step)
    return f"step {min(steps)}/{job.config.train.steps}"


def _log_tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [line.rstrip() for line in f if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.2f}h"
