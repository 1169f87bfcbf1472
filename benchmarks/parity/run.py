"""Parity runner: one (agent, dataset, seed, side) trained and evaluated by that side's own code, one JSON per run.

  python benchmarks/parity/run.py train --agent mqe --dataset pointmaze-large-stitch-v0 --seed 0 --side ref
  python benchmarks/parity/run.py train --agent mqe --dataset pointmaze-large-stitch-v0 --seed 0 --side ours
  python benchmarks/parity/run.py cross --agent mqe --dataset pointmaze-large-stitch-v0 --seed 0
  python benchmarks/parity/run.py all [--agent mqe] [--dataset ...]   # every row of rows.json, skipping finished runs

Both sides read the same file DATA_DIR/<dataset>.npz, get the same configuration (mapping.json: checked before
training, a mismatch stops the run naming the field), make the same number of updates, and are evaluated by
their own evaluator at 80/90/100% of training with EPISODES episodes per task per point. Results go to
ROOT/<dataset>/<agent>/<side>-s<seed>.json (a finished run is skipped; a killed one resumes from its last
checkpoint: ours through `mqe train`'s resume, the reference's through ref_driver.py's state.pkl).

`cross` scores each side's final checkpoint with the other side's evaluator (policies served over a pipe,
pipe_policy.py), writing ROOT/<dataset>/<agent>/cross-<checkpoint side>-by-<evaluator side>-s<seed>.json.

Environment (defaults in brackets): PARITY_ROOT [/work/parity-runs], PARITY_DATA_DIR [/work/data],
PARITY_OURS_SRC [/work/frozen/src] (PYTHONPATH of our side), PARITY_REF_PYTHON [/work/refs/venv-ref/bin/python],
PARITY_REFS [/work/refs] (holding ogbench/impls and mqe-release/impls).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import parity_mapping as pm  # noqa: E402

ROOT = os.environ.get("PARITY_ROOT", "/work/parity-runs")
DATA_DIR = os.environ.get("PARITY_DATA_DIR", "/work/data")
OURS_SRC = os.environ.get("PARITY_OURS_SRC", "/work/frozen/src")
REF_PYTHON = os.environ.get("PARITY_REF_PYTHON", "/work/refs/venv-ref/bin/python")
REFS = os.environ.get("PARITY_REFS", "/work/refs")
REF_IMPLS = {"ogbench": os.path.join(REFS, "ogbench", "impls"), "mqe-release": os.path.join(REFS, "mqe-release", "impls")}
ROWS_PATH = os.path.join(HERE, "rows.json")
XLA = "--xla_cpu_multi_thread_eigen=false"


def log(msg: str) -> None:
    line = f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} {msg}"
    print(line, flush=True)
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, "progress.log"), "a") as f:
        f.write(line + "\n")


def load_rows(path: str = ROWS_PATH) -> dict:
    with open(path) as f:
        table = json.load(f)
    rows = []
    for row in table["rows"]:
        rows.append({**table["defaults"], **row})
    return {"defaults": table["defaults"], "rows": rows}


def find_row(agent: str, dataset: str) -> dict:
    for row in load_rows()["rows"]:
        if row["agent"] == agent and row["dataset"] == dataset:
            return row
    raise SystemExit(f"no row for {agent} on {dataset} in rows.json")


def ours_env() -> dict:
    env = dict(os.environ, PYTHONPATH=OURS_SRC, XLA_FLAGS=XLA, OMP_NUM_THREADS="1")
    return env


def ref_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(XLA_FLAGS=XLA, OMP_NUM_THREADS="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return env


def set_args(row: dict) -> list[str]:
    return [f"--set={k}={v}" for k, v in sorted(row.get("set", {}).items())]


def ours_config(row: dict) -> dict:
    cmd = [sys.executable, "-m", "mqe.cli", "config", "--agent", row["agent"], "--dataset", row["dataset"],
           "--preset", row["preset"], "-v", *set_args(row)]
    out = subprocess.run(cmd, env=ours_env(), capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])


def ref_config(row: dict, flags: dict) -> dict:
    spec = pm.load_mapping()[row["agent"]]
    cmd = [REF_PYTHON, os.path.join(HERE, "ref_driver.py"), "config", "--impls", REF_IMPLS[spec["reference"]],
           "--module", spec["module"], "--flags", json.dumps(flags)]
    out = subprocess.run(cmd, env=ref_env(), capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def checked_config(row: dict) -> tuple[dict, dict, list]:
    """Our resolved config, the reference flags it implies, and the check's rows; MappingError on a mismatch."""
    ours = ours_config(row)
    for key, value in row.get("set", {}).items():  # the --set overrides must have taken
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if not pm.same(pm.get_field(ours, key), value):
            raise pm.MappingError(row["agent"], key, f"--set {key}={value} did not take (config has "
                                                     f"{pm.get_field(ours, key)!r})")
    flags = pm.reference_flags(row["agent"], ours)
    ref = ref_config(row, flags)
    rows = pm.check(row["agent"], ref, ours)
    return ours, flags, rows


