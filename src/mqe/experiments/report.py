"""``mqe report``: the paper's tables and figures from run directories, beside the published numbers.

The protocol is the paper's (Appendix B.4): a seed's score is the mean of its evaluations at 80%, 90% and
100% of training (``mqe.protocol``, the one rule); a configuration's score is the mean over its seeds
with the standard error (sample standard deviation / sqrt(seeds)); the same per task. Runs are grouped
by (dataset, agent, everything in the config but the seed and bookkeeping). A seed counts once all
three evaluations exist, so a report made while a sweep runs shows the finished seeds and says how
many are still missing.

Published numbers ship as data (``published.json``) with their sources: the MQE paper's Table 1
(± standard error over 8 seeds), and OGBench's table (± standard deviation over 8 seeds) for the agents
and datasets the MQE paper omits. Any configuration whose budget (updates, evaluation episodes, seeds,
network size or batch) differs from the paper's is marked † in every table and figure, with what
differs in a note.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import os
from importlib import resources
from typing import Any

from mqe import protocol
from mqe.config import BOOKKEEPING, RENAMED_FIELDS, ConfigError, default_preset, make_config
from mqe.io import atomic_write_text
from mqe.protocol import mean_and_se

# Train fields that stay out of a configuration's key: bookkeeping, the seed (seeds of a configuration are
# grouped) and the updates per compiled call (how the same updates are dispatched).
_NOT_IN_KEY = BOOKKEEPING | {"seed", "updates_per_call"}
MARK = "†"


@functools.cache
def published() -> dict[str, Any]:
    return json.loads(resources.files("mqe.experiments").joinpath("published.json").read_text())


def published_cell(dataset: str, agent: str) -> tuple[float, float, str] | None:
    """(mean %, spread %, table key) from the MQE paper's table, else OGBench's; None if neither has it."""
    for key in ("mqe_paper", "ogbench"):
        cell = published()[key]["rows"].get(dataset, {}).get(agent)
        if cell is not None:
            return cell[0], cell[1], key
    return None


@dataclasses.dataclass
class Run:
    """One seed's run directory as the report reads it."""

    run_dir: str
    config: dict[str, Any]
    evals: dict[int, dict[str, float]]  # step -> success rates (fractions), from eval_<step>.json
    episodes: int | None  # evaluation episodes per task, where recorded
    provenance: list[dict[str, Any]]
    planner: dict[str, Any] | None = None  # test-time planner settings (mqe eval --paper --planner), else None
    fractions: tuple[float, ...] | None = None  # evaluation points to score (mqe report --fractions), else the run's

    @property
    def seed(self) -> int:
        return int(self.config["train"]["seed"])

    @property
    def dataset(self) -> str:
        return self.config.get("env") or os.path.basename(self.config.get("dataset", "?")).removesuffix(".npz")

    @property
    def agent(self) -> str:
        return self.config["agent_name"]

    @property
    def steps(self) -> int:
        return int(self.config["train"]["steps"])

    @property
    def paper_steps(self) -> list[int]:
        train = self.config["train"]
        fractions = self.fractions or train.get("eval_fractions", (0.8, 0.9, 1.0))
        return protocol.evaluation_steps(self.steps, int(train["updates_per_call"]), fractions)

    def score(self) -> dict[str, float] | None:
        """The paper's per-seed score (``mqe.protocol.score``; None until every point exists)."""
        return protocol.score(self.evals, self.paper_steps)

    def unscored_reason(self) -> str:
        """Why this seed has no score (``mqe.protocol.unscored_reason``)."""
        return protocol.unscored_reason(self.seed, self.evals, self.paper_steps, self.steps,
                                        protocol.trained_steps(self.run_dir))

    def key(self) -> tuple:
        train = {k: v for k, v in self.config["train"].items() if k not in _NOT_IN_KEY}
        return (self.dataset, self.agent, self.config.get("dataset_fingerprint", ""),
                json.dumps(self.config["agent"], sort_keys=True), json.dumps(train, sort_keys=True),
                json.dumps(self.planner, sort_keys=True))


