"""Finding an OGBench dataset by name: local directories first, then OGBench's download, then advice.

Search order for ``<name>.npz`` and ``<name>-val.npz``:
  1. ``dataset_dir`` (``--dataset-dir``),
  2. the directory in the ``MQE_DATASET_DIR`` environment variable,
  3. OGBench's cache directory (``~/.ogbench/data``).
If no directory holds both files, OGBench's own download is tried (it works for users who are online);
if that fails, the error gives the exact ``mqe generate`` command that makes the files offline.
"""

from __future__ import annotations

import os

ENV_VAR = "MQE_DATASET_DIR"
OGBENCH_CACHE = os.path.join("~", ".ogbench", "data")


class DatasetNotFound(FileNotFoundError):
    pass


def search_dirs(dataset_dir: str | None = None) -> list[str]:
    dirs = [dataset_dir, os.environ.get(ENV_VAR), OGBENCH_CACHE]
    out: list[str] = []
    for d in dirs:
        if d:
            d = os.path.abspath(os.path.expanduser(d))
            if d not in out:
                out.append(d)
    return out


def dataset_files(directory: str, name: str) -> tuple[str, str]:
    return os.path.join(directory, f"{name}.npz"), os.path.join(directory, f"{name}-val.npz")


def find_dataset(name: str, dataset_dir: str | None = None) -> tuple[str, str] | None:
    for directory in search_dirs(dataset_dir):
        train, val = dataset_files(directory, name)
        if os.path.isfile(train) and os.path.isfile(val):
            return train, val
    return None


def generate_command(name: str, dataset_dir: str | None = None) -> str:
    target = search_dirs(dataset_dir)[0]
    return f"mqe generate {name} --dataset-dir {target}"


def resolve_dataset(name: str, dataset_dir: str | None = None, download: bool = True) -> tuple[str, str]:
    """(train, val) paths for a dataset name; raises DatasetNotFound with the command to generate it."""
    found = find_dataset(name, dataset_dir)
    if found:
        return found
    target = search_dirs(dataset_dir)[0]
    reason = "download disabled"
    if download:
        try:
            import ogbench

            os.makedirs(target, exist_ok=True)
            ogbench.download_datasets([name], target)
            found = find_dataset(name, target)
            if found:
                return found
            reason = "OGBench's download finished without writing both files"
        except Exception as exc:  # the server is often unreachable; any failure leads to the advice
            reason = f"OGBench's download failed ({type(exc).__name__}: {exc})"
    searched = ", ".join(search_dirs(dataset_dir))
    from mqe.data.generate import GenerationError, recipe_for

    try:
        recipe_for(name)
        advice = f"Generate it offline with:\n    {generate_command(name, dataset_dir)}"
    except GenerationError as exc:  # a name we know but cannot make here: say why, not a failing command
        advice = f"It cannot be generated here: {exc}"
    raise DatasetNotFound(
        f"dataset {name!r}: {name}.npz and {name}-val.npz are in none of [{searched}]; {reason}. {advice}"
    )
