"""``mqe serve RUN``: the policy server a robot calls at every control step.

FastAPI on uvicorn. Why them: FastAPI is the maintained, widely used Python framework for model
servers, and publishes the API's schema at ``/docs`` when asked (``--api-docs``; off by default, so a
server on a network shows nothing it does not have to); uvicorn is its standard ASGI server. A request
body is parsed and checked (``mqe.serving.protocol``: envelope, shape, dtype, finiteness, base64, bounds)
in a worker thread, a few at a time, so one large request never stalls the event loop that answers the
others.

Access: with a token (``--token`` or ``MQE_SERVE_TOKEN``) every endpoint wants ``Authorization: Bearer
<token>`` (401 otherwise); with ``--tls-cert``/``--tls-key`` it speaks HTTPS. Without a token on a
non-loopback address the server warns loudly at start.

Endpoints:

- ``GET /health``: the model (run, agent, step, observation shape and dtype, action size), the device,
  and counts of requests served; 200 once the model is loaded and compiled.
- ``POST /act``: ``{"observation": ARRAY, "goal": ARRAY}`` -> ``{"action": [...], "step": N}``, one
  action for one observation, a list of actions for a batch ``(N, *shape)``. Actions are the policy's
  deterministic mean, de-normalised into the robot's units when the run was trained on normalised
  actions (``RUN/action_normalization.json``, ``mqe.data.robot``), else in [-1, 1] as trained.

Malformed requests get ``{"error": "<field>: <what was expected>", "field": ...}`` with status 400 (411
without a Content-Length, 413 past ``--max-body-mb``, 401 without the token), and the server stays up.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at definition time,
# and the request model is local to make_app.
import asyncio
import contextlib
import hmac
import ipaddress
import json
import os
import socket
import sys
import time

import jax
import numpy as np

from mqe.serving.policy import MicroBatcher, Policy
from mqe.serving.protocol import RequestError, decode_array, model_rows

TOKEN_ENV = "MQE_SERVE_TOKEN"
DECODERS = 4  # request bodies parsed at once, in threads (more wait: memory stays bounded under a flood)
REQUEST_FIELDS = ("observation", "goal")


def _require_web_stack():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"mqe serve needs FastAPI and uvicorn ({exc.name} is not installed): "
                         "pip install 'mqe-gcrl[serve]'") from None


class _BearerToken:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` (compared in constant
    time); anything else is a 401 JSON answer."""

    def __init__(self, app, token: str, max_bytes: int):
        self.app, self.expected, self.max_bytes = app, token.encode(), max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        if not (scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)):
            if scope["method"] in ("POST", "PUT", "PATCH") and not await _drain(receive, self.max_bytes):
                return
            return await _send_json(send, 401, {"error": "authorization: this server wants the header "
                                                         "'Authorization: Bearer <token>' with its token",
                                                "field": "authorization"})
        return await self.app(scope, receive, send)


def decode_request(body: bytes, observation_shape: tuple[int, ...], dtype: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """A /act body -> (observations, goals, one row sent without a batch axis); every problem a
    ``RequestError`` naming the field. Runs in a worker thread."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError("body", "not valid JSON") from None
    if not isinstance(payload, dict):
        raise RequestError("body", "expected a JSON object with the fields observation and goal")
    unknown = sorted(set(payload) - set(REQUEST_FIELDS))
    if unknown:
        raise RequestError(unknown[0], "not a field of this request (expected observation, goal)")
    for field in REQUEST_FIELDS:
        if field not in payload:
            raise RequestError(field, "required field missing")
    decoded = {f: decode_array(payload[f], f) for f in REQUEST_FIELDS}
    single = decoded["observation"].shape == tuple(observation_shape)
    rows = {f: model_rows(a, f, observation_shape, dtype) for f, a in decoded.items()}
    if len(rows["observation"]) != len(rows["goal"]):
        raise RequestError("goal", f"{len(rows['goal'])} goals for {len(rows['observation'])} observations")
    return rows["observation"], rows["goal"], single


class _BodyLimit:
    """ASGI middleware: a request body must declare its length (411) and stay under ``max_bytes`` (413),
    checked before any of it is read."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None or not length.isdigit():
            if not await _drain(receive, self.max_bytes):
                return
            return await _send_json(send, 411, {"error": "body: send a Content-Length header", "field": "body"})
        if int(length) > self.max_bytes:
            return await _send_json(send, 413, {
                "error": f"body: {int(length)} bytes is more than this server takes ({self.max_bytes}; "
                         "mqe serve --max-body-mb)", "field": "body"})
        return await self.app(scope, receive, send)


async def _drain(receive, max_bytes: int) -> bool:
    """Reads what the client is still sending (up to ``max_bytes``) before an early answer, so that a client
    writing its body sees that answer instead of a broken pipe. False: the client went away."""
    received, more = 0, True
    while more and received <= max_bytes:
        message = await receive()
        if message["type"] != "http.request":
            return False
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    return True


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


ACT_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": list(REQUEST_FIELDS), "additionalProperties": False,
    "description": 'An encoded array is {"shape": [...], "dtype": "uint8" | "float32", "data": base64 of the raw '
                   "C-order bytes}; nested lists of numbers also work.",
    "properties": {"observation": {"description": "the current observation (a uint8 frame for an image model), "
                                                  "or a batch of them"},
                   "goal": {"description": "the goal, same shape and dtype as the observation"}}}}}}}


