"""The MWAA bundle of ``make mwaa-bundle``: its layout, its requirements, and the DAG imported from it.

The import runs in a fresh interpreter whose ``sys.path`` holds the bundle's dags folder
(as MWAA's does) and the virtualenv's site-packages, without the editable install of the
package: the DAG must then get ``spotify_etl`` from the bundle, its SQL and config too.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import mwaa_bundle, mwaa_testenv
from tests.deploy.conftest import PROJECT, clean_env, run

# Parses a dags folder with Airflow's own DagBag and reports what a DAG processor would see.
PROBE = r"""
import json, os, sys
from pathlib import Path

dags, isolate = Path(sys.argv[1]).resolve(), sys.argv[2] == "isolate"
if isolate:
    # Drop every other home of the package (the editable install's .pth entry).
    sys.path[:] = [p for p in sys.path if p and not (Path(p) / "spotify_etl").exists()]
sys.path.insert(0, str(dags))  # what MWAA does with its dags folder

from airflow.dag_processing.dagbag import DagBag

report = {}
for target, extra in (("local", {}), ("aws", {
        "SPOTIFY_ETL_S3_BUCKET": "lake-bucket",
        "SPOTIFY_ETL_CRAWLER_ROLE": "arn:aws:iam::123456789012:role/crawler"})):
    os.environ.update(SPOTIFY_ETL_TARGET=target, **extra)
    bag = DagBag(dag_folder=str(dags), safe_mode=False)
    report[target] = {
        "errors": {k: v[-2000:] for k, v in bag.import_errors.items()},
        "files": sorted(Path(f).relative_to(dags).as_posix() for f in bag.file_last_changed),
        "dags": {d.dag_id: sorted(d.task_ids) for d in bag.dags.values()},
    }

import spotify_etl
from spotify_etl import paths, quality, settings

