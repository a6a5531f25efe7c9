"""Spotify Web API's ``fields`` filter: what the API answers to a filter such as
:func:`spotify_etl.raw_format.items_fields`.

The local Spotify server in the tests serves its answers through it, and the benchmark's
generator (``bench/generate.py``) writes exactly the fields the extract asks for, so both
see what Spotify sends. Not part of the runtime package: only tests and the benchmark use it.
"""

from __future__ import annotations

import re
from typing import Any


def parse_fields(spec: str) -> dict[str, Any]:
    """``"a,b.c,d(e,f(g))"`` -> ``{"a": None, "b": {"c": None}, "d": {"e": None, "f": {"g": None}}}``."""
    tokens = re.findall(r"[^,().]+|[,().]", spec.replace(" ", ""))
    pos = 0

    def field_list() -> dict[str, Any]:
        nonlocal pos
        tree: dict[str, Any] = {}
        while pos < len(tokens) and tokens[pos] not in ",)":
            name = tokens[pos]
            pos += 1
            sub: dict[str, Any] | None = None
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                sub = field_list()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise ValueError(f"unbalanced parentheses in fields {spec!r}")
                pos += 1
            elif pos < len(tokens) and tokens[pos] == ".":
                pos += 1
                sub = field_list_one()
            merge(tree, name, sub)
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
        return tree

    def field_list_one() -> dict[str, Any]:
        nonlocal pos
        name = tokens[pos]
        pos += 1
        sub = None
        if pos < len(tokens) and tokens[pos] == ".":
            pos += 1
            sub = field_list_one()
        elif pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            sub = field_list()
            pos += 1
        return {name: sub}

    def merge(tree: dict[str, Any], name: str, sub: dict[str, Any] | None) -> None:
        if name in tree and isinstance(tree[name], dict) and isinstance(sub, dict):
            for key, value in sub.items():
                merge(tree[name], key, value)
        else:
            tree[name] = sub

    result = field_list()
    if pos != len(tokens):
        raise ValueError(f"cannot parse fields {spec!r}")
    return result


def apply_fields(tree: dict[str, Any] | None, value: Any) -> Any:
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(tree, v) for v in value]
    if isinstance(value, dict):
        return {k: apply_fields(tree[k], v) for k, v in value.items() if k in tree}
    return value