@functools.lru_cache(maxsize=None)
def sha256(path: str) -> str:
    cache = os.path.join(ROOT, "sha256.json")
    known = json.load(open(cache)) if os.path.exists(cache) else {}
    st = os.stat(path)
    key = f"{path}:{st.st_size}:{int(st.st_mtime)}"
    if key not in known:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        known[key] = h.hexdigest()
        os.makedirs(ROOT, exist_ok=True)
        with open(cache + ".tmp", "w") as f:
            json.dump(known, f, indent=1)
        os.replace(cache + ".tmp", cache)
    return known[key]


def eval_steps(steps: int) -> list[int]:
    """80/90/100% of training, as whole compiled calls of 100 updates on our side (train.paper_eval_steps)."""
    every = 100 if steps >= 100 else steps
    return sorted({max(every, round(steps * f / every) * every) for f in (0.8, 0.9)} | {steps})


def run_dir(row: dict, side: str, seed: int) -> str:
    return os.path.join(ROOT, row["dataset"], row["agent"], f"{side}-s{seed}")


def result_path(row: dict, side: str, seed: int) -> str:
    return os.path.join(ROOT, row["dataset"], row["agent"], f"{side}-s{seed}.json")


def final_profile(evals: dict) -> dict:
    """Per-task and overall success averaged over the evaluation points (the paper's final number)."""
    keys = sorted({k for e in evals.values() for k in e if k.startswith("task")}, key=lambda k: int(k[4:]))
    out = {k: statistics.fmean(e[k] for e in evals.values()) for k in keys}
    out["overall"] = statistics.fmean(e["overall"] for e in evals.values())
    return out