report["package"] = spotify_etl.__file__
report["include_dir"] = str(paths.INCLUDE_DIR)
report["validation_sql_exists"] = quality.VALIDATION_SQL.is_file()
report["configured_playlists"] = settings.configured_playlists()  # the config file ships and parses
print("PROBE:" + json.dumps(report))
"""


def probe(dags: Path, home: Path, isolate: bool) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
    )
    # -I: no PYTHONPATH, no user site-packages, no script or working directory on sys.path;
    # -B: no __pycache__ written into the bundle.
    proc = run([sys.executable, "-I", "-B", "-c", PROBE, dags, "isolate" if isolate else "keep"], env=env, cwd=home)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE:")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("PROBE:"))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> mwaa_bundle.Bundle:
    return mwaa_bundle.build(tmp_path_factory.mktemp("mwaa") / "bundle")


@pytest.fixture(scope="module")
def from_bundle(bundle: mwaa_bundle.Bundle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return probe(bundle.dags, tmp_path_factory.mktemp("home-bundle"), isolate=True)


@pytest.fixture(scope="module")
def from_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return probe(PROJECT / "dags", tmp_path_factory.mktemp("home-repo"), isolate=False)


def test_dag_imports_from_the_bundle_alone(bundle: mwaa_bundle.Bundle, from_bundle: dict[str, Any]) -> None:
    assert Path(from_bundle["package"]).is_relative_to(bundle.dags / "spotify_etl")
    assert Path(from_bundle["include_dir"]) == bundle.dags
    assert from_bundle["validation_sql_exists"] is True
    for target in ("local", "aws"):
        assert from_bundle[target]["errors"] == {}, target
        assert list(from_bundle[target]["dags"]) == ["spotify_playlist_etl"]


def test_bundle_dag_has_the_repo_dags_tasks(from_bundle: dict[str, Any], from_repo: dict[str, Any]) -> None:
    for target in ("local", "aws"):
        assert from_repo[target]["errors"] == {}
        assert from_bundle[target]["dags"] == from_repo[target]["dags"], target
    # The aws target is what MWAA runs: Glue and Athena tasks instead of DuckDB's.
    aws_tasks = from_bundle["aws"]["dags"]["spotify_playlist_etl"]
    assert "athena_validation" in aws_tasks and "catalog.run_crawler" in aws_tasks
    assert from_bundle["configured_playlists"] == from_repo["configured_playlists"]


def test_airflowignore_keeps_the_library_out_of_parsing(
    bundle: mwaa_bundle.Bundle, from_bundle: dict[str, Any]
) -> None:
    dag_files = sorted(p.name for p in (PROJECT / "dags").glob("*.py"))
    # safe_mode is off in the probe, so only .airflowignore can have skipped the library.
    assert from_bundle["local"]["files"] == dag_files
    library = [p for p in (bundle.dags / "spotify_etl").rglob("*.py")]
    assert len(library) > 5


def test_bundle_layout(bundle: mwaa_bundle.Bundle) -> None:
    dags = bundle.dags
    assert (dags / "spotify_playlist_etl.py").read_bytes() == (
        PROJECT / "dags" / "spotify_playlist_etl.py"
    ).read_bytes()
    for folder in ("sql", "config", "sample_data"):
        assert (dags / folder).is_dir(), folder
    assert (dags / "sql" / "validate.sql").read_bytes() == (PROJECT / "include" / "sql" / "validate.sql").read_bytes()
    assert not list(dags.rglob("__pycache__")) and not list(dags.rglob("*.egg-info"))
    ignore = (dags / ".airflowignore").read_text(encoding="utf-8").splitlines()
    assert {"spotify_etl/", "sql/", "config/", "sample_data/"} <= set(ignore)
    assert bundle.startup_script.read_bytes() == (PROJECT / "deploy" / "mwaa" / "startup.sh").read_bytes()
    # plugins/ as it is (the Trends view), with the .airflowignore that keeps its app module out of plugin discovery.
    assert bundle.plugins_zip is not None
    shipped = sorted(
        p.relative_to(PROJECT / "plugins").as_posix()
        for p in (PROJECT / "plugins").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    with zipfile.ZipFile(bundle.plugins_zip) as zf:
        assert sorted(zf.namelist()) == shipped
        assert ".airflowignore" in shipped and "spotify_trends.py" in shipped
    # No development tooling in what MWAA runs: no launcher (make up is devtools/), no REST client.
    library = {p.relative_to(dags).as_posix(): p.read_text(encoding="utf-8") for p in dags.rglob("*.py")}
    assert not [name for name, text in library.items() if "airflow standalone" in text or "/api/v2" in text]
    assert "spotify_etl/local_airflow.py" not in library


def requirement_lines(bundle: mwaa_bundle.Bundle) -> list[str]:
    return [line for line in bundle.requirements.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_requirements_start_with_mwaas_constraint(bundle: mwaa_bundle.Bundle) -> None:
    lines = requirement_lines(bundle)
    assert lines[0] == (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
    )
    assert [line for line in lines if line.startswith("-")] == [lines[0]]


def test_requirements_add_only_what_mwaa_lacks(bundle: mwaa_bundle.Bundle) -> None:
    names = mwaa_bundle.requirement_names(requirement_lines(bundle))
    # Airflow and the providers MWAA's image installs are not listed; others (slack, openlineage) are.
    assert not set(names) & mwaa_bundle.PROVIDED_BY_MWAA
    constrained = mwaa_bundle.pins(mwaa_bundle.CONSTRAINTS_EXCERPT)
    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for dep in map(Requirement, deps):
        name = canonicalize_name(dep.name)
        if name in mwaa_bundle.PROVIDED_BY_MWAA:
            continue
        line = next(line for line in requirement_lines(bundle) if canonicalize_name(line.split("==")[0]) == name)
        # Exact pins, except where MWAA's constraints pin the package (a second pin would fail pip).
        expected = dep.name if name in constrained else f"{dep.name}{dep.specifier}"
        assert line == expected
    # The Amazon provider's [s3fs] extra is not in MWAA: its package is listed.
    assert "s3fs" in names


def test_requirements_match_mwaas_constraints(bundle: mwaa_bundle.Bundle) -> None:
    """What MWAA's pip gets: a pin only for packages its constraints leave free, the rest by name."""
    constrained = mwaa_bundle.pins(mwaa_bundle.CONSTRAINTS_EXCERPT)
    for line in requirement_lines(bundle)[1:]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in constrained:
            assert not req.specifier, f"{line}: MWAA's constraints pin {name}=={constrained[name]}"
        else:
            assert str(req.specifier).startswith("=="), line
    # The versions MWAA then installs, which make test-mwaa tests with.
    assert {n: constrained[n] for n in ("pyarrow", "s3fs", "apache-airflow-providers-amazon")} == {
        "pyarrow": "25.0.0",
        "s3fs": "2026.7.0",
        "apache-airflow-providers-amazon": "9.34.0",
    }
    assert constrained["apache-airflow"] == mwaa_bundle.MWAA_AIRFLOW_VERSION


