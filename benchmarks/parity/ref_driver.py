"""Drives a reference implementation (OGBench's impls/ or the MQE release combined with it) as an external program.

Runs in the reference's own virtual environment (see README.md), never imports mqe. The reference's code is
imported from ``--impls`` (a folder outside this repository); this file only does what the reference's
``impls/main.py`` does around it, with our data file and a resumable state:

  config    print the reference's resolved agent config (its get_config() with --flags applied) as JSON
  train     OGBench's training loop (sample a batch with the reference's GCDataset/HGCDataset, agent.update)
            and its evaluator (utils.evaluation.evaluate, eval_temperature=0) at the given steps; resumable
  serve     answer action requests for a saved checkpoint over stdin/stdout (pipe_policy protocol)
  evaluate  score another program's policy (a pipe_policy server) with the reference's evaluator

Usage (from the runner, run.py):
  python ref_driver.py train --impls DIR --module agents.mqe --flags '{"alpha": 0.03}' --env NAME \
      --data FILE.npz --seed 0 --steps 30000 --eval-steps 24000,27000,30000 --episodes 10 --out DIR
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pickle
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _setup_impls(impls: str) -> None:
    impls = os.path.abspath(impls)
    if not os.path.isdir(os.path.join(impls, "agents")):
        raise SystemExit(f"{impls}: not a reference impls/ folder (no agents/)")
    sys.path.insert(0, impls)
    sys.path.insert(1, HERE)
    os.environ.setdefault("MUJOCO_GL", "egl")


def resolved_config(module_name: str, flags: dict):
    import ml_collections  # noqa: F401

    module = importlib.import_module(module_name)
    config = module.get_config()
    for key, value in flags.items():
        if key not in config:
            raise SystemExit(f"--flags: the reference's config has no key {key!r}")
        if isinstance(value, list):
            value = tuple(value)
        config[key] = value
    return module, config


def agent_class(module, class_name: str | None):
    if class_name:
        return getattr(module, class_name)
    for name, obj in vars(module).items():
        if name.endswith("Agent") and hasattr(obj, "create"):
            return obj
    raise SystemExit(f"{module.__name__}: no *Agent class")


def plain(config) -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def make_data(env_name: str, data: str, config):
    import ogbench
    from utils.datasets import Dataset, GCDataset, HGCDataset

    # As impls/utils/env_utils.make_env_and_datasets, but from our file (compact form, as OGBench's main uses).
    env, train, _val = ogbench.make_env_and_datasets(env_name, dataset_path=data, compact_dataset=True)
    train = Dataset.create(**train)
    if config["frame_stack"] is not None:
        raise SystemExit("frame_stack is not supported by this driver")
    env.reset()
    cls = {"GCDataset": GCDataset, "HGCDataset": HGCDataset}[config["dataset_class"]]
    return env, cls(train, config)


def create_agent(cls, seed: int, batch, config, steps: int):
    params = inspect.signature(cls.create).parameters
    kwargs = {"train_steps": steps} if "train_steps" in params else {}  # the MQE release's create() needs it
    return cls.create(seed, batch["observations"], batch["actions"], config, **kwargs)


def evaluate_all(agent, env, config, episodes: int) -> dict:
    from utils.evaluation import evaluate

    task_infos = env.unwrapped.task_infos if hasattr(env.unwrapped, "task_infos") else env.task_infos
    out = {}
    for task_id in range(1, len(task_infos) + 1):
        info, _, _ = evaluate(agent=agent, env=env, task_id=task_id, config=config, num_eval_episodes=episodes,
                              num_video_episodes=0, video_frame_skip=3, eval_temperature=0, eval_gaussian=None)
        out[f"task{task_id}"] = float(info["success"])
    out["overall"] = float(sum(out.values()) / len(out))
    return out


def _atomic_pickle(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f)
    os.replace(tmp, path)


def _atomic_json(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def cmd_config(args) -> None:
    _setup_impls(args.impls)
    _, config = resolved_config(args.module, json.loads(args.flags))
    print(json.dumps(plain(config)))


def cmd_train(args) -> None:
    _setup_impls(args.impls)
    import flax
    import jax
    import numpy as np

    module, config = resolved_config(args.module, json.loads(args.flags))
    cls = agent_class(module, args.cls)
    env, dataset = make_data(args.env, args.data, config)
    eval_steps = sorted(int(s) for s in args.eval_steps.split(",") if s)
    os.makedirs(args.out, exist_ok=True)
    state_path = os.path.join(args.out, "state.pkl")

    random.seed(args.seed)
    np.random.seed(args.seed)
    example = dataset.sample(1)
    agent = create_agent(cls, args.seed, example, config, args.steps)
    start, evals, windows, train_seconds = 1, {}, [], 0.0
    if os.path.exists(state_path):  # resume
        with open(state_path, "rb") as f:
            st = pickle.load(f)
        agent = flax.serialization.from_state_dict(agent, st["agent"])
        np.random.set_state(st["np_random"])
        random.setstate(st["py_random"])
        start, evals, windows, train_seconds = st["step"] + 1, st["evals"], st["windows"], st["train_seconds"]
        print(f"resumed at step {st['step']}", file=sys.stderr)

    def save(step):
        _atomic_pickle({"agent": jax.device_get(flax.serialization.to_state_dict(agent)),
                        "np_random": np.random.get_state(), "py_random": random.getstate(), "step": step,
                        "evals": evals, "windows": windows, "train_seconds": train_seconds}, state_path)

    window_start, window_steps = time.perf_counter(), 0
    for i in range(start, args.steps + 1):
        batch = dataset.sample(config["batch_size"])
        agent, info = agent.update(batch)
        window_steps += 1
        if i % args.log_every == 0 or i in eval_steps or i % args.save_every == 0 or i == args.steps:
            jax.block_until_ready(agent)
            elapsed = time.perf_counter() - window_start
            train_seconds += elapsed
            windows.append({"step": i, "updates": window_steps, "seconds": elapsed,
                            "updates_per_second": window_steps / elapsed if elapsed > 0 else None})
            if i % args.log_every == 0:
                loss = {k: float(v) for k, v in info.items() if np.ndim(v) == 0}
                print(json.dumps({"step": i, "updates_per_second": windows[-1]["updates_per_second"],
                                  **{k: loss[k] for k in sorted(loss)[:6]}}), file=sys.stderr, flush=True)
            if i in eval_steps:
                t0 = time.perf_counter()
                res = evaluate_all(agent, env, config, args.episodes)
                evals[str(i)] = {**res, "eval_seconds": time.perf_counter() - t0}
                _atomic_json({"step": i, **evals[str(i)]}, os.path.join(args.out, f"eval_{i}.json"))
                print(f"eval at {i}: {res}", file=sys.stderr, flush=True)
            if i % args.save_every == 0 or i in eval_steps or i == args.steps:
                save(i)
            window_start, window_steps = time.perf_counter(), 0
    _atomic_pickle({"agent": jax.device_get(flax.serialization.to_state_dict(agent)), "config": plain(config),
                    "seed": args.seed, "module": args.module, "cls": cls.__name__, "steps": args.steps},
                   os.path.join(args.out, "final_agent.pkl"))
    _atomic_json({"steps": args.steps, "evals": evals, "windows": windows, "train_seconds": train_seconds,
                  "config": plain(config)}, os.path.join(args.out, "ref_result.json"))


def _load_final(impls: str, ckpt: str, env_name: str, data: str | None):
    import flax
    import numpy as np

    with open(ckpt, "rb") as f:
        st = pickle.load(f)
    module, config = resolved_config(st["module"], {k: v for k, v in st["config"].items()})
    cls = getattr(module, st["cls"])
    import ogbench

    env = ogbench.make_env_and_datasets(env_name, env_only=True)
    ob_dim = env.observation_space.shape
    act_dim = env.action_space.shape[-1]
    ex = {"observations": np.zeros((1, *ob_dim), np.float32), "actions": np.zeros((1, act_dim), np.float32)}
    agent = create_agent(cls, st["seed"], ex, config, st["steps"])
    agent = flax.serialization.from_state_dict(agent, st["agent"])
    return agent, config, env


def cmd_serve(args) -> None:
    _setup_impls(args.impls)
    import jax
    import numpy as np
    from pipe_policy import serve

    agent, config, _ = _load_final(args.impls, args.ckpt, args.env, None)
    key = jax.random.PRNGKey(0)

    def act(obs, goals):
        a = agent.sample_actions(observations=obs, goals=goals, seed=key, temperature=0)
        return np.clip(np.asarray(a), -1, 1)

    serve(act)


class _ProxyAgent:
    """What utils.evaluation.evaluate needs of an agent, answered by a pipe_policy server."""

    def __init__(self, policy):
        self.policy = policy

    def sample_actions(self, observations, goals=None, seed=None, temperature=1.0):
        return self.policy(observations, goals)


def cmd_evaluate(args) -> None:
    _setup_impls(args.impls)
    import numpy as np
    import ogbench
    from pipe_policy import PipePolicy

    np.random.seed(args.seed)
    env = ogbench.make_env_and_datasets(args.env, env_only=True)
    env.reset()
    policy = PipePolicy(json.loads(args.policy_cmd))
    try:
        res = evaluate_all(_ProxyAgent(policy), env, {"discrete": False}, args.episodes)
    finally:
        policy.close()
    _atomic_json(res, args.out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("config")
    c.add_argument("--impls", required=True)
    c.add_argument("--module", required=True)
    c.add_argument("--flags", default="{}")
    t = sub.add_parser("train")
    t.add_argument("--impls", required=True)
    t.add_argument("--module", required=True)
    t.add_argument("--cls", default=None)
    t.add_argument("--flags", default="{}")
    t.add_argument("--env", required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--eval-steps", required=True)
    t.add_argument("--episodes", type=int, default=10)
    t.add_argument("--out", required=True)
    t.add_argument("--log-every", type=int, default=1000)
    t.add_argument("--save-every", type=int, default=3000)
    s = sub.add_parser("serve")
    s.add_argument("--impls", required=True)
    s.add_argument("--ckpt", required=True)
    s.add_argument("--env", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--impls", required=True)
    e.add_argument("--policy-cmd", required=True, help="JSON list: the command of a pipe_policy server")
    e.add_argument("--env", required=True)
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True)
    args = p.parse_args(argv)
    {"config": cmd_config, "train": cmd_train, "serve": cmd_serve, "evaluate": cmd_evaluate}[args.cmd](args)


if __name__ == "__main__":
    main()
