"""Code-shape rules checked by walking the source of include/ and dags/ (as test_core_imports does for imports)."""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
ERRORS = PROJECT / "include" / "spotify_etl" / "errors.py"
FLAGS = {"retryable", "stops_chunk"}  # PipelineError's flags (spotify_etl.errors)


def sources() -> list[Path]:
    return sorted(p for folder in ("include", "dags") for p in (PROJECT / folder).rglob("*.py"))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _assigned(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return node.targets
    return [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []


def flag_assignments(tree: ast.Module) -> list[int]:
    """Lines that set an error flag other than as a class keyword: a class-body attribute
    (``retryable = False``) or an instance's (``err.retryable = ...``)."""
    lines = set()
    for node in ast.walk(tree):
        body = node.body if isinstance(node, ast.ClassDef) else []
        lines |= {s.lineno for s in body for t in _assigned(s) if isinstance(t, ast.Name) and t.id in FLAGS}
        if isinstance(node, ast.stmt):
            lines |= {node.lineno for t in _assigned(node) if isinstance(t, ast.Attribute) and t.attr in FLAGS}
    return sorted(lines)


def test_error_flags_are_declared_only_in_class_lines() -> None:
    paths = [p for p in sources() if p != ERRORS]  # errors.py declares the defaults and applies the keywords
    assert len(paths) > 30
    found = {str(p.relative_to(PROJECT)): flag_assignments(parsed(p)) for p in paths}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_the_flag_walk_sees_a_class_attribute_and_an_instance_assignment() -> None:
    code = "class E(Exception):\n    retryable = False\n\ndef f(err):\n    err.stops_chunk = True\n    retryable = 1\n"
    assert flag_assignments(ast.parse(code)) == [2, 5]  # a local variable of that name is no flag
    assert flag_assignments(ast.parse("class E(Exception, retryable=False):\n    pass\n")) == []


MAX_FUNCTION_LINES = 60


def long_functions(tree: ast.Module, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """Each function (or method) of more than ``limit`` lines from its ``def`` (docstring and nested
    functions included; decorators, such as the DAG's arguments, not): name -> lines."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if (lines := node.end_lineno - node.lineno + 1) > limit:  # type: ignore[operator]
                found[node.name] = lines
    return found


def test_no_function_is_over_sixty_lines() -> None:
    found = {
        f"{path.relative_to(PROJECT)}:{name}": lines
        for path in sources()
        for name, lines in long_functions(parsed(path)).items()
    }
    assert found == {}


def test_the_length_walk_counts_from_the_def_and_sees_nested_functions() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(4))
    code = f"@decorator\ndef outer():\n    def inner():\n{body.replace('    ', '        ')}    return inner\n"
    assert long_functions(ast.parse(code), limit=6) == {"outer": 7}
    assert long_functions(ast.parse(code), limit=4) == {"outer": 7, "inner": 5}
    assert long_functions(ast.parse(code), limit=7) == {}


def side_xcoms(tree: ast.Module) -> list[str]:
    """Every XCom a task writes beside its return value: the key of each ``xcom_push`` call (its
    source text) and each ``multiple_outputs`` argument (a key per item of the result)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "xcom_push":
            key = next((k.value for k in node.keywords if k.arg == "key"), node.args[0] if node.args else None)
            found.append(f"xcom_push({ast.unparse(key) if key else ''})")
        if isinstance(node, ast.keyword) and node.arg == "multiple_outputs":
            found.append(f"multiple_outputs={ast.unparse(node.value)}")
    return found


def test_tasks_pass_one_value_each_no_side_xcoms() -> None:
    """The plan travels as one value (its task's result); the one push left is a failed chunk's own
    result (spotify_etl.airflow.tasks.run_extract_chunk): a failed task returns nothing, and the
    transform and check_extracts still need what the chunk landed and which playlists failed."""
    found = {str(p.relative_to(PROJECT)): side_xcoms(parsed(p)) for p in sources()}
    assert {name: keys for name, keys in found.items() if keys} == {
        "include/spotify_etl/airflow/tasks.py": ["xcom_push('return_value')"]
    }


def test_the_xcom_walk_sees_keyword_and_positional_keys_and_multiple_outputs() -> None:
    code = (
        "@task(multiple_outputs=True)\ndef plan(ti):\n    ti.xcom_push(key='mode', value=1)\n"
        "    ti.xcom_push('message', 2)\n    ti.xcom_push(key=KEY, value=3)\n    ti.xcom_pull(key='mode')\n"
    )
    assert sorted(side_xcoms(ast.parse(code))) == [
        "multiple_outputs=True",
        "xcom_push('message')",
        "xcom_push('mode')",
        "xcom_push(KEY)",
    ]