def test_constraints_excerpt_is_cut_for_what_the_mwaa_environment_installs() -> None:
    assert mwaa_testenv.package_names(mwaa_testenv.packages()) == mwaa_testenv.recorded_packages()


def test_new_dependency_asks_for_a_new_excerpt(tmp_path: Path) -> None:
    project = _project_copy(tmp_path / "project")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace('"duckdb==', '"numpy==2.4.6",\n    "duckdb=='))
    shutil.copy(PROJECT / "requirements-dev.txt", project)
    with pytest.raises(SystemExit, match="regenerate it"):
        mwaa_testenv.write_requirements(tmp_path / "env", project)
    assert not (tmp_path / "env").exists()


def test_environment_check_names_versions_mwaa_lacks_and_unpinned_packages(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("pytest==0.1\n")
    (tmp_path / "requirements-dev.txt").write_text("")
    problems = mwaa_testenv.check(tmp_path, constraints)
    assert f"pytest {pytest.__version__} installed, MWAA has 0.1" in problems
    assert (
        f"pluggy {importlib.metadata.version('pluggy')} is pinned neither by constraints.txt nor by requirements-dev.txt"
        in problems
    )


def test_extras_of_provided_packages_are_expanded_from_metadata() -> None:
    added = mwaa_bundle._extra_requirements(Requirement("apache-airflow-providers-amazon[s3fs]==9.39.0"))
    assert [canonicalize_name(r.name) for r in added] == ["s3fs"]
    assert mwaa_bundle._extra_requirements(Requirement("spotipy==2.26.0")) == []


def test_unpinned_dependency_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["spotipy>=2"]\n')
    with pytest.raises(ValueError, match="not pinned"):
        mwaa_bundle.mwaa_requirements(tmp_path)


def _project_copy(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(PROJECT / "pyproject.toml", root)
    for folder in ("dags", "include", "deploy/mwaa"):
        shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root


def test_plugins_are_zipped_when_there_are_any(tmp_path: Path) -> None:
    project = _project_copy(tmp_path / "project")
    (project / "plugins" / "macros").mkdir(parents=True)
    (project / "plugins" / "macros" / "listing.py").write_text("X = 1\n")
    (project / "plugins" / ".airflowignore").write_text("macros/helpers.py\n")
    (project / "plugins" / ".gitkeep").write_text("")
    bundle = mwaa_bundle.build(tmp_path / "out", project=project)
    assert bundle.plugins_zip is not None
    with zipfile.ZipFile(bundle.plugins_zip) as zf:
        assert zf.namelist() == [".airflowignore", "macros/listing.py"]


def test_rebuild_replaces_the_old_bundle_but_never_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mwaa_bundle.main([str(out)])
    (out / "dags" / "stale_dag.py").write_text("old")
    mwaa_bundle.main([str(out)])
    assert not (out / "dags" / "stale_dag.py").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        mwaa_bundle.build(foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
