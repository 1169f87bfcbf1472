"""Environments: OGBench (with the paper's colossal maze) and the built-in grid maze.

Headless rendering by default: MuJoCo's GLFW backend fails without a display, so EGL is selected unless
the user chose a backend (this must happen before MuJoCo is first imported).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
