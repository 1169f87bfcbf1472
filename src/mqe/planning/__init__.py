"""Planning at test time over a trained agent's learned distance (``mqe eval --planner graph``)."""

from mqe.planning.graph import (GraphPlanner, PlannerConfig, PlannerError, build_planner, select_landmarks,
                                steps_functions)
from mqe.planning.policy import PlannedPolicy
from mqe.planning.runs import planner_for_run, write_planner_settings

__all__ = ["GraphPlanner", "PlannedPolicy", "PlannerConfig", "PlannerError", "build_planner", "planner_for_run",
           "select_landmarks", "steps_functions", "write_planner_settings"]
