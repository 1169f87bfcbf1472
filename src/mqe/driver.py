"""The training driver, written once: data -> settings -> train -> evaluate at the protocol's points ->
checkpoint -> resume -> score. ``mqe train``, ``mqe demo``, a sweep's jobs (which run ``mqe train``) and
Python users call the same functions:

    from mqe import driver
    data = driver.load_data("pointmaze-medium-navigate-v0", dataset_dir="data")
    config = driver.config_for(data, agent="mqe", overrides=["train.steps=20000"])
    outcomes = driver.run(config, data, {0: "runs/a"}, eval_episodes=50)

``evaluate_runs`` applies the same protocol to saved runs (``mqe eval --paper``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable, Sequence

from mqe import protocol
from mqe.config import RunConfig, make_config
from mqe.errors import ConfigError

Log = Callable[[str], None]


@dataclasses.dataclass
class TrainingData:
    """A dataset ready to train on, with what the run records about it."""

    dataset: Any  # mqe.data.dataset.Dataset
    path: str  # the file (or robot folder) it was read from
    env: str  # the OGBench dataset name that evaluates it ("" = none)
    label: str  # the name runs/<label>-<agent>-s<seed> uses
    source: str  # what config.dataset records: the OGBench name, else the path
    normalization: Any = None  # a robot dataset's ActionNormalization (actions mapped into [-1, 1])


def load_data(dataset: str, *, env: str | None = None, dataset_dir: str | None = None, download: bool = True,
              progress: bool = True, split: str = "train", image_key: str | None = None,
              action_key: str | None = None, proprio_key: str | None = None, log: Log = print) -> TrainingData:
    """``dataset``: an OGBench name (found, downloaded, or for point mazes generated), a ``.npz`` file in
    OGBench's layout, or a folder of robot episodes (RLDS or NumPy episodes, ``mqe.data.robot``)."""
    from mqe.data.dataset import Dataset
    from mqe.data.resolve import is_file, resolve_training_file

    if os.path.isdir(dataset):  # robot trajectories
        from mqe.data.robot import episodes_to_dataset, read_episodes

        path = os.path.normpath(dataset)
        episodes = read_episodes(path, split=split, image=image_key, action=action_key, proprio=proprio_key)
        data, normalization = episodes_to_dataset(episodes, source=path)
        return TrainingData(data, path, env or "", os.path.basename(path), path, normalization)
    path, env = resolve_training_file(dataset, env, dataset_dir, download=download, progress=progress, log=log)
    named = not is_file(dataset) and env == dataset
    label = dataset if named else os.path.basename(path).removesuffix(".npz")
    return TrainingData(Dataset.load_npz(path), path, env, label, dataset if named else path)


def config_for(data: TrainingData, agent: str = "mqe", preset: str | None = None,
               overrides: Sequence[str] | dict = ()) -> RunConfig:
    """The run's settings for this data (``mqe.config.make_config``: the paper's preset and per-dataset values
    for an OGBench name, then ``overrides``)."""
    return make_config(agent, preset, overrides, dataset=data.source, env=data.env)


def settings_header(config: RunConfig) -> str:
    """What a run prints first: the agent, preset and every value that differs from the defaults."""
    return (f"agent {config.agent_name}, preset {config.preset or 'none'}"
            + (f", evaluated on {config.env}" if config.env else "")
            + f"; values that differ from the agent's defaults:\n{config.describe_changes()}")


def env_evaluator(name: str, episodes: int, *, progress: bool = True, workers: int = 0, seed: int = 0,
                  batching: str = "auto", video_dir: str | None = None, planner=None, normalization=None):
    """``evaluator(agents) -> (rates per seed, successes (seeds, tasks, episodes))`` on an OGBench dataset's
    environment, for agent states stacked on a leading seed axis (``mqe.train.stack``).

    All seeds' episodes step side by side with one policy call per environment step (the seeds batched as
    ``batching``, see ``mqe.train.over_seeds``); every seed gets the episodes a single-seed evaluation would
    give it. ``planner``: ``(agent name, PlannerConfig, landmark pool)`` plans over each seed's learned distance
    (``mqe.planning``); ``normalization`` maps a robot run's actions back to the environment's units.
    ``evaluator.stats`` holds the last call's cost."""
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
            planners = [build_planner(steps_functions(unstack(agents, i), agent_name), pool, planner_config)
                        for i in range(n)]
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


@dataclasses.dataclass
class SeedOutcome:
    """One seed of a driven run: what training returned and its score by the protocol."""

    result: Any  # mqe.train.TrainResult
    final: dict[str, float] | None  # the protocol's score (None: not evaluated, or points missing)
    evaluated_at: list[int]
    unscored: str = ""  # why there is no score, when there is an evaluation schedule


