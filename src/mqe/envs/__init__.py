"""Environments: OGBench (with the paper's colossal maze) and the built-in grid maze.

Headless rendering by default: MuJoCo's GLFW backend fails without a display, so EGL is selected unless
the user chose a backend (this must happen before MuJoCo is first imported).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

# Registers antmaze-colossal-v0 / pointmaze-colossal-v0 with gymnasium, so that after `import mqe.envs`
# OGBench's own `make_env_and_datasets('antmaze-colossal-...')` resolves (imports gymnasium only).
from mqe.envs import colossal as _colossal  # noqa: E402,F401
