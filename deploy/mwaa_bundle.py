"""Build what Amazon MWAA consumes from this repository (``make mwaa-bundle``).

Layout of the bundle (uploaded by ``deploy/deploy.py``)::

    <out>/dags/                 -> s3://<source bucket>/dags/
        spotify_playlist_etl.py    every DAG file of dags/
        spotify_etl/               the package the DAG imports
        sql/ config/ sample_data/  the package's data folders, beside it as in include/
        .airflowignore             keeps the library out of DAG parsing
    <out>/requirements.txt      -> s3://<source bucket>/requirements.txt
    <out>/startup.sh            -> s3://<source bucket>/startup.sh
    <out>/plugins.zip           plugins/ (with its .airflowignore), only when it holds something

MWAA puts its dags folder on ``sys.path``, so ``import spotify_etl`` resolves to
``dags/spotify_etl``; ``paths.INCLUDE_DIR`` is the package's parent, which is why the
data folders are copied next to the package rather than somewhere else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "spotify_etl"

# The newest Airflow MWAA runs (aws/amazon-mwaa-docker-images) and that image's Python.
# The stack's AirflowVersion default is checked against this (tests/deploy).
MWAA_AIRFLOW_VERSION = "3.3.1"
MWAA_PYTHON = "3.12"
CONSTRAINTS_URL = (
    f"https://raw.githubusercontent.com/apache/airflow/constraints-{MWAA_AIRFLOW_VERSION}/constraints-{MWAA_PYTHON}.txt"
)

# Installed in every MWAA 3.x image before requirements.txt: listing them would at best do
# nothing and at worst fight MWAA's own pins (it refuses to change Airflow and its core
# providers). common-sql/common-compat/http come with the Amazon provider.
PROVIDED_BY_MWAA = frozenset(
    canonicalize_name(n)
    for n in (
        "apache-airflow",
        "apache-airflow-core",
        "apache-airflow-task-sdk",
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-celery",
        "apache-airflow-providers-common-compat",
        "apache-airflow-providers-common-io",
        "apache-airflow-providers-common-sql",
        "apache-airflow-providers-fab",
        "apache-airflow-providers-http",
        "apache-airflow-providers-postgres",
        "apache-airflow-providers-standard",
    )
)

# The lines of CONSTRAINTS_URL's file for every package MWAA's image, the bundle and `make test-mwaa`
# install, plus MWAA's own pins (written by deploy/mwaa_testenv.py, which explains it). pip on
# MWAA fails if requirements.txt pins a package to another version than the constraints file
# does, so what the file pins is listed by name and the constraints choose (pyarrow, s3fs...).
CONSTRAINTS_EXCERPT = PROJECT / "deploy" / "mwaa" / f"constraints-{MWAA_AIRFLOW_VERSION}-py{MWAA_PYTHON}.txt"
_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    """Canonical name -> version of every ``name==version`` line of a constraints or lock file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN_RE.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


# Not code and not needed on MWAA.
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".DS_Store")
_MARKER = ".mwaa-bundle"


@dataclass(frozen=True)
class Bundle:
    root: Path

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements.txt"

    @property
    def startup_script(self) -> Path:
        return self.root / "startup.sh"

    @property
    def plugins_zip(self) -> Path | None:
        path = self.root / "plugins.zip"
        return path if path.exists() else None


def project_requirements(project: Path = PROJECT) -> list[Requirement]:
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def _extra_requirements(req: Requirement) -> list[Requirement]:
    """What ``req``'s extras add, read from the installed distribution's metadata."""
    if not req.extras:
        return []
    requires = importlib.metadata.requires(req.name) or []
    added = []
    for line in requires:
        dep = Requirement(line)
        # A base dependency evaluates true without any extra; only the rest come from ``req.extras``.
        if (
            dep.marker
            and not dep.marker.evaluate({"extra": ""})
            and any(dep.marker.evaluate({"extra": extra}) for extra in req.extras)
        ):
            dep.marker = None
            added.append(dep)
    return added


