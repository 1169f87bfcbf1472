"""Test-time graph search over a trained agent's learned distance (no retraining).

Landmarks are K states of the training data. Their directed distance matrix, in environment steps, is
computed once on the device; every edge gets the cost

    c(d) = d ** edge_power,          and c(d) = inf where d > max_edge,

so that with ``edge_power`` > 1 a chain of short hops is cheaper than one long jump of the same total
length: the learned distance is least trustworthy far away (``edge_power`` = 1 and ``max_edge`` = inf
plan on the raw distances). All-pairs shortest path costs S between landmarks come from Floyd-Warshall
(K relaxation rounds of a K x K min-plus update, on the device).

From a state s to a goal g the planner picks the first landmark of the cheapest route

    k* = argmin_k [ c(d(s, l_k)) + min_m ( S[k, m] + c(d(l_m, g)) ) ]

over the landmarks more than ``skip_radius`` steps from s (a landmark the agent is already at is no
waypoint: it would hold the agent there), and hands the policy l_{k*} as its goal. The policy gets g itself when the direct edge is no dearer,
c(d(s, g)) <= that minimum, or when g is within ``goal_radius`` steps, or when no finite route exists.

K starts at ``landmarks`` and grows by as many again (``build_planner``) until ``connect`` of the ordered
landmark pairs are joined by a route: too few landmarks under short edges leave the graph in pieces, and
every episode then gets its goal itself.

For a batch of N states and goals the whole choice is one jitted program over (N, K) distance blocks:
no Python loop over episodes or landmarks.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from mqe.agents.common import StepsFunctions
from mqe.errors import MQEError

SELECTIONS = ("uniform", "farthest")


class PlannerError(MQEError, ValueError):
    """Bad planner settings or an agent the planner cannot use; the message names what was expected."""


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    """Every setting of the graph planner (``--planner graph`` and ``--planner-set KEY=VALUE``)."""

    landmarks: int = 500  # K: dataset states used as graph nodes
    selection: str = "uniform"  # uniform: K states drawn uniformly; farthest: greedy farthest-point in the learned metric
    candidates: int = 20_000  # farthest: the uniform pool it picks from (the first landmark is the pool's first state)
    # Long edges: dropped beyond max_edge, and with edge_power > 1 made dearer than chains of short ones. On
    # the grid maze's ground truth (benchmarks/planning.py) raw distances over a local graph route MQE and
    # QRL optimally, while d^2 over all edges makes detours; with no cut-off and power 1 a quasimetric's
    # triangle inequality makes the direct edge always cheapest, i.e. no planning.
    edge_power: float = 1.0  # c(d) = d ** edge_power (>= 1)
    max_edge: float = 50.0  # steps: longer edges are dropped
    goal_radius: float = 10.0  # steps: closer than this, the policy gets the goal itself
    skip_radius: float = 2.0  # steps: landmarks closer than this to the current state are not the next waypoint
    replan_every: int = 10  # environment steps between replanning (the waypoint is kept in between)
    seed: int = 0  # landmark sampling
    # K uniform landmarks can leave a giant maze's graph in pieces under short edges (MQE at 30k updates on
    # pointmaze-giant-stitch: 500 joined 22% of pairs and planning fell back to the goal, 0% success; 1500
    # joined 98%: 18.4%), while where 500 join up, more only cost time (MQE, giant-navigate: 40% at 500,
    # 23.6% at 1500). So K grows only as far as the graph needs.
    connect: float = 0.9  # grow K by `landmarks` at a time until this fraction of landmark pairs is joined by a route (0: K fixed)
    max_landmarks: int = 3000  # K grows no further than this

    def __post_init__(self):
        checks = [
            (isinstance(self.landmarks, int) and self.landmarks >= 1, f"landmarks must be an integer >= 1, got {self.landmarks!r}"),
            (self.selection in SELECTIONS, f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}"),
            (self.candidates >= 1, f"candidates must be >= 1, got {self.candidates!r}"),
            (self.edge_power >= 1.0, f"edge_power must be >= 1 (c(d) = d ** edge_power), got {self.edge_power!r}"),
            (self.max_edge > 0, f"max_edge must be > 0 steps, got {self.max_edge!r}"),
            (self.goal_radius >= 0, f"goal_radius must be >= 0 steps, got {self.goal_radius!r}"),
            (self.skip_radius >= 0, f"skip_radius must be >= 0 steps, got {self.skip_radius!r}"),
            (isinstance(self.replan_every, int) and self.replan_every >= 1,
             f"replan_every must be an integer >= 1, got {self.replan_every!r}"),
            (0.0 <= self.connect <= 1.0, f"connect must be a fraction in [0, 1], got {self.connect!r}"),
            (isinstance(self.max_landmarks, int) and self.max_landmarks >= 1,
             f"max_landmarks must be an integer >= 1, got {self.max_landmarks!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise PlannerError(f"planner: {message}")

    def folder(self) -> str:
        """The run's folder for evaluations with these settings: ``planner_graph`` for the defaults, else
        the changed settings in its name (``planner_graph-landmarks=1000,max_edge=20``), so evaluations of
        the same checkpoints with other settings (a tuning grid) sit side by side."""
        changed = [f"{f.name}={getattr(self, f.name):g}" if isinstance(f.default, float) else
                   f"{f.name}={getattr(self, f.name)}"
                   for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]
        return "planner_graph" + ("-" + ",".join(changed) if changed else "")

    @classmethod
    def from_overrides(cls, overrides: list[str]) -> "PlannerConfig":
        """``["landmarks=1000", "edge_power=1.5"]`` -> PlannerConfig, with errors that name the key."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or key not in fields:
                raise PlannerError(f"planner: {item!r} is not KEY=VALUE with KEY one of {', '.join(fields)}")
            kind = type(fields[key].default)
            try:
                values[key] = kind(raw)
            except ValueError:
                raise PlannerError(f"planner: {key} takes a {kind.__name__}, got {raw!r}") from None
        return cls(**values)


