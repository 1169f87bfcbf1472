"""Several seeds in one program: each seed is its single-seed run (bit for bit on CPU), in its own run
directory, resumable after a kill, evaluated side by side; a run directory has one writer at a time."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import mqe
from processes import kill_at_first_checkpoint
from mqe.cli import main
from mqe.driver import env_evaluator
from mqe.config import ConfigError, make_config, parse_seeds
from mqe.data.dataset import Dataset
from mqe.io import RunDirBusy, RunDirLock
from mqe.train import initial_state, make_train_chunk, stack, train, train_seeds, unstack

# Small networks for every agent (the preset's baseline entries), short chunks, frequent logs.
PRESET = "gridmaze-xy"
SMALL = ["train.updates_per_call=50", "train.log_interval=100", "train.checkpoint_interval=100"]


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data") / "walk.npz")
    rng = np.random.default_rng(0)
    n = 3000
    obs = np.cumsum(rng.normal(size=(n, 3)), axis=0).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[199::200] = True
    Dataset.from_arrays(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), terminals).save_npz(path)
    return path


def _config(agent="mqe", steps=150, seed=0, extra=()):
    return make_config(agent, PRESET, SMALL + [f"train.steps={steps}", f"train.seed={seed}", *extra], dataset="walk")


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _losses(run_dir):
    """The logged metrics, timings aside."""
    with open(os.path.join(run_dir, "train.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in f]


@pytest.mark.parametrize("agent", ["mqe", "hiql"])
def test_seed_k_of_a_group_is_its_single_seed_run_bit_for_bit(walk, tmp_path, agent):
    """On CPU the seeds run one after another inside one program (lax.map): seed k computes exactly
    what it computes alone, so after 150 updates its parameters, keys and logs equal the single run's."""
    dataset = Dataset.load_npz(walk)
    group = train_seeds(_config(agent), dataset, {s: str(tmp_path / f"g{s}") for s in (0, 1, 2)}, progress=False)
    assert [r.seed for r in group] == [0, 1, 2] and all(r.step == 150 for r in group)
    single = train(_config(agent, seed=1), dataset, str(tmp_path / "single1"), progress=False)
    assert _same(group[1].agent.params, single.agent.params)
    assert not _same(group[0].agent.params, group[1].agent.params)  # the seeds really differ
    assert _losses(tmp_path / "g1") == _losses(tmp_path / "single1")
    # each seed's directory is a complete single-seed run: its config, checkpoints, load
    with open(tmp_path / "g2" / "config.json") as f:
        assert json.load(f)["train"]["seed"] == 2
    loaded = mqe.load(str(tmp_path / "g2"))
    assert loaded.step == 150 and _same(loaded.agent.params, group[2].agent.params)


def _seed_states(walk, seeds: int):
    """(config, device data, [(agent, key) at step 0 for seeds 0..seeds-1])."""
    from mqe.sampling import DeviceData

    dataset = Dataset.load_npz(walk)
    config = _config()
    states = [initial_state(dataclasses.replace(config, train=dataclasses.replace(config.train, seed=s)), dataset)
              for s in range(seeds)]
    return config, DeviceData.from_dataset(dataset), states


def test_vmapped_and_per_update_chunks_draw_the_same_batches_and_round_differently(walk):
    """Two other ways to run the seeds' updates against each seed's own scanned chunk:
    - vmap (the accelerator default) batches the seeds into wider kernels;
    - per-update dispatch (image agents on the CPU) runs one compiled program per update and seed.
    The random keys, hence the batches, stay bit-identical. The parameters after two updates agree to
    float32 rounding (the bound below), not necessarily bit for bit: vmap's reductions over the batch
    sum in another order, and programs compiled apart may fuse and round differently."""
    config, data, states = _seed_states(walk, 2)
    sampler = config.agent.sampler()
    alone = [make_train_chunk(sampler, 2)(*states[s], data) for s in range(2)]
    for batching, dispatch in (("vmap", "scan"), ("map", "per_update")):
        _, _, states = _seed_states(walk, 2)  # the chunks donate their inputs
        agents, keys, metrics = make_train_chunk(sampler, 2, 2, batching, dispatch)(
            stack([a for a, _ in states]), stack([k for _, k in states]), data)
        assert np.asarray(agents.step).tolist() == [2, 2]
        for s in range(2):
            assert np.array_equal(np.asarray(keys[s]), np.asarray(alone[s][1]))
            np.testing.assert_allclose(float(metrics["total_loss"][s]), float(alone[s][2]["total_loss"]), rtol=1e-4)
            for x, y in zip(jax.tree.leaves(unstack(agents, s).params), jax.tree.leaves(alone[s][0].params)):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
    with pytest.raises(ConfigError, match="dispatch must be one of"):
        make_train_chunk(sampler, 3, 0, "auto", "loop")


