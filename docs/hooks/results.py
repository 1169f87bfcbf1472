"""The results page, generated from the measurements kept as data in ``benchmarks/results/``.

Two kinds of file are read (anything else is listed by name, so nothing there goes unseen):

- ``*.json`` with ``"schema": "mqe-results/1"``: a titled, dated measurement (``date``, ``machine``,
  ``commit`` with ``commit_role`` "measured" or "recorded", optional ``software``, ``command``,
  ``summary``) and its ``tables`` (``caption``, ``columns``, ``rows``, ``notes``);
  ``benchmarks/results/README.md`` describes the format.
- ``gpu.json`` as ``benchmarks/gpu.py`` writes it (its ``provenance`` says the date, device and commit).

``python docs/hooks/results.py`` prints the page.
"""

from __future__ import annotations

import html
import json
import math
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

TOPICS = ["Success rates", "Training speed", "Evaluation", "Planning", "Pixels", "Data generation", "Data formats",
          "Serving", "Correctness", "Compatibility"]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    value = html.escape(" ".join(str(value).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", value)


def _table(columns, rows) -> str:
    out = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        row = list(row) + [""] * (len(columns) - len(row))
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(out) + "\n"


def _anchor(path: pathlib.Path) -> str:
    rel = path.relative_to(RESULTS).with_suffix("")
    return re.sub(r"[^a-z0-9]+", "-", rel.as_posix().lower()).strip("-")


def _meta(date, machine, commit, role, software=None, command=None, path=None) -> str:
    lines = [f"- **Date:** {_cell(date)}", f"- **Machine:** {_cell(machine)}"]
    if software:
        lines.append(f"- **Software:** {_cell(software)}")
    if commit:
        how = {"measured": "the code measured", "recorded": "the commit that recorded the figure"}.get(role, role or "")
        lines.append(f"- **Commit:** `{commit}`" + (f" ({how})" if how else ""))
    if command:
        commands = command if isinstance(command, list) else [command]
        lines.append("- **Command:** " + "; ".join(f"`{c}`" for c in commands))
    if path:
        lines.append(f"- **Data:** `{path.relative_to(ROOT).as_posix()}`")
    return "\n".join(lines) + "\n"


def _entry(path: pathlib.Path, data: dict) -> tuple[str, str, str, str]:
    """(topic, date, title, Markdown) for one mqe-results file."""
    title = data.get("title", path.stem)
    out = [f"### {_cell(title)} {{ #{_anchor(path)} }}\n\n"]
    if data.get("summary"):
        out.append(_cell(data["summary"]) + "\n\n")
    out.append(_meta(data.get("date"), data.get("machine"), data.get("commit"), data.get("commit_role"),
                     data.get("software"), data.get("command"), path) + "\n")
    for table in data.get("tables", []):
        if table.get("caption"):
            out.append(f"*{_cell(table['caption'])}*\n\n")
        out.append(_table(table["columns"], table["rows"]) + "\n")
        if table.get("notes"):
            out.append(_cell(table["notes"]) + "\n\n")
    return data.get("topic", "Other"), str(data.get("date", "")), title, "".join(out)


def _gpu_entry(path: pathlib.Path, data: dict) -> tuple[str, str, str, str]:
    """(topic, date, title, Markdown) for a ``benchmarks/gpu.py`` output."""
    prov = data.get("provenance", {})
    date = str(prov.get("time", ""))[:10]
    device = prov.get("device", "an accelerator")
    libs = prov.get("libraries", {})
    software = ", ".join(f"{k} {v}" for k, v in libs.items() if k in ("jax", "jaxlib", "flax", "optax"))
    if prov.get("python"):
        software = f"Python {prov['python']}, {software}"
    machine = f"one {device}" + (f", {prov['cpu_count']} CPU cores" if prov.get("cpu_count") else "")
    commit = str(prov.get("git_commit", ""))[:7] + (" (with uncommitted changes)" if prov.get("git_dirty") else "")
    args = data.get("args", {})
    title = f"{device}: benchmarks/gpu.py" + (f", {path.parent.name}" if path.parent.parent != RESULTS else "")
    out = [f"### {_cell(title)} {{ #{_anchor(path)} }}\n\n",
           _meta(date, machine, commit, "measured", software, "python benchmarks/gpu.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in args.items()
               if k in ("datasets", "agents", "seeds", "budget", "throughput_seeds", "eval_episodes")
               and v not in (None, "", [])), path), "\n"]
    rates = data.get("matmul_gflops") or {}
    if rates:
        rows = [[dtype, f"{rates[dtype] / 1000:.0f}"] for dtype in ("float32", "bfloat16") if dtype in rates]
        out.append(f"*Matmul rate, {rates.get('size', '?')}² matrices*\n\n")
        out.append(_table(["inputs", "TFLOP/s"], rows) + "\n")
    kernels = data.get("kernel_timings") or []
    if kernels:
        out.append("*MQE, paper configuration, one program of several seeds: kernel set and matmul precision*\n\n")
        out.append(_table(["kernels", "matmuls", "updates/s per seed", "compile s"],
                          [[k.get("kernels"), k.get("matmul_dtype"), f"{k.get('updates_per_s_per_seed', float('nan')):.0f}",
                            f"{k.get('compile_s', float('nan')):.0f}"] for k in kernels]) + "\n")
    throughput = data.get("throughput") or []
    if throughput:
        flops = data.get("flops_per_update")
        caption = "*MQE, paper configuration: seeds in one program*"
        if isinstance(flops, (int, float)) and not math.isnan(flops):
            caption = f"*MQE, paper configuration: seeds in one program ({flops / 1e9:.2f} GFLOP per update)*"
        out.append(caption + "\n\n")
        out.append(_table(["seeds in one program", "updates/s per seed", "updates/s in total", "share of the float32 matmul rate"],
                          [[t.get("seeds"), f"{t.get('updates_per_s_per_seed', float('nan')):.0f}",
                            f"{t.get('updates_per_s_total', float('nan')):.0f}",
                            _percent(t.get("fraction_of_matmul_float32"))] for t in throughput]) + "\n")
    agents = data.get("agent_rates") or {}
    if agents:
        out.append("*Each agent at its paper configuration, same program size*\n\n")
        out.append(_table(["agent", "updates/s per seed", "compile s"],
                          [[a, f"{r.get('updates_per_s_per_seed', float('nan')):.0f}", f"{r.get('compile_s', float('nan')):.0f}"]
                           for a, r in agents.items()]) + "\n")
    training = data.get("training") or []
    if training:
        out.append(f"*Training {data.get('steps', '?')} updates x {args.get('seeds', '?')} seeds, checkpoints included*\n\n")
        out.append(_table(["dataset", "agent", "seconds", "updates/s per seed"],
                          [[t.get("dataset"), t.get("agent"), f"{t.get('seconds', float('nan')):.0f}",
                            f"{t.get('updates_per_s_per_seed', float('nan')):.0f}"] for t in training]) + "\n")
    evaluation = data.get("evaluation") or []
    if evaluation:
        out.append("*Evaluation of the trained checkpoints (success, mean ± standard error over seeds)*\n\n")
        rows = []
        for e in evaluation:
            seeds = [s for s in e.get("seeds", []) if isinstance(s.get("final"), dict)]
            episodes = sum(5 * s["final"].get("episodes_per_task", 0) for s in seeds)
            mean, se = e.get("mean"), e.get("se")
            score = "" if mean is None else f"{100 * mean:.1f} ± {100 * (se or 0):.1f}%"
            rows.append([e.get("dataset"), e.get("agent"), e.get("planner"), len(seeds), episodes, score,
                         f"{e.get('seconds', float('nan')):.0f}"])
        out.append(_table(["dataset", "agent", "planner", "seeds", "episodes", "success", "seconds (with start-up)"], rows)
                   + "\n")
    return "Training speed", date, title, "".join(out)


def _percent(value) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "n/a"
    return f"{100 * value:.1f}%"


def entries():
    """Every result under ``benchmarks/results``: (topic, date, title, markdown) and the unread files."""
    found, other = [], []
    for path in sorted(RESULTS.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        data = None
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = None
        if isinstance(data, dict) and data.get("schema") == "mqe-results/1":
            found.append(_entry(path, data))
        elif isinstance(data, dict) and path.name == "gpu.json" and "provenance" in data:
            found.append(_gpu_entry(path, data))
        else:
            other.append(path)
    return found, other


def results_page() -> str:
    found, other = entries()
    out = ["<!-- Generated at build time by docs/hooks/results.py from benchmarks/results/; "
           "edit the data, not this page. -->\n\n",
           "# Results\n\n",
           "Every measurement the project quotes, rendered from the data files in `benchmarks/results/` "
           "(one file per measurement, each with its date, machine and commit). To add one, write a file in "
           "the format `benchmarks/results/README.md` describes; this page picks it up at the next build.\n\n",
           "Unless a section says otherwise, the CPU figures come from this project's development machine: "
           "2 CPU cores (x86_64, AVX2), often shared with other jobs. Timings depend on the machine: "
           "compare numbers only within one table.\n\n"]
    topics = sorted({t for t, *_ in found}, key=lambda t: (TOPICS.index(t) if t in TOPICS else len(TOPICS), t))
    out.append("| topic | measurements |\n|---|---|\n")
    for topic in topics:
        items = sorted((e for e in found if e[0] == topic), key=lambda e: e[1], reverse=True)
        slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")
        out.append(f"| [{topic}](#{slug}) | {len(items)} |\n")
    for topic in topics:
        slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")
        out.append(f"\n## {topic} {{ #{slug} }}\n\n")
        for _topic, _date, _title, text in sorted((e for e in found if e[0] == topic), key=lambda e: e[1], reverse=True):
            out.append(text + "\n")
    if other:
        out.append("\n## Other files\n\nRaw outputs kept beside the data above:\n\n")
        out.extend(f"- `{p.relative_to(ROOT).as_posix()}`\n" for p in other)
    return "".join(out)


if __name__ == "__main__":
    print(results_page())
