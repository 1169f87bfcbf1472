"""Serving a trained policy to a robot: ``mqe serve RUN`` (``app``), its wire format (``protocol``), the
batched policy behind it (``policy``) and the robot-side client (``client``, standard library + NumPy).

Depends on the core (``mqe.api``); nothing in the core imports it. The web stack is an optional extra:
``pip install 'mqe-gcrl[serve]'``.
"""

from mqe.serving.client import PolicyClient, PolicyServerError, encode_array
from mqe.serving.protocol import RequestError, decode_array, model_rows

__all__ = ["PolicyClient", "PolicyServerError", "RequestError", "decode_array", "encode_array", "model_rows"]
