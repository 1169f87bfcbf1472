"""The configuration mapping between a reference implementation and ours, as data (mapping.json).

``reference_flags(agent, ours)`` gives the ``--agent.KEY=VALUE`` settings the reference program gets from our
resolved config; ``check(agent, reference_config, ours)`` verifies that every key of the reference's config has
a counterpart in the table with the same value, and raises ``MappingError`` naming the first key that does not.
Pure Python: needs neither the reference code nor mqe.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MAPPING_PATH = os.path.join(HERE, "mapping.json")
KINDS = ("ours", "fixed", "unread")


class MappingError(ValueError):
    """A reference config key without a counterpart, or with a different value; ``.key`` names it."""

    def __init__(self, agent: str, key: str, message: str):
        super().__init__(f"[{agent}] {key}: {message}")
        self.agent = agent
        self.key = key


def load_mapping(path: str = MAPPING_PATH) -> dict[str, Any]:
    with open(path) as f:
        table = json.load(f)
    for agent, spec in table.items():
        if agent.startswith("_"):
            continue
        for key, entry in spec["keys"].items():
            kinds = [k for k in KINDS if k in entry]
            if len(kinds) != 1:
                raise MappingError(agent, key, f"the table entry must have exactly one of {KINDS}, has {kinds}")
    return table


def get_field(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _map_value(entry: dict[str, Any], value: Any) -> Any:
    if "map" in entry:
        table = entry["map"]
        for k in (json.dumps(value), str(value), repr(value)):
            if k in table:
                return table[k]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for k, v in table.items():
                try:
                    if float(k) == float(value):
                        return v
                except ValueError:
                    pass
        raise KeyError(value)
    if entry.get("transform") == "one_minus":
        return 1.0 - float(value)
    return value


def normalize(value: Any) -> Any:
    """Comparable form: tuples and lists the same, ints and floats the same."""
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def same(a: Any, b: Any) -> bool:
    a, b = normalize(a), normalize(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def ours_value(agent: str, key: str, entry: dict[str, Any], ours: dict[str, Any]) -> Any:
    """The reference value our config implies for ``key``; all listed fields of ours must agree."""
    values = []
    for dotted in entry["ours"]:
        try:
            raw = get_field(ours, dotted)
        except KeyError:
            raise MappingError(agent, key, f"our config has no field {dotted!r}") from None
        try:
            values.append((dotted, _map_value(entry, raw)))
        except KeyError:
            raise MappingError(agent, key, f"our {dotted} = {raw!r} has no reference value in the table's map "
                                           f"{entry.get('map')}") from None
    first = values[0]
    for dotted, v in values[1:]:
        if not same(v, first[1]):
            raise MappingError(agent, key, f"our {first[0]} gives {first[1]!r} but our {dotted} gives {v!r}; the "
                                           f"reference has one value for both")
    return first[1]


def reference_flags(agent: str, ours: dict[str, Any], table: dict[str, Any] | None = None) -> dict[str, Any]:
    """{reference key: value} to pass to the reference program (the 'ours' entries)."""
    table = table or load_mapping()
    spec = _spec(agent, table)
    return {key: ours_value(agent, key, entry, ours) for key, entry in spec["keys"].items() if "ours" in entry}


def check(agent: str, reference_config: dict[str, Any], ours: dict[str, Any],
          table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Raises MappingError at the first key without a counterpart or with a different value; returns the
    compared rows (key, kind, reference value, our value) for the run's record."""
    table = table or load_mapping()
    spec = _spec(agent, table)
    rows = []
    for key in sorted(reference_config):
        if key not in spec["keys"]:
            raise MappingError(agent, key, "the reference reads this key but mapping.json has no entry for it")
        entry = spec["keys"][key]
        ref = reference_config[key]
        if "unread" in entry:
            rows.append({"key": key, "kind": "unread", "reference": ref, "why": entry["unread"]})
            continue
        if "fixed" in entry:
            want = entry["fixed"]
            if not same(ref, want):
                raise MappingError(agent, key, f"the reference has {ref!r}, ours does {want!r} by construction "
                                               f"({entry.get('why', '')})")
            rows.append({"key": key, "kind": "fixed", "reference": ref, "ours": want})
            continue
        want = ours_value(agent, key, entry, ours)
        if not same(ref, want):
            raise MappingError(agent, key, f"the reference has {ref!r}, ours {entry['ours']} gives {want!r}")
        rows.append({"key": key, "kind": "ours", "reference": ref, "ours": want, "fields": entry["ours"]})
    for key in spec["keys"]:
        if key not in reference_config:
            raise MappingError(agent, key, "mapping.json has an entry the reference's config does not have "
                                           "(a different reference version?)")
    for const in spec.get("code", []):
        try:
            got = get_field(ours, const["ours"])
        except KeyError:
            raise MappingError(agent, const["ours"], "our config has no such field") from None
        if not same(got, const["value"]):
            raise MappingError(agent, const["ours"], f"the reference's code has {const['value']!r} "
                                                     f"({const['why']}); ours is {got!r}")
        rows.append({"key": const["ours"], "kind": "code", "reference": const["value"], "ours": got})
    return rows


def _spec(agent: str, table: dict[str, Any]) -> dict[str, Any]:
    if agent not in table or agent.startswith("_"):
        raise MappingError(agent, "-", f"no mapping for agent {agent!r} (have {[a for a in table if not a.startswith('_')]})")
    return table[agent]
