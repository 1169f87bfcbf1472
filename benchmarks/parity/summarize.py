"""Summary of the parity runs: per row (dataset, agent), both sides side by side.

  python benchmarks/parity/summarize.py [--root /work/parity-runs] [--out-json F] [--out-md F]

For each row: the number of seeds per side, mean +- standard error of the final success (the mean of the three
evaluations at 80/90/100% of training, in %), the difference ours - reference with its 95% interval (Welch),
Welch's t-test p value, the per-task profile of both sides, updates/s of each side (mean over its runs, all on
this machine) and their ratio, the data file's sha256, and the cross-evaluation (each side's final checkpoint
scored by both evaluators). Writes ROOT/summary.json and ROOT/summary.md unless told otherwise.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import statistics
from typing import Sequence

SIDES = ("ours", "ref")


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (sample sd / sqrt(n)); SE is nan for n < 2."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = statistics.fmean(values)
    if n < 2:
        return m, math.nan
    return m, statistics.stdev(values) / math.sqrt(n)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict:
    """Mean(a) - mean(b), its Welch confidence interval, t, Welch-Satterthwaite df and the two-sided p."""
    from scipy import stats

    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    out = {"diff": ma - mb, "ci_low": math.nan, "ci_high": math.nan, "t": math.nan, "df": math.nan, "p": math.nan}
    if len(a) < 2 or len(b) < 2:
        return out
    se = math.sqrt(sa ** 2 + sb ** 2)
    if se == 0:
        out.update(ci_low=out["diff"], ci_high=out["diff"], p=1.0 if out["diff"] == 0 else 0.0)
        return out
    df = se ** 4 / (sa ** 4 / (len(a) - 1) + sb ** 4 / (len(b) - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    res = stats.ttest_ind(a, b, equal_var=False)
    out.update(ci_low=out["diff"] - half, ci_high=out["diff"] + half, t=float(res.statistic), df=df,
               p=float(res.pvalue))
    return out


def load_runs(root: str) -> dict:
    """{(dataset, agent): {"ours": [result, ...], "ref": [...], "cross": [...]}} from ROOT/<dataset>/<agent>/."""
    rows: dict = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "*", "*.json"))):
        name = os.path.basename(path)
        agent_dir = os.path.dirname(path)
        dataset, agent = os.path.basename(os.path.dirname(agent_dir)), os.path.basename(agent_dir)
        entry = rows.setdefault((dataset, agent), {"ours": [], "ref": [], "cross": []})
        with open(path) as f:
            r = json.load(f)
        m = re.fullmatch(r"(ours|ref)-s(\d+)\.json", name)
        if m:
            entry[m.group(1)].append(r)
            continue
        m = re.fullmatch(r"cross-(ours|ref)-by-(ours|ref)-s(\d+)\.json", name)
        if m:
            entry["cross"].append({**r, "checkpoint": m.group(1), "evaluator": m.group(2), "seed": int(m.group(3))})
    return rows


def summarize_row(dataset: str, agent: str, entry: dict) -> dict:
    out = {"dataset": dataset, "agent": agent, "sides": {}}
    shas = {r["data_sha256"] for s in SIDES for r in entry[s]}
    out["data_sha256"] = sorted(shas)
    out["same_data"] = len(shas) <= 1
    budgets = {(r["steps"], r["episodes_per_task"]) for s in SIDES for r in entry[s]}
    out["budgets"] = sorted(budgets)
    finals = {}
    for side in SIDES:
        runs = sorted(entry[side], key=lambda r: r["seed"])
        vals = [100 * r["final"]["overall"] for r in runs]
        finals[side] = vals
        m, se = mean_se(vals)
        tasks = sorted({k for r in runs for k in r["final"] if k.startswith("task")}, key=lambda k: int(k[4:]))
        rates = [r["updates_per_second"] for r in runs if r.get("updates_per_second")]
        out["sides"][side] = {
            "seeds": [r["seed"] for r in runs], "n": len(runs), "final": vals, "mean": m, "se": se,
            "per_task": {t: mean_se([100 * r["final"][t] for r in runs])[0] for t in tasks},
            "per_point": {p: mean_se([100 * r["evals"][p]["overall"] for r in runs if p in r["evals"]])[0]
                          for p in sorted({p for r in runs for p in r["evals"]}, key=int)},
            "updates_per_second": statistics.fmean(rates) if rates else math.nan,
            "steps": sorted({r["steps"] for r in runs}), "episodes_per_task": sorted({r["episodes_per_task"] for r in runs}),
            "commands": [(["PYTHONPATH=" + r["command_env"]["PYTHONPATH"]] if (r.get("command_env") or {}).get("PYTHONPATH")
                          else []) + r["command"] for r in runs[:1]],
            "runner_commands": [r.get("runner_command") for r in runs[:1]],
            "ours_set": runs[0].get("ours_set", {}) if runs else {},
        }
    out["difference"] = welch(finals["ours"], finals["ref"])
    ro, rr = out["sides"]["ours"]["updates_per_second"], out["sides"]["ref"]["updates_per_second"]
    out["speed_ratio_ours_to_ref"] = ro / rr if rr and not math.isnan(rr) and not math.isnan(ro) else math.nan
    cross = []
    own = {side: {r["seed"]: r for r in entry[side]} for side in SIDES}
    for c in sorted(entry["cross"], key=lambda c: (c["seed"], c["checkpoint"])):
        last = own[c["checkpoint"]].get(c["seed"])
        own_score = None
        if last is not None:
            own_score = 100 * last["evals"][str(max(int(p) for p in last["evals"]))]["overall"]
        cross.append({"seed": c["seed"], "checkpoint": c["checkpoint"], "evaluator": c["evaluator"],
                      "score": 100 * c["overall"], "own_evaluator_score": own_score,
                      "per_task": {k: 100 * v for k, v in c.items() if k.startswith("task")}})
    out["cross"] = cross
    return out


def fmt(x: float, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(summary: list[dict]) -> str:
    lines = ["# Parity with the reference implementations (issue 30)", "",
             "Final success (%) = mean of the evaluations at 80/90/100% of training; mean ± SE over seeds. "
             "Difference = ours − reference with its 95% Welch interval; p from Welch's t-test. "
             "Updates/s measured on the same machine (training only, compilation excluded).", "",
             "| dataset | agent | updates × episodes/task | ours (n) | reference (n) | ours − ref [95% CI] | p | "
             "updates/s ours / ref (ratio) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary:
        o, r, d = row["sides"]["ours"], row["sides"]["ref"], row["difference"]
        budget = ", ".join(f"{s} × {e}" for s, e in row["budgets"])
        lines.append(
            f"| {row['dataset']} | {row['agent']} | {budget} | {fmt(o['mean'])} ± {fmt(o['se'])} ({o['n']}) | "
            f"{fmt(r['mean'])} ± {fmt(r['se'])} ({r['n']}) | {fmt(d['diff'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}] | "
            f"{fmt(d['p'], 3)} | {fmt(o['updates_per_second'])} / {fmt(r['updates_per_second'])} "
            f"({fmt(row['speed_ratio_ours_to_ref'], 2)}×) |")
    lines += ["", "## Per-task profile (final success %, mean over seeds)", ""]
    for row in summary:
        tasks = sorted(set(row["sides"]["ours"]["per_task"]) | set(row["sides"]["ref"]["per_task"]),
                       key=lambda k: int(k[4:]))
        if not tasks:
            continue
        lines += [f"**{row['agent']} on {row['dataset']}** (data sha256 {', '.join(s[:16] for s in row['data_sha256'])}"
                  f"{'' if row['same_data'] else ' — DIFFERENT FILES'})", "",
                  "| side | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
        for side, label in (("ours", "ours"), ("ref", "reference")):
            pt = row["sides"][side]["per_task"]
            lines.append(f"| {label} | " + " | ".join(fmt(pt.get(t)) for t in tasks) + " |")
        lines.append("")
    lines += ["## Cross-evaluation (final checkpoint, % success)", "",
              "| dataset | agent | seed | checkpoint | its own evaluator (100% point) | the other evaluator |",
              "|---|---|---|---|---|---|"]
    for row in summary:
        for c in row["cross"]:
            lines.append(f"| {row['dataset']} | {row['agent']} | {c['seed']} | {c['checkpoint']} | "
                         f"{fmt(c['own_evaluator_score'])} | {fmt(c['score'])} (by {c['evaluator']}) |")
    lines += ["", "## Commands", ""]
    for row in summary:
        for side in ("ours", "ref"):
            for cmd in row["sides"][side]["commands"]:
                lines.append(f"- {row['agent']} {row['dataset']} {side} (seed 0 shown): `{' '.join(cmd)}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default=os.environ.get("PARITY_ROOT", "/work/parity-runs"))
    p.add_argument("--out-json", default=None)
    p.add_argument("--out-md", default=None)
    args = p.parse_args(argv)
    runs = load_runs(args.root)
    summary = [summarize_row(d, a, e) for (d, a), e in sorted(runs.items())]
    out_json = args.out_json or os.path.join(args.root, "summary.json")
    out_md = args.out_md or os.path.join(args.root, "summary.md")
    with open(out_json, "w") as f:
        json.dump(summary, f, indent=2, default=lambda x: None)
    text = markdown(summary)
    with open(out_md, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