def edge_cost(d: jax.Array, edge_power: float, max_edge: float) -> jax.Array:
    """c(d) = d ** edge_power, inf beyond ``max_edge`` (d in steps, clipped at 0)."""
    d = jnp.maximum(d, 0.0)
    return jnp.where(d > max_edge, jnp.inf, d ** edge_power)


@jax.jit
def shortest_paths(cost: jax.Array) -> jax.Array:
    """All-pairs shortest path costs of a directed graph with edge costs ``cost`` (K, K), inf = no edge
    (Floyd-Warshall: S <- min(S, S[:, k] + S[k, :]) for k = 1..K; S[i, i] = 0)."""
    k = cost.shape[0]
    start = jnp.where(jnp.eye(k, dtype=bool), 0.0, cost)
    return jax.lax.fori_loop(0, k, lambda i, s: jnp.minimum(s, s[:, i, None] + s[None, i, :]), start)


@jax.jit
def choose(paths: jax.Array, to_landmarks: jax.Array, landmarks_to_goal: jax.Array, direct: jax.Array,
           direct_steps: jax.Array, goal_radius: float) -> tuple[jax.Array, jax.Array]:
    """The first landmark of the cheapest route, per row; and whether the goal itself is the target.

    paths (K, K): shortest path costs; to_landmarks (N, K): c(d(s, l_k)); landmarks_to_goal (N, K):
    c(d(l_m, g)); direct (N,): c(d(s, g)); direct_steps (N,): d(s, g) in steps.
    """
    onward = jnp.min(paths[None, :, :] + landmarks_to_goal[:, None, :], axis=-1)  # (N, K): min_m S[k, m] + c(l_m, g)
    total = to_landmarks + onward
    first = jnp.argmin(total, axis=-1)
    best = jnp.take_along_axis(total, first[:, None], axis=-1)[:, 0]
    use_goal = (direct <= best) | (direct_steps <= goal_radius) | ~jnp.isfinite(best)
    return first, use_goal


def steps_functions(agent, agent_name: str | None = None) -> StepsFunctions:
    """An agent's learned distance in environment steps, as the agent states it (``agent.steps_functions()``:
    MQE and TMD divide their distance by |log gamma|, QRL's counts one step as 1, value agents convert V)."""
    if not hasattr(agent, "steps_functions"):
        raise PlannerError(f"planner: agent {agent_name or type(agent).__name__!r} has no distance or value the "
                           "planner can turn into steps (mqe, tmd, qrl, gcivl, gciql, hiql)")
    try:
        return agent.steps_functions()
    except ValueError as exc:
        raise PlannerError(f"planner: {exc}") from None