def read_run(run_dir: str) -> Run | None:
    """A run directory (it has a config.json with an agent), or None."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or "agent_name" not in config:
        return None
    renamed = RENAMED_FIELDS.get(config["agent_name"], {})
    if renamed and isinstance(config.get("agent"), dict):  # runs from before a rename group with those after it
        config = {**config, "agent": {renamed.get(k, k): v for k, v in config["agent"].items()}}
    evals, episodes = _read_evals(run_dir)
    records = []
    prov = os.path.join(run_dir, "provenance.jsonl")
    if os.path.exists(prov):
        with open(prov) as f:
            records = [json.loads(line) for line in f if line.strip()]
    if episodes is None:  # runs from before final_eval.json recorded it: the command that trained them
        for record in reversed(records):
            command = record.get("command", [])
            if "--eval-episodes" in command:
                episodes = int(command[command.index("--eval-episodes") + 1])
                break
    return Run(run_dir, config, evals, episodes, records)


def _read_evals(folder: str) -> tuple[dict[int, dict[str, float]], int | None]:
    """(step -> success rates from eval_<step>.json, episodes per task from final_eval.json) of a folder."""
    evals, episodes = protocol.read_evaluations(folder), None
    final = os.path.join(folder, protocol.FINAL_FILE)
    if os.path.exists(final):
        with open(final) as f:
            episodes = json.load(f).get("episodes_per_task")
    return evals, episodes


def planned_runs(run: Run) -> list[Run]:
    """The run's evaluations with a test-time planner (RUN/planner_*/ with planner.json), one Run each:
    the same training, its own configuration key, so planner and plain runs are separate columns."""
    out = []
    for name in sorted(os.listdir(run.run_dir)):
        folder = os.path.join(run.run_dir, name)
        if name.startswith("planner_") and os.path.isfile(os.path.join(folder, "planner.json")):
            with open(os.path.join(folder, "planner.json")) as f:
                settings = json.load(f).get("settings", {})
            evals, episodes = _read_evals(folder)
            out.append(dataclasses.replace(run, evals=evals, episodes=episodes or run.episodes, planner=settings))
    return out


def find_runs(paths: list[str], fractions: tuple[float, ...] | None = None) -> list[Run]:
    """Every run directory under ``paths`` (run directories, sweep directories, any folders); ``fractions``
    scores each at those evaluation points instead of its own (e.g. (1.0,): the last checkpoint only)."""
    runs, seen = [], set()
    for path in paths:
        if not os.path.isdir(path):
            raise ConfigError(f"mqe report: {path} is not a directory")
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("checkpoints", "tensorboard", "logs"))
            if "config.json" in files and os.path.realpath(root) not in seen:
                run = read_run(root)
                if run is not None:
                    seen.add(os.path.realpath(root))
                    runs.append(run)
                    runs.extend(planned_runs(run))
    if fractions:
        runs = [dataclasses.replace(run, fractions=tuple(fractions)) for run in runs]
    return runs


@dataclasses.dataclass
class Group:
    """The seeds of one configuration."""

    runs: list[Run]
    variant: dict[str, Any] = dataclasses.field(default_factory=dict)  # what sets it apart from its siblings

    @property
    def dataset(self) -> str:
        return self.runs[0].dataset

    @property
    def agent(self) -> str:
        return self.runs[0].agent

    @property
    def label(self) -> str:
        return self.agent + (f" ({', '.join(f'{k}={_short(v)}' for k, v in self.variant.items())})"
                             if self.variant else "")

    @property
    def scored(self) -> list[tuple[Run, dict[str, float]]]:
        return [(r, s) for r in sorted(self.runs, key=lambda r: r.seed) for s in [r.score()] if s is not None]

    def summary(self) -> dict[str, tuple[float, float]]:
        """{"overall" | "taskN": (mean, standard error)} over the scored seeds, in %."""
        scores = [s for _, s in self.scored]
        if not scores:
            return {}
        return {k: mean_and_se([100 * s[k] for s in scores]) for k in scores[0]}

    def budget_notes(self) -> list[str]:
        """How this configuration's budget differs from the paper's (empty: the paper's budget)."""
        run = self.runs[0]
        notes = []
        env = run.config.get("env", "")
        preset = default_preset(env) or "paper"
        try:
            paper = json.loads(json.dumps(make_config(run.agent, preset, dataset=env, env=env).to_dict()))
        except ConfigError:
            return ["no paper configuration for this agent"]
        if run.steps != paper["train"]["steps"]:
            notes.append(f"{_count(run.steps)} updates (paper {_count(paper['train']['steps'])})")
        episodes = {r.episodes for r, _ in self.scored} or {r.episodes for r in self.runs}
        if episodes != {50}:
            notes.append(f"{'/'.join(str(e) if e else '?' for e in sorted(episodes, key=str))} evaluation episodes "
                         "per task (paper 50)")
        paper_points = protocol.evaluation_steps(run.steps, int(run.config["train"]["updates_per_call"]),
                                        paper["train"].get("eval_fractions", (0.8, 0.9, 1.0)))
        if run.paper_steps != paper_points:
            share = lambda steps: "/".join(f"{100 * s / run.steps:.0f}" for s in steps)
            notes.append(f"scored at {share(run.paper_steps)}% of training (paper {share(paper_points)}%)")
        paper_seeds = 4 if env.startswith("visual-") else 8
        if len(self.scored) != paper_seeds:
            notes.append(f"{len(self.scored)} seeds (paper {paper_seeds})")
        for field, value in run.config["agent"].items():
            if (field.endswith("_hidden_dims") or field in ("batch_size", "latent_dim", "rep_dim")) \
                    and value != paper["agent"].get(field, value):
                notes.append(f"{field} {_short(value)} (paper {_short(paper['agent'][field])})")
        return notes


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs grouped by configuration; a group's ``variant`` holds the config values in which it differs
    from the other groups of the same dataset and agent."""
    by_key: dict[tuple, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.key(), []).append(run)
    groups = [Group(sorted(rs, key=lambda r: r.seed)) for rs in by_key.values()]
    siblings: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        siblings.setdefault((g.dataset, g.agent), []).append(g)
    for family in siblings.values():
        if len(family) < 2:
            continue
        flat = [_flat(g.runs[0]) for g in family]
        differing = sorted(k for k in set().union(*flat) if len({json.dumps(f.get(k)) for f in flat}) > 1)
        for g, f in zip(family, flat):
            g.variant = {k: f.get(k) for k in differing}
    return sorted(groups, key=lambda g: (g.dataset, g.agent, json.dumps(g.variant, sort_keys=True)))


def _flat(run: Run) -> dict[str, Any]:
    out = {k: v for k, v in run.config["agent"].items()}
    out.update({f"train.{k}": v for k, v in run.config["train"].items() if k not in _NOT_IN_KEY})
    if run.config.get("dataset_fingerprint"):
        out["data"] = run.config["dataset_fingerprint"][-8:]
    out["planner"] = planner_label(run.planner)
    return out


def planner_label(settings: dict[str, Any] | None) -> str:
    """A short name for a planner's settings (all of them are in the run's planner_*/planner.json)."""
    if not settings:
        return "none"
    shown = {"landmarks": "K", "selection": "", "edge_power": "power", "max_edge": "max edge",
             "goal_radius": "radius", "replan_every": "replan"}
    parts = [f"{label} {settings[k]}".strip() for k, label in shown.items() if k in settings]
    if settings.get("connect") and "landmarks" in settings:  # K grows until that fraction of pairs is joined
        parts[0] = f"K {settings['landmarks']}..{settings.get('max_landmarks', '?')} to {settings['connect']:.0%} joined"
    return f"{settings.get('name', '?')} ({', '.join(parts)})"


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def _count(steps: int) -> str:
    return f"{steps // 1_000_000}M" if steps % 1_000_000 == 0 else f"{steps // 1000}k" if steps % 1000 == 0 else str(steps)


def _cell(mean_se: tuple[float, float] | None, marked: bool) -> str:
    if mean_se is None:
        return "–"
    mean, se = mean_se
    return f"{mean:.1f} ± {se:.1f}{MARK if marked else ''}" if math.isfinite(se) else \
        f"{mean:.1f}{MARK if marked else ''}"


def _published_text(dataset: str, agent: str) -> str:
    cell = published_cell(dataset, agent)
    if cell is None:
        return "–"
    mean, spread, key = cell
    return f"{mean:g} ± {spread:g}" + ("" if key == "mqe_paper" else " (OG)")


# ---------------------------------------------------------------------------------------------------------
# Outputs


@dataclasses.dataclass
class Report:
    groups: list[Group]
    markdown: str
    files: list[str]


def build_report(paths: list[str], out_dir: str, *, figures: bool = True,
                 fractions: tuple[float, ...] | None = None) -> Report:
    """Reads the runs under ``paths`` and writes report.md, report.csv, report.tex and the figures;
    ``fractions``: score every run at these evaluation points (marked in the notes)."""
    runs = find_runs(paths, fractions)
    if not runs:
        raise ConfigError(f"mqe report: no run directories (with a config.json) under {', '.join(paths)}")
    groups = group_runs(runs)
    os.makedirs(out_dir, exist_ok=True)
    files = []
    figure_files = []
    if figures:
        figure_files = plot_curves(groups, out_dir) + plot_heatmaps(groups, out_dir)
    markdown = render_markdown(groups, [os.path.relpath(f, out_dir) for f in figure_files])
    for name, text in (("report.md", markdown), ("report.csv", render_csv(groups)),
                       ("report.tex", render_latex(groups))):
        atomic_write_text(os.path.join(out_dir, name), text)
        files.append(os.path.join(out_dir, name))
    return Report(groups, markdown, files + figure_files)


def _footnotes(groups: list[Group]) -> tuple[dict[int, int], list[str]]:
    """Numbered notes for the budgets that differ from the paper's (groups with the same notes share one)."""
    numbers: dict[int, int] = {}
    notes: list[str] = []
    for i, g in enumerate(groups):
        text = "; ".join(g.budget_notes())
        if text:
            if text not in notes:
                notes.append(text)
            numbers[i] = notes.index(text) + 1
    return numbers, notes


