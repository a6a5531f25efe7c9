"""``make test``'s secret scan: no credential in a tracked file unless ``.secrets.baseline`` lists it.

detect-secrets scans every file git tracks with the plugins and filters stored in the
baseline. A finding the baseline does not hold fails the check, naming file, line and
type; findings are compared by file, hash and type, so a known line that moves is not
new. Intentional fakes in tests carry an inline ``pragma: allowlist secret`` comment.

The recorded Spotify API answers (``tests/fixtures/spotify_api``, ``include/sample_data``)
are excluded in the baseline: detect-secrets needs minutes for them on this machine's two
cores. They are public API bodies, and are checked here instead for what a carelessly
recorded token response would add: credential-named keys with a value.

Usage: ``python -m tests.reliability.secrets_gate [--baseline FILE] [FILE...]`` (default:
every tracked file). Exit 0: nothing new; 1: findings (printed); 2: cannot run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / ".secrets.baseline"
CREDENTIAL_KEYS = re.compile(
    r"(access|refresh|id)_token|client_secret|password|passwd|authorization|api_?key|secret_access_key", re.I
)


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return [name for name in listing.stdout.split("\0") if name and (ROOT / name).is_file()]


def _credential_values(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            if CREDENTIAL_KEYS.search(str(key)) and isinstance(sub, str) and sub:
                yield f"{where}.{key}"
            yield from _credential_values(sub, f"{where}.{key}")
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _credential_values(sub, f"{where}[{index}]")


def scan(files: Sequence[str], baseline_file: Path = BASELINE) -> list[str]:
    """Findings in ``files`` (paths relative to the repository) that the baseline does not hold."""
    from detect_secrets.core import baseline
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import get_settings

    files = [f for f in files if (ROOT / f).resolve() != baseline_file.resolve()]  # it lists hashes, by design
    known = baseline.load(baseline.load_from_file(str(baseline_file)), str(baseline_file))
    excluded = [
        re.compile(p)
        for p in get_settings().filters.get("detect_secrets.filters.regex.should_exclude_file", {}).get("pattern", [])
    ]
    found = SecretsCollection()
    with contextlib.chdir(ROOT):  # detect-secrets names files (and matches the baseline) relative to the cwd
        for name in files:
            found.scan_file(name)
    problems = [f"{s.filename}:{s.line_number}: {s.type}" for _, s in found - known]
    for name in files:
        if name.endswith(".json") and any(p.search(name) for p in excluded):
            try:
                document = json.loads((ROOT / name).read_text(encoding="utf-8"))
            except ValueError:
                continue  # bad-input fixtures are not JSON on purpose; detect-secrets scans them
            problems += [
                f"{name}: credential-named key {where!r} has a value" for where in _credential_values(document, "$")
            ]
    return sorted(problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="secrets_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("files", nargs="*", help="paths relative to the repository (default: every tracked file)")
    args = parser.parse_args(argv)
    try:
        files = args.files or tracked_files()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"secrets_gate: cannot list the tracked files with git: {exc}", file=sys.stderr)
        return 2
    problems = scan(files, args.baseline)
    if problems:
        print("Possible secrets not in .secrets.baseline (move them to an Airflow connection or the secrets backend;")
        print("an intentional fake gets an inline `pragma: allowlist secret` comment):")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print(f"detect-secrets: {len(files)} tracked files, nothing new beyond {args.baseline.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