def test_a_killed_group_resumes_to_its_single_seed_runs(walk, tmp_path):
    """`mqe train --seeds 0-1`, SIGKILLed mid-run (a real process) and run again, ends with each seed's
    uninterrupted single-seed parameters, and logs each step once."""
    root = str(tmp_path / "group")
    argv = ["train", "--dataset", walk, "--agent", "mqe", "--preset", PRESET, "--seeds", "0-1", "--run-dir", root,
            "--no-progress",
            *[f"--set={o}" for o in SMALL], "--steps", "300", "--set", "train.checkpoint_interval=50"]
    proc = subprocess.Popen([sys.executable, "-m", "mqe", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_at_first_checkpoint(proc, os.path.join(root, "s1", "checkpoints"))
    at_kill = [mqe.load(os.path.join(root, f"s{s}")).step for s in (0, 1)]
    assert all(0 < step < 300 for step in at_kill), at_kill
    assert main(argv) == 0
    dataset = Dataset.load_npz(walk)
    for s in (0, 1):
        straight = train(_config(steps=300, seed=s, extra=["train.checkpoint_interval=50"]), dataset,
                         str(tmp_path / f"straight{s}"), progress=False)
        assert _same(mqe.load(os.path.join(root, f"s{s}")).agent.params, straight.agent.params)
        rows = [json.loads(line)["step"] for line in open(os.path.join(root, f"s{s}", "train.jsonl"))]
        assert rows == list(range(100, 301, 100))  # each step logged once


def test_seeds_at_different_steps_train_as_separate_programs(walk, tmp_path):
    dataset = Dataset.load_npz(walk)
    train(_config(steps=200, seed=0), dataset, str(tmp_path / "s0"), progress=False)
    results = train_seeds(_config(steps=400), dataset, {0: str(tmp_path / "s0"), 1: str(tmp_path / "s1")},
                          progress=False)
    assert [r.step for r in results] == [400, 400]
    for s, result in enumerate(results):
        alone = train(_config(steps=400, seed=s), dataset, str(tmp_path / f"alone{s}"), progress=False)
        assert _same(result.agent.params, alone.agent.params)


def test_a_second_writer_of_a_run_directory_gets_a_clear_error(walk, tmp_path, capsys):
    run_dir = str(tmp_path / "busy")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from mqe.io import RunDirLock\n"
                               f"with RunDirLock({run_dir!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["train", "--dataset", walk, "--preset", PRESET, "--run-dir", run_dir, "--no-progress", "--steps", "100",
                     *[f"--set={o}" for o in SMALL]])
        err = capsys.readouterr().err
        assert code == 2
        assert f"{run_dir} is in use by another process (pid {holder.pid} on " in err
        assert not os.path.exists(os.path.join(run_dir, "config.json"))
    finally:
        holder.kill()
        holder.wait()
    with RunDirLock(run_dir):  # the OS released the dead holder's lock
        with pytest.raises(RunDirBusy):
            RunDirLock(run_dir).__enter__()


def test_seed_specs():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("2,2,1") == [2, 1]
    for bad in ("3-1", "a", "0-", "-1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "x.npz", "--seed", "1", "--seeds", "0-2", "--bogus"])
    assert main(["train", "--dataset", "x.npz", "--seed", "1", "--seeds", "0-2"]) == 2


def test_seeds_are_evaluated_side_by_side_on_their_own_episodes():
    """One policy call per environment step for all seeds; each seed's episode outcomes equal its own
    single-seed evaluation's."""
    config = make_config("mqe", PRESET, SMALL, env="pointmaze-medium-navigate-v0")
    obs, act = np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)
    from mqe.agents import AGENTS

    agents = [AGENTS["mqe"].agent_class.create(jax.random.PRNGKey(s), obs, act, config.agent) for s in range(3)]
    evaluate = functools.partial(env_evaluator, "pointmaze-medium-navigate-v0", 2, progress=False, workers=0)
    rates, together = evaluate(batching="map")(stack(agents))
    assert together.shape == (3, 5, 2) and len(rates) == 3
    for s, agent in enumerate(agents):
        alone_rates, alone = evaluate()(stack([agent]))
        assert np.array_equal(together[s], alone[0]) and rates[s] == alone_rates[0]