def seed_run_dirs(seeds: Sequence[int], run_dir: str | None, label: str, agent: str) -> dict[int, str]:
    """Each seed's run directory: ``run_dir`` (with ``{seed}`` formatted, or ``run_dir/s<seed>`` for several
    seeds), else ``runs/<label>-<agent>-s<seed>``."""
    several = len(seeds) > 1
    out = {}
    for seed in seeds:
        if run_dir and "{seed}" in run_dir:
            out[seed] = run_dir.replace("{seed}", str(seed))
        elif run_dir:
            out[seed] = os.path.join(run_dir, f"s{seed}") if several else run_dir
        else:
            out[seed] = os.path.join("runs", f"{label}-{agent}-s{seed}")
    return out


def run(config: RunConfig, data: TrainingData, run_dirs: dict[int, str], *, eval_episodes: int = 50,
        eval_workers: int = 0, planner=None, resume: bool = True, progress: bool = True,
        log: Log = print) -> list[SeedOutcome]:
    """Trains (or resumes) the seeds of one configuration as one program, evaluating at the protocol's
    points when the data has an environment and ``eval_episodes > 0``; writes each seed's
    ``final_eval.json`` and returns its score. ``planner``: ``(agent name, PlannerConfig, pool)`` from
    ``mqe.planning.planner_for_run``; its evaluations go to ``RUN/<PlannerConfig.folder()>/``."""
    from mqe.train import train_seeds

    if data.normalization is not None:  # kept with each run: mqe serve hands the robot actions in its own units
        for run_dir in run_dirs.values():
            data.normalization.save(run_dir)
        log("actions normalised into [-1, 1] per dimension (q01..q99); statistics in RUN/action_normalization.json")
    evaluates = bool(data.env) and eval_episodes > 0
    if planner is not None and not evaluates:
        raise ConfigError("--planner acts at evaluation; this run has no evaluation environment (--env) or episodes")
    evaluator, eval_steps, eval_dir = None, None, ""
    if evaluates:
        inner = env_evaluator(data.env, eval_episodes, progress=progress, workers=eval_workers,
                              batching=config.train.seed_batching, planner=planner, normalization=data.normalization)
        if planner is not None:
            from mqe.planning import write_planner_settings

            eval_dir = planner[1].folder()
            for run_dir in run_dirs.values():
                write_planner_settings(run_dir, planner[1])
            log(f"evaluating with the graph planner ({planner[1]}); results in RUN/{eval_dir}/")
        tc = config.train
        eval_steps = protocol.evaluation_steps(tc.steps, tc.updates_per_call, tc.eval_fractions)
        evaluator = lambda agents: inner(agents)[0]
        extra = f" (and every {tc.eval_interval})" if tc.eval_interval else ""
        log(f"evaluating {eval_episodes} episodes per task at steps {eval_steps}{extra}")
    results = train_seeds(config, data.dataset, run_dirs, evaluator=evaluator, eval_steps=eval_steps,
                          resume=resume, progress=progress, eval_dir=eval_dir)
    outcomes = []
    for result in results:
        if eval_steps is None:
            outcomes.append(SeedOutcome(result, None, []))
            continue
        folder = os.path.join(result.run_dir, eval_dir)
        final = protocol.write_final(folder, eval_steps, eval_episodes)
        reason = "" if final is not None else protocol.unscored_reason(
            result.seed, protocol.read_evaluations(folder), eval_steps, config.train.steps, result.step)
        outcomes.append(SeedOutcome(result, final, list(eval_steps) if final is not None else [], reason))
    return outcomes


