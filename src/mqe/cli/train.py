"""``mqe train`` and ``mqe config``: a run's settings, and the run itself (``mqe.driver``)."""

from __future__ import annotations

import json

from mqe.cli import flags


def register(sub) -> None:
    p = sub.add_parser("train", help="train an agent on a dataset file in OGBench's layout",
                       parents=[flags.dataset_dir(), flags.eval_workers(), flags.training(default_preset=None),
                                flags.planner("evaluations during training then go to RUN/planner_graph/ (with the "
                                              "changed settings in the name: planner_graph-max_edge=20)")])
    p.add_argument("--dataset", required=True,
                   help="a .npz file in OGBench's layout, an OGBench dataset name (found, downloaded or generated), "
                        "or a folder of robot episodes: an RLDS/TFDS dataset (BridgeData V2, Open X-Embodiment) or "
                        "NumPy-format episodes (mqe.data.robot)")
    rlds = p.add_argument_group("RLDS datasets (step feature names; BridgeData V2's by default)")
    rlds.add_argument("--split", default="train", help="the split to train on (default: train)")
    rlds.add_argument("--image-key", help="the camera the policy sees (default: observation/image_0)")
    rlds.add_argument("--action-key", help="the action (default: action)")
    rlds.add_argument("--proprio-key", help="proprioception, kept as the dataset's extra (default: observation/state "
                                            "when the dataset has it)")
    p.add_argument("--env", help="the OGBench dataset name whose environment evaluates the run and whose "
                                 "per-dataset settings it gets (default: --dataset when it is such a name)")
    p.add_argument("--eval-episodes", type=int, default=50,
                   help="episodes per task at each evaluation (when there is an environment; 0 = no evaluation)")
    p.set_defaults(func=train)

    p = sub.add_parser("config", help="print the settings a run would get (per-dataset values with their sources)",
                       parents=[flags.settings(default_preset=None)])
    p.add_argument("--dataset", help="a dataset name (its per-dataset settings and the paper's preset apply)")
    p.add_argument("--env", help="the OGBench dataset name whose settings apply (default: --dataset)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the whole resolved config")
    p.set_defaults(func=config)


def train(args) -> int:
    from mqe import driver
    from mqe.protocol import mean_and_se

    seeds = flags.seeds(args)
    data = driver.load_data(args.dataset, env=args.env, dataset_dir=args.dataset_dir, download=not args.no_download,
                            progress=not args.no_progress, split=args.split, image_key=args.image_key,
                            action_key=args.action_key, proprio_key=args.proprio_key)
    config = driver.config_for(data, args.agent, args.preset, flags.override_list(args))
    seeds = seeds or [config.train.seed]
    run_dirs = driver.seed_run_dirs(seeds, args.run_dir, data.label, args.agent)
    dataset = data.dataset
    print(f"dataset {data.path}: {dataset.size} rows, {dataset.num_trajectories} trajectories, "
          f"obs {dataset.observation_shape}, action_dim {dataset.action_dim}")
    print(driver.settings_header(config))
    if len(seeds) > 1:
        print(f"seeds {', '.join(map(str, seeds))} in one program; run directories: " + ", ".join(run_dirs.values()))
    else:
        print(f"run directory: {run_dirs[seeds[0]]}")
    planner = None
    planner_config = flags.planner_config(args)
    if planner_config is not None:
        from mqe.planning import planner_for_run

        planner = planner_for_run(planner_config, config, observations=dataset.observations)
    outcomes = driver.run(config, data, run_dirs, eval_episodes=args.eval_episodes,
                          eval_workers=flags.workers(args.eval_workers),
                          planner=planner, resume=not args.no_resume, progress=not args.no_progress)
    finals = []
    for outcome in outcomes:
        if len(seeds) > 1:
            print(f"seed {outcome.result.seed} ({outcome.result.run_dir}):")
        print(summary_text(outcome.result))
        if outcome.final is not None:
            finals.append(outcome.final["overall"])
            tasks = {k: v for k, v in outcome.final.items() if k != "overall"}
            print(f"success at steps {outcome.evaluated_at} (mean, the paper's way): "
                  + ", ".join(f"{k} {v:.1%}" for k, v in tasks.items()))
            print(f"success rate: {outcome.final['overall']:.1%}")
        elif outcome.unscored:
            print(f"no success rate: {outcome.unscored}")
    if len(finals) > 1:
        mean, se = mean_and_se(finals)
        print(f"success rate over {len(finals)} seeds: {mean:.1%} ± {se:.1%} (standard error)")
    return 0


def summary_text(result) -> str:
    """One line on a finished training: its speed and final loss, or that it was already complete."""
    m = result.train_metrics
    if not m:
        return (f"run already complete at step {result.step}; checkpoints in {result.run_dir}/checkpoints "
                "(raise --steps to train further)")
    resumed = f" (resumed at step {result.start_step})" if getattr(result, "start_step", 0) else ""
    rate = result.updates_per_second
    speed = f"{rate:.1f} updates/s" if rate == rate else "too few updates to time"  # NaN: under one timed chunk
    return (f"trained {result.step} steps{resumed} at {speed}; final total_loss {m.get('total_loss', float('nan')):.4f}; "
            f"checkpoints in {result.run_dir}/checkpoints")


def config(args) -> int:
    """The config a ``mqe train`` with the same flags would use, without loading data or training."""
    from mqe.config import make_config
    from mqe.data.resolve import check_known, is_file
    from mqe.driver import settings_header

    if args.env:
        check_known(args.env, "--env")
    if args.dataset and not is_file(args.dataset):
        check_known(args.dataset, "--dataset")
    # Without --env, make_config takes the environment from a known name (or a file named like one).
    resolved = make_config(args.agent, args.preset, flags.override_list(args), dataset=args.dataset or "",
                           env=args.env)
    print(settings_header(resolved))
    if args.verbose:
        print(json.dumps({k: v for k, v in resolved.to_dict().items() if k != "changed_from_defaults"}, indent=2))
    return 0