def test_evaluations_can_go_to_their_own_folder(walk, tmp_path):
    """train_seeds(eval_dir=...): a planner's evaluations during training land in RUN/<eval_dir>/, not where
    the report takes the plain policy's; the evaluator receives every seed's agent."""
    seen = []

    def evaluator(agents):
        seen.append(int(np.shape(agents.step)[0]))
        return [{"task1": 0.5, "overall": 0.5}] * seen[-1]

    dirs = {0: str(tmp_path / "s0"), 1: str(tmp_path / "s1")}
    train_seeds(_config(steps=100), Dataset.load_npz(walk), dirs, evaluator=evaluator, eval_steps={100},
                progress=False, eval_dir="planner_graph")
    assert seen == [2]
    for run in dirs.values():
        assert not any(f.startswith("eval_") for f in os.listdir(run))
        with open(os.path.join(run, "planner_graph", "eval_100.json")) as f:
            assert json.load(f) == {"step": 100, "task1": 0.5, "overall": 0.5}


def test_a_run_killed_between_a_checkpoint_and_its_evaluation_evaluates_it_on_resume(walk, tmp_path):
    """The stop of a session once killed a sweep job after its step-27000 checkpoint, before the evaluation
    due there: the resumed run started at 27000 and the 80% point was lost for good. The evaluation now runs
    first on resume, with the checkpoint's agents, and each step is evaluated and logged once."""
    evaluated = []

    class Killed(Exception):
        pass

    def evaluator(agents, kill_at=None):
        step = int(np.asarray(agents.step)[0])
        if step == kill_at:
            raise Killed  # dies after the checkpoint at `step`, before its evaluation
        evaluated.append(step)
        # A number that depends on the parameters, so the resumed evaluation is checked to use the right ones.
        return [{"overall": float(np.asarray(jax.tree.leaves(agents.params)[0])[i].sum())} for i in range(2)]

    config = _config(steps=200, extra=["train.checkpoint_interval=50"])
    dataset = Dataset.load_npz(walk)
    dirs = {0: str(tmp_path / "s0"), 1: str(tmp_path / "s1")}
    with pytest.raises(Killed):
        train_seeds(config, dataset, dirs, evaluator=lambda a: evaluator(a, kill_at=150), eval_steps={100, 150, 200},
                    progress=False)
    assert [mqe.load(d).step for d in dirs.values()] == [150, 150]
    assert not os.path.exists(os.path.join(dirs[0], "eval_150.json"))
    train_seeds(config, dataset, dirs, evaluator=evaluator, eval_steps={100, 150, 200}, progress=False)
    assert evaluated == [100, 150, 200]
    straight = {0: str(tmp_path / "t0"), 1: str(tmp_path / "t1")}
    train_seeds(config, dataset, straight, evaluator=evaluator, eval_steps={100, 150, 200}, progress=False)
    for seed in (0, 1):
        for step in (100, 150, 200):
            with open(os.path.join(dirs[seed], f"eval_{step}.json")) as f, \
                    open(os.path.join(straight[seed], f"eval_{step}.json")) as g:
                assert json.load(f) == json.load(g)  # the same agents were evaluated
        logged = [json.loads(line)["step"] for line in open(os.path.join(dirs[seed], "eval.jsonl"))]
        assert logged == [100, 150, 200]


def test_train_planner_needs_an_evaluation(walk, tmp_path, capsys):
    code = main(["train", "--dataset", walk, "--preset", PRESET, "--steps", "50", *sum((["--set", s] for s in SMALL), []),
                 "--run-dir", str(tmp_path / "r"), "--no-progress", "--planner", "graph"])
    assert code == 2
    assert "--planner acts at evaluation; this run has no evaluation environment" in capsys.readouterr().err
