"""Tests of the parity harness's own logic: the configuration mapping's check and the summary's statistics.

Run: python -m pytest benchmarks/parity/test_parity.py -p no:xdist -o addopts=""
Needs neither the reference code nor its environment (nor mqe): synthetic configs and result files only.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import parity_mapping as pm  # noqa: E402
import run  # noqa: E402
import summarize as sm  # noqa: E402

TABLE = {
    "toy": {
        "reference": "ogbench", "module": "agents.toy", "class": "ToyAgent",
        "keys": {
            "lr": {"ours": ["agent.learning_rate"]},
            "hidden_dims": {"ours": ["agent.value_hidden_dims", "agent.dynamics_hidden_dims"]},
            "const_std": {"ours": ["agent.policy_std"], "map": {"1.0": True}},
            "use_iqe": {"ours": ["agent.quasimetric"], "map": {"mrn": False, "iqe": True}},
            "actor_p_trajgoal": {"ours": ["agent.actor_p_randomgoal"], "transform": "one_minus"},
            "actor_p_randomgoal": {"ours": ["agent.actor_p_randomgoal"]},
            "value_p_randomgoal": {"fixed": 1.0, "why": "hard-coded in ours"},
            "dropout": {"unread": "never read"},
        },
        "code": [{"ours": "agent.ensemble_size", "value": 2, "why": "ensemblize(MLP, 2)"}],
    }
}
OURS = {"agent": {"learning_rate": 3e-4, "value_hidden_dims": [256, 256], "dynamics_hidden_dims": [256, 256],
                  "policy_std": 1.0, "quasimetric": "mrn", "actor_p_randomgoal": 0.5, "ensemble_size": 2}}
REF = {"lr": 0.0003, "hidden_dims": (256, 256), "const_std": True, "use_iqe": False, "actor_p_trajgoal": 0.5,
       "actor_p_randomgoal": 0.5, "value_p_randomgoal": 1.0, "dropout": 0.1}


def test_flags_from_ours():
    flags = pm.reference_flags("toy", OURS, TABLE)
    assert flags == {"lr": 3e-4, "hidden_dims": [256, 256], "const_std": True, "use_iqe": False,
                     "actor_p_trajgoal": 0.5, "actor_p_randomgoal": 0.5}


def test_check_passes_and_records_every_key():
    rows = pm.check("toy", REF, OURS, TABLE)
    assert {r["key"] for r in rows} == set(REF) | {"agent.ensemble_size"}


@pytest.mark.parametrize("key, value", [("lr", 1e-3), ("hidden_dims", (512, 512)), ("const_std", False),
                                        ("actor_p_trajgoal", 1.0), ("value_p_randomgoal", 0.0)])
def test_a_reference_value_that_differs_stops_naming_the_key(key, value):
    ref = {**REF, key: value}
    with pytest.raises(pm.MappingError) as err:
        pm.check("toy", ref, OURS, TABLE)
    assert err.value.key == key and key in str(err.value)


def test_a_reference_key_without_an_entry_stops():
    with pytest.raises(pm.MappingError) as err:
        pm.check("toy", {**REF, "new_flag": 3}, OURS, TABLE)
    assert err.value.key == "new_flag"


def test_an_entry_the_reference_lacks_stops():
    ref = dict(REF)
    del ref["dropout"]
    with pytest.raises(pm.MappingError) as err:
        pm.check("toy", ref, OURS, TABLE)
    assert err.value.key == "dropout"


def test_our_fields_for_one_key_must_agree():
    ours = copy.deepcopy(OURS)
    ours["agent"]["dynamics_hidden_dims"] = [512, 512]
    with pytest.raises(pm.MappingError) as err:
        pm.reference_flags("toy", ours, TABLE)
    assert err.value.key == "hidden_dims" and "dynamics_hidden_dims" in str(err.value)


def test_missing_field_of_ours_and_unmapped_value_stop():
    ours = copy.deepcopy(OURS)
    del ours["agent"]["learning_rate"]
    with pytest.raises(pm.MappingError, match="learning_rate"):
        pm.check("toy", REF, ours, TABLE)
    ours = copy.deepcopy(OURS)
    ours["agent"]["policy_std"] = 0.5  # no constant-std equivalent
    with pytest.raises(pm.MappingError, match="const_std"):
        pm.reference_flags("toy", ours, TABLE)


def test_a_code_constant_that_differs_stops():
    ours = copy.deepcopy(OURS)
    ours["agent"]["ensemble_size"] = 4
    with pytest.raises(pm.MappingError) as err:
        pm.check("toy", REF, ours, TABLE)
    assert err.value.key == "agent.ensemble_size"


def test_value_comparison():
    assert pm.same((256, 256), [256, 256]) and pm.same(1, 1.0) and pm.same(None, None)
    assert not pm.same(True, 1.0) and not pm.same([256], [256, 256]) and not pm.same("mrn", "iqe")


def test_the_shipped_table_is_well_formed():
    table = pm.load_mapping()
    for agent in ("mqe", "qrl", "gciql", "hiql"):
        spec = table[agent]
        assert spec["reference"] in run.REF_IMPLS
        for key, entry in spec["keys"].items():
            if "ours" in entry:
                assert all(f.startswith("agent.") for f in entry["ours"]), key
            if "map" in entry:
                assert entry["map"], key


def test_rows_name_mapped_agents_and_existing_presets():
    table = pm.load_mapping()
    rows = run.load_rows()["rows"]
    assert {(r["agent"], r["dataset"]) for r in rows} >= {("mqe", "pointmaze-large-stitch-v0"),
                                                          ("qrl", "pointmaze-large-stitch-v0"),
                                                          ("gciql", "pointmaze-large-stitch-v0"),
                                                          ("hiql", "antmaze-large-navigate-v0")}
    for r in rows:
        assert r["agent"] in table and r["steps"] > 0 and r["episodes"] >= 10 and len(r["cross_eval_seeds"]) >= 2


def test_eval_steps_are_the_papers_three_points():
    assert run.eval_steps(30000) == [24000, 27000, 30000]
    assert run.eval_steps(1000) == [800, 900, 1000]
    assert run.eval_steps(200) == [200]


# ---------------------------------------------------------------- statistics


def test_mean_se():
    m, se = sm.mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert math.isnan(sm.mean_se([1.0])[1]) and math.isnan(sm.mean_se([])[0])


def test_welch_against_a_hand_computation():
    a, b = [47.0, 52.0, 40.0, 49.0], [38.0, 45.0, 41.0, 43.0]
    ma, sa = sm.mean_se(a)
    mb, sb = sm.mean_se(b)
    se = math.sqrt(sa ** 2 + sb ** 2)
    df = se ** 4 / (sa ** 4 / 3 + sb ** 4 / 3)
    res = sm.welch(a, b)
    assert res["diff"] == pytest.approx(ma - mb)
    assert res["df"] == pytest.approx(df)
    assert res["t"] == pytest.approx((ma - mb) / se)
    from scipy import stats

    half = stats.t.ppf(0.975, df) * se
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ma - mb - half, ma - mb + half))
    assert res["p"] == pytest.approx(2 * stats.t.sf(abs(res["t"]), df))
    # the interval excludes 0 exactly when p < 0.05
    assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p"] < 0.05)


def test_welch_degenerate_cases():
    assert math.isnan(sm.welch([1.0], [2.0, 3.0])["p"])
    same = sm.welch([0.0, 0.0], [0.0, 0.0])
    assert same["diff"] == 0 and same["p"] == 1.0


def _result(side, seed, overall_by_point, tasks, sha="abc", rate=10.0):
    evals = {str(p): {**{f"task{i + 1}": t for i, t in enumerate(tasks)}, "overall": o}
             for p, o in overall_by_point.items()}
    final = run.final_profile(evals)
    return {"agent": "mqe", "dataset": "toy-v0", "side": side, "seed": seed, "steps": 100, "episodes_per_task": 10,
            "evals": evals, "final": final, "updates_per_second": rate, "data_sha256": sha, "command": ["x"]}


def test_summary_from_result_files(tmp_path):
    d = tmp_path / "toy-v0" / "mqe"
    d.mkdir(parents=True)
    for seed, (o, r) in enumerate([(0.4, 0.3), (0.5, 0.2), (0.6, 0.4)]):
        (d / f"ours-s{seed}.json").write_text(json.dumps(_result("ours", seed, {80: o, 90: o, 100: o}, [o] * 5, rate=30.0)))
        (d / f"ref-s{seed}.json").write_text(json.dumps(_result("ref", seed, {80: r, 90: r, 100: r}, [r] * 5, rate=10.0)))
    (d / "cross-ours-by-ref-s0.json").write_text(json.dumps({"overall": 0.35, "task1": 0.35}))
    runs = sm.load_runs(str(tmp_path))
    row = sm.summarize_row("toy-v0", "mqe", runs[("toy-v0", "mqe")])
    assert row["sides"]["ours"]["mean"] == pytest.approx(50.0) and row["sides"]["ref"]["mean"] == pytest.approx(30.0)
    assert row["difference"]["diff"] == pytest.approx(20.0)
    assert row["speed_ratio_ours_to_ref"] == pytest.approx(3.0)
    assert row["same_data"] and row["sides"]["ours"]["per_task"]["task1"] == pytest.approx(50.0)
    assert row["cross"][0]["score"] == pytest.approx(35.0) and row["cross"][0]["own_evaluator_score"] == pytest.approx(40.0)
    text = sm.markdown([row])
    assert "| toy-v0 | mqe |" in text and "3.00×" in text


def test_final_profile_averages_the_points():
    evals = {"80": {"task1": 0.2, "overall": 0.2}, "90": {"task1": 0.4, "overall": 0.4},
             "100": {"task1": 0.6, "overall": 0.6}}
    assert run.final_profile(evals) == pytest.approx({"task1": 0.4, "overall": 0.4})
