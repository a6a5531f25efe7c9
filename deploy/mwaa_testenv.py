"""The local stand-in for an MWAA environment that ``make test-mwaa`` runs the tests in.

MWAA's image installs Airflow and its own packages under Apache Airflow's constraints file
for its Airflow and Python versions, then the bundle's ``requirements.txt`` under the same
file (aws/amazon-mwaa-docker-images: ``images/airflow/<version>/bootstrap/02-airflow/
001-install-required-pip-packages.sh`` and ``python/mwaa/utils/user_requirements.py``).
``make test-mwaa`` repeats that in a Python 3.12 virtualenv, offline but for PyPI: the
versions come from ``deploy/mwaa/constraints-<airflow>-py<python>.txt``, the lines of that
constraints file for every package this environment installs (an excerpt, kept in the
repository so the install needs no download), plus MWAA's own pins. The test tools go on
top at the dev lock's versions where neither pins them.

    python -m deploy.mwaa_testenv requirements DIR   # DIR/requirements.txt, DIR/dev-pins.txt
    python -m deploy.mwaa_testenv check              # in the installed environment
    python -m deploy.mwaa_testenv excerpt FULL_FILE  # regenerate the excerpt
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Collection
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.mwaa_bundle import (
    CONSTRAINTS_EXCERPT,
    CONSTRAINTS_URL,
    MWAA_AIRFLOW_VERSION,
    MWAA_PYTHON,
    PROJECT,
    mwaa_requirements,
    pins,
    requirement_names,
)

# What MWAA's 3.3.1 image installs before requirements.txt (the bootstrap script above), less
# what needs build headers or serves only MWAA's own services: psycopg2 and pycurl (sdists
# needing libpq/libcurl), celery[sqs] (pycurl), boto3-stubs (type stubs).
IMAGE_PACKAGES = (
    f"apache-airflow[celery,statsd]=={MWAA_AIRFLOW_VERSION}",
    f"apache-airflow-core[gunicorn]=={MWAA_AIRFLOW_VERSION}",
    "apache-airflow-providers-amazon[aiobotocore]",
    "apache-airflow-providers-postgres",
    "apache-airflow-providers-fab",
    "apache-airflow-providers-standard",
    "watchtower",
    "fluent-logger",
    "virtualenv",
)
# MWAA's pins that Airflow's constraints file does not carry: its mwaa_essential_constraints.txt
# (Airflow, fluent-logger) and its image's bill of materials (Airflow's core and task SDK).
MWAA_PINS = (
    f"apache-airflow=={MWAA_AIRFLOW_VERSION}",
    f"apache-airflow-core=={MWAA_AIRFLOW_VERSION}",
    "apache-airflow-task-sdk==1.3.1",
    "fluent-logger==0.11.1",
)
# From the dev extra, with its pins: what the tests of `make test-mwaa` need beyond the runtime.
TEST_TOOLS = frozenset(
    canonicalize_name(n) for n in ("pytest", "pytest-timeout", "pytest-xdist", "pytest-httpserver", "moto")
)

_PACKAGES_LINE = "# packages: "


def packages(project: Path = PROJECT, constrained: Collection[str] | None = None) -> list[str]:
    """What the environment installs: MWAA's image, the bundle's requirements.txt, the test tools."""
    bundle = [line for line in mwaa_requirements(project, constrained) if not line.startswith("-")]
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    tools = [
        r
        for r in data["project"]["optional-dependencies"]["dev"]
        if canonicalize_name(Requirement(r).name) in TEST_TOOLS
    ]
    return [*IMAGE_PACKAGES, *bundle, *tools]


def recorded_packages(path: Path = CONSTRAINTS_EXCERPT) -> list[str]:
    """The package names the excerpt was cut for (its header), to tell when it is stale."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_PACKAGES_LINE):
            return line.removeprefix(_PACKAGES_LINE).split()
    return []


def package_names(reqs: list[str]) -> list[str]:
    return sorted({canonicalize_name(Requirement(r).name) for r in reqs})


def dev_pins(project: Path, pinned: Collection[str]) -> dict[str, str]:
    """The dev lock's pins of the packages that neither ``pinned`` (a constraints file) nor MWAA_PINS pin."""
    mwaa = {canonicalize_name(Requirement(r).name) for r in MWAA_PINS}
    return {
        n: v for n, v in sorted(pins(project / "requirements-dev.txt").items()) if n not in pinned and n not in mwaa
    }


def _pin_lines(found: dict[str, str]) -> str:
    return "".join(f"{n}=={v}\n" for n, v in found.items())


