"""The ``mqe`` command line: ``train``, ``sweep``, ``config``, ``eval``, ``generate``, ``demo``, ``expert``,
``agents``, ``presets``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings

from mqe import checkpoint as ckpt
from mqe.checkpoint import CheckpointError
from mqe.io import RunDirBusy, atomic_write_text
from mqe.config import ConfigError, load_presets, make_config, parse_seeds, preset_names
from mqe.data.dataset import DatasetError


def _common_train_args(parser: argparse.ArgumentParser, default_preset: str | None) -> None:
    parser.add_argument("--agent", default="mqe", help="agent name (default: mqe)")
    parser.add_argument("--preset", default=default_preset,
                        help=f"hyperparameter preset ({', '.join(preset_names())}, or none for the agent's "
                             f"defaults); default: {default_preset or 'paper for an OGBench dataset name, else none'}")
    parser.add_argument("--steps", type=int, help="total gradient updates (overrides the preset)")
    parser.add_argument("--seed", type=int, help="the run's one seed (default 0)")
    parser.add_argument("--seeds", help="several seeds trained as one program, e.g. 0-7 or 0,2,5; each gets "
                                        "its own run directory (RUN_DIR/s<seed>, or RUN_DIR with {seed} in it)")
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


def _seeds(args) -> list[int] | None:
    """The seeds of --seeds, or None for one run (--seed, or the config's seed)."""
    if getattr(args, "seeds", None) is None:
        return None
    if args.seed is not None:
        raise ConfigError("give either --seed (one run) or --seeds (several seeds in one program), not both")
    return parse_seeds(args.seeds)


def _run_dir(args, dataset_label: str, seed: int, several: bool = False) -> str:
    """A seed's run directory: --run-dir (with {seed} formatted, or RUN_DIR/s<seed> for several seeds),
    else runs/<dataset>-<agent>-s<seed>."""
    if args.run_dir:
        if "{seed}" in args.run_dir:
            return args.run_dir.replace("{seed}", str(seed))
        return os.path.join(args.run_dir, f"s{seed}") if several else args.run_dir
    return os.path.join("runs", f"{dataset_label}-{args.agent}-s{seed}")


def _is_file(dataset: str) -> bool:
    """--dataset names a file (a path or an .npz), not a dataset name."""
    return dataset.endswith(".npz") or os.path.sep in dataset


def _check_known(name: str, flag: str) -> None:
    from mqe.data.names import is_known, known_names_text

    if not is_known(name):
        raise ConfigError(f"{flag} {name!r} is not a dataset name we know; the known names are:\n"
                          f"{known_names_text()}\nFor your own data, pass the path of a .npz file "
                          "(with --env NAME to evaluate it on an OGBench environment)")


def _resolve_training_data(args) -> tuple[str, str]:
    """(train .npz path, evaluation environment name or "") for --dataset and --env.

    --dataset is a file path, or a known dataset name (found locally, downloaded, or for point mazes
    generated). The environment is --env, else the dataset's name when it is a known one (a file named
    like `mqe generate` names them counts)."""
    from mqe.data.names import is_known

    if args.env:
        _check_known(args.env, "--env")
    if _is_file(args.dataset):
        base = os.path.basename(args.dataset).removesuffix(".npz")
        env = args.env or (base if is_known(base) else "")
        if env and not args.env:
            print(f"{args.dataset}: named like the OGBench dataset {base}; evaluating on it and using its "
                  "settings (--env NAME to choose another)")
        return args.dataset, env
    from mqe.data.generate import GenerationError, recipe_for
    from mqe.data.resolve import DatasetNotFound, find_dataset, resolve_dataset, search_dirs

    if not is_known(args.dataset):
        found = find_dataset(args.dataset, args.dataset_dir)
        if found:  # a user's own file in a dataset directory, under its own name
            return found[0], args.env or ""
        _check_known(args.dataset, "--dataset")
    env = args.env or args.dataset
    try:
        return resolve_dataset(args.dataset, args.dataset_dir, download=not args.no_download)[0], env
    except DatasetNotFound as missing:
        # Only point mazes are generated on the spot (minutes); ant and manipulation sets take from
        # minutes to hours, so the error names the `mqe generate` command instead.
        if not args.dataset.startswith("pointmaze-"):
            raise missing from None
        try:
            recipe_for(args.dataset)
        except GenerationError:
            raise missing from None
    from mqe.data.generate import generate

    target = search_dirs(args.dataset_dir)[0]
    print(f"{args.dataset}: not found locally or online; generating it with OGBench's recipe into {target}")
    train_path, _, stats = generate(args.dataset, target, seed=0, workers=os.cpu_count() or 1,
                                    progress=not args.no_progress)
    print("generated: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return train_path, env


def _make_ogbench_evaluator(name: str, episodes: int, progress: bool, workers: int, seed: int = 0,
                            batching: str = "auto", video_dir: str | None = None, planner=None,
                            normalization=None):
    """``evaluator(agents) -> (rates per seed, successes (seeds, tasks, episodes))`` on a dataset's
    environment, for agent states stacked on a leading seed axis (``mqe.train.stack``). ``normalization``
    (a robot run's ``ActionNormalization``): the policy's actions are mapped back to the environment's units.

    All seeds' episodes step side by side with one policy call per environment step (the seeds batched
    as ``batching``, see ``mqe.train.over_seeds``); every seed gets the episodes a single-seed
    evaluation would give it."""
    import functools
    import time

    import jax
    import numpy as np

    from mqe.envs.ogbench_envs import make_env
    from mqe.evaluation import evaluate_policies, summarize
    from mqe.train import over_seeds, unstack

    def evaluator(agents):
        n = int(np.shape(agents.step)[0])
        if n == 1:  # the plain program: a single-seed run evaluates exactly as it always did
            act = jax.jit(unstack(agents, 0).sample_actions)
        else:
            per_seed = over_seeds(lambda a, o, g: a.sample_actions(o, g), batching, (0, 0, 0))

            def act(observations, goals):
                shape = lambda x: x.reshape(n, -1, *x.shape[1:])
                out = per_seed(agents, shape(observations), shape(goals))
                return out.reshape(-1, out.shape[-1])
            act = jax.jit(act)
        policy = lambda o, g: np.asarray(act(np.asarray(o, np.float32), np.asarray(g, np.float32)))
        if normalization is not None:
            normalized_policy = policy
            policy = lambda o, g: normalization.denormalize(normalized_policy(o, g))
        planned = None
        if planner is not None:
            from mqe.planning import PlannedPolicy, build_planner, steps_functions

            agent_name, planner_config, pool = planner
            start = time.perf_counter()
            planners = []
            for i in range(n):
                fns = steps_functions(unstack(agents, i), agent_name)
                planners.append(build_planner(fns, pool, planner_config))
            build_seconds = time.perf_counter() - start
            policy = planned = PlannedPolicy(policy, planners, planner_config.replan_every)
        start = time.perf_counter()
        outcomes = evaluate_policies(policy, functools.partial(make_env, name), n, episodes_per_task=episodes,
                                     workers=workers, progress=progress, seed=seed, video_dir=video_dir)
        seconds = time.perf_counter() - start
        total = int(np.size(outcomes))
        evaluator.stats = {"seconds": seconds, "episodes": total, "episodes_per_second": total / seconds}
        if planned is not None:
            graphs = [p.graph_summary() for p in planners]  # one per seed
            evaluator.stats.update(planned.stats(), graph_build_seconds=build_seconds, units=planners[0].fns.units,
                                   planning_seconds_per_episode=planned.planning_seconds / total,
                                   graph={key: float(np.mean([g[key] for g in graphs])) for key in graphs[0]},
                                   graph_per_seed=graphs)
        return [summarize(o) for o in outcomes], outcomes

    evaluator.stats = {}
    return evaluator


def _fractions(text: str) -> tuple[float, ...]:
    """--fractions: comma-separated fractions in (0, 1]."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0.0 < f <= 1.0 for f in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions in (0, 1], e.g. 0.8,0.9,1.0; got {text!r}")
    return values


def _paper_summary(run_dir: str, eval_steps: list[int], episodes: int) -> tuple[dict[str, float], list[int]]:
    """Mean over the paper's evaluation points, per task and overall, written to final_eval.json; and
    the steps it averaged.

    Reads the ``eval_<step>.json`` files the training loop wrote, so evaluations from before a resume
    count, and evaluations at other steps (``train.eval_interval``) do not."""
    from mqe.evaluation import write_results

    found = {}
    for step in eval_steps:
        path = os.path.join(run_dir, f"eval_{step}.json")
        if os.path.exists(path):
            with open(path) as f:
                found[step] = {k: v for k, v in json.load(f).items() if k != "step"}
    keys = next(iter(found.values())).keys()
    final = {k: float(sum(e[k] for e in found.values()) / len(found)) for k in keys}
    write_results(os.path.join(run_dir, "final_eval.json"), max(found), final, evaluated_at=sorted(found),
                  episodes_per_task=episodes)
    return final, sorted(found)


def cmd_train(args) -> int:
    from mqe.data.dataset import Dataset
    from mqe.train import paper_eval_steps, train_seeds

    seeds = _seeds(args)
    normalization = None
    if os.path.isdir(args.dataset):  # robot trajectories: RLDS or NumPy episodes (mqe.data.robot)
        from mqe.data.robot import episodes_to_dataset, read_episodes

        path, env = os.path.normpath(args.dataset), args.env or ""
        episodes = read_episodes(path, split=args.split, image=args.image_key, action=args.action_key,
                                 proprio=args.proprio_key)
        dataset, normalization = episodes_to_dataset(episodes, source=path)
    else:
        path, env = _resolve_training_data(args)
        dataset = Dataset.load_npz(path)
    named = not _is_file(args.dataset) and env == args.dataset and normalization is None
    label = args.dataset if named else os.path.basename(path).removesuffix(".npz")
    config = make_config(args.agent, args.preset, _overrides(args), dataset=args.dataset if named else path,
                         env=env)
    seeds = seeds or [config.train.seed]
    several = len(seeds) > 1
    run_dirs = {seed: _run_dir(args, label, seed, several) for seed in seeds}
    print(f"dataset {path}: {dataset.size} rows, {dataset.num_trajectories} trajectories, "
          f"obs {dataset.observation_shape}, action_dim {dataset.action_dim}")
    if normalization is not None:  # kept with each run: mqe serve hands the robot actions in its own units
        for run_dir in run_dirs.values():
            normalization.save(run_dir)
        print("actions normalised into [-1, 1] per dimension (q01..q99); statistics in RUN/action_normalization.json")
    print(_settings_header(config))
    if several:
        print(f"seeds {', '.join(map(str, seeds))} in one program; run directories: "
              + ", ".join(run_dirs.values()))
    else:
        print(f"run directory: {run_dirs[seeds[0]]}")
    evaluator, eval_steps, eval_dir = None, None, ""
    planner = _planner_spec(args, config, dataset.observations)
    if planner is not None and not (env and args.eval_episodes > 0):
        raise ConfigError("--planner acts at evaluation; this run has no evaluation environment (--env) or episodes")
    if env and args.eval_episodes > 0:
        inner = _make_ogbench_evaluator(env, args.eval_episodes, not args.no_progress, args.eval_workers,
                                        batching=config.train.seed_batching, planner=planner,
                                        normalization=normalization)
        if planner is not None:
            eval_dir = planner[1].folder()
            for run_dir in run_dirs.values():
                _write_planner_settings(run_dir, planner[1])
            print(f"evaluating with the graph planner ({planner[1]}); results in RUN/{eval_dir}/")
        eval_steps = paper_eval_steps(config.train.steps, config.train.updates_per_call, config.train.eval_fractions)
        evaluator = lambda agents: inner(agents)[0]
        extra = f" (and every {config.train.eval_interval})" if config.train.eval_interval else ""
        print(f"evaluating {args.eval_episodes} episodes per task at steps {eval_steps}{extra}")
    results = train_seeds(config, dataset, run_dirs, evaluator=evaluator, eval_steps=eval_steps,
                          resume=not args.no_resume, progress=not args.no_progress, eval_dir=eval_dir)
    finals = []
    for result in results:
        if several:
            print(f"seed {result.seed} ({result.run_dir}):")
        _print_summary(result)
        if evaluator is not None:
            final, evaluated_at = _paper_summary(os.path.join(result.run_dir, eval_dir), eval_steps, args.eval_episodes)
            finals.append(final["overall"])
            tasks = {k: v for k, v in final.items() if k != "overall"}
            print(f"success at steps {evaluated_at} (mean, the paper's way): "
                  + ", ".join(f"{k} {v:.1%}" for k, v in tasks.items()))
            print(f"success rate: {final['overall']:.1%}")
    if several and finals:
        from mqe.experiments.report import mean_and_se

        mean, se = mean_and_se(finals)
        print(f"success rate over {len(finals)} seeds: {mean:.1%} ± {se:.1%} (standard error)")
    return 0


def _settings_header(config) -> str:
    return (f"agent {config.agent_name}, preset {config.preset or 'none'}"
            + (f", evaluated on {config.env}" if config.env else "")
            + f"; values that differ from the agent's defaults:\n{config.describe_changes()}")


def cmd_config(args) -> int:
    """The config a `mqe train` with the same flags would use, without loading data or training."""
    if args.env:
        _check_known(args.env, "--env")
    if args.dataset and not _is_file(args.dataset):
        _check_known(args.dataset, "--dataset")
    # Without --env, make_config takes the environment from a known name (or a file named like one).
    config = make_config(args.agent, args.preset, _overrides(args), dataset=args.dataset or "", env=args.env)
    print(_settings_header(config))
    if args.verbose:
        print(json.dumps({k: v for k, v in config.to_dict().items() if k != "changed_from_defaults"}, indent=2))
    return 0


def _planner_spec(args, config, observations=None):
    """(agent name, PlannerConfig, the run's training observations) for --planner graph, else None."""
    if args.planner == "none":
        if args.planner_set or args.landmarks:
            raise ConfigError("--planner-set and --landmarks need --planner graph")
        return None
    from mqe.data.dataset import Dataset
    from mqe.data.resolve import dataset_files, search_dirs
    from mqe.planning import PlannerConfig, PlannerError

    try:
        planner_config = PlannerConfig.from_overrides(
            list(args.planner_set) + ([f"landmarks={args.landmarks}"] if args.landmarks else []))
    except PlannerError as exc:
        raise ConfigError(f"--planner-set: {exc}") from None
    if observations is not None:
        return config.agent_name, planner_config, observations
    source = config.dataset
    path = source if source.endswith(".npz") and os.path.exists(source) else None
    if path is None:
        found = [dataset_files(d, source)[0] for d in search_dirs(args.dataset_dir)]
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            raise ConfigError(f"the planner takes its landmarks from the run's training data {source!r}, which is not "
                              f"in {', '.join(search_dirs(args.dataset_dir))}; pass --dataset-dir DIR")
        path = found[0]
    data = Dataset.load_npz(path)
    if config.dataset_fingerprint and data.fingerprint != config.dataset_fingerprint:
        raise ConfigError(f"{path} is not the data the run was trained on (fingerprint {data.fingerprint}, the run's "
                          f"{config.dataset_fingerprint}); pass --dataset-dir with the run's data")
    return config.agent_name, planner_config, data.observations


def cmd_eval(args) -> int:
    from mqe.api import load
    from mqe.evaluation import write_results

    if args.paper:
        return _eval_paper(args)
    if args.fractions:
        raise ConfigError("--fractions goes with --paper (the evaluation points of each run's checkpoints)")
    if len(args.runs) > 1:
        raise ConfigError(f"mqe eval takes one run ({len(args.runs)} given); several runs go with --paper")
    args.run = args.runs[0]
    model = load(args.run)
    name = args.env or model.config.env
    if args.env:
        _check_known(args.env, "--env")
    if not name:
        print(f"mqe: error: {args.run} was trained on {model.config.dataset!r} with no evaluation environment; "
              "pass --env NAME (an OGBench dataset name) to evaluate it", file=sys.stderr)
        return 2
    from mqe.train import stack

    run_dir = args.run if os.path.isdir(args.run) else os.path.dirname(os.path.dirname(model.path))
    video_dir = None
    if args.video is not None:
        video_dir = args.video or os.path.join(run_dir, f"videos_{model.step}")
        _check_video_writer()
    planner = _planner_spec(args, model.config)
    evaluator = _make_ogbench_evaluator(name, args.episodes, not args.no_progress, args.eval_workers, args.seed,
                                        video_dir=video_dir, planner=planner,
                                        normalization=_action_normalization(run_dir))
    results, outcomes = evaluator(stack([model.agent]))
    result, outcomes = results[0], outcomes[0]
    suffix = "" if planner is None else "_planner-graph"
    out = args.out or os.path.join(run_dir, f"reeval_{model.step}{suffix}.json")
    extra = {} if planner is None else {"planner": {"name": "graph", **dataclasses.asdict(planner[1])}}
    write_results(out, model.step, result, env=name, seed=args.seed, episodes_per_task=args.episodes,
                  episodes=outcomes.astype(int).tolist(), cost=evaluator.stats, **extra)
    _print_cost(evaluator.stats)
    print(", ".join(f"{k} {v:.1%}" for k, v in result.items() if k != "overall"))
    print(f"success rate: {result['overall']:.1%} (step {model.step}; written to {out})")
    if video_dir is not None:
        print(f"videos (the first episode of each task): {', '.join(sorted(os.listdir(video_dir)))} in {video_dir}")
    return 0


def _eval_paper(args) -> int:
    """The paper's protocol on saved runs: each run's checkpoints (full or policy) at 80/90/100% of its
    ``train.steps`` evaluated, written as ``eval_<step>.json`` and ``final_eval.json`` exactly as training
    writes them (so ``mqe report`` reads them). Seeds of one configuration are evaluated together; steps
    already evaluated are kept (a killed evaluation resumes)."""
    from mqe.api import load
    from mqe.config import RunConfig
    from mqe.experiments.report import mean_and_se
    from mqe.train import paper_eval_steps, stack

    if args.video is not None or args.out:
        raise ConfigError("--paper writes eval_<step>.json into each run; it takes neither --out nor --video")
    groups: dict[str, list[tuple[str, RunConfig]]] = {}
    for run_dir in args.runs:
        path = os.path.join(run_dir, "config.json")
        if not os.path.isfile(path):
            raise ConfigError(f"{run_dir}: not a run directory (no config.json); --paper evaluates run directories")
        with open(path) as f:
            config = RunConfig.from_dict(json.load(f))
        key = json.dumps({**config.to_dict(), "train": {**config.to_dict()["train"], "seed": None}}, sort_keys=True)
        groups.setdefault(key, []).append((run_dir, config))
    if args.env:
        _check_known(args.env, "--env")
    finals = []
    for members in groups.values():
        config = members[0][1]
        name = args.env or config.env
        if not name:
            raise ConfigError(f"{members[0][0]} was trained on {config.dataset!r} with no evaluation environment; "
                              "pass --env NAME (an OGBench dataset name)")
        steps = paper_eval_steps(config.train.steps, config.train.updates_per_call,
                                 args.fractions or config.train.eval_fractions)
        planner = _planner_spec(args, config)
        evaluator = _make_ogbench_evaluator(name, args.episodes, not args.no_progress, args.eval_workers, args.seed,
                                            batching=config.train.seed_batching, planner=planner,
                                            normalization=_action_normalization(members[0][0]))
        # Planned evaluations live in RUN/planner_graph[-changed settings]/ (settings in planner.json), beside
        # the plain ones and those with other settings.
        where = (lambda run: run) if planner is None else (lambda run: os.path.join(run, planner[1].folder()))
        if planner is not None:
            for run, _ in members:
                _write_planner_settings(run, planner[1])
        for step in steps:
            todo = [run for run, _ in members if not os.path.exists(os.path.join(where(run), f"eval_{step}.json"))]
            if not todo:
                continue
            paths = {}
            for run in todo:
                paths[run] = ckpt.checkpoint_at(run, step)
                if paths[run] is None:
                    raise CheckpointError(f"{run}: no checkpoint at step {step} (checkpoints/ckpt_{step:010d}.msgpack "
                                          f"or {ckpt.POLICY_DIR}/policy_{step:010d}.msgpack), one of the paper's "
                                          f"evaluation points {steps}")
            print(f"{name}: step {step}, {len(todo)} run(s), {args.episodes} episodes per task", flush=True)
            results, _ = evaluator(stack([load(paths[run]).agent for run in todo]))
            _print_cost(evaluator.stats)
            for run, result in zip(todo, results):
                atomic_write_text(os.path.join(where(run), f"eval_{step}.json"),
                                  json.dumps({"step": step, **result}, indent=2))
                if planner is not None:
                    atomic_write_text(os.path.join(where(run), f"cost_{step}.json"), json.dumps(evaluator.stats, indent=2))
        for run, _ in members:
            final, evaluated_at = _paper_summary(where(run), steps, args.episodes)
            finals.append(final["overall"])
            print(f"{run}: success {final['overall']:.1%} (mean of steps {evaluated_at}); "
                  + ", ".join(f"{k} {v:.1%}" for k, v in final.items() if k != "overall"))
    if len(finals) > 1:
        mean, se = mean_and_se(finals)
        print(f"success rate over {len(finals)} runs: {mean:.1%} ± {se:.1%} (standard error)")
    return 0


def _action_normalization(run_dir: str):
    """A robot run's action statistics (its policy acts in [-1, 1]), or None."""
    from mqe.data.robot import ActionNormalization

    return ActionNormalization.load(run_dir)


def _write_planner_settings(run_dir: str, planner_config) -> None:
    """RUN/<planner_config.folder()>/planner.json; a folder holding other settings' evaluations is not mixed
    into."""
    settings = {"name": "graph", **dataclasses.asdict(planner_config)}
    path = os.path.join(run_dir, planner_config.folder(), "planner.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f).get("settings") != settings:
                raise ConfigError(f"{path} holds evaluations with other planner settings; move that folder away "
                                  "to evaluate with these")
    atomic_write_text(path, json.dumps({"settings": settings}, indent=2))


def _print_cost(stats: dict) -> None:
    line = f"evaluation: {stats['episodes']} episodes in {stats['seconds']:.0f} s ({stats['episodes_per_second']:.2f} episodes/s)"
    if "replans" in stats:
        line += (f"; planner: graph built in {stats['graph_build_seconds']:.1f} s, {stats['replans']} replans, "
                 f"{1e3 * stats['seconds_per_replan']:.1f} ms per replan, {stats['planning_seconds_per_episode']:.2f} s "
                 f"per episode, goal itself as target {stats['goal_itself_fraction']:.0%} of the time")
    print(line)
    if "graph" in stats:
        g = stats["graph"]
        print(f"planner graph (mean over seeds): {g.get('landmarks', 0):.0f} landmarks, "
              f"{g['edge_fraction']:.1%} of their pairs within max_edge, "
              f"{g['route_fraction']:.1%} joined by a route; nearest landmark at a median {g['nearest_landmark_steps_median']:.1f} "
              f"steps, all pairs at {g['landmark_pair_steps_median']:.1f}")
        if g["route_fraction"] < 0.5:  # where no route joins start and goal the policy just gets the goal
            print(f"planner graph: only {g['route_fraction']:.0%} of landmark pairs are joined by a route, so most "
                  "episodes fall back to the goal itself; more landmarks (--landmarks, or a larger --planner-set "
                  "max_landmarks for the growth set by connect) join the graph with short edges (a larger max_edge "
                  "does too, with the long edges the learned distance is least sure of)")


def _check_video_writer() -> None:
    """mp4 files need imageio's ffmpeg plugin; say so before a long evaluation, not after."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ConfigError("--video writes mp4 files with imageio-ffmpeg: pip install 'mqe-gcrl[video]'") from None


DEMO_DATASET = "pointmaze-medium-navigate-v0"
BACKEND_CHOICES = ("local", "ray")


def cmd_demo(args) -> int:
    """The main job on an embedded default: generates a small OGBench point-maze dataset with OGBench's
    recipe, trains MQE on it with a reduced budget, evaluates the 5 tasks and prints the success rate."""
    if args.env == "gridmaze":
        return _demo_gridmaze(args)
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
    train_args = build_parser().parse_args(argv)
    return cmd_train(train_args)


def _demo_gridmaze(args) -> int:
    """Generates the built-in grid-maze data, trains on it, evaluates, prints the success rate."""
    import jax

    from mqe.data.dataset import Dataset
    from mqe.envs.gridworld import DEFAULT_MAZE, GridMaze, GridMazeEnv
    from mqe.train import train

    maze = GridMaze(DEFAULT_MAZE, observation=args.observation)
    config = make_config(args.agent, args.preset or "gridmaze", _overrides(args), dataset="gridmaze")
    run_dir = _run_dir(args, "gridmaze", config.train.seed)
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
        if args.name.startswith("robot-"):
            return _generate_robot(args, target)
        if args.name.startswith("visual-"):
            from mqe.data.visual import SHARD_ROWS, generate_visual

            train, val, stats = generate_visual(args.name, args.dataset_dir, seed=args.seed,
                                                num_episodes=args.num_episodes, workers=args.workers,
                                                shard_rows=args.shard_rows or SHARD_ROWS,
                                                progress=not args.no_progress)
        else:
            train, val, stats = generate(args.name, target, seed=args.seed, num_episodes=args.num_episodes,
                                         expert=args.expert, workers=args.workers, progress=not args.no_progress)
    except GenerationError as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {train}\nwrote {val}")
    print("stats: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return 0


def _generate_robot(args, target: str) -> int:
    """robot-<name>: the frames and end-effector actions of visual-<name> (found, else rendered) written as
    robot episodes in the NumPy episode format, a folder in the dataset directory."""
    from mqe.data.dataset import Dataset
    from mqe.data.resolve import dataset_files, search_dirs
    from mqe.data.robot import dataset_to_episodes, robot_dataset_name, write_numpy_episodes
    from mqe.data.visual import SHARD_ROWS, generate_visual

    visual = robot_dataset_name(args.name)
    found = [dataset_files(d, visual)[0] for d in search_dirs(args.dataset_dir)]  # the training file is enough
    found = [path for path in found if os.path.isfile(path)]
    if found:
        source = found[0]
    else:
        source = generate_visual(visual, args.dataset_dir, seed=args.seed, num_episodes=args.num_episodes,
                                 workers=args.workers, shard_rows=args.shard_rows or SHARD_ROWS,
                                 progress=not args.no_progress)[0]
    episodes = dataset_to_episodes(Dataset.load_npz(source), split_steps=args.episode_steps)
    steps = sum(len(e["images"]) for e in episodes)
    proprio = f", proprio {episodes[0]['proprio'].shape[1]}-d" if "proprio" in episodes[0] else ""
    what = (f"{len(episodes)} episodes, {steps} steps, frames {episodes[0]['images'].shape[1:]} uint8, actions "
            f"{episodes[0]['actions'].shape[1]}-d{proprio} (from {source})")
    if args.format in ("numpy", "both"):
        out = os.path.join(target, args.name)
        write_numpy_episodes(episodes, out)
        print(f"wrote {out}/ (NumPy episodes): {what}")
    if args.format in ("rlds", "both"):
        from mqe.data.rlds import write_rlds

        folder = write_rlds(episodes, os.path.join(target, args.name + "-rlds"),
                            name=args.name.replace("-", "_"))
        print(f"wrote {folder}/ (RLDS, BridgeData V2's step names): {what}")
    return 0


def cmd_sweep(args) -> int:
    from mqe.experiments.grid import expand, load_grid_file, split_values
    from mqe.experiments.sweep import LocalBackend, RayBackend, run_sweep, seed_progress

    spec = load_grid_file(args.file) if args.file else {}
    for key, value in (("datasets", args.datasets), ("agents", args.agents), ("seeds", args.seeds),
                       ("preset", args.preset), ("eval_episodes", args.eval_episodes),
                       ("dataset_dir", args.dataset_dir)):
        if value is not None:
            spec[key] = value
    if args.no_download:
        spec["no_download"] = True
    if args.overrides:
        spec["set"] = list(spec.get("set") or []) + args.overrides
    for axis in args.grid:
        if "=" not in axis:
            raise ConfigError(f"--grid {axis!r}: expected KEY=VALUE1,VALUE2,... (e.g. next_state_prob=0.1,0.2,0.5)")
        key, values = axis.split("=", 1)
        spec.setdefault("grid", {})[key.strip()] = split_values(values)
    for key in ("datasets", "agents"):
        if isinstance(spec.get(key), str):
            spec[key] = split_values(spec[key])
    out = args.out or os.path.join("sweeps", os.path.basename(args.file).rsplit(".", 1)[0] if args.file else "sweep")
    jobs = expand(spec, os.path.abspath(out))
    if args.dry_run:
        for job in jobs:
            state = [f"s{seed} " + ("finished" if done else f"at step {step}" if step else "new")
                     for seed in job.seeds for step, done in [seed_progress(job, seed)]]
            print(f"{job.name}: {job.config.train.steps} steps; " + ", ".join(state))
            print("  mqe " + " ".join(job.train_argv(list(job.seeds))))
        return 0
    if args.backend == "ray":
        backend = RayBackend(args.address, cpus=args.cpus_per_run, gpus=args.gpus_per_run, parallel=args.parallel)
    else:
        backend = LocalBackend(args.parallel or 1)
    workers = args.eval_workers
    if workers is None and args.backend == "local":
        workers = max(1, (os.cpu_count() or 1) // (args.parallel or 1))
    outcomes = run_sweep(jobs, os.path.abspath(out), backend, spec=spec, command="mqe " + " ".join(sys.argv[1:]),
                         eval_workers=workers, status_interval=args.status_interval, report=not args.no_report)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_report(args) -> int:
    from mqe.experiments.report import build_report

    out = args.out or (args.paths[0] if len(args.paths) == 1 else "report")
    out = os.path.join(out, "report") if out in args.paths else out
    report = build_report(args.paths, out, figures=not args.no_figures, fractions=args.fractions)
    print(report.markdown)
    print("wrote " + ", ".join(report.files))
    return 0


def cmd_expert(args) -> int:
    from mqe.experts import ant
    from mqe.experts.online import ExpertError, evaluate_actor, train_expert
    from mqe.experts.sac import SACConfig

    if args.action == "eval":
        try:
            actor = ant.load_actor(args.actor)
        except ExpertError as exc:
            print(f"mqe: error: {exc}", file=sys.stderr)
            return 2
        if args.maze is None:
            result = evaluate_actor(ant.task(), actor, args.episodes, args.seed)
            print(f"{args.episodes} episodes: return {result['eval/return_mean']:.2f} "
                  f"(min {result['eval/return_min']:.2f}), length {result['eval/length_mean']:.0f}")
            return 0
        import functools

        from mqe.data.maze_collector import SubgoalPolicy
        from mqe.envs.ogbench_envs import make_env
        from mqe.evaluation import evaluate

        if not args.maze.startswith("antmaze-"):
            print(f"mqe: error: --maze must be an antmaze dataset name, got {args.maze!r}", file=sys.stderr)
            return 2
        policy = SubgoalPolicy(args.maze, ant.AntController(actor), noise=args.noise, seed=args.seed)
        result = evaluate(policy, functools.partial(make_env, args.maze), episodes_per_task=args.episodes,
                          seed=args.seed, workers=args.eval_workers, progress=not args.no_progress)
        print(f"{args.maze}, BFS-subgoal controller + ant expert, action noise {args.noise}, "
              f"{args.episodes} episodes per task: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result.items()))
        return 0
    try:
        config = SACConfig(**({"total_steps": args.steps} if args.steps else {}))
    except ValueError as exc:
        print(f"mqe: error: --steps: {exc}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", f"expert-{args.name}-s{args.seed}")
    print(f"training the {args.name} expert in {out} ({config.total_steps} environment steps; "
          f"run the same command again to resume)")
    try:
        command = f"mqe expert train {args.name} --seed {args.seed}" + (f" --steps {args.steps}" if args.steps else "")
        record = train_expert(ant.task(), out, config, seed=args.seed, until=args.until,
                              progress=not args.no_progress, command=command)
    except ExpertError as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    if not record["finished"]:
        print(f"stopped at step {record['step']} (--until); run the same command without --until to continue")
        return 0
    print(f"final return {record['final_eval']['eval/return_mean']:.2f} over 10 episodes; "
          f"actor: {os.path.join(out, 'actor.npz')}, record: {os.path.join(out, 'record.json')}")
    return 0


def cmd_agents(args) -> int:
    import dataclasses

    from mqe.agents import AGENTS

    for name, spec in AGENTS.items():
        print(f"{name:7s} {spec.summary}")
        if args.verbose:
            for field in dataclasses.fields(spec.config_class):
                print(f"          {field.name} = {field.default!r}")
    return 0


def cmd_presets(args) -> int:
    presets = load_presets()["presets"]
    for name in sorted(presets):
        print(f"{name}: {presets[name].get('description', '')}")
        if args.verbose:
            print(json.dumps({k: v for k, v in presets[name].items() if k != 'description'}, indent=2))
    return 0


def _planner_args(p: argparse.ArgumentParser, where: str) -> None:
    p.add_argument("--planner", choices=("none", "graph"), default="none",
                   help="graph: plan over the agent's learned distance between dataset landmarks and hand the policy "
                        f"the next waypoint (mqe.planning); {where}")
    p.add_argument("--landmarks", type=int, help="graph planner: landmarks, the first K and the step by which K "
                   "grows until the graph joins up (same as --planner-set landmarks=K; connect=0 keeps K fixed)")
    p.add_argument("--planner-set", action="append", default=[], metavar="KEY=VALUE",
                   help="graph planner settings: landmarks, selection, candidates, edge_power, max_edge, goal_radius, "
                        "skip_radius, replan_every, seed, connect, max_landmarks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mqe", description="Multistep Quasimetric Estimation for offline GCRL")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an agent on a dataset file in OGBench's layout")
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
    p.add_argument("--dataset-dir", help="where OGBench datasets live (default: $MQE_DATASET_DIR, ~/.ogbench/data)")
    p.add_argument("--no-download", action="store_true", help="never try OGBench's download server")
    p.add_argument("--env", help="the OGBench dataset name whose environment evaluates the run and whose "
                                 "per-dataset settings it gets (default: --dataset when it is such a name)")
    p.add_argument("--eval-episodes", type=int, default=50,
                   help="episodes per task at each evaluation (when there is an environment; 0 = no evaluation)")
    p.add_argument("--eval-workers", type=int, default=os.cpu_count() or 1,
                   help="processes that step the evaluation environments (default: one per CPU core; 0 = in this process)")
    _common_train_args(p, default_preset=None)
    _planner_args(p, "evaluations during training then go to RUN/planner_graph/ (with the changed settings in "
                      "the name: planner_graph-max_edge=20)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("config", help="print the settings a run would get (per-dataset values with their sources)")
    p.add_argument("--agent", default="mqe", help="agent name (default: mqe)")
    p.add_argument("--dataset", help="a dataset name (its per-dataset settings and the paper's preset apply)")
    p.add_argument("--env", help="the OGBench dataset name whose settings apply (default: --dataset)")
    p.add_argument("--preset", help="a preset, or none for the agent's defaults (default: paper for a dataset name)")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the whole resolved config")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("eval", help="re-evaluate a saved run (its newest checkpoint) on its OGBench environment; "
                                    "--paper: the paper's protocol on runs trained elsewhere")
    p.add_argument("runs", nargs="+", metavar="run", help="run directory or checkpoint file (several with --paper)")
    p.add_argument("--paper", action="store_true",
                   help="evaluate each run's checkpoints (full or policy) at the paper's 80/90/100%% points and write "
                        "eval_<step>.json and final_eval.json into it, as training does; seeds are evaluated together")
    p.add_argument("--fractions", type=_fractions, metavar="F,F,...",
                   help="with --paper: evaluate at these fractions of train.steps instead of the run's "
                        "train.eval_fractions (e.g. 1.0: the last checkpoint only, when evaluation time is short); "
                        "final_eval.json's evaluated_at and mqe report say which points were averaged")
    p.add_argument("--env", help="evaluate on this OGBench dataset's environment (default: the run's own)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per task")
    p.add_argument("--seed", type=int, default=0,
                   help="evaluation seed: episode k of task t resets with seed + 1000 t + k (default 0)")
    p.add_argument("--out", help="where the results go (default: RUN/reeval_<step>.json); they include every "
                                 "episode's success")
    p.add_argument("--eval-workers", type=int, default=os.cpu_count() or 1,
                   help="processes that step the evaluation environments (default: one per CPU core; 0 = in this process)")
    p.add_argument("--video", nargs="?", const="", metavar="DIR",
                   help="also record the first episode of each task, one mp4 per task (default DIR: "
                        "RUN/videos_<step>; needs imageio-ffmpeg, rendering uses MUJOCO_GL=egl)")
    _planner_args(p, "results go to reeval_<step>_planner-graph.json, or with --paper to RUN/planner_graph/ (with the "
                      "changed settings in the name: planner_graph-max_edge=20)")
    p.add_argument("--dataset-dir", help="where the run's training data is (the planner's landmarks come from it)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the main job on an embedded default: MQE on a generated point maze "
                                    "(~10 min on 2 CPU cores), or on the built-in grid maze (~2 min)")
    p.add_argument("env", nargs="?", choices=("pointmaze", "gridmaze"), default="pointmaze",
                   help=f"pointmaze: {DEMO_DATASET}, generated (default); gridmaze: the built-in grid maze")
    _common_train_args(p, default_preset=None)
    p.add_argument("--episodes", type=int, default=200, help="point-maze episodes to generate (1000 steps each)")
    p.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per task")
    p.add_argument("--grid-episodes", type=int, default=1000, help="grid maze: episodes to generate")
    p.add_argument("--episode-length", type=int, default=100, help="grid maze: steps per episode")
    p.add_argument("--data", choices=("navigate", "random"), default="navigate",
                   help="grid maze: noisy BFS walks to random goals (OGBench's recipe) or random walks")
    p.add_argument("--observation", choices=("onehot", "xy"), default="onehot",
                   help="grid maze: one float per cell (tabular) or cell coordinates")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="generate an OGBench dataset offline, in OGBench's exact file layout",
                       description="Collects a state dataset with OGBench's recipe; visual-<name> renders the states "
                                   "of the state dataset <name> (found, else generated first) through OGBench's "
                                   "visual environment, row for row; robot-<name> writes the frames and end-effector "
                                   "actions of visual-<name> as robot episodes (NumPy episode format, a folder).")
    p.add_argument("name", help="dataset name, e.g. pointmaze-medium-navigate-v0, visual-antmaze-medium-navigate-v0 "
                                "or robot-cube-single-play-v0")
    p.add_argument("--dataset-dir", help="output directory (default: $MQE_DATASET_DIR, else ~/.ogbench/data)")
    p.add_argument("--seed", type=int, default=0, help="generation seed (the output is deterministic in it)")
    p.add_argument("--num-episodes", type=int, help="training episodes (default: OGBench's recipe)")
    p.add_argument("--expert", help="antmaze: the ant actor (.npz from `mqe expert train ant`; default: the packaged one)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: one per CPU core); the output does not depend on it")
    p.add_argument("--shard-rows", type=int,
                   help="visual: frames per shard, the unit of resumption (default 5000; the output does not depend on it)")
    p.add_argument("--episode-steps", type=int,
                   help="robot: cut each trajectory into episodes of this many steps, each starting at the "
                        "previous one's final frame (default: whole trajectories)")
    p.add_argument("--format", choices=["numpy", "rlds", "both"], default="both",
                   help="robot: NumPy episodes (DIR/robot-<name>/), RLDS (DIR/robot-<name>-rlds/robot_<name>/1.0.0/) "
                        "or both (default)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sweep", help="train a grid of datasets x agents x seeds x --grid values (local processes or Ray)")
    p.add_argument("file", nargs="?", help="a YAML or JSON grid (keys: datasets, agents, seeds, set, grid, preset, "
                                           "eval_episodes, dataset_dir); flags override its keys")
    p.add_argument("--datasets", help="comma-separated dataset names or .npz files")
    p.add_argument("--agents", help="comma-separated agent names (default: mqe)")
    p.add_argument("--seeds", help="seeds of every configuration, trained as one program each (default: 0), e.g. 0-7")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value for every run, as in mqe train")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis: one configuration per value, crossed with the other axes "
                        "(tuple values in brackets: encoder_hidden_dims=[256,256],[512,512])")
    p.add_argument("--preset", help="a preset for every run (default: the paper's for a dataset name)")
    p.add_argument("--eval-episodes", type=int, help="episodes per task at each evaluation (default 50)")
    p.add_argument("--dataset-dir", help="where the datasets live (as in mqe train)")
    p.add_argument("--no-download", action="store_true", help="never try OGBench's download server")
    p.add_argument("--out", help="the sweep directory (default: sweeps/<grid file name>, or sweeps/sweep)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="local",
                   help="local: processes on this machine (default); ray: tasks on a Ray cluster")
    p.add_argument("--parallel", type=int, help="jobs at once (local default 1; ray default: as resources allow)")
    p.add_argument("--address", help="ray: the cluster to join (default: start a Ray on this machine for the sweep)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="ray: CPUs each job reserves (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="ray: GPUs each job reserves; a fraction shares one GPU (default 0)")
    p.add_argument("--eval-workers", type=int,
                   help="environment processes per job's evaluation (default: CPU cores / --parallel)")
    p.add_argument("--status-interval", type=float, default=60.0, help="seconds between progress lines")
    p.add_argument("--dry-run", action="store_true", help="list the jobs, their state and commands; run nothing")
    p.add_argument("--no-report", action="store_true",
                   help="do not rewrite SWEEP_DIR/report after every job (mqe report makes it on demand)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="the paper's tables (Markdown, CSV, LaTeX) and figures from runs, beside the "
                                      "published numbers")
    p.add_argument("paths", nargs="+", help="run directories, sweep directories, or folders that contain them")
    p.add_argument("--out", help="where the report goes (default: <the one path>/report, else ./report)")
    p.add_argument("--no-figures", action="store_true", help="tables only (no matplotlib needed)")
    p.add_argument("--fractions", type=_fractions, metavar="F,F,...",
                   help="score every run at these fractions of its training (e.g. 1.0 after mqe eval --paper "
                        "--fractions 1.0) instead of its train.eval_fractions; the notes mark it")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("expert", help="train or evaluate the locomotion expert that collects AntMaze data")
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
    p.add_argument("--eval-workers", type=int, default=os.cpu_count() or 1,
                   help="eval --maze: processes that step the environments")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_expert)

    p = sub.add_parser("serve", help="serve a run's policy over HTTP: a robot posts its camera frame and a goal "
                                     "frame, gets the action (needs the serve extra: FastAPI, uvicorn)")
    p.add_argument("run", help="run directory (its newest checkpoint, full or policy) or a checkpoint file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for a robot on the "
                        "network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    p.add_argument("--max-batch", type=int, default=32,
                   help="most rows per device call; requests that arrive together share one (default 32)")
    p.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="how long a request waits for others to batch with (default 0: none; requests that "
                        "arrive while the device is busy are batched anyway)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body accepted (default 16)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("agents", help="list the agents (mqe train --agent NAME)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print every config field's default")
    p.set_defaults(func=cmd_agents)

    p = sub.add_parser("presets", help="list hyperparameter presets")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_presets)
    return parser


def cmd_serve(args) -> int:
    from mqe.serving.app import serve

    if args.max_batch < 1:
        raise ConfigError(f"--max-batch must be >= 1, got {args.max_batch}")
    if args.max_body_mb <= 0 or args.max_wait_ms < 0:
        raise ConfigError("--max-body-mb must be > 0 and --max-wait-ms >= 0")
    if not os.path.exists(args.run):
        raise ConfigError(f"{args.run}: no such run directory or checkpoint")
    serve(args.run, host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
          max_body_mb=args.max_body_mb)
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"mqe: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line, no source excerpt (restored on exit)
            # gymnasium says this of every OGBench environment it builds (float64 bounds stored as float32)
            warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
            return args.func(args)
    except (ConfigError, DatasetError, CheckpointError, RunDirBusy, FileNotFoundError) as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmqe: interrupted; a checkpoint of the last completed chunk was written, "
              "run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
