"""``mqe serve``: a run's policy over HTTP (``mqe.serving``)."""

from __future__ import annotations

import os

from mqe.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a run's policy over HTTP: a robot posts its camera frame and a goal "
                                     "frame, gets the action (needs the serve extra: FastAPI, uvicorn)")
    p.add_argument("run", help="run directory (its newest checkpoint, full or policy) or a checkpoint file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only: reach it from the robot "
                        "through an SSH tunnel; another address wants --token and --tls-cert/--tls-key)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    p.add_argument("--max-batch", type=int, default=32,
                   help="most rows per device call; requests that arrive together share one (default 32)")
    p.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="how long a request waits for others to batch with (default 0: none; requests that "
                        "arrive while the device is busy are batched anyway)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body accepted (default 16)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request (default: "
                                   "$MQE_SERVE_TOKEN; the client sends its token= or $MQE_SERVE_TOKEN)")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; with --tls-key)")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.add_argument("--api-docs", action="store_true", help="publish the API's schema at /docs and /openapi.json")
    p.set_defaults(func=serve)


def serve(args) -> int:
    if args.max_batch < 1:
        raise ConfigError(f"--max-batch must be >= 1, got {args.max_batch}")
    if args.max_body_mb <= 0 or args.max_wait_ms < 0:
        raise ConfigError("--max-body-mb must be > 0 and --max-wait-ms >= 0")
    if not os.path.exists(args.run):
        raise ConfigError(f"{args.run}: no such run directory or checkpoint")
    from mqe.serving.app import serve as run_server

    run_server(args.run, host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
               max_body_mb=args.max_body_mb, token=args.token, tls_cert=args.tls_cert, tls_key=args.tls_key,
               api_docs=args.api_docs)
    return 0
