"""The reference pages, generated from the code at build time (nothing in them is typed by hand).

- ``cli_page``: every command, subcommand and flag of ``mqe``, walked from ``mqe.cli.build_parser()``.
- ``agents_page``: every agent's config fields, defaults and the comments written beside them, read from
  the source of ``src/mqe/agents/*.py`` and ``src/mqe/config.py`` with ``ast`` and ``tokenize`` (nothing
  is imported, so JAX is not needed).
- ``presets_page``: ``src/mqe/presets/*.json``, every value with its source.
- ``api_modules``: the modules whose docstrings mkdocstrings renders (found by listing ``src/mqe``).

Each function returns Markdown; ``python docs/hooks/reference.py cli|agents|presets|api`` prints a page.
"""

from __future__ import annotations

import argparse
import ast
import html
import io
import json
import pathlib
import re
import sys
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "mqe"

GENERATED = "<!-- Generated at build time by docs/hooks/reference.py; edit the code, not this page. -->\n\n"


def text(value: str) -> str:
    """Plain text for a Markdown table cell: HTML-escaped, Markdown's inline markers neutralised."""
    value = html.escape(" ".join(str(value).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", value)


def code(value: str) -> str:
    """An inline code span (Python-Markdown's tables leave a ``|`` inside backticks alone)."""
    value = str(value)
    ticks = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


# ----------------------------------------------------------------------------------------------- CLI


def _subparser_actions(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _commands(parser: argparse.ArgumentParser, prefix: str):
    """Yields (full command, parser, one-line help) for the parser and every subparser below it."""
    yield prefix, parser, parser.description or ""
    for group in _subparser_actions(parser):
        helps = {a.dest: a.help or "" for a in group._choices_actions}
        seen = set()
        for name, sub in group.choices.items():
            if id(sub) in seen:  # aliases map to the same parser
                continue
            seen.add(id(sub))
            for full, p, desc in _commands(sub, f"{prefix} {name}"):
                yield full, p, (desc if p is not sub else (helps.get(name) or sub.description or ""))


def _option_rows(parser: argparse.ArgumentParser):
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                metavar = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
                name += f" {metavar}"
        else:
            name = formatter._format_args(action, formatter._get_default_metavar_for_positional(action))
        help_text = formatter._expand_help(action) if action.help else ""
        default = action.default
        if action.option_strings and action.nargs == 0 or default in (None, argparse.SUPPRESS, []) \
                or not action.option_strings:
            default_cell = ""
        else:
            default_cell = code(default if not isinstance(default, str) else repr(default) if default == "" else default)
        if action.choices and not isinstance(action.choices, dict):
            help_text += f" (one of: {', '.join(map(str, action.choices))})"
        if action.required and action.option_strings:
            help_text += " (required)"
        rows.append((code(name), default_cell, text(help_text)))
    return rows


def cli_page() -> str:
    from mqe.cli import build_parser

    parser = build_parser()
    prog = parser.prog or "mqe"
    commands = list(_commands(parser, prog))
    out = [GENERATED, "# Command line\n\n",
           f"Every command of `{prog}`, its flags and their defaults, read from the argument parser "
           f"(`mqe.cli.build_parser()`). `{prog} COMMAND --help` prints the same.\n\n"]
    out.append("| command | what it does |\n|---|---|\n")
    for full, _parser, desc in commands[1:]:
        anchor = full.replace(" ", "-")
        out.append(f"| [`{full}`](#{anchor}) | {text(desc.splitlines()[0] if desc else '')} |\n")
    for full, sub, desc in commands:
        level = "#" * min(2 + full.count(" ") - 1, 4) if full != prog else "##"
        anchor = full.replace(" ", "-")
        out.append(f"\n{level} `{full}` {{ #{anchor} }}\n\n")
        if sub.description and sub.description != desc:
            desc = f"{desc}\n\n{sub.description}" if desc else sub.description
        if desc:
            out.append(text(desc) + "\n\n")
        usage = sub.format_usage().strip()
        out.append(f"```text\n{usage}\n```\n\n")
        rows = _option_rows(sub)
        if rows:
            out.append("| argument | default | help |\n|---|---|---|\n")
            out.extend(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
        subcommands = [(n, p) for g in _subparser_actions(sub) for n, p in g.choices.items()]
        if subcommands and full != prog:
            links = ", ".join(f"[`{full} {n}`](#{(full + ' ' + n).replace(' ', '-')})" for n, _p in subcommands)
            out.append(f"\nSubcommands: {links}.\n")
        if sub.epilog:
            out.append(f"\n{text(sub.epilog)}\n")
    return "".join(out)


# -------------------------------------------------------------------------------- configs (ast, no import)


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line (without ``#``)."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string.lstrip("#").strip()
    return found


def _is_dataclass(node: ast.ClassDef) -> bool:
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("dataclass", "dataclasses"):
            return True
    return False


def config_classes(path: pathlib.Path) -> dict[str, dict]:
    """Every dataclass in a file: {name: {"doc", "bases", "fields": [(kind, ...)]}}.

    A field is ("field", name, annotation, default, comment); a comment line of the form ``--- title ---``
    between fields is ("section", title); other comment lines above a field join that field's comment.
    """
    source = path.read_text()
    tree = ast.parse(source)
    comments = _comments(source)
    lines = source.splitlines()
    classes = {}
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and _is_dataclass(node)):
            continue
        entries = []
        previous_end = node.body[0].end_lineno if node.body and isinstance(node.body[0], ast.Expr) else node.lineno
        for stmt in node.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                if hasattr(stmt, "end_lineno"):
                    previous_end = stmt.end_lineno
                continue
            above = []
            for line in range(previous_end + 1, stmt.lineno):
                stripped = lines[line - 1].strip()
                if line in comments and stripped.startswith("#"):
                    above.append(comments[line])
            pending = []
            for note in above:
                match = re.fullmatch(r"-{2,}\s*(.*?)\s*-{2,}", note)
                if match:
                    if pending:
                        entries.append(("note", " ".join(pending)))
                        pending = []
                    entries.append(("section", match.group(1)))
                else:
                    pending.append(note)
            trailing = comments.get(stmt.end_lineno) or comments.get(stmt.lineno, "")
            comment = " ".join(pending + ([trailing] if trailing else []))
            annotation = ast.get_source_segment(source, stmt.annotation) or ""
            default = ast.get_source_segment(source, stmt.value) if stmt.value is not None else None
            if default is not None:
                default = " ".join(default.split())
            entries.append(("field", stmt.target.id, annotation, default, comment))
            previous_end = stmt.end_lineno
        classes[node.name] = {"doc": ast.get_docstring(node) or "",
                              "bases": [ast.get_source_segment(source, b) for b in node.bases],
                              "fields": entries, "path": path, "line": node.lineno}
    return classes


def registry() -> list[tuple[str, str, str]]:
    """(agent name, config class name, one-line summary) from the registry in ``mqe/agents/__init__.py``,
    read with ``ast``: the dict literal whose values call a spec with the agent and config classes."""
    init = PACKAGE / "agents" / "__init__.py"
    tree = ast.parse(init.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(value, ast.Call)):
                continue
            names = [a.id for a in value.args if isinstance(a, ast.Name)]
            names += [k.value.id for k in value.keywords if isinstance(k.value, ast.Name)]
            strings = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            strings += [k.value.value for k in value.keywords
                        if isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)]
            config = next((n for n in names if n.endswith("Config")), None)
            if config:  # the spec's last string is its summary (the first may name the agent class)
                found.append((key.value, config, strings[-1] if strings else ""))
    return found


def _all_config_classes() -> dict[str, dict]:
    classes = {}
    for path in sorted((PACKAGE / "agents").glob("*.py")):
        classes.update(config_classes(path))
    return classes


def agents_list() -> list[tuple[str, str, str]]:
    """The registry's agents; if it cannot be read, every ``*Config`` dataclass in ``agents/*.py``."""
    classes = _all_config_classes()
    agents = [entry for entry in registry() if entry[1] in classes]
    if not agents:
        agents = [(name.removesuffix("Config").lower(), name, classes[name]["doc"].split("\n")[0])
                  for name in classes if name.endswith("Config")]
    return agents


def _fields_table(cls: dict, classes: dict, prefix: str = "") -> str:
    out = []
    for base in cls["bases"]:  # fields inherited from another config dataclass come first
        if base in classes:
            out.append(_fields_table(classes[base], classes, prefix))
    rows = []
    for entry in cls["fields"]:
        if entry[0] == "section":
            rows.append(f"| **{text(entry[1])}** | | | |\n")
        elif entry[0] == "note":
            rows.append(f"| | | | {text(entry[1])} |\n")
        else:
            _kind, name, annotation, default, comment = entry
            rows.append(f"| {code(prefix + name)} | {code(annotation)} | "
                        f"{code(default) if default is not None else '(required)'} | {text(comment)} |\n")
    if rows:
        out.append("| field | type | default | what it is |\n|---|---|---|---|\n" + "".join(rows))
    return "\n".join(out)


def _source_link(cls: dict) -> str:
    rel = cls["path"].relative_to(ROOT).as_posix()
    return f"`{rel}`, line {cls['line']}"


def agents_page() -> str:
    classes = _all_config_classes()
    agents = agents_list()
    out = [GENERATED, "# Agent settings\n\n",
           "Every field of every agent's config, with its default and the comment written beside it in the "
           "source, read from the agent files without importing them. Any field can be set with "
           "`--set KEY=VALUE` (or `--set agent.KEY=VALUE`) on `mqe train`, `mqe config` and `mqe sweep`, or in "
           "`mqe.config.make_config(..., overrides={...})`. See [how settings are resolved](../settings.md).\n\n",
           "| agent | config | summary |\n|---|---|---|\n"]
    for name, config, summary in agents:
        out.append(f"| [`{name}`](#{name}) | `{config}` | {text(summary)} |\n")
    for name, config, _summary in agents:
        cls = classes[config]
        out.append(f"\n## `{name}` {{ #{name} }}\n\n`{config}` in {_source_link(cls)}.")
        if cls["doc"]:
            out.append(f" {text(cls['doc'])}")
        out.append("\n\n" + _fields_table(cls, classes) + "\n")
    train = config_classes(PACKAGE / "config.py").get("TrainConfig")
    if train:
        out.append("\n## Training settings (`train.*`) { #train }\n\n"
                   f"`TrainConfig` in {_source_link(train)}. {text(train['doc'])} Shared by every agent; "
                   "set them as `--set train.KEY=VALUE`.\n\n")
        out.append(_fields_table(train, {}, prefix="train.") + "\n")
    return "".join(out)


# ------------------------------------------------------------------------------------------------ presets


def _value(value) -> str:
    return code(json.dumps(value) if not isinstance(value, str) else value)


def _settings_table(settings: dict, source: str = "") -> str:
    if not settings:
        return "(none)\n"
    rows = "".join(f"| {code(k)} | {_value(v)} |\n" for k, v in settings.items())
    return "| field | value |\n|---|---|\n" + rows


def presets_page() -> str:
    out = [GENERATED, "# Presets and per-dataset settings\n\n",
           "Hyperparameters from the papers, kept as data in the package and printed here from it. "
           "A preset sets config fields; an agent's per-dataset settings follow the dataset's name; "
           "`--set` overrides both. Every value names its source. "
           "See [how settings are resolved](../settings.md) for the order.\n\n"]
    for path in sorted((PACKAGE / "presets").glob("*.json")):
        data = json.loads(path.read_text())
        rel = path.relative_to(ROOT).as_posix()
        out.append(f"File: `{rel}`.")
        if data.get("_comment"):
            out.append(f" {text(data['_comment'])}")
        out.append("\n\n")
        presets = data.get("presets", {})
        if presets:
            out.append("## Presets\n\n| preset | steps | what it is |\n|---|---|---|\n")
            for name, entry in presets.items():
                steps = entry.get("train", {}).get("steps", "")
                first = entry.get("description", "").split(". ")[0]
                out.append(f"| [`{name}`](#preset-{name}) | {steps} | {text(first)} |\n")
            for name, entry in presets.items():
                out.append(f"\n### `{name}` {{ #preset-{name} }}\n\n{text(entry.get('description', ''))}\n\n")
                flags = []
                if entry.get("alpha_from_dataset"):
                    flags.append("MQE's BC coefficient α comes from the dataset's name "
                                 "([Table 3 patterns](#alpha-by-dataset))")
                if entry.get("dataset_overrides"):
                    flags.append("every agent gets its [per-dataset settings](#per-dataset-settings)")
                if flags:
                    out.append("With this preset " + "; ".join(flags) + ".\n\n")
                if entry.get("train"):
                    out.append("Training (`train.*`):\n\n" + _settings_table(entry["train"]) + "\n")
                if entry.get("agent"):
                    out.append("Agent (MQE, and any agent without its own entry below):\n\n"
                               + _settings_table(entry["agent"]) + "\n")
                for agent, settings in entry.get("agents", {}).items():
                    out.append(f"Agent `{agent}`:\n\n" + _settings_table(settings) + "\n")
        alphas = data.get("alpha_by_dataset")
        if alphas:
            out.append("\n## MQE's α by dataset { #alpha-by-dataset }\n\n"
                       "The MQE paper's Table 3: the first pattern that matches the dataset's name wins.\n\n"
                       "| dataset pattern | α |\n|---|---|\n")
            out.extend(f"| {code(pattern)} | {alpha} |\n" for pattern, alpha in alphas)
        overrides = data.get("dataset_overrides")
        if overrides:
            out.append("\n## Per-dataset settings { #per-dataset-settings }\n\n")
            if isinstance(overrides.get("_comment"), str):
                out.append(text(overrides["_comment"]) + "\n\n")
            out.append("For each agent, in order; when several patterns match a name, later entries win.\n")
            for agent, entries in overrides.items():
                if agent.startswith("_"):
                    continue
                out.append(f"\n### `{agent}` {{ #overrides-{agent} }}\n\n| pattern | settings | source |\n|---|---|---|\n")
                for entry in entries:
                    settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry["set"].items())
                    out.append(f"| {code(entry['match'])} | {code(settings)} | {text(entry.get('source', ''))} |\n")
    return "".join(out)


# -------------------------------------------------------------------------------------------------- API


def api_modules() -> list[str]:
    """Every public module of the package (no ``_private`` parts, no ``__main__``; folders without an
    ``__init__.py`` are not packages and are left out), in path order."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folders = path.relative_to(PACKAGE).parents
        if not all((PACKAGE / folder / "__init__.py").is_file() for folder in folders):
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts):
            continue
        modules.append(".".join(parts))
    return sorted(set(modules), key=lambda m: (m.count(".") > 1, m))


def api_page(module: str) -> str:
    return (f"{GENERATED}# `{module}`\n\n"
            f"::: {module}\n")


# ---------------------------------------------------------------------------------------- the import map

# The rooms of the architecture page. The core is the model and its training; every other room is a
# subpackage or a top-level module named after it. A module not named here belongs to the core if it is a
# top-level module, else to its subpackage.
CORE = ("config", "agents", "networks", "losses", "quasimetric", "sampling", "train",
        "kernels", "checkpoint", "logger", "io", "errors", "provenance", "protocol", "api", "parallel", "presets",
        "settings")
ROOM_OF_MODULE = {"mqe.__main__": "cli", "mqe": "core"}


def room_of(module: str) -> str:
    if module in ROOM_OF_MODULE:
        return ROOM_OF_MODULE[module]
    top = module.split(".")[1]
    return "core" if top in CORE else top


def import_edges() -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
    """(room, room it imports) -> [(module, imported module, lazy)], read with ``ast`` from ``src/mqe``;
    ``lazy`` marks an import inside a function (it runs only when called)."""
    edges: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name != "mqe" and not name.startswith("mqe."):
                    continue
                a, b = room_of(module), room_of(name)
                if a != b:
                    edges.setdefault((a, b), []).append((module, name, id(node) not in top_level))
    return edges


def imports_page() -> str:
    edges = import_edges()
    rooms = sorted({r for pair in edges for r in pair}, key=lambda r: (r != "core", r != "cli", r))
    out = [GENERATED, "# Import map\n\n",
           "Which room imports which, read from the source with `ast` at build time "
           "(see [architecture](../architecture.md) for the rooms and the rule). A row is the importing room, "
           "a column the imported one; a number counts the import statements between them.\n\n"]
    out.append("| imports → | " + " | ".join(f"`{r}`" for r in rooms) + " |\n|---|" + "---|" * len(rooms) + "\n")
    for a in rooms:
        cells = [str(len(edges[(a, b)])) if (a, b) in edges else "" for b in rooms]
        out.append(f"| `{a}` | " + " | ".join(cells) + " |\n")
    upward = {pair: found for pair, found in edges.items() if pair[0] == "core"}
    out.append("\n## Imports from the core into other rooms { #from-the-core }\n\n")
    if not upward:
        out.append("None: the core imports no other room.\n")
    else:
        out.append("The rule says the core imports no other room; these imports do "
                   "(*lazy*: inside a function, so it runs only when that function is called).\n\n"
                   "| core module | imports | when |\n|---|---|---|\n")
        for (_a, _b), found in sorted(upward.items()):
            for module, name, lazy in sorted(set(found)):
                out.append(f"| `{module}` | `{name}` | {'lazy' if lazy else 'at import'} |\n")
    out.append("\n## Every cross-room import { #every-import }\n")
    for (a, b), found in sorted(edges.items()):
        out.append(f"\n### `{a}` → `{b}` {{ #{a}-{b} }}\n\n")
        out.extend(f"- `{m}` → `{n}`{' (lazy)' if lazy else ''}\n" for m, n, lazy in sorted(set(found)))
    return "".join(out)

if __name__ == "__main__":
    sys.path.insert(0, str(SRC))
    pages = {"cli": cli_page, "agents": agents_page, "presets": presets_page, "imports": imports_page,
             "api": lambda: "\n".join(api_modules())}
    print(pages[sys.argv[1] if len(sys.argv) > 1 else "cli"]())
