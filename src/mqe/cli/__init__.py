"""The ``mqe`` command line. It only parses and dispatches: each command is a module of this package
(``register(sub)`` adds its parser; its function calls the library), and every error a user can act on
(``mqe.errors.MQEError``) leaves through ``main`` as ``mqe: error: <message>`` with exit status 2.

Building the parser imports neither JAX nor an environment, so ``mqe --help``, ``mqe presets``,
``mqe config`` and ``mqe report`` start quickly; a command loads what it needs when it runs."""

from __future__ import annotations

import argparse
import sys
import warnings

from mqe.errors import MQEError

# In the order `mqe --help` lists them.
COMMANDS = ("train", "evaluate", "demo", "generate", "sweep", "report", "expert", "serve", "catalog")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="mqe", description="Multistep Quasimetric Estimation for offline GCRL")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"mqe.cli.{name}").register(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"mqe: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line, no source excerpt (restored on exit)
            # gymnasium says this of every OGBench environment it builds (float64 bounds stored as float32)
            warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
            return args.func(args)
    except (MQEError, FileNotFoundError) as exc:
        print(f"mqe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmqe: interrupted; a checkpoint of the last completed chunk was written, "
              "run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