def make_app(policy: Policy, *, max_wait_ms: float = 0.0, max_body_bytes: int = 16 * 2**20, token: str | None = None,
             api_docs: bool = False):
    """The FastAPI application serving ``policy`` (already loaded; compile it with ``policy.warm_up()``).
    ``token``: every request needs it as a bearer token; ``api_docs``: publish ``/docs`` and ``/openapi.json``."""
    _require_web_stack()
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    batcher = MicroBatcher(policy, max_wait_s=max_wait_ms / 1000.0)
    model = policy.model
    decoders = asyncio.Semaphore(DECODERS)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="mqe policy server", lifespan=lifespan,
                  docs_url="/docs" if api_docs else None, redoc_url=None,
                  openapi_url="/openapi.json" if api_docs else None,
                  description=f"{model.config.agent_name} from {model.path}: POST /act with an observation and "
                              "a goal, get the action.")

    @app.exception_handler(RequestError)
    async def bad_array(request: Request, exc: RequestError):
        return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)

    @app.get("/health")
    async def health():
        return {"status": "ok", "run": model.path, "agent": model.config.agent_name, "step": model.step,
                "observation_shape": list(policy.observation_shape), "observation_dtype": policy.dtype,
                "action_dim": model.action_dim, "action_units": policy.action_units, "max_batch": policy.max_batch,
                "max_body_bytes": max_body_bytes, "device": jax.devices()[0].device_kind,
                "served": {"requests": batcher.requests, "batches": batcher.batches, "rows": batcher.rows}}

    @app.post("/act", openapi_extra=ACT_SCHEMA)
    async def act(request: Request):
        start = time.perf_counter()
        body = await request.body()
        async with decoders:  # parsed off the event loop, a few at a time
            observations, goals, single = await asyncio.to_thread(
                decode_request, body, tuple(policy.observation_shape), policy.dtype)
        del body
        actions = await batcher.submit(observations, goals)
        return {"action": (actions[0] if single else actions).tolist(), "step": model.step,
                "server_ms": (time.perf_counter() - start) * 1000.0}

    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    if token:  # added last, so it runs first: nothing is read from a caller without the token
        app.add_middleware(_BearerToken, token=token, max_bytes=max_body_bytes)
    return app


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(run: str, *, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32, max_wait_ms: float = 0.0,
          max_body_mb: float = 16.0, log_level: str = "warning", token: str | None = None,
          tls_cert: str | None = None, tls_key: str | None = None, api_docs: bool = False) -> None:
    """Loads ``run``, compiles every batch size, binds ``host:port`` (0: any free port) and serves until
    interrupted. Prints ``serving ... at http(s)://HOST:PORT`` once requests can be answered. ``token``
    (default: ``$MQE_SERVE_TOKEN``) is required of every request; ``tls_cert``/``tls_key`` serve HTTPS."""
    _require_web_stack()
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    if bool(tls_cert) != bool(tls_key):
        raise SystemExit("mqe serve: --tls-cert and --tls-key go together (the certificate and its private key)")
    for path in (tls_cert, tls_key):
        if path and not os.path.isfile(path):
            raise SystemExit(f"mqe serve: {path}: no such file")
    if not _is_loopback(host) and not token:
        print(f"mqe serve: WARNING: listening on {host} without a token: anyone who can reach this port can drive "
              "the robot. Use --token (or MQE_SERVE_TOKEN) with --tls-cert/--tls-key, or bind 127.0.0.1 and reach it "
              "through an SSH tunnel.", file=sys.stderr, flush=True)
    elif not _is_loopback(host) and not tls_cert:
        print(f"mqe serve: WARNING: listening on {host} with a token but without TLS: the token and every frame "
              "travel in clear text. Add --tls-cert/--tls-key, or bind 127.0.0.1 and use an SSH tunnel.",
              file=sys.stderr, flush=True)
    policy = Policy.from_run(run, max_batch=max_batch)
    seconds = policy.warm_up()
    app = make_app(policy, max_wait_ms=max_wait_ms, max_body_bytes=int(max_body_mb * 2**20), token=token,
                   api_docs=api_docs)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"mqe serve: cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_keep_alive=30,
                                           ssl_certfile=tls_cert, ssl_keyfile=tls_key))

    model = policy.model
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        if server.should_exit:  # startup failed (uvicorn logged why): no banner, so no one takes it as up
            return
        print(f"serving {model.config.agent_name} (step {model.step}, observation {policy.observation_shape} "
              f"{policy.dtype}, {model.action_dim} actions) at {'https' if tls_cert else 'http'}://{host}:{bound} "
              f"(compiled {len(policy.sizes)} batch sizes up to {max_batch} in {seconds:.1f} s)", flush=True)

    server.startup = startup
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["make_app", "serve"]