def mwaa_requirements(project: Path = PROJECT, constrained: Collection[str] | None = None) -> list[str]:
    """requirements.txt lines for MWAA: the constraint, then what MWAA lacks, sorted.

    ``constrained``: the names the constraints file pins (default: those of the excerpt).
    """
    constrained = pins(CONSTRAINTS_EXCERPT) if constrained is None else constrained
    wanted: dict[str, str] = {}
    for req in project_requirements(project):
        name = canonicalize_name(req.name)
        deps = _extra_requirements(req) if name in PROVIDED_BY_MWAA else [req]
        for dep in deps:
            dep_name = canonicalize_name(dep.name)
            if dep_name in PROVIDED_BY_MWAA:
                continue
            if dep_name in constrained:
                wanted[dep_name] = dep.name
            else:
                spec = str(dep.specifier)
                if not spec.startswith("=="):
                    raise ValueError(f"{dep} is not pinned in pyproject.toml; MWAA would install whatever is newest")
                wanted[dep_name] = f"{dep.name}{spec}"
    return [f'--constraint "{CONSTRAINTS_URL}"', *(wanted[k] for k in sorted(wanted))]


def _data_dirs(include: Path) -> list[Path]:
    """The package's sibling data folders (sql, config, sample_data...), as settings expects them."""
    return sorted(
        p
        for p in include.iterdir()
        if p.is_dir() and p.name != PACKAGE and not p.name.endswith(".egg-info") and p.name != "__pycache__"
    )


def _prepare_out(out: Path) -> None:
    if out.exists():
        if any(out.iterdir()) and not (out / _MARKER).exists():
            raise FileExistsError(f"{out} is not empty and was not built by this script; refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / _MARKER).write_text("built by deploy/mwaa_bundle.py; deleted and rebuilt on every build\n")


def build(out: Path, project: Path = PROJECT) -> Bundle:
    bundle = Bundle(out.resolve())
    _prepare_out(bundle.root)
    include = project / "include"
    bundle.dags.mkdir()

    dag_files = sorted((project / "dags").glob("*.py"))
    if not dag_files:
        raise FileNotFoundError(f"no DAG files in {project / 'dags'}")
    for dag_file in dag_files:
        shutil.copy2(dag_file, bundle.dags / dag_file.name)
    shutil.copytree(include / PACKAGE, bundle.dags / PACKAGE, ignore=_COPY_IGNORE)
    data_dirs = _data_dirs(include)
    for folder in data_dirs:
        shutil.copytree(folder, bundle.dags / folder.name, ignore=_COPY_IGNORE)

    # Glob syntax (Airflow 3's default): a trailing slash ignores the whole folder.
    ignored = [PACKAGE, *(d.name for d in data_dirs)]
    (bundle.dags / ".airflowignore").write_text(
        "# The DAG's library and data: imported by the DAG, never DAGs themselves.\n"
        + "".join(f"{name}/\n" for name in ignored),
        encoding="utf-8",
    )

    bundle.requirements.write_text("\n".join(mwaa_requirements(project)) + "\n", encoding="utf-8")
    shutil.copy2(project / "deploy" / "mwaa" / "startup.sh", bundle.startup_script)

    plugin_files = (
        [
            p
            for p in sorted((project / "plugins").rglob("*"))
            # Dot files are editor and git leftovers, but .airflowignore tells the plugins manager what to skip.
            if p.is_file()
            and "__pycache__" not in p.parts
            and (not p.name.startswith(".") or p.name == ".airflowignore")
        ]
        if (project / "plugins").is_dir()
        else []
    )
    if plugin_files:
        with zipfile.ZipFile(bundle.root / "plugins.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for path in plugin_files:
                zf.write(path, path.relative_to(project / "plugins").as_posix())
    return bundle


def describe(bundle: Bundle) -> str:
    files = sorted(p.relative_to(bundle.root).as_posix() for p in bundle.root.rglob("*") if p.is_file())
    reqs = [line for line in bundle.requirements.read_text(encoding="utf-8").splitlines() if line]
    return "\n".join(
        [
            f"MWAA bundle in {bundle.root} ({len(files)} files)",
            f"  dags/         {sum(1 for f in files if f.startswith('dags/'))} files",
            "  requirements: " + "; ".join(reqs),
            f"  startup.sh    {bundle.startup_script.exists()}",
            f"  plugins.zip   {bundle.plugins_zip is not None}",
        ]
    )


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def requirement_names(lines: list[str]) -> list[str]:
    """Canonical names of the packages a requirements file lists (options and comments skipped)."""
    names: list[str] = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME_RE.match(line)
        if match:
            names.append(canonicalize_name(match.group(0)))
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=PROJECT / "build" / "mwaa", help="output folder")
    args = parser.parse_args(argv)
    bundle = build(args.out)
    print(describe(bundle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
