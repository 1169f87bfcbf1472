"""``mqe demo``: the main job on an embedded default (a generated point maze, or the built-in grid maze)."""

from __future__ import annotations

import os

from mqe.cli import flags

DEMO_DATASET = "pointmaze-medium-navigate-v0"


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job on an embedded default: MQE on a generated point maze "
                                    "(~10 min on 2 CPU cores), or on the built-in grid maze (~2 min)",
                       parents=[flags.training(default_preset=None)])
    p.add_argument("env", nargs="?", choices=("pointmaze", "gridmaze"), default="pointmaze",
                   help=f"pointmaze: {DEMO_DATASET}, generated (default); gridmaze: the built-in grid maze")
    p.add_argument("--episodes", type=int, default=200, help="point-maze episodes to generate (1000 steps each)")
    p.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per task")
    p.add_argument("--grid-episodes", type=int, default=1000, help="grid maze: episodes to generate")
    p.add_argument("--episode-length", type=int, default=100, help="grid maze: steps per episode")
    p.add_argument("--data", choices=("navigate", "random"), default="navigate",
                   help="grid maze: noisy BFS walks to random goals (OGBench's recipe) or random walks")
    p.add_argument("--observation", choices=("onehot", "xy"), default="onehot",
                   help="grid maze: one float per cell (tabular) or cell coordinates")
    p.set_defaults(func=demo)


def demo(args) -> int:
    """Generates a small OGBench point-maze dataset with OGBench's recipe, trains MQE on it with a reduced
    budget, evaluates the 5 tasks and prints the success rate: the same as the ``mqe train`` it prints."""
    if args.env == "gridmaze":
        return gridmaze(args)
    from mqe.cli import build_parser
    from mqe.cli.train import train
    from mqe.data.generate import generate

    preset = args.preset or "pointmaze-demo"
    run_dir = args.run_dir or os.path.join("runs", "demo")
    data_dir = os.path.join(run_dir, "data")
    if not os.path.exists(os.path.join(data_dir, f"{DEMO_DATASET}.npz")):
        print(f"generating {DEMO_DATASET} ({args.episodes} episodes, OGBench's recipe) into {data_dir}")
        _, _, stats = generate(DEMO_DATASET, data_dir, num_episodes=args.episodes, seed=0,
                               workers=os.cpu_count() or 1, progress=not args.no_progress)
        print("generated: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    argv = ["train", "--dataset", DEMO_DATASET, "--dataset-dir", data_dir, "--no-download", "--agent", args.agent,
            "--preset", preset, "--eval-episodes", str(args.eval_episodes), "--run-dir", run_dir]
    argv += ["--steps", str(args.steps)] if args.steps is not None else []
    argv += ["--seed", str(args.seed)] if args.seed is not None else []
    argv += [f"--set={o}" for o in args.overrides]
    argv += ["--no-resume"] * args.no_resume + ["--no-progress"] * args.no_progress
    print("mqe " + " ".join(argv))
    return train(build_parser().parse_args(argv))


def gridmaze(args) -> int:
    """Generates the built-in grid-maze data, trains on it, evaluates, prints the success rate."""
    import jax

    from mqe.cli.train import summary_text
    from mqe.config import make_config
    from mqe.data.dataset import Dataset
    from mqe.driver import seed_run_dirs
    from mqe.envs.gridworld import DEFAULT_MAZE, GridMaze, GridMazeEnv
    from mqe.train import train

    maze = GridMaze(DEFAULT_MAZE, observation=args.observation)
    config = make_config(args.agent, args.preset or "gridmaze", flags.override_list(args), dataset="gridmaze")
    run_dir = seed_run_dirs([config.train.seed], args.run_dir, "gridmaze", args.agent)[config.train.seed]
    data = maze.collect_dataset(args.grid_episodes, args.episode_length, seed=config.train.seed, policy=args.data)
    dataset = Dataset.from_arrays(data["observations"], data["actions"], data["terminals"],
                                  source=f"gridmaze {args.data} data")
    os.makedirs(run_dir, exist_ok=True)
    dataset.save_npz(os.path.join(run_dir, "gridmaze.npz"))
    print(maze.render())
    print(f"grid maze: {maze.num_cells} cells, {args.observation} observations; {args.data} dataset "
          f"{dataset.size} rows ({args.grid_episodes} episodes x {args.episode_length} steps) -> "
          f"{run_dir}/gridmaze.npz")
    env = GridMazeEnv(maze)

    def evaluator(agent):
        policy = jax.jit(agent.sample_actions)  # one batched forward pass per step for all episodes
        return env.evaluate(lambda o, g: jax.device_get(policy(o, g)), episodes_per_task=args.eval_episodes)

    result = train(config, dataset, run_dir, evaluator=evaluator, resume=not args.no_resume,
                   progress=not args.no_progress)
    print(summary_text(result))
    if result.eval_metrics is not None:
        tasks = {k: v for k, v in result.eval_metrics.items() if k != "overall"}
        print("per-task success: " + ", ".join(f"{k} {v:.0%}" for k, v in tasks.items()))
        print(f"success rate: {result.eval_metrics['overall']:.1%}")
    return 0
