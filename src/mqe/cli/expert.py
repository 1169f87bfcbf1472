"""``mqe expert``: the locomotion expert that collects AntMaze data (``mqe.experts``)."""

from __future__ import annotations

import os

from mqe.cli import flags
from mqe.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("expert", help="train or evaluate the locomotion expert that collects AntMaze data",
                       parents=[flags.progress(), flags.eval_workers(help_text="eval --maze: processes that step "
                                                                               "the environments")])
    p.add_argument("action", choices=("train", "eval"))
    p.add_argument("name", choices=("ant",), help="which expert (ant: walks in a commanded XY direction)")
    p.add_argument("--out", help="train: run directory (default: runs/expert-<name>-s<seed>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="train: environment steps (default 400000, OGBench's budget)")
    p.add_argument("--until", type=int, help="train: stop (checkpointed) at the first episode end after this step")
    p.add_argument("--actor", help="eval: an actor.npz (default: the packaged expert)")
    p.add_argument("--episodes", type=int, default=50,
                   help="eval: episodes (per task with --maze); OGBench evaluates its experts on 50")
    p.add_argument("--maze", help="eval: drive the expert with the BFS-subgoal controller in this antmaze's "
                                  "five evaluation tasks, e.g. antmaze-large-navigate-v0")
    p.add_argument("--noise", type=float, default=0.0,
                   help="eval --maze: Gaussian action noise (the navigate data uses 0.2)")
    p.set_defaults(func=expert)


def expert(args) -> int:
    return evaluate(args) if args.action == "eval" else train(args)


def evaluate(args) -> int:
    from mqe.experts import ant
    from mqe.experts.online import evaluate_actor

    if args.maze is not None and not args.maze.startswith("antmaze-"):
        raise ConfigError(f"--maze must be an antmaze dataset name, got {args.maze!r}")
    actor = ant.load_actor(args.actor)
    if args.maze is None:
        result = evaluate_actor(ant.task(), actor, args.episodes, args.seed)
        print(f"{args.episodes} episodes: return {result['eval/return_mean']:.2f} "
              f"(min {result['eval/return_min']:.2f}), length {result['eval/length_mean']:.0f}")
        return 0
    import functools

    from mqe.data.maze_collector import SubgoalPolicy
    from mqe.envs.ogbench_envs import make_env
    from mqe.evaluation import evaluate as evaluate_policy

    policy = SubgoalPolicy(args.maze, ant.AntController(actor), noise=args.noise, seed=args.seed)
    result = evaluate_policy(policy, functools.partial(make_env, args.maze), episodes_per_task=args.episodes,
                             seed=args.seed, workers=flags.workers(args.eval_workers), progress=not args.no_progress)
    print(f"{args.maze}, BFS-subgoal controller + ant expert, action noise {args.noise}, "
          f"{args.episodes} episodes per task: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result.items()))
    return 0


def train(args) -> int:
    from mqe.experts import ant
    from mqe.experts.online import train_expert
    from mqe.experts.sac import SACConfig

    try:
        config = SACConfig(**({"total_steps": args.steps} if args.steps else {}))
    except ValueError as exc:
        raise ConfigError(f"--steps: {exc}") from None
    out = args.out or os.path.join("runs", f"expert-{args.name}-s{args.seed}")
    print(f"training the {args.name} expert in {out} ({config.total_steps} environment steps; "
          f"run the same command again to resume)")
    command = f"mqe expert train {args.name} --seed {args.seed}" + (f" --steps {args.steps}" if args.steps else "")
    record = train_expert(ant.task(), out, config, seed=args.seed, until=args.until, progress=not args.no_progress,
                          command=command)
    if not record["finished"]:
        print(f"stopped at step {record['step']} (--until); run the same command without --until to continue")
        return 0
    print(f"final return {record['final_eval']['eval/return_mean']:.2f} over 10 episodes; "
          f"actor: {os.path.join(out, 'actor.npz')}, record: {os.path.join(out, 'record.json')}")
    return 0
