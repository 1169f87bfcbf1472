"""The robot side of ``mqe serve``: NumPy in, NumPy out, nothing but the standard library and NumPy.

    >>> from mqe.serving.client import PolicyClient
    >>> policy = PolicyClient("http://192.168.1.20:8000")
    >>> policy.health()["observation_shape"]
    [64, 64, 3]
    >>> action = policy.act(camera_frame, goal_frame)      # uint8 (64, 64, 3) each -> float32 (A,)

One client holds one keep-alive connection (a control loop pays the TCP handshake once); use one client
per thread. Copy this file to a robot that has no ``mqe`` installed: it imports nothing else of ours.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import urllib.parse

import numpy as np


class PolicyServerError(RuntimeError):
    """The server refused a request (``status`` 4xx: the message names the field) or failed (5xx)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(f"policy server answered {status}: {message}")
        self.status, self.message, self.field = status, message, field


def encode_array(array) -> dict:
    """``array`` (uint8 kept, anything else as float32) -> the wire form {shape, dtype, data: base64}."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")}


def _json_or_text(data: bytes) -> dict:
    """The answer's JSON object; any other body (a proxy's HTML page, a plain-text 500) as ``{"error": text}``,
    so that an error always reaches the caller as ``PolicyServerError`` with its status."""
    if not data:
        return {}
    try:
        answer = json.loads(data)
    except ValueError:
        return {"error": data.decode("utf-8", "replace").strip()[:500] or "(empty body)"}
    return answer if isinstance(answer, dict) else {"error": f"unexpected answer {str(answer)[:200]}"}


class PolicyClient:
    """``url``: http://HOST:PORT or https://HOST:PORT (``cafile``: the server's certificate or its CA, for a
    self-signed one); ``token``: sent as a bearer token (default ``$MQE_SERVE_TOKEN``)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", timeout: float = 10.0, token: str | None = None,
                 cafile: str | None = None):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https", "") or not parsed.hostname:
            raise ValueError(f"url must look like http://HOST:PORT or https://HOST:PORT, got {url!r}")
        self.https = parsed.scheme == "https"
        self.host, self.port, self.timeout = parsed.hostname, parsed.port or (443 if self.https else 80), timeout
        self.token = token if token is not None else os.environ.get("MQE_SERVE_TOKEN") or None
        if self.token and not self.https and self.host not in ("127.0.0.1", "localhost", "::1"):
            import warnings

            warnings.warn(f"PolicyClient: sending the token to {self.host} over plain http (clear text); use "
                          "https:// (mqe serve --tls-cert/--tls-key) or an SSH tunnel to 127.0.0.1", stacklevel=2)
        self.context = ssl.create_default_context(cafile=cafile) if self.https else None
        self.max_body_bytes: int | None = None  # the server's limit, read from /health before a large request
        self._conn: http.client.HTTPConnection | None = None

    def health(self) -> dict:
        return self._request("GET", "/health")

    def act(self, observation, goal) -> np.ndarray:
        """The action for one observation and goal, ``(A,)``; or for a batch of each, ``(N, A)``. Frames
        are sent as uint8 as they are, anything else as float32."""
        body = json.dumps({"observation": encode_array(observation), "goal": encode_array(goal)}).encode()
        if len(body) > 2**20:  # a large body: refuse it here if the server would (it could not answer in time)
            if self.max_body_bytes is None:
                self.max_body_bytes = int(self.health().get("max_body_bytes") or 0) or None
            if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
                raise PolicyServerError(413, f"body: {len(body)} bytes is more than this server takes "
                                             f"({self.max_body_bytes}; mqe serve --max-body-mb)", "body")
        answer = self._request("POST", "/act", body=body)
        if "action" not in answer:
            raise PolicyServerError(200, f"an answer without an action: {str(answer)[:200]}")
        return np.asarray(answer["action"], np.float32)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
                ) -> tuple[int, dict]:
        """A raw request: (status, decoded JSON answer); no error raised. For tests and debugging."""
        for attempt in (0, 1):  # a keep-alive connection the server closed meanwhile is reopened once
            conn = self._connection()
            headers = dict(headers or {})
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status, _json_or_text(data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except BaseException:  # e.g. a timeout: the connection is mid-request, unusable; the next call reconnects
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self.context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _request(self, method: str, path: str, payload: dict | None = None, body: bytes | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else body
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, answer = self.request(method, path, body, headers)
        if status != 200:
            raise PolicyServerError(status, answer.get("error", str(answer)), answer.get("field"))
        return answer
