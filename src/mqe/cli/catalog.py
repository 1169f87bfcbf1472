"""``mqe agents`` and ``mqe presets``: what can be trained, and with which published settings."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("agents", help="list the agents (mqe train --agent NAME)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print every config field's default")
    p.set_defaults(func=agents)

    p = sub.add_parser("presets", help="list hyperparameter presets")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each preset's values")
    p.set_defaults(func=presets)


def agents(args) -> int:
    import dataclasses

    from mqe.agents import AGENTS

    for name, spec in AGENTS.items():
        print(f"{name:7s} {spec.summary}")
        if args.verbose:
            for field in dataclasses.fields(spec.config_class):
                print(f"          {field.name} = {field.default!r}")
    return 0


def presets(args) -> int:
    from mqe.config import load_presets

    found = load_presets()["presets"]
    for name in sorted(found):
        print(f"{name}: {found[name].get('description', '')}")
        if args.verbose:
            print(json.dumps({k: v for k, v in found[name].items() if k != "description"}, indent=2))
    return 0
