"""A planned policy for the batched evaluator: the agent acts towards the planner's waypoints.

The evaluator calls ``policy(observations, goals)`` once per environment step for every episode copy,
in ``len(planners)`` equal blocks (block i: policy i's episodes, e.g. one seed each). Each block replans
all its rows together, every ``replan_every`` calls, and at once when its goals change (new episodes):
fixed shapes, one jitted planning program per block, no Python loop over episodes or landmarks.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from mqe.planning.graph import GraphPlanner


class PlannedPolicy:
    def __init__(self, act: Callable[[np.ndarray, np.ndarray], np.ndarray], planners: Sequence[GraphPlanner],
                 replan_every: int):
        self.act, self.planners, self.replan_every = act, list(planners), replan_every
        self._goals = self._targets = self._to_goal = None
        self._calls = 0
        self.planning_seconds = 0.0  # wall time spent planning (device included)
        self.replans = 0  # block replans
        self.goal_rows = 0  # rows that got the goal itself at a replan
        self.planned_rows = 0  # rows planned in all

    def __call__(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        obs, goals = np.asarray(observations, np.float32), np.asarray(goals, np.float32)
        blocks = len(self.planners)
        if len(obs) % blocks:
            raise ValueError(f"PlannedPolicy: {len(obs)} rows do not split into {blocks} equal blocks")
        per = len(obs) // blocks
        if self._goals is None or self._goals.shape != goals.shape:
            self._goals, self._targets = np.full_like(goals, np.nan), goals.copy()
            self._to_goal, self._calls = [None] * blocks, 0
        due = self._calls % self.replan_every == 0
        for b, planner in enumerate(self.planners):
            rows = slice(b * per, (b + 1) * per)
            new_goals = not np.array_equal(self._goals[rows], goals[rows])
            if not (due or new_goals):
                continue
            start = time.perf_counter()
            if new_goals:
                self._to_goal[b] = planner.to_goal_costs(goals[rows])
                self._goals[rows] = goals[rows]
            target, use_goal = planner.targets(obs[rows], goals[rows], self._to_goal[b])
            self._targets[rows] = target
            self.planning_seconds += time.perf_counter() - start
            self.replans += 1
            self.goal_rows += int(use_goal.sum())
            self.planned_rows += per
        self._calls += 1
        return self.act(obs, self._targets)

    def stats(self) -> dict[str, float]:
        """Planning cost and how often the goal itself was the target, for the results file."""
        return {"replans": self.replans, "planning_seconds": self.planning_seconds,
                "seconds_per_replan": self.planning_seconds / max(self.replans, 1),
                "goal_itself_fraction": self.goal_rows / max(self.planned_rows, 1)}
