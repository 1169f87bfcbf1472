"""``mqe generate``: OGBench datasets made offline, in OGBench's exact file layout (state, visual, robot)."""

from __future__ import annotations


from mqe.cli import flags


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate an OGBench dataset offline, in OGBench's exact file layout",
                       description="Collects a state dataset with OGBench's recipe; visual-<name> renders the states "
                                   "of the state dataset <name> (found, else generated first) through OGBench's "
                                   "visual environment, row for row; robot-<name> writes the frames and end-effector "
                                   "actions of visual-<name> as robot episodes (NumPy episode format, a folder).",
                       parents=[flags.dataset_dir(download=False, help_text="output directory (default: "
                                                  "$MQE_DATASET_DIR, else ~/.ogbench/data)"), flags.progress()])
    p.add_argument("name", help="dataset name, e.g. pointmaze-medium-navigate-v0, visual-antmaze-medium-navigate-v0 "
                                "or robot-cube-single-play-v0")
    p.add_argument("--seed", type=int, default=0, help="generation seed (the output is deterministic in it)")
    p.add_argument("--num-episodes", type=int, help="training episodes (default: OGBench's recipe)")
    p.add_argument("--expert", help="antmaze: the ant actor (.npz from `mqe expert train ant`; default: the packaged one)")
    p.add_argument("--workers", type=int,
                   help="worker processes (default: one per CPU core); the output does not depend on it")
    p.add_argument("--shard-rows", type=int,
                   help="visual: frames per shard, the unit of resumption (default 5000; the output does not depend on it)")
    p.add_argument("--episode-steps", type=int,
                   help="robot: cut each trajectory into episodes of this many steps, each starting at the "
                        "previous one's final frame (default: whole trajectories)")
    p.add_argument("--format", choices=["numpy", "rlds", "both"], default="both",
                   help="robot: NumPy episodes (DIR/robot-<name>/), RLDS (DIR/robot-<name>-rlds/robot_<name>/1.0.0/) "
                        "or both (default)")
    p.set_defaults(func=generate)


def generate(args) -> int:
    from mqe.data.resolve import search_dirs

    target = search_dirs(args.dataset_dir)[0]
    if args.name.startswith("robot-"):
        return robot(args, target)
    if args.name.startswith("visual-"):
        from mqe.data.visual import SHARD_ROWS, generate_visual

        train, val, stats = generate_visual(args.name, args.dataset_dir, seed=args.seed, num_episodes=args.num_episodes,
                                            workers=flags.workers(args.workers), shard_rows=args.shard_rows or SHARD_ROWS,
                                            progress=not args.no_progress)
    else:
        from mqe.data.generate import generate as generate_state

        train, val, stats = generate_state(args.name, target, seed=args.seed, num_episodes=args.num_episodes,
                                           expert=args.expert, workers=flags.workers(args.workers), progress=not args.no_progress)
    print(f"wrote {train}\nwrote {val}")
    print("stats: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


def robot(args, target: str) -> int:
    """robot-<name>: the frames and end-effector actions of visual-<name> (found, else rendered) written as
    robot episodes (``mqe.data.robot.write_robot_dataset``)."""
    from mqe.data.robot import write_robot_dataset

    for line in write_robot_dataset(args.name, target, args.dataset_dir, fmt=args.format, seed=args.seed,
                                    num_episodes=args.num_episodes, workers=flags.workers(args.workers),
                                    shard_rows=args.shard_rows, episode_steps=args.episode_steps,
                                    progress=not args.no_progress):
        print(line)
    return 0