def _write_json(obj, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(path + ".tmp", path)


def finished(row: dict, side: str, seed: int) -> bool:
    path = result_path(row, side, seed)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        r = json.load(f)
    return r.get("steps") == row["steps"] and r.get("episodes_per_task") == row["episodes"]


def train(row: dict, side: str, seed: int) -> dict:
    data = os.path.join(DATA_DIR, f"{row['dataset']}.npz")
    if not os.path.exists(data):
        raise SystemExit(f"{data}: no data file (mqe generate {row['dataset']} --dataset-dir {DATA_DIR})")
    ours, flags, check_rows = checked_config(row)
    out = run_dir(row, side, seed)
    os.makedirs(out, exist_ok=True)
    points = eval_steps(row["steps"])
    load_before = os.getloadavg()
    t0 = time.time()
    if side == "ours":
        cmd = [sys.executable, "-m", "mqe.cli", "train", "--dataset", data, "--env", row["dataset"], "--agent",
               row["agent"], "--preset", row["preset"], "--steps", str(row["steps"]), "--seed", str(seed),
               "--eval-episodes", str(row["episodes"]), "--eval-workers", "0", "--run-dir", out, "--no-progress",
               *set_args(row)]
        env = ours_env()
    else:
        spec = pm.load_mapping()[row["agent"]]
        cmd = [REF_PYTHON, os.path.join(HERE, "ref_driver.py"), "train", "--impls", REF_IMPLS[spec["reference"]],
               "--module", spec["module"], "--cls", spec["class"], "--flags", json.dumps(flags), "--env",
               row["dataset"], "--data", data, "--seed", str(seed), "--steps", str(row["steps"]), "--eval-steps",
               ",".join(map(str, points)), "--episodes", str(row["episodes"]), "--out", out]
        env = ref_env()
    log(f"start {side} {row['agent']} {row['dataset']} s{seed}: {shlex.join(cmd)}")
    with open(os.path.join(out, "stdout.log"), "a") as f:
        rc = subprocess.run(["nice", "-n", "19", *cmd], env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        log(f"FAILED {side} {row['agent']} {row['dataset']} s{seed}: exit {rc} (see {out}/stdout.log)")
        raise SystemExit(rc)
    if side == "ours":
        evals, rate = _ours_results(out, points)
        config_used = json.load(open(os.path.join(out, "config.json")))
    else:
        r = json.load(open(os.path.join(out, "ref_result.json")))
        evals = {k: {t: v for t, v in e.items() if t.startswith("task") or t == "overall"} for k, e in r["evals"].items()}
        wins = r["windows"][1:] or r["windows"]  # the first window holds the compilation
        rate = sum(w["updates"] for w in wins) / sum(w["seconds"] for w in wins)
        config_used = r["config"]
    if sorted(int(s) for s in evals) != points:
        raise SystemExit(f"{side}: evaluated at {sorted(evals)}, expected {points}")
    result = {
        "agent": row["agent"], "dataset": row["dataset"], "side": side, "seed": seed, "steps": row["steps"],
        "episodes_per_task": row["episodes"], "eval_steps": points, "evals": evals, "final": final_profile(evals),
        "updates_per_second": rate, "data": data, "data_sha256": sha256(data), "preset": row["preset"],
        "ours_set": row.get("set", {}), "reference_flags": flags, "config_check": check_rows,
        "config_used": config_used, "command": cmd,
        "command_env": {"PYTHONPATH": OURS_SRC} if side == "ours" else {"PYTHONPATH": None},
        "runner_command": ["python", "benchmarks/parity/run.py", "train", "--agent", row["agent"], "--dataset",
                           row["dataset"], "--seed", str(seed), "--side", side],
        "xla_flags": XLA, "nice": 19, "wall_seconds": time.time() - t0,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json(result, result_path(row, side, seed))
    log(f"done {side} {row['agent']} {row['dataset']} s{seed}: final {result['final']['overall']:.3f}, "
        f"{rate:.2f} updates/s")
    return result


def _ours_results(out: str, points: list[int]) -> tuple[dict, float]:
    evals = {}
    for step in points:
        with open(os.path.join(out, f"eval_{step}.json")) as f:
            e = json.load(f)
        evals[str(step)] = {k: v for k, v in e.items() if k.startswith("task") or k == "overall"}
    # The logged rate is cumulative since the first compiled call and, after the first evaluation, includes
    # evaluation time: take the last one logged at or before the first evaluation point.
    rate = None
    with open(os.path.join(out, "train.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("step", 0) <= points[0] and "time/updates_per_second" in r:
                rate = r["time/updates_per_second"]
    return evals, rate


# ---------------------------------------------------------------- cross-evaluation


def serve_ours(run: str) -> None:
    """pipe_policy server for our run's newest checkpoint (runs in our environment)."""
    from mqe.api import load
    from pipe_policy import serve

    agent = load(run)
    serve(lambda obs, goals: agent.act(obs, goals))


def cross(row: dict, seed: int) -> None:
    spec = pm.load_mapping()[row["agent"]]
    base = os.path.join(ROOT, row["dataset"], row["agent"])
    ours_run, ref_run = run_dir(row, "ours", seed), run_dir(row, "ref", seed)
    for side in ("ours", "ref"):
        if not finished(row, side, seed):
            raise SystemExit(f"cross: {side}-s{seed} has not finished")
    # the reference's checkpoint, scored by our evaluator
    out = os.path.join(base, f"cross-ref-by-ours-s{seed}.json")
    if not os.path.exists(out):
        serve = [REF_PYTHON, os.path.join(HERE, "ref_driver.py"), "serve", "--impls", REF_IMPLS[spec["reference"]],
                 "--ckpt", os.path.join(ref_run, "final_agent.pkl"), "--env", row["dataset"]]
        cmd = [sys.executable, os.path.abspath(__file__), "_score-by-ours", "--env", row["dataset"], "--episodes",
               str(row["episodes"]), "--out", out, "--policy-cmd", json.dumps(["env", "-u", "PYTHONPATH", *serve])]
        log(f"cross ref-by-ours {row['agent']} {row['dataset']} s{seed}")
        subprocess.run(["nice", "-n", "19", *cmd], env=ours_env(), check=True)
    # our checkpoint, scored by the reference's evaluator
    out = os.path.join(base, f"cross-ours-by-ref-s{seed}.json")
    if not os.path.exists(out):
        serve = ["env", f"PYTHONPATH={OURS_SRC}", sys.executable, os.path.abspath(__file__), "_serve-ours",
                 "--run", ours_run]
        cmd = [REF_PYTHON, os.path.join(HERE, "ref_driver.py"), "evaluate", "--impls", REF_IMPLS[spec["reference"]],
               "--policy-cmd", json.dumps(serve), "--env", row["dataset"], "--episodes", str(row["episodes"]),
               "--seed", str(seed), "--out", out + ".raw"]
        log(f"cross ours-by-ref {row['agent']} {row['dataset']} s{seed}")
        subprocess.run(["nice", "-n", "19", *cmd], env=ref_env(), check=True)
        raw = json.load(open(out + ".raw"))
        _write_json({"checkpoint": "ours", "evaluator": "ref", "seed": seed, "step": row["steps"],
                     "episodes_per_task": row["episodes"], **raw}, out)
        os.remove(out + ".raw")


def score_by_ours(env_name: str, episodes: int, out: str, policy_cmd: list[str]) -> None:
    from mqe.envs.ogbench_envs import make_env
    from mqe.evaluation import evaluate_episodes, summarize
    from pipe_policy import PipePolicy

    policy = PipePolicy(policy_cmd)
    try:
        succ = evaluate_episodes(policy, functools.partial(make_env, env_name), episodes_per_task=episodes, seed=0,
                                 workers=0)
    finally:
        policy.close()
    _write_json({"checkpoint": "ref", "evaluator": "ours", "episodes_per_task": episodes, **summarize(succ)}, out)


# ---------------------------------------------------------------- the loop


def run_all(agent: str | None, dataset: str | None, sides: list[str], do_cross: bool) -> None:
    for row in load_rows()["rows"]:
        if (agent and row["agent"] != agent) or (dataset and row["dataset"] != dataset):
            continue
        if not os.path.exists(os.path.join(DATA_DIR, f"{row['dataset']}.npz")):
            log(f"skip {row['agent']} {row['dataset']}: no data file yet")
            continue
        for seed in row["seeds"]:
            for side in sides:
                if finished(row, side, seed):
                    continue
                train(row, side, seed)
            if do_cross and seed in row["cross_eval_seeds"] and all(finished(row, s, seed) for s in ("ours", "ref")):
                cross(row, seed)  # as soon as both sides of this seed are done (it skips what exists)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "cross", "check"):
        s = sub.add_parser(name)
        s.add_argument("--agent", required=True)
        s.add_argument("--dataset", required=True)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--side", choices=["ours", "ref"], default="ours")
        s.add_argument("--steps", type=int, default=None, help="override the row's steps (smoke tests)")
        s.add_argument("--episodes", type=int, default=None, help="override the row's episodes per task")
    a = sub.add_parser("all")
    a.add_argument("--agent")
    a.add_argument("--dataset")
    a.add_argument("--sides", default="ref,ours")
    a.add_argument("--no-cross", action="store_true")
    s = sub.add_parser("_serve-ours")
    s.add_argument("--run", required=True)
    s = sub.add_parser("_score-by-ours")
    s.add_argument("--env", required=True)
    s.add_argument("--episodes", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--policy-cmd", required=True)
    args = p.parse_args(argv)
    if args.cmd == "_serve-ours":
        return serve_ours(args.run)
    if args.cmd == "_score-by-ours":
        return score_by_ours(args.env, args.episodes, args.out, json.loads(args.policy_cmd))
    if args.cmd == "all":
        return run_all(args.agent, args.dataset, args.sides.split(","), not args.no_cross)
    row = find_row(args.agent, args.dataset)
    if args.steps:
        row["steps"] = args.steps
    if args.episodes:
        row["episodes"] = args.episodes
    if args.cmd == "check":
        _, flags, rows = checked_config(row)
        print(json.dumps({"reference_flags": flags, "checked": len(rows)}, indent=1))
        print(f"{row['agent']}: every reference key has a counterpart with the same value ({len(rows)} rows)")
    elif args.cmd == "train":
        if finished(row, args.side, args.seed):
            print(f"finished already: {result_path(row, args.side, args.seed)}")
        else:
            train(row, args.side, args.seed)
    else:
        cross(row, args.seed)


if __name__ == "__main__":
    main()
