"""Planning at test time over a trained agent's learned distance (``mqe eval --planner graph``)."""

from mqe.planning.graph import (GraphPlanner, PlannerConfig, PlannerError, build_planner, select_landmarks,
                                steps_functions)
from mqe.planning.policy import PlannedPolicy

__all__ = ["GraphPlanner", "PlannedPolicy", "PlannerConfig", "PlannerError", "build_planner", "select_landmarks", "steps_functions"]
