"""The GitHub Actions workflows (.github/workflows): actionlint, and what they must do.

GitHub cannot be reached from here, so actionlint (with shellcheck on every ``run:`` script)
is what checks the workflows before they reach it. Actions are pinned to a commit with the
release beside it (``@<sha>  # v7.0.1``); actionlint knows the inputs of popular actions by
major version only, so the inputs are checked on a copy that names ``@v7`` instead.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import PROJECT, clean_env, run, tool

WORKFLOWS = PROJECT / ".github" / "workflows"
PINNED = re.compile(r"^(\s*-?\s*uses:\s*)([\w.-]+/[\w./-]+)@([0-9a-f]{40})(\s+#\s*v(\d+)\.\d+\.\d+)\s*$")


def actionlint(*args: str | Path, stdin: str | None = None) -> tuple[int, str]:
    proc = run(
        [tool("actionlint"), "-oneline", "-shellcheck", tool("shellcheck"), *args],
        cwd=PROJECT,
        env=clean_env(),
        input=stdin,
    )
    return proc.returncode, proc.stdout + proc.stderr


def load(name: str) -> dict[Any, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_actionlint_passes_on_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {f.name for f in files} >= {"ci.yml", "deploy.yml"}
    # -pyflakes= : no step runs Python inline (shell: python), so there is nothing for it.
    code, out = actionlint("-pyflakes=", *files)
    assert code == 0, out


def test_actionlint_checks_the_inputs_of_the_pinned_actions_at_their_major_version() -> None:
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        copy = []
        for line in lines:
            if "uses:" in line and "uses: ./" not in line:
                pinned = PINNED.match(line)
                assert pinned, f"{path.name}: {line.strip()!r} is not pinned as `owner/repo@<commit sha>  # vX.Y.Z`"
                line = f"{pinned[1]}{pinned[2]}@v{pinned[5]}"
            copy.append(line)
        code, out = actionlint("-pyflakes=", "-stdin-filename", path.relative_to(PROJECT), "-", stdin="\n".join(copy))
        assert code == 0, out


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    # A script shellcheck flags (SC2086, unquoted variable) must fail the lint: proof that the
    # shellcheck integration is on and not silently skipped for want of the binary.
    bad = "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: ls $HOME\n"
    code, out = actionlint("-pyflakes=", "-stdin-filename", "bad.yml", "-", stdin=bad)
    assert code == 1 and "SC2086" in out, out


def test_ci_runs_make_test_as_its_two_halves() -> None:
    """make test = make check + make test-mwaa (Makefile); CI runs the halves as two jobs."""
    makefile = (PROJECT / "Makefile").read_text()
    assert re.search(r"^test: browser \$\(MWAA_STAMP\) check test-mwaa$", makefile, re.M)
    jobs = load("ci.yml")["jobs"]
    assert [s.get("run") for s in steps(jobs["test"]) if s.get("run", "").startswith("make ")] == ["make check"]
    assert [s.get("run") for s in steps(jobs["test-mwaa"]) if s.get("run", "").startswith("make ")] == [
        "make test-mwaa"
    ]


def test_make_test_says_what_is_missing_before_running_anything(tmp_path: Path) -> None:
    """Without the UI test's browser (and no way to install it) make test stops first, saying so.

    Run on a copy of the Makefile in an empty folder: were the check ever not first, make
    would fail there on the missing lock files instead of running the suite.
    """
    (tmp_path / "Makefile").write_bytes((PROJECT / "Makefile").read_bytes())
    missing = tmp_path / "no-such-chromium"
    proc = run(["make", "--no-print-directory", "test", f"CHROMIUM_BIN={missing}"], cwd=tmp_path, env=clean_env())
    assert proc.returncode != 0
    assert f"needs a Chromium: {missing} is missing" in proc.stderr, proc.stderr
    assert "CHROMIUM_BIN=/path/to/chrome" in proc.stderr
    assert proc.stdout == "", proc.stdout  # nothing was run before the message


def test_ci_runs_make_check_with_python_311_on_push_and_pull_requests() -> None:
    ci = load("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    job = ci["jobs"]["test"]
    runs = [s.get("run", "") for s in steps(job)]
    assert "make check" in runs
    setup = next(s for s in steps(job) if str(s.get("uses", "")).startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"
    cache = next(s for s in steps(job) if str(s.get("uses", "")).startswith("actions/cache@"))
    assert cache["with"]["path"] == ".venv"
    assert "hashFiles('requirements-dev.txt', 'requirements-tools.txt')" in cache["with"]["key"]
    # The browser test's Chromium is found before the tests start.
    browser = runs.index(next(r for r in runs if "CHROMIUM_BIN" in r))
    assert browser < runs.index("make check")


def test_ci_runs_make_test_mwaa_with_python_312() -> None:
    job = load("ci.yml")["jobs"]["test-mwaa"]
    py312 = next(s for s in steps(job) if s.get("id") == "py312")
    assert py312["with"]["python-version"] == "3.12"
    step = next(s for s in steps(job) if s.get("run") == "make test-mwaa")
    assert step["env"]["PYTHON312"] == "${{ steps.py312.outputs.python-path }}"


def test_deploy_runs_on_release_tags_after_the_tests_with_oidc_and_no_stored_keys() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"] == {"push": {"tags": ["v*"]}}
    assert deploy["permissions"] == {"contents": "read"}  # the OIDC token only where it is used
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "test"
    assert job["permissions"]["id-token"] == "write"
    aws = next(s for s in steps(job) if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert steps(job).index(aws) < steps(job).index(next(s for s in steps(job) if "make deploy" in s.get("run", "")))
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    for stored in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert stored not in text
    make = next(s for s in steps(job) if "make deploy" in s.get("run", ""))
    # Repository variables reach the shell through the environment, never pasted into the script.
    assert make["env"]["DEPLOY_ARGS"] == "${{ vars.MWAA_DEPLOY_ARGS }}"
    assert "${{" not in make["run"]


def test_deploy_credentials_outlast_the_job_and_cloudformation_gets_its_service_role() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    aws = next(s for s in steps(job) if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    # configure-aws-credentials asks STS for one hour unless told; an MWAA environment can take
    # longer to create. 43,200 s is the most a role's MaxSessionDuration allows.
    assert job["timeout-minutes"] * 60 <= int(aws["with"]["role-duration-seconds"]) <= 43_200
    make = next(s for s in steps(job) if "make deploy" in s.get("run", ""))
    assert make["env"]["CFN_ROLE"] == "${{ vars.AWS_CFN_ROLE_ARN }}"
    assert "--role-arn $CFN_ROLE" in make["run"]
    check = next(s for s in steps(job) if s.get("name") == "Check the deploy settings")
    assert "AWS_CFN_ROLE_ARN" in check["run"] and check["env"]["CFN_ROLE"] == "${{ vars.AWS_CFN_ROLE_ARN }}"


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_job_has_a_timeout(name: str) -> None:
    for job_id, job in load(name)["jobs"].items():
        assert "uses" in job or job.get("timeout-minutes"), f"{name}: job {job_id} has no timeout-minutes"


def test_docs_state_the_coverage_threshold_make_test_enforces() -> None:
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    threshold = pyproject["tool"]["coverage"]["report"]["fail_under"]
    testing = (PROJECT / "docs" / "testing.md").read_text(encoding="utf-8")
    assert f"the threshold is {threshold}%" in testing