def render_markdown(groups: list[Group], figures: list[str] = ()) -> str:
    numbers, notes = _footnotes(groups)
    lines = ["# Results", "",
             "Success rate (%), the paper's protocol: per seed the mean of the evaluations at 80/90/100% of "
             "training; over seeds the mean ± standard error. Published: the MQE paper's Table 1 (± standard "
             "error, 8 seeds), or OGBench's table where marked (OG; ± standard deviation, 8 seeds). "
             f"{MARK}: a budget that differs from the paper's (see the notes).", ""]
    columns = list(dict.fromkeys(g.label for g in groups))
    datasets = list(dict.fromkeys(g.dataset for g in groups))
    by_cell = {(g.dataset, g.label): (i, g) for i, g in enumerate(groups)}
    lines.append("| dataset | " + " | ".join(columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for dataset in datasets:
        ours, theirs = [], []
        for label in columns:
            found = by_cell.get((dataset, label))
            if found is None:
                ours.append("")
                theirs.append("")
                continue
            i, g = found
            note = f" [{numbers[i]}]" if i in numbers else ""
            total = len(g.runs)
            done = len(g.scored)
            missing = f" ({done}/{total} seeds)" if done < total else ""
            ours.append(_cell(g.summary().get("overall"), i in numbers) + note + missing)
            theirs.append(_published_text(dataset, g.agent))
        lines.append(f"| {dataset} (ours) | " + " | ".join(ours) + " |")
        lines.append(f"| {dataset} (published) | " + " | ".join(theirs) + " |")
    if notes:
        lines += ["", "Budgets that differ from the paper's:", ""]
        lines += [f"{n}. {MARK} {text}" for n, text in enumerate(notes, 1)]
    # As many task columns as the evaluated datasets have (none: no per-task table; a grid maze has its own).
    task_count = max((sum(k.startswith("task") for k in g.summary()) for g in groups), default=0)
    if task_count:
        lines += ["", "## Per task", "", "| dataset | configuration | seeds | " +
                  " | ".join(f"task{t}" for t in range(1, task_count + 1)) + " | overall |",
                  "|---" * (task_count + 4) + "|"]
    for i, g in enumerate(groups if task_count else []):
        summary = g.summary()
        tasks = sorted((k for k in summary if k.startswith("task")), key=lambda k: int(k[4:]))
        cells = [_cell(summary[k], False) for k in tasks] + [""] * (task_count - len(tasks))
        lines.append(f"| {g.dataset} | {g.label} | {len(g.scored)}/{len(g.runs)} | " + " | ".join(cells)
                     + f" | {_cell(summary.get('overall'), i in numbers)} |")
    lines += ["", "## Seeds", ""]
    for g in groups:
        scores = ", ".join(f"s{r.seed} {100 * s['overall']:.1f}" for r, s in g.scored) or "none scored"
        pending = [r for r in g.runs if r.score() is None]
        wait = (" (not scored: " + ", ".join(r.unscored_reason() for r in pending) + ")") if pending else ""
        lines.append(f"- {g.dataset} / {g.label}: {scores}{wait}")
    lines += ["", "## Provenance", ""]
    lines += _provenance_lines(groups)
    lines += ["", "Published numbers:", ""]
    for key in ("mqe_paper", "ogbench"):
        entry = published()[key]
        lines.append(f"- {entry['title']}: {entry['source']}" + (f" Caveat: {entry['caveat']}" if "caveat" in entry else ""))
    if figures:
        lines += ["", "## Figures", ""] + [f"![{os.path.basename(f)}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _provenance_lines(groups: list[Group]) -> list[str]:
    lines = []
    code, devices, libraries, data = set(), set(), set(), {}
    for g in groups:
        for r in g.runs:
            for record in r.provenance:
                commit = record.get("git_commit", "")
                code.add(f"mqe {record.get('mqe', '?')}" + (f" @ {commit[:10]}" if commit else "")
                         + (" (uncommitted changes)" if record.get("git_dirty") else ""))
                devices.add(f"{record.get('backend', '?')} ({record.get('device', '?')}, {record.get('cpu_count', '?')} "
                            f"CPU cores, host {record.get('host', '?')})")
                libraries.add(", ".join(f"{k} {v}" for k, v in sorted(record.get("libraries", {}).items())))
            data.setdefault(r.dataset, set()).add(r.config.get("dataset_fingerprint") or "?")
    lines.append("- code: " + ("; ".join(sorted(code)) or "not recorded"))
    lines.append("- devices: " + ("; ".join(sorted(devices)) or "not recorded"))
    lines.append("- libraries: " + (" | ".join(sorted(libraries)) or "not recorded"))
    for dataset, prints in sorted(data.items()):
        lines.append(f"- data {dataset}: " + ", ".join(sorted(prints)))
    return lines


def render_csv(groups: list[Group]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dataset", "agent", "variant", "seeds_finished", "seeds", "metric", "mean", "se",
                     "published_mean", "published_spread", "published_source", "budget_differs", "budget_notes"])
    for g in groups:
        notes = g.budget_notes()
        cell = published_cell(g.dataset, g.agent)
        for metric, (mean, se) in g.summary().items():
            pub = cell if metric == "overall" and cell else (None, None, None)
            writer.writerow([g.dataset, g.agent, json.dumps(g.variant, sort_keys=True) if g.variant else "",
                             len(g.scored), len(g.runs), metric, f"{mean:.2f}", f"{se:.2f}",
                             *("" if v is None else v for v in pub[:2]),
                             "" if pub[2] is None else pub[2], int(bool(notes)), "; ".join(notes)])
    return out.getvalue()


def render_latex(groups: list[Group]) -> str:
    numbers, notes = _footnotes(groups)
    columns = list(dict.fromkeys(g.label for g in groups))
    datasets = list(dict.fromkeys(g.dataset for g in groups))
    by_cell = {(g.dataset, g.label): (i, g) for i, g in enumerate(groups)}
    esc = lambda s: s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    lines = [r"\begin{tabular}{l" + "c" * len(columns) + "}", r"\toprule",
             "Dataset & " + " & ".join(esc(c) for c in columns) + r" \\", r"\midrule"]
    for dataset in datasets:
        cells = []
        for label in columns:
            found = by_cell.get((dataset, label))
            if found is None:
                cells.append("")
                continue
            i, g = found
            overall = g.summary().get("overall")
            text = "--" if overall is None else (f"{overall[0]:.1f} $\\pm$ {overall[1]:.1f}"
                                                 if math.isfinite(overall[1]) else f"{overall[0]:.1f}")
            if i in numbers:
                text += f"$^{{\\dagger{numbers[i]}}}$"
            cell = published_cell(dataset, g.agent)
            if cell is not None:
                text += f" ({cell[0]:g})"
            cells.append(text)
        lines.append(esc(dataset) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% dagger{n}: {text}" for n, text in enumerate(notes, 1)]
    lines.append("% in parentheses: the published number (MQE paper Table 1, else OGBench's table)")
    return "\n".join(lines) + "\n"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("mqe report draws its figures with matplotlib (a dependency of mqe-gcrl that is "
                          "missing here): pip install matplotlib, or pass --no-figures") from None
    return plt


def plot_curves(groups: list[Group], out_dir: str) -> list[str]:
    """One PNG per dataset: success vs updates, the mean over seeds with a ± standard error band."""
    plt = _pyplot()
    files = []
    for dataset in dict.fromkeys(g.dataset for g in groups):
        family = [g for g in groups if g.dataset == dataset and any(r.evals for r in g.runs)]
        if not family:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for g in family:
            steps = sorted(set.intersection(*(set(r.evals) for r in g.runs if r.evals)))
            if not steps:
                continue
            stats = [mean_and_se([100 * r.evals[s]["overall"] for r in g.runs if s in r.evals]) for s in steps]
            mean = [m for m, _ in stats]
            se = [0.0 if not math.isfinite(e) else e for _, e in stats]
            marked = MARK if g.budget_notes() else ""
            line, = ax.plot(steps, mean, marker="o", label=f"{g.label}{marked} ({len(g.runs)} seeds)")
            ax.fill_between(steps, [m - e for m, e in zip(mean, se)], [m + e for m, e in zip(mean, se)],
                            color=line.get_color(), alpha=0.2)
        ax.set_xlabel("updates")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(dataset + (f"  ({MARK} budget differs from the paper's)"
                                if any(g.budget_notes() for g in family) else ""), fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        files.append(_save(plt, fig, os.path.join(out_dir, f"curves_{dataset}.png")))
    return files


HEATMAP_AXES = ("next_state_prob", "waypoint_discount")  # Figure 5: p x lambda


def plot_heatmaps(groups: list[Group], out_dir: str) -> list[str]:
    """Figure 5: success over (p, lambda), for every dataset and agent whose configurations differ in
    ``next_state_prob`` and ``waypoint_discount`` only, with at least two values of each."""
    plt = _pyplot()
    files = []
    families: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        if g.variant and set(g.variant) == set(HEATMAP_AXES) and g.summary():
            families.setdefault((g.dataset, g.agent), []).append(g)
    for (dataset, agent), family in families.items():
        ps = sorted({g.variant["next_state_prob"] for g in family})
        lams = sorted({g.variant["waypoint_discount"] for g in family})
        if len(ps) < 2 or len(lams) < 2:
            continue
        grid = [[float("nan")] * len(ps) for _ in lams]
        for g in family:
            grid[lams.index(g.variant["waypoint_discount"])][ps.index(g.variant["next_state_prob"])] = \
                g.summary()["overall"][0]
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
        image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=max(1.0, max(
            v for row in grid for v in row if math.isfinite(v))))
        for y, row in enumerate(grid):
            for x, value in enumerate(row):
                if math.isfinite(value):
                    ax.text(x, y, f"{value:.0f}", ha="center", va="center", color="w", fontsize=9)
        ax.set_xticks(range(len(ps)), [f"{p:g}" for p in ps])
        ax.set_yticks(range(len(lams)), [f"{lam:g}" for lam in lams])
        ax.set_xlabel("p (next_state_prob)")
        ax.set_ylabel("λ (waypoint_discount)")
        seeds = min(len(g.scored) for g in family)
        marked = f" {MARK}" if any(g.budget_notes() for g in family) else ""
        ax.set_title(f"{dataset} / {agent}: success (%), {seeds} seeds{marked}", fontsize=8)
        fig.colorbar(image, ax=ax)
        files.append(_save(plt, fig, os.path.join(out_dir, f"heatmap_{dataset}_{agent}.png")))
    return files


def _save(plt, fig, path: str) -> str:
    """Lays out, writes (atomically) and closes a figure; returns its path."""
    from mqe.io import atomic_write_bytes

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
