"""The ``mqe`` command line: ``mqe train``, ``mqe demo``, ``mqe presets``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from mqe.checkpoint import CheckpointError
from mqe.config import ConfigError, load_presets, make_config, preset_names
from mqe.data.dataset import DatasetError


def _common_train_args(parser: argparse.ArgumentParser, default_preset: str | None) -> None:
    parser.add_argument("--agent", default="mqe", help="agent name (default: mqe)")
    parser.add_argument("--preset", default=default_preset,
                        help=f"hyperparameter preset ({', '.join(preset_names())}); default: {default_preset}")
    parser.add_argument("--steps", type=int, help="total gradient updates (overrides the preset)")
    parser.add_argument("--seed", type=int, help="the run's one seed (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set alpha=0.1 --set train.log_interval=1000")
    parser.add_argument("--run-dir", help="where logs and checkpoints go (default: runs/<dataset>-<agent>-s<seed>)")
    parser.add_argument("--no-resume", action="store_true",
                        help="refuse to continue a run directory that already has checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overrides(args) -> list[str]:
    extra = []
    if args.steps is not None:
        extra.append(f"train.steps={args.steps}")
    if args.seed is not None:
        extra.append(f"train.seed={args.seed}")
    return list(args.overrides) + extra


def _run_dir(args, dataset_label: str, seed: int) -> str:
    if args.run_dir:
        return args.run_dir
    return os.path.join("runs", f"{dataset_label}-{args.agent}-s{seed}")


def cmd_train(args) -> int:
    from mqe.data.dataset import Dataset
    from mqe.train import train

    dataset = Dataset.load_npz(args.dataset)
    label = os.path.basename(args.dataset).removesuffix(".npz")
    config = make_config(args.agent, args.preset, _overrides(args), dataset=label)
    run_dir = _run_dir(args, label, config.train.seed)
    print(f"dataset {args.dataset}: {dataset.size} rows, {dataset.num_trajectories} trajectories, "
          f"obs {dataset.observation_shape}, action_dim {dataset.action_dim}")
    print(f"run directory: {run_dir}")
    result = train(config, dataset, run_dir, resume=not args.no_resume, progress=not args.no_progress)
    _print_summary(result)
    return 0


def cmd_demo(args) -> int:
    """Generates the built-in grid-maze data, trains on it, evaluates, prints the success rate."""
    import jax

    from mqe.data.dataset import Dataset
    from mqe.envs.gridworld import DEFAULT_MAZE, GridMaze, GridMazeEnv
    from mqe.train import train

    maze = GridMaze(DEFAULT_MAZE, observation=args.observation)
    config = make_config(args.agent, args.preset, _overrides(args), dataset="gridmaze")
    run_dir = _run_dir(args, "gridmaze", config.train.seed)
    data = maze.collect_dataset(args.episodes, args.episode_length, seed=config.train.seed, policy=args.data)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"],
                                  source=f"gridmaze {args.data} data")
    os.makedirs(run_dir, exist_ok=True)
    dataset.save_npz(os.path.join(run_dir, "gridmaze.npz"))
    print(maze.render())
    print(f"grid maze: {maze.num_cells} cells, {args.observation} observations; {args.data} dataset "
          f"{dataset.size} rows ({args.episodes} episodes x {args.episode_length} steps) -> "
          f"{run_dir}/gridmaze.npz")
    env = GridMazeEnv(maze)

    def evaluator(agent):
        policy = jax.jit(agent.sample_actions)  # one batched forward pass per step for all episodes
        return env.evaluate(lambda o, g: jax.device_get(policy(o, g)), episodes_per_task=args.eval_episodes)

    result = train(config, dataset, run_dir, evaluator=evaluator, resume=not args.no_resume,
                   progress=not args.no_progress)
    _print_summary(result)
    if result.eval_metrics is not None:
        tasks = {k: v for k, v in result.eval_metrics.items() if k != "overall"}
        print("per-task success: " + ", ".join(f"{k} {v:.0%}" for k, v in tasks.items()))
        print(f"success rate: {result.eval_metrics['overall']:.1%}")
    return 0


def _print_summary(result) -> None:
    m = result.train_metrics
    if not m:
        print(f"run already complete at step {result.step}; checkpoints in {result.run_dir}/checkpoints "
              "(raise --steps to train further)")
        return
    print(f"trained {result.step} steps at {result.updates_per_second:.1f} updates/s; "
          f"final total_loss {m.get('total_loss', float('nan')):.4f}; checkpoints in {result.run_dir}/checkpoints")


def cmd_generate(args) -> int:
    from mqe.data.generate import GenerationError, generate
    from mqe.data.resolve import search_dirs

    target = search_dirs(args.dataset_dir)[0]
    try:
        train, val, stats = generate(args.name, target, seed=args.seed, num_episodes=args.num_episodes,
                                     progress=not args.no_progress)
    except GenerationError as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {train}\nwrote {val}")
    print("stats: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


def cmd_presets(args) -> int:
    presets = load_presets()["presets"]
    for name in sorted(presets):
        print(f"{name}: {presets[name].get('description', '')}")
        if args.verbose:
            print(json.dumps({k: v for k, v in presets[name].items() if k != 'description'}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mqe", description="Multistep Quasimetric Estimation for offline GCRL")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an agent on a dataset file in OGBench's layout")
    p.add_argument("--dataset", required=True, help="path to a .npz file in OGBench's layout")
    _common_train_args(p, default_preset=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train MQE on the built-in grid maze (a few minutes on CPU) and evaluate")
    _common_train_args(p, default_preset="gridmaze")
    p.add_argument("--episodes", type=int, default=1000, help="episodes to generate")
    p.add_argument("--episode-length", type=int, default=100, help="steps per episode")
    p.add_argument("--data", choices=("navigate", "random"), default="navigate",
                   help="navigate: noisy BFS walks to random goals (OGBench's recipe); random: random walks")
    p.add_argument("--observation", choices=("onehot", "xy"), default="onehot",
                   help="onehot: one float per cell (tabular); xy: cell coordinates")
    p.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per task")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="generate an OGBench dataset offline, in OGBench's exact file layout")
    p.add_argument("name", help="dataset name, e.g. pointmaze-medium-navigate-v0")
    p.add_argument("--dataset-dir", help="output directory (default: $MQE_DATASET_DIR, else ~/.ogbench/data)")
    p.add_argument("--seed", type=int, default=0, help="generation seed (the output is deterministic in it)")
    p.add_argument("--num-episodes", type=int, help="training episodes (default: OGBench's recipe)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("presets", help="list hyperparameter presets")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DatasetError, CheckpointError) as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmqe: interrupted; a checkpoint of the last completed chunk was written, "
              "run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
