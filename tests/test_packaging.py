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
    wheel = next(tmp_path.glob("mqe-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mqe/presets/presets.json" in names
    assert {"mqe/experts/ant.npz", "mqe/experts/ant.json"} <= names, "the packaged ant expert"
    sources = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "mqe").rglob("*.py")}
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mqe = mqe.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
