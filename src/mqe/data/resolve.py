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
from typing import Callable

from mqe.errors import ConfigError, MQEError

ENV_VAR = "MQE_DATASET_DIR"
OGBENCH_CACHE = os.path.join("~", ".ogbench", "data")


class DatasetNotFound(MQEError, FileNotFoundError):
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


def is_file(dataset: str) -> bool:
    """``--dataset`` names a file (a path or an .npz), not a dataset name."""
    return dataset.endswith(".npz") or os.path.sep in dataset


def check_known(name: str, flag: str) -> None:
    """Raises a ConfigError for a name we do not know, with the closest known names (or all of them)."""
    from mqe.data.names import is_known, known_names_text, suggestions

    if is_known(name):
        return
    close = suggestions(name)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(f"{flag} {name!r} is not a dataset name we know.{hint} The known names are:\n"
                      f"{known_names_text()}\nFor your own data, pass the path of a .npz file (with --env NAME "
                      "to evaluate it on an OGBench environment)")


def resolve_training_file(dataset: str, env: str | None = None, dataset_dir: str | None = None, *,
                          download: bool = True, progress: bool = True,
                          log: Callable[[str], None] = print) -> tuple[str, str]:
    """(training .npz path, evaluation environment name or "") for ``--dataset`` and ``--env``.

    ``dataset`` is a file path, or a known dataset name (found locally, downloaded, or for point mazes
    generated). The environment is ``env``, else the dataset's name when it is a known one (a file named
    like ``mqe generate`` names them counts)."""
    from mqe.data.names import is_known

    if env:
        check_known(env, "--env")
    if is_file(dataset):
        base = os.path.basename(dataset).removesuffix(".npz")
        found_env = env or (base if is_known(base) else "")
        if found_env and not env:
            log(f"{dataset}: named like the OGBench dataset {base}; evaluating on it and using its "
                "settings (--env NAME to choose another)")
        return dataset, found_env
    if not is_known(dataset):
        found = find_dataset(dataset, dataset_dir)
        if found:  # a user's own file in a dataset directory, under its own name
            return found[0], env or ""
        check_known(dataset, "--dataset")
    env = env or dataset
    try:
        return resolve_dataset(dataset, dataset_dir, download=download)[0], env
    except DatasetNotFound as missing:
        # Only point mazes are generated on the spot (minutes); ant and manipulation sets take from
        # minutes to hours, so the error names the `mqe generate` command instead.
        from mqe.data.generate import GenerationError, recipe_for

        if not dataset.startswith("pointmaze-"):
            raise missing from None
        try:
            recipe_for(dataset)
        except GenerationError:
            raise missing from None
    from mqe.data.generate import generate

    target = search_dirs(dataset_dir)[0]
    log(f"{dataset}: not found locally or online; generating it with OGBench's recipe into {target}")
    train_path, _, stats = generate(dataset, target, seed=0, workers=os.cpu_count() or 1, progress=progress)
    log("generated: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return train_path, env
