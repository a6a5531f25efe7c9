"""include/ and dags/ use only Airflow's public modules: no import of a module (or a name) with a
part starting with ``_``, which an Airflow minor release may move or remove
(``airflow.sdk._shared...``, ``airflow.sdk.api.datamodels._generated``)."""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCES = [PROJECT / "include", PROJECT / "dags"]


def airflow_imports(path: Path) -> set[str]:
    """Every Airflow module and name a file imports, anywhere in it (``module`` or ``module:name``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "airflow")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "airflow":
            found.update(f"{node.module}:{a.name}" for a in node.names)
    return found


def private(imported: str) -> bool:
    return any(part.startswith("_") for part in imported.replace(":", ".").split("."))


def test_no_private_airflow_import_in_include_or_dags() -> None:
    files = sorted(p for root in SOURCES for p in root.rglob("*.py"))
    imports = {str(p.relative_to(PROJECT)): airflow_imports(p) for p in files}
    assert "airflow.sdk:task" in imports["dags/spotify_playlist_etl.py"]  # the walk sees the DAG file's imports
    offenders = {name: sorted(filter(private, found)) for name, found in imports.items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_check_sees_private_modules_and_names_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import json\nfrom airflow.sdk.log import mask_secret\n"
        "def f():\n    from airflow.sdk._shared.secrets_masker import redact\n"
        "    from airflow.sdk.api.datamodels import _generated\n    import airflow._shared\n"
    )
    assert sorted(filter(private, airflow_imports(module))) == [
        "airflow._shared",
        "airflow.sdk._shared.secrets_masker:redact",
        "airflow.sdk.api.datamodels:_generated",
    ]
    assert not private("airflow.sdk.log:mask_secret")