def write_requirements(out: Path, project: Path = PROJECT) -> Path:
    if package_names(packages(project)) != recorded_packages():
        raise SystemExit(
            f"{CONSTRAINTS_EXCERPT.relative_to(PROJECT)} was cut for other packages than the environment now installs; "
            f"regenerate it from a download of {CONSTRAINTS_URL}: python -m deploy.mwaa_testenv excerpt <that file>"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "dev-pins.txt").write_text(_pin_lines(dev_pins(project, pins(CONSTRAINTS_EXCERPT))), encoding="utf-8")
    requirements = out / "requirements.txt"
    requirements.write_text(
        "\n".join(
            [
                f"--constraint {CONSTRAINTS_EXCERPT}",
                f"--constraint {out.resolve() / 'dev-pins.txt'}",
                *packages(project),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return requirements


def check(project: Path = PROJECT, constraints: Path = CONSTRAINTS_EXCERPT) -> list[str]:
    """Problems of the running environment: a version MWAA's would not have, or a package nothing pins."""
    mwaa = pins(constraints)
    dev = dev_pins(project, mwaa)
    problems = []
    for dist in importlib.metadata.distributions():
        name, version = canonicalize_name(dist.metadata["Name"]), dist.version
        if name == "spotify-etl":
            continue
        if name in mwaa and mwaa[name] != version:
            problems.append(f"{name} {version} installed, MWAA has {mwaa[name]}")
        elif name not in mwaa and name not in dev:
            problems.append(f"{name} {version} is pinned neither by {constraints.name} nor by requirements-dev.txt")
    return problems


def excerpt(full: Path, project: Path = PROJECT) -> str:
    """The excerpt of Airflow's full constraints file ``full`` for what the environment installs."""
    full_pins, lines = pins(full), full.read_text(encoding="utf-8").splitlines()
    reqs = packages(project, full_pins)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        (Path(tmp) / "dev.txt").write_text(_pin_lines(dev_pins(project, full_pins)), encoding="utf-8")
        subprocess.run(  # noqa: S603 - the uv of the project's .venv (make venv), fixed arguments
            [str(PROJECT / ".venv" / "bin" / "uv"), "pip", "compile", "--quiet", "--no-python-downloads",
             "--python-version", MWAA_PYTHON, "--python-platform", "linux", "-c", str(full), "-c", f"{tmp}/dev.txt",
             f"{tmp}/in.txt", "-o", f"{tmp}/out.txt"],
            check=True,
        )  # fmt: skip
        resolved = pins(Path(tmp) / "out.txt")
    kept = [line for line in lines if set(requirement_names([line])) & resolved.keys()]
    return (
        "\n".join(
            [
                f"# Amazon MWAA {MWAA_AIRFLOW_VERSION} on Python {MWAA_PYTHON}: the versions of every package `make test-mwaa` installs",
                "# that MWAA pins. Written by `python -m deploy.mwaa_testenv excerpt <file>`; do not edit.",
                "#",
                "# First, verbatim, the lines of Apache Airflow's constraints file, which MWAA's image and the",
                "# bundle's requirements.txt install under:",
                f"#   {CONSTRAINTS_URL}",
                f"# cut from the copy given (sha256 {hashlib.sha256(full.read_bytes()).hexdigest()}), e.g. MWAA's own:",
                f"#   aws/amazon-mwaa-docker-images images/airflow/{MWAA_AIRFLOW_VERSION}/etc/airflow_constraints.txt",
                "# Then MWAA's own pins, which that file does not carry (deploy/mwaa_testenv.py MWAA_PINS).",
                "# Packages this was cut for (MWAA's image, the bundle's requirements.txt, the test tools):",
                _PACKAGES_LINE + " ".join(package_names(reqs)),
                *kept,
                *MWAA_PINS,
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("requirements").add_argument("out", type=Path)
    sub.add_parser("check")
    sub.add_parser("excerpt").add_argument("full", type=Path, help="Airflow's constraints file, downloaded")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        print(write_requirements(args.out))
    elif args.command == "check":
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        versions = {
            n: importlib.metadata.version(n)
            for n in (
                "apache-airflow",
                "apache-airflow-providers-amazon",
                "apache-airflow-providers-common-sql",
                "pyarrow",
                "s3fs",
                "duckdb",
            )
        }
        print(
            f"Python {sys.version.split()[0]}, MWAA's versions: " + ", ".join(f"{n} {v}" for n, v in versions.items())
        )
    else:
        CONSTRAINTS_EXCERPT.write_text(excerpt(args.full), encoding="utf-8")
        print(CONSTRAINTS_EXCERPT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
