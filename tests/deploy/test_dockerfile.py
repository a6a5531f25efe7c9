"""The Dockerfile: hadolint, its base image against the pinned Airflow, its lock and build context.

No container engine runs here, so the image is not built; what the build depends on is
checked instead: the base tag, the lock it installs, and that .dockerignore lets the
copied files into the build context (and keeps .env out of it).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import PROJECT, clean_env, run, tool

DOCKERFILE = PROJECT / "Dockerfile"
IMAGE_LOCK = PROJECT / "deploy" / "docker" / "image-requirements.txt"


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def direct_pins() -> dict[str, str]:
    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    out: dict[str, str] = {}
    for dep in map(Requirement, deps):
        spec = str(dep.specifier)
        assert spec.startswith("=="), dep
        out[canonicalize_name(dep.name)] = spec[2:]
    return out


def hadolint(path: Path) -> tuple[int, str]:
    proc = run([tool("hadolint"), "--no-color", "--failure-threshold", "info", path], env=clean_env(), cwd=path.parent)
    return proc.returncode, proc.stdout + proc.stderr


def test_hadolint_passes_without_any_finding() -> None:
    code, output = hadolint(DOCKERFILE)
    assert code == 0, output
    assert output.strip() == ""


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM apache/airflow:latest\nRUN pip install requests\n", encoding="utf-8")
    code, output = hadolint(bad)
    assert code != 0
    assert "DL3007" in output  # the `latest` tag
    assert "DL3013" in output  # an unpinned pip package


def test_base_image_is_the_pinned_airflow_on_python_312() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert len(froms) == 1
    airflow = direct_pins()["apache-airflow"]
    assert froms[0] == f"apache/airflow:slim-{airflow}-python3.12"


def test_image_runs_as_the_airflow_user_and_keeps_secrets_out() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users[-1] == "50000"  # the official image's airflow user
    assert not re.search(r"^(ARG|ENV)\s+\S*(SECRET|PASSWORD|TOKEN|KEY)\S*", text, re.M | re.I)
    assert "AIRFLOW_CONN_" not in text


def test_image_lock_is_the_runtime_lock_plus_the_postgres_driver() -> None:
    runtime, image, direct = pins(PROJECT / "requirements.txt"), pins(IMAGE_LOCK), direct_pins()
    # Installing it never changes the base image's Airflow.
    assert image["apache-airflow"] == image["apache-airflow-core"] == direct["apache-airflow"]
    for name, version in direct.items():
        assert image.get(name) == version, f"{name}: image lock has {image.get(name)}, pyproject {version}"
    drift = {n: (runtime[n], image[n]) for n in runtime.keys() & image.keys() if runtime[n] != image[n]}
    assert not drift, f"image lock differs from requirements.txt (run `make lock-image`): {drift}"
    # The compose stack's metadata DB URL is postgresql+psycopg2.
    assert "psycopg2-binary" in image
    assert "apache-airflow-providers-postgres" in image


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_nothing_secret() -> None:
    rules = [
        line.strip()
        for line in (PROJECT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if (
                fnmatch.fnmatch(path, pattern)
                or path.startswith(pattern + "/")
                or fnmatch.fnmatch(path, pattern + "/*")
            ):
                keep = negate
        return keep

    sources = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            sources += parts[:-1]
    assert sources, "no COPY in the Dockerfile"
    for source in sources:
        assert (PROJECT / source).exists(), source
        assert included(source), f"{source} is copied but .dockerignore keeps it out of the build context"
    for private in (".env", ".venv/bin/python", "lake/catalog.duckdb", ".airflow/airflow.db", "build/mwaa"):
        assert not included(private), private