def evaluate_runs(run_dirs: Sequence[str], *, episodes: int = 50, fractions: Sequence[float] | None = None,
                  env: str | None = None, seed: int = 0, workers: int = 0, planner_config=None,
                  dataset_dir: str | None = None, progress: bool = True,
                  log: Log = print) -> list[tuple[str, dict | None, list[int]]]:
    """The protocol on saved runs: each run's checkpoints (full or policy) at its evaluation points
    (``fractions`` of ``train.steps``, default the run's ``train.eval_fractions``) evaluated and written as
    ``eval_<step>.json`` and ``final_eval.json``, exactly as training writes them. Seeds of one configuration
    are evaluated together; points already evaluated are kept (a killed evaluation resumes). Returns
    ``(folder of its evaluations, score or None, evaluation steps)`` per run."""
    from mqe import checkpoint as ckpt
    from mqe.api import load
    from mqe.checkpoint import CheckpointError
    from mqe.data.robot import ActionNormalization
    from mqe.io import atomic_write_text
    from mqe.train import stack

    groups: dict[str, list[tuple[str, RunConfig]]] = {}
    for run_dir in run_dirs:
        path = os.path.join(run_dir, "config.json")
        if not os.path.isfile(path):
            raise ConfigError(f"{run_dir}: not a run directory (no config.json); --paper evaluates run directories")
        with open(path) as f:
            config = RunConfig.from_dict(json.load(f))
        key = json.dumps({**config.to_dict(), "train": {**config.to_dict()["train"], "seed": None}}, sort_keys=True)
        groups.setdefault(key, []).append((run_dir, config))
    scores = []
    for members in groups.values():
        config = members[0][1]
        name = env or config.env
        if not name:
            raise ConfigError(f"{members[0][0]} was trained on {config.dataset!r} with no evaluation environment; "
                              "pass --env NAME (an OGBench dataset name)")
        steps = protocol.evaluation_steps(config.train.steps, config.train.updates_per_call,
                                          fractions or config.train.eval_fractions)
        planner = None
        if planner_config is not None:
            from mqe.planning import planner_for_run

            planner = planner_for_run(planner_config, config, dataset_dir)
        evaluator = env_evaluator(name, episodes, progress=progress, workers=workers, seed=seed,
                                  batching=config.train.seed_batching, planner=planner,
                                  normalization=ActionNormalization.load(members[0][0]))
        # Planned evaluations live in RUN/planner_graph[-changed settings]/ (settings in planner.json), beside
        # the plain ones and those with other settings.
        where = (lambda run: run) if planner is None else (lambda run: os.path.join(run, planner[1].folder()))
        if planner is not None:
            from mqe.planning import write_planner_settings

            for run, _ in members:
                write_planner_settings(run, planner[1])
        for step in steps:
            todo = [run for run, _ in members if not os.path.exists(protocol.eval_path(where(run), step))]
            if not todo:
                continue
            paths = {}
            for run in todo:
                paths[run] = ckpt.checkpoint_at(run, step)
                if paths[run] is None:
                    raise CheckpointError(f"{run}: no checkpoint at step {step} (checkpoints/ckpt_{step:010d}.msgpack "
                                          f"or {ckpt.POLICY_DIR}/policy_{step:010d}.msgpack), one of the "
                                          f"evaluation points {steps}")
            log(f"{name}: step {step}, {len(todo)} run(s), {episodes} episodes per task")
            results, _ = evaluator(stack([load(paths[run]).agent for run in todo]))
            log(cost_text(evaluator.stats))
            for run, result in zip(todo, results):
                atomic_write_text(protocol.eval_path(where(run), step), json.dumps({"step": step, **result}, indent=2))
                if planner is not None:
                    atomic_write_text(os.path.join(where(run), f"cost_{step}.json"), json.dumps(evaluator.stats, indent=2))
        for run, _ in members:
            scores.append((where(run), protocol.write_final(where(run), steps, episodes), steps))
    return scores


def cost_text(stats: dict) -> str:
    """An evaluation's cost in words (and the planner's, with a hint when its graph is not joined up)."""
    lines = [f"evaluation: {stats['episodes']} episodes in {stats['seconds']:.0f} s "
             f"({stats['episodes_per_second']:.2f} episodes/s)"]
    if "replans" in stats:
        lines[0] += (f"; planner: graph built in {stats['graph_build_seconds']:.1f} s, {stats['replans']} replans, "
                     f"{1e3 * stats['seconds_per_replan']:.1f} ms per replan, {stats['planning_seconds_per_episode']:.2f} s "
                     f"per episode, goal itself as target {stats['goal_itself_fraction']:.0%} of the time")
    if "graph" in stats:
        g = stats["graph"]
        lines.append(f"planner graph (mean over seeds): {g.get('landmarks', 0):.0f} landmarks, "
                     f"{g['edge_fraction']:.1%} of their pairs within max_edge, "
                     f"{g['route_fraction']:.1%} joined by a route; nearest landmark at a median "
                     f"{g['nearest_landmark_steps_median']:.1f} steps, all pairs at {g['landmark_pair_steps_median']:.1f}")
        if g["route_fraction"] < 0.5:  # where no route joins start and goal the policy just gets the goal
            lines.append(f"planner graph: only {g['route_fraction']:.0%} of landmark pairs are joined by a route, so most "
                         "episodes fall back to the goal itself; more landmarks (--landmarks, or a larger --planner-set "
                         "max_landmarks for the growth set by connect) join the graph with short edges (a larger "
                         "max_edge does too, with the long edges the learned distance is least sure of)")
    return "\n".join(lines)
