"""mqe: Multistep Quasimetric Estimation for offline goal-conditioned RL (JAX)."""

__version__ = "0.2.0"


def load(path):
    """Loads a run directory or checkpoint; see :func:`mqe.api.load`."""
    from mqe.api import load as _load

    return _load(path)
