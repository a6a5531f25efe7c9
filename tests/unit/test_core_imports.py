"""The core library never imports Airflow: only the Airflow layer (spotify_etl/airflow/) does."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "spotify_etl"
LAYER = PACKAGE / "airflow"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if LAYER not in p.parents)


def test_no_core_module_imports_airflow_or_the_layer() -> None:
    core = core_modules()
    assert {p.name for p in core} >= {"ids.py", "settings.py", "lake.py", "transform.py", "quality.py", "pipeline.py"}

    def forbidden(module: str) -> bool:
        return module.split(".")[0] == "airflow" or module.startswith("spotify_etl.airflow")

    offenders = {str(p.relative_to(PACKAGE)): sorted(filter(forbidden, imported_modules(p))) for p in core}
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from airflow.sdk import task\n    import airflow.providers.amazon\n")
    assert imported_modules(module) == {"airflow.sdk", "airflow.providers.amazon"}


def test_the_layer_is_what_imports_airflow() -> None:
    assert any(m.startswith("airflow.") for m in imported_modules(LAYER / "tasks.py"))


def test_the_modules_doing_the_work_take_settings_as_arguments() -> None:
    """The extract, transform, publish and quality never read the environment (spotify_etl.settings):
    their caller passes what they need (the transform's memory limit, say)."""
    workers = ["extract.py", "chunks.py", "transform.py", "publish.py", "quality.py", "lake.py", "plan.py"]
    found = {name: imported_modules(PACKAGE / name) for name in workers}
    assert {name: "spotify_etl.settings" for name, modules in found.items() if "spotify_etl.settings" in modules} == {}
    assert "spotify_etl.settings" in imported_modules(PACKAGE / "pipeline.py")  # the walk sees it where it is