@functools.partial(jax.jit, static_argnums=0)
def _all_pairs(steps_fn, a_rows, b_all) -> jax.Array:
    """steps(a_i, b_j) for every row i of ``a_rows`` and j of ``b_all``: (R, M). Embeddings are pytrees
    whose arrays hold rows on axis -2 (scalars, e.g. QRL's mixing logit, are shared)."""
    r, m = jax.tree.leaves(a_rows)[0].shape[-2], jax.tree.leaves(b_all)[0].shape[-2]
    rep_a = jax.tree.map(lambda x: jnp.repeat(x, m, axis=-2) if x.ndim >= 2 else x, a_rows)
    tile_b = jax.tree.map(lambda x: jnp.tile(x, (1,) * (x.ndim - 2) + (r, 1)) if x.ndim >= 2 else x, b_all)
    return steps_fn(rep_a, tile_b).reshape(r, m)


def _pairwise_steps(fns: StepsFunctions, a, b, block: int = 65536) -> jax.Array:
    """steps(a_i, b_j) for all i, j: (N, M), in row blocks of at most ``block`` pairs (device memory)."""
    if fns.pairwise is not None:
        return fns.pairwise(a, b)
    n, m = jax.tree.leaves(a)[0].shape[-2], jax.tree.leaves(b)[0].shape[-2]
    rows = max(1, block // m)
    if rows >= n:
        return _all_pairs(fns.steps, a, b)
    out = [_all_pairs(fns.steps, jax.tree.map(lambda x: x[..., i:i + rows, :] if x.ndim >= 2 else x, a), b)
           for i in range(0, n, rows)]
    return jnp.concatenate(out, axis=0)


class GraphPlanner:
    """Landmarks, their shortest paths, and ``targets(states, goals)`` for a batch of episodes."""

    def __init__(self, fns: StepsFunctions, landmarks: np.ndarray, config: PlannerConfig):
        self.fns, self.config = fns, config
        self.landmarks = jnp.asarray(landmarks, jnp.float32)
        self.landmark_embeddings = fns.embed_goal(self.landmarks)
        start_embeddings = fns.embed_state(self.landmarks)
        self.landmark_steps = _pairwise_steps(fns, start_embeddings, self.landmark_embeddings)  # (K, K)
        cost = edge_cost(self.landmark_steps, config.edge_power, config.max_edge)
        self.paths = jax.block_until_ready(shortest_paths(cost))
        self._start_embeddings = start_embeddings

    def graph_summary(self) -> dict[str, float]:
        """How the graph came out, to tune ``max_edge`` and K: the fraction of ordered landmark pairs joined
        by an edge (d <= max_edge) and by a route, and the median distance in steps to each landmark's
        nearest other landmark and between all pairs. No edges means no planning: every episode gets
        its goal itself."""
        k = self.landmark_steps.shape[0]
        off = ~np.eye(k, dtype=bool)
        steps = np.asarray(self.landmark_steps)
        edges = np.isfinite(np.asarray(edge_cost(self.landmark_steps, self.config.edge_power, self.config.max_edge)))
        nearest = np.min(np.where(off, steps, np.inf), axis=1) if k > 1 else np.zeros(1)
        return {"landmarks": k, "edge_fraction": float(edges[off].mean()) if k > 1 else 0.0,
                "route_fraction": float(np.isfinite(np.asarray(self.paths))[off].mean()) if k > 1 else 0.0,
                "nearest_landmark_steps_median": float(np.median(nearest)),
                "landmark_pair_steps_median": float(np.median(steps[off])) if k > 1 else 0.0}

    def to_goal_costs(self, goals: np.ndarray) -> jax.Array:
        """c(d(l_m, g)) for every landmark and goal: (N, K); computed once per goal and kept by the caller."""
        steps = _pairwise_steps(self.fns, self._start_embeddings, self.fns.embed_goal(jnp.asarray(goals))).T
        return edge_cost(steps, self.config.edge_power, self.config.max_edge)

    def targets(self, states: np.ndarray, goals: np.ndarray, landmarks_to_goal: jax.Array | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(the policy's goal per row: a landmark or the goal itself, whether it is the goal itself)."""
        states, goals = jnp.asarray(states, jnp.float32), jnp.asarray(goals, jnp.float32)
        if landmarks_to_goal is None:
            landmarks_to_goal = self.to_goal_costs(goals)
        if self.fns.pairwise is not None:  # one compiled program per replanning step
            target, use_goal = self._fused_targets(states, goals, landmarks_to_goal)
            return np.asarray(target), np.asarray(use_goal)
        target, use_goal = self._targets(states, goals, landmarks_to_goal)
        return np.asarray(target), np.asarray(use_goal)

    @functools.cached_property
    def _fused_targets(self):
        return jax.jit(self._targets)

    def _targets(self, states, goals, landmarks_to_goal):
        s_emb = self.fns.embed_state(states)
        steps_to_landmarks = _pairwise_steps(self.fns, s_emb, self.landmark_embeddings)
        to_landmarks = jnp.where(steps_to_landmarks < self.config.skip_radius, jnp.inf,
                                 edge_cost(steps_to_landmarks, self.config.edge_power, self.config.max_edge))
        direct_steps = self.fns.steps(s_emb, self.fns.embed_goal(goals))
        direct = edge_cost(direct_steps, self.config.edge_power, self.config.max_edge)
        first, use_goal = choose(self.paths, to_landmarks, landmarks_to_goal, direct, direct_steps,
                                 self.config.goal_radius)
        return jnp.where(use_goal[:, None], goals, self.landmarks[first]), use_goal


def build_planner(fns: StepsFunctions, pool: np.ndarray, config: PlannerConfig) -> GraphPlanner:
    """The planner over landmarks from ``pool`` (the training data's observations): K = ``landmarks``, then
    K + landmarks, K + 2 landmarks, ... (at most ``max_landmarks``, at most the pool) while fewer than
    ``connect`` of the ordered landmark pairs are joined by a route. Each K draws its landmarks exactly as
    ``--landmarks K`` would, so the chosen graph is the one a fixed K of that size gives."""
    k = config.landmarks
    while True:
        sized = dataclasses.replace(config, landmarks=k)
        planner = GraphPlanner(fns, select_landmarks(pool, fns, sized), sized)
        grown = k + config.landmarks
        if (grown > config.max_landmarks or k >= len(pool)
                or planner.graph_summary()["route_fraction"] >= config.connect):  # connect=0: always
            return planner
        k = grown


def select_landmarks(observations: np.ndarray, fns: StepsFunctions, config: PlannerConfig) -> np.ndarray:
    """K dataset states: uniform, or greedy farthest-point (each next landmark maximises its distance
    min over the chosen ones of max(d(l, x), d(x, l)), in the learned metric) from a uniform pool."""
    rng = np.random.default_rng(config.seed)
    n = len(observations)
    if config.selection == "uniform" or config.landmarks >= n:
        idx = rng.choice(n, size=min(config.landmarks, n), replace=False)
        return np.asarray(observations[np.sort(idx)], np.float32)
    pool = np.asarray(observations[np.sort(rng.choice(n, size=min(config.candidates, n), replace=False))], np.float32)
    emb_s, emb_g = fns.embed_state(jnp.asarray(pool)), fns.embed_goal(jnp.asarray(pool))
    take = lambda tree, i: jax.tree.map(lambda x: x[..., i:i + 1, :] if x.ndim >= 2 else x, tree)
    nearest = jnp.full(len(pool), jnp.inf)
    chosen = [0]
    for _ in range(min(config.landmarks, len(pool)) - 1):
        i = chosen[-1]
        both = jnp.maximum(_pairwise_steps(fns, take(emb_s, i), emb_g)[0], _pairwise_steps(fns, emb_s, take(emb_g, i))[:, 0])
        nearest = jnp.minimum(nearest, both)
        chosen.append(int(jnp.argmax(nearest)))
    return pool[np.asarray(chosen)]
