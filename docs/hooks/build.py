"""MkDocs hooks (``hooks:`` in mkdocs.yml): the generated pages and the equations.

- ``on_config``: the API pages go into the navigation, one per module found in ``src/mqe``.
- ``on_files``: the generated pages join the site: ``reference/cli.md``, ``reference/agents.md``,
  ``reference/presets.md``, ``reference/imports.md``, ``reference/api/<module>.md`` (``reference.py``), ``results.md``
  (``results.py``) and ``changelog.md`` (``CHANGELOG.md``).
- ``on_page_content``: LaTeX becomes MathML (``mathml.py``).
"""

from __future__ import annotations

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
if str(ROOT / "src") not in sys.path:
    sys.path.append(str(ROOT / "src"))  # after the installed package and PYTHONPATH

import mathml  # noqa: E402
import reference  # noqa: E402
import results  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

API_NAV_TITLE = "API"


def _api_uri(module: str) -> str:
    return f"reference/api/{module}.md"


def _fill_api_nav(nav, pages) -> bool:
    """Replaces the (empty) ``API`` entry of the navigation with one page per module."""
    for index, item in enumerate(nav or []):
        if isinstance(item, dict):
            (title, value), = item.items()
            if title == API_NAV_TITLE and not value:
                item[title] = pages
                return True
            if isinstance(value, list) and _fill_api_nav(value, pages):
                return True
    return False


def _nav_files(nav) -> set[str]:
    found = set()
    for item in nav or []:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            found |= _nav_files(value)
        elif isinstance(value, str):
            found.add(value)
    return found


def on_config(config, **kwargs):
    pages = [{module: _api_uri(module)} for module in reference.api_modules()]
    _fill_api_nav(config["nav"], pages)
    # A page someone adds to docs/ without adding it to mkdocs.yml still gets a place (under "Project").
    docs = pathlib.Path(config["docs_dir"])
    listed = _nav_files(config["nav"])
    extra = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md")
                   if "hooks" not in p.relative_to(docs).parts and p.relative_to(docs).as_posix() not in listed)
    if extra:
        project = next((item for item in config["nav"] if isinstance(item, dict) and "Project" in item), None)
        if project is None:
            project = {"Project": []}
            config["nav"].append(project)
        project["Project"].extend(extra)
    return config


def on_files(files, config, **kwargs):
    generated = {
        "reference/cli.md": reference.cli_page(),
        "reference/agents.md": reference.agents_page(),
        "reference/presets.md": reference.presets_page(),
        "reference/imports.md": reference.imports_page(),
        "results.md": results.results_page(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
    }
    for module in reference.api_modules():
        generated[_api_uri(module)] = reference.api_page(module)
    for uri, content in generated.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_content(html, page, config, files, **kwargs):
    return mathml.to_mathml(html)
