"""The static security checks ``make test`` runs do catch what they are there for.

``make test`` runs ruff's security rules (``S``) over the tree and :mod:`secrets_gate` over the
tracked files; these tests plant a finding and assert each check fails naming it, and hold
the suppressions to their rules (a rule id and a reason on every security ``# noqa``; only
test fakes in the secrets baseline).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.reliability.secrets_gate import BASELINE, ROOT

BIN = Path(sys.executable).parent


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.secrets_gate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_secrets_gate_fails_on_a_new_secret_and_names_file_line_and_type(tmp_path: Path) -> None:
    leaked = tmp_path / "settings_local.py"
    leaked.write_text(
        "REGION = 'eu-west-1'\n"
        "AWS_ACCESS_KEY_ID = 'AKIAZ7QXJ4TNEXAMPLE9'\n"  # pragma: allowlist secret
        "db_password = 'pX9#kq2!Lm7$wR4z'\n"  # pragma: allowlist secret
        "-----BEGIN RSA PRIVATE KEY-----\n",  # pragma: allowlist secret
        encoding="utf-8",
    )
    clean = tmp_path / "clean.py"
    clean.write_text("TOKEN_URL = 'https://accounts.spotify.com/api/token'\n", encoding="utf-8")

    result = gate(str(leaked), str(clean))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{leaked}:2: AWS Access Key" in result.stdout
    assert f"{leaked}:3: Secret Keyword" in result.stdout
    assert f"{leaked}:4: Private Key" in result.stdout
    assert str(clean) not in result.stdout and "pragma: allowlist secret" in result.stdout

    allowed = gate(str(clean))
    assert allowed.returncode == 0 and "nothing new beyond .secrets.baseline" in allowed.stdout


def test_recorded_api_answers_are_checked_for_credential_keys(tmp_path: Path) -> None:
    """The data folders detect-secrets skips (too slow) still fail on a recorded token response."""
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))
    exclude = next(f for f in baseline["filters_used"] if f["path"].endswith("should_exclude_file"))
    assert exclude["pattern"] == [r"^(tests/fixtures/spotify_api|include/sample_data)/.*\.json$"]
    exclude["pattern"] = [re.escape(str(tmp_path)) + r"/.*\.json$"]
    moved = tmp_path / "baseline.json"
    moved.write_text(json.dumps(baseline), encoding="utf-8")
    token = tmp_path / "token_response.json"
    token.write_text(json.dumps({"token_type": "Bearer", "access_token": "BQDx-recorded", "expires_in": 3600}))
    page = tmp_path / "items_page.json"
    page.write_text(json.dumps({"items": [{"track": {"id": "4Z9Yokp1zpmlJhjrjzQpSz", "name": "password"}}]}))

    result = gate("--baseline", str(moved), str(token), str(page))
    assert result.returncode == 1
    assert f"{token}: credential-named key '$.access_token' has a value" in result.stdout
    assert str(page) not in result.stdout


def test_the_secrets_baseline_holds_only_test_fakes() -> None:
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))
    assert baseline["results"], "the baseline lists the known test fakes"
    assert all(name.startswith("tests/") for name in baseline["results"]), sorted(baseline["results"])


def test_ruff_security_rules_with_the_project_config_fail_on_a_planted_finding(tmp_path: Path) -> None:
    """ruff's S rules (bandit's, ported) are the security lint: a shell injection fails it."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import subprocess\n\n\ndef run(user_input):\n    return subprocess.call('ls ' + user_input, shell=True)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", planted],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and f"{planted}:5:12: S602" in result.stdout, result.stdout + result.stderr


def test_every_security_suppression_names_its_rule_and_says_why() -> None:
    """``# noqa: S608 - <why>``: only the named rule is silenced, and the reason is on the line."""
    lines = [
        (path, number, line)
        for folder in ("include", "dags", "plugins", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"#\s*noqa\b.*\bS\d{3}", line)
    ]
    assert lines, "the project justifies its security findings inline"
    for path, number, line in lines:
        assert re.search(r"#\s*noqa: S\d{3}(, S\d{3})* - \S", line), f"{path}:{number}: {line.strip()}"
