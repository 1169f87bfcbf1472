"""The documentation site builds with warnings as errors, and its generated reference covers the code.

``mkdocs build --strict`` fails on a broken link or anchor, a page left out of the navigation, or a module
mkdocstrings cannot read; the reference pages are generated from the code at build time
(``docs/hooks/``), so these tests check them against the code itself: every agent and config field,
every command and flag, every preset, every results file.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
API_MODULES = ["mqe.api", "mqe.config", "mqe.train", "mqe.evaluation", "mqe.planning", "mqe.serving.client",
               "mqe.data.dataset", "mqe.losses", "mqe.quasimetric", "mqe.sampling"]


def build(config_file: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_file), "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "site"
    result = build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def page(site: pathlib.Path, name: str) -> str:
    path = site / name
    assert path.is_file(), f"{name} was not built"
    return path.read_text()


def plain(html: str) -> str:
    """The text of a page, tags dropped and entities undone (enough for containment checks)."""
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_guide_pages_and_generated_pages_exist(site):
    for name in ("index.html", "algorithm.html", "settings.html", "runs.html", "data.html", "pixels.html",
                 "evaluation.html", "sweeps.html", "planning.html", "serving.html", "gpus.html", "python-api.html",
                 "architecture.html", "about-the-docs.html", "changelog.html", "results.html",
                 "reference/cli.html", "reference/agents.html", "reference/presets.html", "reference/imports.html"):
        page(site, name)
    for module in API_MODULES:
        text = plain(page(site, f"reference/api/{module}.html"))
        assert module in text


def test_agent_reference_lists_every_agent_and_field(site):
    from mqe.agents import AGENTS
    from mqe.config import TrainConfig

    text = plain(page(site, "reference/agents.html"))
    for name, spec in AGENTS.items():
        start = text.find(f"{spec.config_class.__name__} in src/")
        assert start >= 0, f"no section for {name}"
        end = text.find("Config in src/", start + len(spec.config_class.__name__))
        section = text[start:end if end > 0 else None]
        for field in dataclasses.fields(spec.config_class):
            assert field.name in section, f"{name}: field {field.name} missing from the agent reference"
    for field in dataclasses.fields(TrainConfig):
        assert f"train.{field.name}" in text


def test_cli_reference_lists_every_command_and_flag(site):
    from mqe.cli import build_parser

    text = plain(page(site, "reference/cli.html"))

    def walk(parser, prefix):
        yield prefix, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prefix} {name}")

    commands = list(walk(build_parser(), "mqe"))
    assert len(commands) > 5
    for command, parser in commands:
        assert command in text, f"{command} missing from the CLI reference"
        for action in parser._actions:
            if action.help != argparse.SUPPRESS:
                for option in action.option_strings:
                    assert option in text, f"{command} {option} missing from the CLI reference"


def test_presets_and_results_pages_follow_their_data(site):
    presets = plain(page(site, "reference/presets.html"))
    for path in sorted((ROOT / "src" / "mqe" / "presets").glob("*.json")):
        data = json.loads(path.read_text())
        for name in data.get("presets", {}):
            assert name in presets
        for agent in data.get("dataset_overrides", {}):
            if not agent.startswith("_"):
                assert agent in presets
    results = plain(page(site, "results.html"))
    files = [p for p in (ROOT / "benchmarks" / "results").rglob("*.json")]
    assert files
    for path in files:
        data = json.loads(path.read_text())
        if data.get("schema") == "mqe-results/1":
            assert data["title"] in results, path
            assert data["date"] in results and data["commit"] in results, path
        else:
            assert path.relative_to(ROOT).as_posix() in results, path


def test_site_is_offline_and_equations_are_mathml(site):
    for path in site.rglob("*.html"):
        html = path.read_text()
        external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html)
        assert not external, f"{path.relative_to(site)} loads {external[:3]}"
    algorithm = page(site, "algorithm.html")
    assert algorithm.count("<math") > 20
    assert "arithmatex" not in algorithm, "an equation was left unconverted"
    for function in ("linex_backup_loss", "weighted_pair_mean", "expectile_loss", "gaussian_log_prob",
                     "mrn_distance", "mrn_pairwise", "sample_indices", "critic_loss", "actor_loss"):
        assert function in algorithm, f"the algorithm page does not name {function}"


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The same configuration on a copy of docs/ with a link to a missing page and a missing anchor."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("hooks", "__pycache__"))
    (docs / "broken.md").write_text("# Broken\n\nSee [nothing](no-such-page.md) and "
                                    "[no anchor](algorithm.md#no-such-anchor).\n")
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / h) for h in config["hooks"]]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT / "src")]
    config_file = tmp_path / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config))
    result = build(config_file, tmp_path / "site")
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "no-such-page.md" in log and "no-such-anchor" in log, log[-2000:]
