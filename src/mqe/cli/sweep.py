"""``mqe sweep``: a grid of runs on local processes or Ray (``mqe.experiments.sweep``)."""

from __future__ import annotations

import os
import sys

from mqe.cli import flags
from mqe.errors import ConfigError
from mqe.experiments.sweep import BACKENDS


def register(sub) -> None:
    p = sub.add_parser("sweep", help="train a grid of datasets x agents x seeds x --grid values (local processes or Ray)",
                       parents=[flags.dataset_dir(help_text="where the datasets live (as in mqe train)"),
                                flags.overrides("a config value for every run, as in mqe train"),
                                flags.eval_workers("environment processes per job's evaluation (default: CPU "
                                                         "cores / --parallel)")])
    p.add_argument("file", nargs="?", help="a YAML or JSON grid (keys: datasets, agents, seeds, set, grid, preset, "
                                           "eval_episodes, dataset_dir); flags override its keys")
    p.add_argument("--datasets", help="comma-separated dataset names or .npz files")
    p.add_argument("--agents", help="comma-separated agent names (default: mqe)")
    p.add_argument("--seeds", help="seeds of every configuration, trained as one program each (default: 0), e.g. 0-7")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis: one configuration per value, crossed with the other axes "
                        "(tuple values in brackets: encoder_hidden_dims=[256,256],[512,512])")
    p.add_argument("--preset", help="a preset for every run (default: the paper's for a dataset name)")
    p.add_argument("--eval-episodes", type=int, help="episodes per task at each evaluation (default 50)")
    p.add_argument("--out", help="the sweep directory (default: sweeps/<grid file name>, or sweeps/sweep)")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: processes on this machine (default); ray: tasks on a Ray cluster")
    p.add_argument("--parallel", type=int, help="jobs at once (local default 1; ray default: as resources allow)")
    p.add_argument("--address", help="ray: the cluster to join (default: start a Ray on this machine for the sweep)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="ray: CPUs each job reserves (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="ray: GPUs each job reserves; a fraction shares one GPU (default 0)")
    p.add_argument("--status-interval", type=float, default=60.0, help="seconds between progress lines")
    p.add_argument("--dry-run", action="store_true", help="list the jobs, their state and commands; run nothing")
    p.add_argument("--no-report", action="store_true",
                   help="do not rewrite SWEEP_DIR/report after every job (mqe report makes it on demand)")
    p.set_defaults(func=sweep)


def sweep(args) -> int:
    from mqe.experiments.grid import expand, load_grid_file, merge_flags
    from mqe.experiments.sweep import make_backend, run_sweep, seed_progress

    spec = merge_flags(load_grid_file(args.file) if args.file else {}, datasets=args.datasets, agents=args.agents,
                       seeds=args.seeds, preset=args.preset, eval_episodes=args.eval_episodes,
                       dataset_dir=args.dataset_dir, no_download=args.no_download, overrides=args.overrides,
                       grid=args.grid)
    out = args.out or os.path.join("sweeps", os.path.basename(args.file).rsplit(".", 1)[0] if args.file else "sweep")
    jobs = expand(spec, os.path.abspath(out))
    if args.dry_run:
        for job in jobs:
            state = [f"s{seed} " + ("finished" if done else f"at step {step}" if step else "new")
                     for seed in job.seeds for step, done in [seed_progress(job, seed)]]
            print(f"{job.name}: {job.config.train.steps} steps; " + ", ".join(state))
            print("  mqe " + " ".join(job.train_argv(list(job.seeds))))
        return 0
    if args.parallel is not None and args.parallel < 1:
        raise ConfigError(f"--parallel must be >= 1, got {args.parallel}")
    backend = make_backend(args.backend, parallel=args.parallel, address=args.address, cpus=args.cpus_per_run,
                           gpus=args.gpus_per_run)
    workers = args.eval_workers
    if workers is None and args.backend == "local":
        workers = max(1, flags.CPUS // (args.parallel or 1))
    outcomes = run_sweep(jobs, os.path.abspath(out), backend, spec=spec, command="mqe " + " ".join(sys.argv[1:]),
                         eval_workers=workers, status_interval=args.status_interval, report=not args.no_report)
    return 1 if any(o.status == "failed" for o in outcomes) else 0
