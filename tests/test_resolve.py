"""Dataset resolution by name: --dataset-dir, then MQE_DATASET_DIR, then OGBench's cache; else advice."""

import pytest

from mqe.data.resolve import ENV_VAR, DatasetNotFound, resolve_dataset, search_dirs

NAME = "pointmaze-medium-navigate-v0"


def _touch(directory, name=NAME):
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-val"):
        (directory / f"{name}{suffix}.npz").write_bytes(b"")


def test_search_order(tmp_path, monkeypatch):
    flag, env = tmp_path / "flag", tmp_path / "env"
    monkeypatch.setenv(ENV_VAR, str(env))
    assert search_dirs(str(flag))[:2] == [str(flag), str(env)]
    _touch(env)
    assert resolve_dataset(NAME, str(flag), download=False)[0] == str(env / f"{NAME}.npz")
    _touch(flag)
    assert resolve_dataset(NAME, str(flag), download=False)[0] == str(flag / f"{NAME}.npz")


def test_missing_dataset_gives_the_generate_command(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / f"{NAME}.npz").write_bytes(b"")  # the -val file is missing
    with pytest.raises(DatasetNotFound) as info:
        resolve_dataset(NAME, str(tmp_path / "d"), download=False)
    assert f"mqe generate {NAME} --dataset-dir {tmp_path / 'd'}" in str(info.value)
