"""``mqe eval``: a saved run on its environment, once (its newest checkpoint) or by the protocol (``--paper``)."""

from __future__ import annotations

import dataclasses
import os

from mqe.cli import flags
from mqe.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("eval", help="re-evaluate a saved run (its newest checkpoint) on its OGBench environment; "
                                    "--paper: the paper's protocol on runs trained elsewhere",
                       parents=[flags.eval_workers(), flags.progress(),
                                flags.planner("results go to reeval_<step>_planner-graph.json, or with --paper to "
                                              "RUN/planner_graph/ (with the changed settings in the name: "
                                              "planner_graph-max_edge=20)"),
                                flags.dataset_dir(download=False, help_text="where the run's training data is (the "
                                                                            "planner's landmarks come from it)")])
    p.add_argument("runs", nargs="+", metavar="run", help="run directory or checkpoint file (several with --paper)")
    p.add_argument("--paper", action="store_true",
                   help="evaluate each run's checkpoints (full or policy) at the paper's 80/90/100%% points and write "
                        "eval_<step>.json and final_eval.json into it, as training does; seeds are evaluated together")
    p.add_argument("--fractions", type=flags.fractions, metavar="F,F,...",
                   help="with --paper: evaluate at these fractions of train.steps instead of the run's "
                        "train.eval_fractions (e.g. 1.0: the last checkpoint only, when evaluation time is short); "
                        "final_eval.json's evaluated_at and mqe report say which points were averaged")
    p.add_argument("--env", help="evaluate on this OGBench dataset's environment (default: the run's own)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per task")
    p.add_argument("--seed", type=int, default=0,
                   help="evaluation seed: episode k of task t resets with seed + 1000 t + k (default 0)")
    p.add_argument("--out", help="where the results go (default: RUN/reeval_<step>.json); they include every "
                                 "episode's success")
    p.add_argument("--video", nargs="?", const="", metavar="DIR",
                   help="also record the first episode of each task, one mp4 per task (default DIR: "
                        "RUN/videos_<step>; needs imageio-ffmpeg, rendering uses MUJOCO_GL=egl)")
    p.set_defaults(func=evaluate)


def evaluate(args) -> int:
    from mqe.data.resolve import check_known

    if args.env:
        check_known(args.env, "--env")
    if args.paper:
        return paper(args)
    if args.fractions:
        raise ConfigError("--fractions goes with --paper (the evaluation points of each run's checkpoints)")
    if len(args.runs) > 1:
        raise ConfigError(f"mqe eval takes one run ({len(args.runs)} given); several runs go with --paper")
    run = args.runs[0]
    if not os.path.exists(run):
        raise ConfigError(f"{run}: no such run directory or checkpoint file")
    from mqe.api import load
    from mqe.data.robot import ActionNormalization
    from mqe.driver import cost_text, env_evaluator
    from mqe.evaluation import write_results
    from mqe.train import stack

    model = load(run)
    name = args.env or model.config.env
    if not name:
        raise ConfigError(f"{run} was trained on {model.config.dataset!r} with no evaluation environment; "
                          "pass --env NAME (an OGBench dataset name) to evaluate it")
    run_dir = run if os.path.isdir(run) else os.path.dirname(os.path.dirname(model.path))
    video_dir = None
    if args.video is not None:
        video_dir = args.video or os.path.join(run_dir, f"videos_{model.step}")
        _check_video_writer()
    planner = None
    planner_config = flags.planner_config(args)
    if planner_config is not None:
        from mqe.planning import planner_for_run

        planner = planner_for_run(planner_config, model.config, args.dataset_dir)
    evaluator = env_evaluator(name, args.episodes, progress=not args.no_progress, workers=flags.workers(args.eval_workers),
                              seed=args.seed, video_dir=video_dir, planner=planner,
                              normalization=ActionNormalization.load(run_dir))
    results, outcomes = evaluator(stack([model.agent]))
    result, outcomes = results[0], outcomes[0]
    suffix = "" if planner is None else "_planner-graph"
    out = args.out or os.path.join(run_dir, f"reeval_{model.step}{suffix}.json")
    extra = {} if planner is None else {"planner": {"name": "graph", **dataclasses.asdict(planner[1])}}
    write_results(out, model.step, result, env=name, seed=args.seed, episodes_per_task=args.episodes,
                  episodes=outcomes.astype(int).tolist(), cost=evaluator.stats, **extra)
    print(cost_text(evaluator.stats))
    print(", ".join(f"{k} {v:.1%}" for k, v in result.items() if k != "overall"))
    print(f"success rate: {result['overall']:.1%} (step {model.step}; written to {out})")
    if video_dir is not None:
        print(f"videos (the first episode of each task): {', '.join(sorted(os.listdir(video_dir)))} in {video_dir}")
    return 0


def paper(args) -> int:
    """The protocol on saved runs (``mqe.driver.evaluate_runs``)."""
    from mqe.driver import evaluate_runs
    from mqe.protocol import mean_and_se

    if args.video is not None or args.out:
        raise ConfigError("--paper writes eval_<step>.json into each run; it takes neither --out nor --video")
    scores = evaluate_runs(args.runs, episodes=args.episodes, fractions=args.fractions, env=args.env, seed=args.seed,
                           workers=flags.workers(args.eval_workers), planner_config=flags.planner_config(args),
                           dataset_dir=args.dataset_dir, progress=not args.no_progress,
                           log=lambda line: print(line, flush=True))
    finals = []
    for folder, final, steps in scores:
        if final is None:
            print(f"{folder}: not scored (evaluations missing at {steps})")
            continue
        finals.append(final["overall"])
        print(f"{folder}: success {final['overall']:.1%} (mean of steps {steps}); "
              + ", ".join(f"{k} {v:.1%}" for k, v in final.items() if k != "overall"))
    if len(finals) > 1:
        mean, se = mean_and_se(finals)
        print(f"success rate over {len(finals)} runs: {mean:.1%} ± {se:.1%} (standard error)")
    return 0


def _check_video_writer() -> None:
    """mp4 files need imageio's ffmpeg plugin; say so before a long evaluation, not after."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ConfigError("--video writes mp4 files with imageio-ffmpeg: pip install 'mqe-gcrl[video]'") from None
