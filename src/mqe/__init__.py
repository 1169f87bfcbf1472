"""mqe: Multistep Quasimetric Estimation for offline goal-conditioned RL."""
__version__ = "0.1.0"
