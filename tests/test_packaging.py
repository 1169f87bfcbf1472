"""The installable package: a built wheel carries every module and the preset data (a non-editable
``pip install .`` on a fresh machine must work, not only the editable install the tests run from)."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_wheel_contains_modules_and_presets(tmp_path):
    # Build from a clean copy: an in-tree build/ directory could carry files from an older build.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True)
    wheel = next(tmp_path.glob("mqe_gcrl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mqe/presets/presets.json" in names
    assert {"mqe/experts/ant.npz", "mqe/experts/ant.json"} <= names, "the packaged ant expert"
    sources = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "mqe").rglob("*.py")}
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mqe = mqe.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize(name)] = version
    return pins


def canonicalize(name):
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def test_locked_set_lies_inside_the_declared_ranges():
    """constraints.txt (what CI and the README install) pins every dependency, and each pin satisfies the
    range pyproject.toml declares, so the lock and the ranges cannot drift apart."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(ROOT / "constraints.txt")
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for r in project["optional-dependencies"]["test"]]
    for req in requirements:
        name = canonicalize(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} is outside {req.specifier}"
        assert req.specifier, f"{req.name} declares no range"
