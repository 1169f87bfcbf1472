"""The graph planner on hand-made quasimetrics whose shortest paths are known, its policy wrapper, and
its settings' errors. (The ground truth with learned distances is in test_ground_truth.py.)"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from mqe.planning import GraphPlanner, PlannedPolicy, PlannerConfig, PlannerError, build_planner, select_landmarks
from mqe.planning.graph import StepsFunctions, edge_cost, shortest_paths


def line_quasimetric(uphill: float = 1.0, downhill: float = 3.0) -> StepsFunctions:
    """States are points x on a line: going right costs ``uphill`` per unit, going left ``downhill``
    (asymmetric; the triangle inequality holds with equality along the line)."""
    def steps(a, b):
        delta = b[:, 0] - a[:, 0]
        return jnp.where(delta >= 0, uphill * delta, -downhill * delta)
    identity = lambda x: x
    return StepsFunctions(identity, identity, steps, "test")


def test_floyd_warshall_matches_the_known_shortest_paths():
    inf = math.inf
    cost = jnp.array([[0, 4, inf, 10],
                      [inf, 0, 1, inf],
                      [inf, inf, 0, 2],
                      [1, inf, inf, 0]], jnp.float32)
    expected = np.array([[0, 4, 5, 7],     # 0 -> 1 -> 2 -> 3 (7) beats the direct edge (10)
                         [4, 0, 1, 3],     # 1 -> 2 -> 3 -> 0
                         [3, 7, 0, 2],
                         [1, 5, 6, 0]], np.float32)
    np.testing.assert_array_equal(np.asarray(shortest_paths(cost)), expected)


def test_long_jumps_are_split_into_the_known_shortest_path():
    # Landmarks at 2, 4, 6, 8 (and a decoy at 20). From 0 to 10 with c(d) = d^2: direct 100, via the
    # chain 4 + 4 * 4 = 20, so the first waypoint is the landmark at 2.
    landmarks = np.array([[2.0], [4.0], [6.0], [8.0], [20.0]], np.float32)
    config = PlannerConfig(edge_power=2.0, max_edge=math.inf, goal_radius=0.0, skip_radius=0.0)
    planner = GraphPlanner(line_quasimetric(), landmarks, config)
    target, use_goal = planner.targets(np.array([[0.0], [0.0]]), np.array([[10.0], [5.0]]))
    assert not use_goal[0] and target[0, 0] == 2.0
    # 0 -> 5: direct 25; via 2 and 4: 4 + 4 + 1 = 9 -> first waypoint 2 as well.
    assert not use_goal[1] and target[1, 0] == 2.0
    # Going left costs 3 per unit: from 9 to 1 the cheapest route still steps through 8, 6, 4, 2.
    target, use_goal = planner.targets(np.array([[9.0]]), np.array([[1.0]]))
    assert not use_goal[0] and target[0, 0] == 8.0
    # The shortest-path matrix is the chain's: 2 -> 8 costs 3 hops of 2 steps, c = 3 * 4.
    assert float(planner.paths[0, 3]) == pytest.approx(12.0)
    assert float(planner.paths[3, 0]) == pytest.approx(3 * 36.0)  # leftwards: 3 hops of 6 steps each


def test_a_goal_reachable_without_detour_is_the_target_itself():
    landmarks = np.array([[2.0], [4.0], [6.0], [8.0]], np.float32)
    # Raw distances (edge_power 1): along a line no route is shorter than the direct one.
    planner = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=1.0, goal_radius=0.0, skip_radius=0.0))
    target, use_goal = planner.targets(np.array([[0.0], [7.0]]), np.array([[10.0], [3.0]]))
    assert use_goal.all() and np.array_equal(target, [[10.0], [3.0]])
    # Within goal_radius the goal itself, whatever the costs.
    planner = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=2.0, goal_radius=5.0, skip_radius=0.0))
    target, use_goal = planner.targets(np.array([[0.0], [0.0]]), np.array([[4.0], [10.0]]))
    assert use_goal.tolist() == [True, False] and target[0, 0] == 4.0 and target[1, 0] == 2.0


def test_a_landmark_the_agent_is_at_is_not_its_next_waypoint():
    # At x = 2, the landmark at 2 ties with the one at 4 as the route's first node (costs 0 + 16 and
    # 4 + 12) and, picked, would hold the agent there; skip_radius passes it over.
    landmarks = np.array([[2.0], [4.0], [6.0], [8.0]], np.float32)
    held = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=2.0, goal_radius=0.0, skip_radius=0.0))
    moving = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=2.0, goal_radius=0.0, skip_radius=1.0))
    state, goal = np.array([[2.0]]), np.array([[10.0]])
    assert held.targets(state, goal)[0][0, 0] == 2.0
    assert moving.targets(state, goal)[0][0, 0] == 4.0


def test_edges_beyond_max_edge_are_dropped():
    assert float(edge_cost(jnp.array(6.0), 1.0, 5.0)) == math.inf
    landmarks = np.array([[3.0], [6.0], [30.0]], np.float32)
    planner = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=1.0, max_edge=5.0, goal_radius=0, skip_radius=0.0))
    assert float(planner.paths[0, 2]) == math.inf  # 6 -> 30 is 24 steps: no edge, no route
    # From 0 to 9: the direct edge (9 steps) is dropped; 0 -> 3 -> 6 -> 9 is the route.
    target, use_goal = planner.targets(np.array([[0.0]]), np.array([[9.0]]))
    assert not use_goal[0] and target[0, 0] == 3.0
    # No finite route at all (0 -> 100): the policy gets the goal itself.
    _, use_goal = planner.targets(np.array([[0.0]]), np.array([[100.0]]))
    assert use_goal[0]


def test_the_graph_summary_says_how_many_pairs_are_joined():
    # Landmarks 3, 6, 30 with max_edge 5: edges 3 -> 6 and 6 -> 3 (3 and 9 steps: only the first is
    # within 5), none to or from 30. Ordered pairs: 6; edges 1 (3 -> 6); routes 1.
    landmarks = np.array([[3.0], [6.0], [30.0]], np.float32)
    planner = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=1.0, max_edge=5.0, goal_radius=0, skip_radius=0.0))
    summary = planner.graph_summary()
    assert summary["edge_fraction"] == pytest.approx(1 / 6) and summary["route_fraction"] == pytest.approx(1 / 6)
    # nearest other landmark: 3 -> 6 (3 steps), 6 -> 3 (9), 30 -> 6 (72): median 9; all pairs
    # 3, 27, 9, 24, 81, 72: median (24 + 27) / 2
    assert summary["nearest_landmark_steps_median"] == pytest.approx(9.0)
    assert summary["landmark_pair_steps_median"] == pytest.approx(25.5)


def test_a_poorly_joined_graph_is_pointed_out(capsys):
    """MQE at 30k updates on pointmaze-giant-stitch with 500 landmarks joined 22% of pairs, and every episode
    silently fell back to the goal itself; the evaluation now says so and what to change."""
    from mqe.driver import cost_text

    landmarks = np.array([[3.0], [6.0], [30.0]], np.float32)
    stats = {"episodes": 4, "seconds": 1.0, "episodes_per_second": 4.0}
    for max_edge, warned in ((5.0, True), (100.0, False)):
        planner = GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(max_edge=max_edge))
        print(cost_text({**stats, "graph": planner.graph_summary()}))
        out = capsys.readouterr().out
        assert ("more landmarks (--landmarks" in out) == warned, out


def test_landmarks_grow_until_the_graph_joins_up():
    """On a line of 40 points one unit apart with max_edge 5 (right: 1 step per unit, left: 3), a few
    uniform landmarks leave gaps no edge spans; K grows by `landmarks` until `connect` of the pairs are
    joined by a route, to the smallest such K, with the landmarks a fixed K of that size draws."""
    pool = np.arange(40, dtype=np.float32)[:, None]
    fns = line_quasimetric()
    base = PlannerConfig(landmarks=4, max_edge=5.0, goal_radius=0.0, skip_radius=0.0, connect=0.9, max_landmarks=40)
    fraction = lambda k: GraphPlanner(fns, select_landmarks(pool, fns, PlannerConfig(landmarks=k, seed=0)),
                                      base).graph_summary()["route_fraction"]
    assert fraction(4) < 0.9  # the start is in pieces
    planner = build_planner(fns, pool, base)
    k = planner.graph_summary()["landmarks"]
    assert fraction(k) >= 0.9 and all(fraction(j) < 0.9 for j in range(4, k, 4)), k
    assert k % 4 == 0 and planner.config.landmarks == k
    np.testing.assert_array_equal(planner.landmarks, select_landmarks(pool, fns, PlannerConfig(landmarks=k)))
    # connect=0 keeps K; max_landmarks stops the growth where the graph is still in pieces
    assert build_planner(fns, pool, PlannerConfig(**{**base.__dict__, "connect": 0.0})).graph_summary()["landmarks"] == 4
    capped = build_planner(fns, pool, PlannerConfig(**{**base.__dict__, "max_landmarks": 8})).graph_summary()
    assert capped["landmarks"] == 8 and capped["route_fraction"] < 0.9


def test_planned_policy_replans_every_n_steps_and_on_new_goals_per_block():
    landmarks = np.array([[2.0], [4.0], [6.0], [8.0]], np.float32)
    planners = [GraphPlanner(line_quasimetric(), landmarks, PlannerConfig(edge_power=2.0, goal_radius=0.0, skip_radius=0.0))
                for _ in range(2)]
    seen = []
    policy = PlannedPolicy(lambda obs, targets: (seen.append(targets.copy()), targets * 0)[1], planners, replan_every=3)
    goals = np.array([[10.0], [10.0], [1.0], [1.0]], np.float32)  # block 0: rows 0-1, block 1: rows 2-3
    obs = np.array([[0.0], [5.0], [9.0], [9.0]], np.float32)
    policy(obs, goals)
    assert seen[-1][:, 0].tolist() == [2.0, 6.0, 8.0, 8.0]
    policy(np.array([[3.0], [5.0], [9.0], [9.0]], np.float32), goals)  # not due: waypoints kept
    assert seen[-1][:, 0].tolist() == [2.0, 6.0, 8.0, 8.0]
    assert policy.replans == 2
    policy(np.array([[3.0], [5.0], [9.0], [9.0]], np.float32), goals)
    policy(np.array([[3.0], [5.0], [9.0], [9.0]], np.float32), goals)  # the 4th call: due (every 3)
    assert seen[-1][:, 0].tolist() == [4.0, 6.0, 8.0, 8.0] and policy.replans == 4
    new_goals = goals.copy()
    new_goals[0] = 7.0  # block 0 gets a new goal: it replans at once, block 1 does not
    policy(np.array([[3.0], [5.0], [9.0], [9.0]], np.float32), new_goals)
    assert policy.replans == 5 and seen[-1][0, 0] == 4.0
    stats = policy.stats()
    assert stats["replans"] == 5 and stats["planning_seconds"] > 0 and 0 <= stats["goal_itself_fraction"] <= 1


@pytest.mark.parametrize("bad, message", [
    ({"landmarks": 0}, "landmarks must be an integer >= 1, got 0"),
    ({"selection": "random"}, "selection must be one of uniform, farthest, got 'random'"),
    ({"edge_power": 0.5}, "edge_power must be >= 1"),
    ({"max_edge": 0.0}, "max_edge must be > 0 steps"),
    ({"goal_radius": -1.0}, "goal_radius must be >= 0 steps"),
    ({"skip_radius": -1.0}, "skip_radius must be >= 0 steps"),
    ({"replan_every": 0}, "replan_every must be an integer >= 1, got 0"),
    ({"connect": 1.5}, "connect must be a fraction in \\[0, 1\\], got 1.5"),
    ({"max_landmarks": 0}, "max_landmarks must be an integer >= 1, got 0"),
])
def test_malformed_settings_get_a_clear_error(bad, message):
    with pytest.raises(PlannerError, match=f"planner: {message}"):
        PlannerConfig(**bad)


def test_planner_overrides_parse_and_name_the_bad_key():
    config = PlannerConfig.from_overrides(["landmarks=64", "edge_power=1.5", "max_edge=inf", "selection=farthest"])
    assert (config.landmarks, config.edge_power, config.max_edge, config.selection) == (64, 1.5, math.inf, "farthest")
    with pytest.raises(PlannerError, match="'landmark=5' is not KEY=VALUE with KEY one of landmarks, selection"):
        PlannerConfig.from_overrides(["landmark=5"])
    with pytest.raises(PlannerError, match="landmarks takes a int, got 'many'"):
        PlannerConfig.from_overrides(["landmarks=many"])


def test_each_setting_gets_its_own_results_folder():
    """A tuning grid on the same checkpoints: the defaults in planner_graph/, other settings named."""
    assert PlannerConfig().folder() == "planner_graph"
    assert PlannerConfig.from_overrides(["max_edge=20", "landmarks=1000"]).folder() == \
        "planner_graph-landmarks=1000,max_edge=20"
    assert PlannerConfig(edge_power=1.5, max_edge=math.inf).folder() == "planner_graph-edge_power=1.5,max_edge=inf"
    assert PlannerConfig(max_edge=50.0).folder() == "planner_graph"  # a default given explicitly
