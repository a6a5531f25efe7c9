"""A target is one object: only the target classes ask which target runs.

The local/aws choice is made in :mod:`spotify_etl.targets` (one class per target, one map) and
the Airflow layer's one map of builders; nothing else in include/, dags/ and devtools/ compares a target's
name, a lake's scheme (``file``, ``s3``, ``s3://``) or asks which lake class it holds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
ROOTS = ("include", "dags", "devtools")
TARGETS_MODULE = Path("include/spotify_etl/targets.py")
TARGET_CLASSES = {"LocalTarget", "AwsTarget"}  # where the choice is made, in TARGETS_MODULE
TARGET_WORDS = {"local", "aws", "file", "s3"}  # the targets' and the lakes' schemes' names
TARGET_ATTRIBUTES = {"target", "protocol"}  # a lake's scheme is caught by its value
TARGET_TYPES = {"LocalLake", "S3Lake", "LocalTarget", "AwsTarget"}


def decisions(tree: ast.AST) -> Iterator[ast.expr]:
    """What the code decides on: every branch's condition, and every comparison outside one."""
    conditions: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.IfExp | ast.While):
            conditions.append(node.test)
        elif isinstance(node, ast.comprehension):
            conditions += node.ifs
        elif isinstance(node, ast.Match):
            conditions.append(node.subject)
    inside = {n for condition in conditions for n in ast.walk(condition)}
    yield from conditions
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Compare) and n not in inside)


def asks_for_the_target(expr: ast.expr) -> bool:
    """``expr`` names a target or scheme, reads a ``target`` or ``protocol`` attribute, or names a
    lake or target class (an isinstance check). Asking the target object (``target(settings).x``,
    an attribute the target classes declare) is the one way allowed."""
    factories = {id(n.func) for n in ast.walk(expr) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(expr):
        if id(node) in factories and getattr(node, "id", None) == "target":
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.lower() in TARGET_WORDS or "s3://" in node.value:
                return True
        elif isinstance(node, ast.Attribute) and node.attr in TARGET_ATTRIBUTES:
            return True
        elif isinstance(node, ast.Name) and node.id in TARGET_TYPES | TARGET_ATTRIBUTES:
            return True
    return False


def target_class_nodes(tree: ast.Module) -> set[ast.AST]:
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in TARGET_CLASSES]
    return {node for cls in classes for node in ast.walk(cls)}


def offences(root: Path) -> list[str]:
    """``file:line: condition`` of every decision on the target outside the target classes."""
    found = []
    for path in sorted(p for folder in ROOTS for p in (root / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        exempt = target_class_nodes(tree) if path.relative_to(root) == TARGETS_MODULE else set()
        found += [
            f"{path.relative_to(root)}:{expr.lineno}: {ast.unparse(expr)}"
            for expr in decisions(tree)
            if expr not in exempt and asks_for_the_target(expr)
        ]
    return found


def maps_naming_every_target(root: Path) -> list[str]:
    """Files with a dict literal keyed by every target's name."""
    found = []
    for path in sorted(p for folder in ROOTS for p in (root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            keys = {k.value for k in getattr(node, "keys", []) if isinstance(k, ast.Constant)}
            if isinstance(node, ast.Dict) and {"local", "aws"} <= keys:
                found.append(str(path.relative_to(root)))
    return found


def test_only_the_target_classes_decide_on_the_target() -> None:
    assert offences(PROJECT) == []


def test_the_targets_are_named_in_one_map_in_the_core_and_one_in_the_airflow_layer() -> None:
    from spotify_etl.airflow.targets import BUILDERS
    from spotify_etl.targets import TARGETS

    assert maps_naming_every_target(PROJECT) == [
        "include/spotify_etl/airflow/targets.py",
        "include/spotify_etl/targets.py",
    ]
    assert list(BUILDERS) == list(TARGETS)


def test_the_walk_finds_each_way_of_asking(tmp_path: Path) -> None:
    module = tmp_path / "include" / "m.py"
    module.parent.mkdir()
    (tmp_path / "dags").mkdir()
    module.write_text(
        "def f(settings, lake, url, con):\n"
        "    if settings.target == 'aws':\n"
        "        pass\n"
        "    urls = [u for u in url if lake.protocol != 'file']\n"
        "    sample = con is None and settings.target == 'local'\n"
        "    while url.startswith('s3://'):\n"
        "        url = url[1:]\n"
        "    return url if isinstance(lake, S3Lake) else None\n"
        "def h(settings):\n"
        "    return 1 if target(settings).on_this_machine else 2\n"  # asks the target object: allowed
    )
    assert sorted(o.split(": ", 1)[1] for o in offences(tmp_path)) == [
        "isinstance(lake, S3Lake)",
        "lake.protocol != 'file'",
        "settings.target == 'aws'",
        "settings.target == 'local'",
        "url.startswith('s3://')",
    ]
    module.write_text("def g(parts):\n    return parts.scheme == 'https' and parts.port in (443, None)\n")
    assert offences(tmp_path) == []  # a URL's scheme is not the lake's
