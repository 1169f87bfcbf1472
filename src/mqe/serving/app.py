"""``mqe serve RUN``: the policy server a robot calls at every control step.

FastAPI on uvicorn. Why them: FastAPI is the maintained, widely used Python framework for model
servers; it validates the request envelope with pydantic (a missing or misspelt field is a 400 that names
it) and publishes the schema at ``/docs``, which is what the engineer wiring up a robot reads first;
uvicorn is its standard ASGI server. The array checks that pydantic cannot express (shape, dtype,
finiteness, base64) are ``mqe.serving.protocol``'s.

Endpoints:

- ``GET /health``: the model (run, agent, step, observation shape and dtype, action size), the device,
  and counts of requests served; 200 once the model is loaded and compiled.
- ``POST /act``: ``{"observation": ARRAY, "goal": ARRAY}`` -> ``{"action": [...], "step": N}``, one
  action for one observation, a list of actions for a batch ``(N, *shape)``. Actions are the policy's
  deterministic mean, de-normalised into the robot's units when the run was trained on normalised
  actions (``RUN/action_normalization.json``, ``mqe.data.robot``), else in [-1, 1] as trained.

Malformed requests get ``{"error": "<field>: <what was expected>", "field": ...}`` with status 400 (411
without a Content-Length, 413 past ``--max-body-mb``), and the server stays up.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at definition time,
# and the request model is local to make_app.
import contextlib
import json
import socket
import time
from typing import Any

import jax

from mqe.serving.policy import MicroBatcher, Policy
from mqe.serving.protocol import RequestError, decode_array, model_rows


def _require_web_stack():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"mqe serve needs FastAPI and uvicorn ({exc.name} is not installed): "
                         "pip install 'mqe-gcrl[serve]'") from None


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
            # Read what the client streams (up to the limit) before answering: a client still writing its
            # body to a closed connection would see a broken pipe instead of this answer.
            received, more = 0, True
            while more and received <= self.max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return
                received += len(message.get("body", b""))
                more = message.get("more_body", False)
            return await _send_json(send, 411, {"error": "body: send a Content-Length header", "field": "body"})
        if int(length) > self.max_bytes:
            return await _send_json(send, 413, {
                "error": f"body: {int(length)} bytes is more than this server takes ({self.max_bytes}; "
                         "mqe serve --max-body-mb)", "field": "body"})
        return await self.app(scope, receive, send)


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def make_app(policy: Policy, *, max_wait_ms: float = 0.0, max_body_bytes: int = 16 * 2**20):
    """The FastAPI application serving ``policy`` (already loaded; compile it with ``policy.warm_up()``)."""
    _require_web_stack()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict

    batcher = MicroBatcher(policy, max_wait_s=max_wait_ms / 1000.0)
    model = policy.model

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="mqe policy server", lifespan=lifespan,
                  description=f"{model.config.agent_name} from {model.path}: POST /act with an observation and "
                              "a goal, get the action.")

    class ActRequest(BaseModel):
        """An encoded array is {"shape": [...], "dtype": "uint8" | "float32", "data": base64 of the raw
        C-order bytes}; nested lists of numbers also work."""
        model_config = ConfigDict(extra="forbid")
        observation: Any  # the current observation (a uint8 frame for an image model), or a batch of them
        goal: Any  # the goal, same shape and dtype as the observation

    @app.exception_handler(RequestError)
    async def bad_array(request: Request, exc: RequestError):
        return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_envelope(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ()) if part != "body"] or ["body"]
        field = ".".join(loc)
        if first.get("type") == "json_invalid":
            field, message = "body", "not valid JSON"
        elif first.get("type") == "missing":
            message = "required field missing"
        elif first.get("type") == "extra_forbidden":
            message = "not a field of this request (expected observation, goal)"
        else:
            message = first.get("msg", "invalid")
        return JSONResponse({"error": f"{field}: {message}", "field": field}, status_code=400)

    @app.get("/health")
    async def health():
        return {"status": "ok", "run": model.path, "agent": model.config.agent_name, "step": model.step,
                "observation_shape": list(policy.observation_shape), "observation_dtype": policy.dtype,
                "action_dim": model.action_dim, "action_units": policy.action_units, "max_batch": policy.max_batch,
                "device": jax.devices()[0].device_kind,
                "served": {"requests": batcher.requests, "batches": batcher.batches, "rows": batcher.rows}}

    @app.post("/act")
    async def act(request: ActRequest):
        start = time.perf_counter()
        decoded = {f: decode_array(getattr(request, f), f) for f in ("observation", "goal")}
        single = decoded["observation"].shape == tuple(policy.observation_shape)
        rows = {f: model_rows(a, f, policy.observation_shape, policy.dtype) for f, a in decoded.items()}
        if len(rows["observation"]) != len(rows["goal"]):
            raise RequestError("goal", f"{len(rows['goal'])} goals for {len(rows['observation'])} observations")
        actions = await batcher.submit(rows["observation"], rows["goal"])
        return {"action": (actions[0] if single else actions).tolist(), "step": model.step,
                "server_ms": (time.perf_counter() - start) * 1000.0}

    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    return app


def serve(run: str, *, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32, max_wait_ms: float = 0.0,
          max_body_mb: float = 16.0, log_level: str = "warning") -> None:
    """Loads ``run``, compiles every batch size, binds ``host:port`` (0: any free port) and serves until
    interrupted. Prints ``serving ... at http://HOST:PORT`` once requests can be answered."""
    _require_web_stack()
    import uvicorn

    policy = Policy.from_run(run, max_batch=max_batch)
    seconds = policy.warm_up()
    app = make_app(policy, max_wait_ms=max_wait_ms, max_body_bytes=int(max_body_mb * 2**20))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"mqe serve: cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_keep_alive=30))

    model = policy.model
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        if server.should_exit:  # startup failed (uvicorn logged why): no banner, so no one takes it as up
            return
        print(f"serving {model.config.agent_name} (step {model.step}, observation {policy.observation_shape} "
              f"{policy.dtype}, {model.action_dim} actions) at http://{host}:{bound} "
              f"(compiled {len(policy.sizes)} batch sizes up to {max_batch} in {seconds:.1f} s)", flush=True)

    server.startup = startup
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["make_app", "serve"]
