"""Validation: render ``include/sql/validate.sql`` and judge its result rows.

The same SQL runs in DuckDB (local target) and Athena (aws target); :func:`judge` is the
one piece of code that decides pass/fail for both. The SQL is a Jinja template over
``dt``, ``database`` and ``table_prefix``, rendered here with the options Airflow renders
templates with, so Airflow's rendering for Athena and this one for DuckDB give the same text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from spotify_etl.dates import check_date
from spotify_etl.errors import PipelineError
from spotify_etl.paths import SQL_DIR

VALIDATION_SQL = SQL_DIR / "validate.sql"
_NAME = re.compile(r"[A-Za-z0-9_]*")


class ValidationFailed(PipelineError, RuntimeError, retryable=False):
    """At least one check failed; the message names every failed check and its numbers."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    violations: int
    checked_rows: int

    @property
    def passed(self) -> bool:
        return self.violations == 0

    @property
    def status(self) -> str:
        """PASS, FAIL, or SKIP: passed with no row to judge (e.g. popularity, which
        development-mode apps never get), so it says nothing about the data. SKIP does not fail the run."""
        if not self.passed:
            return "FAIL"
        return "PASS" if self.checked_rows else "SKIP"

    def describe(self) -> str:
        if self.status == "SKIP":
            return f"SKIP {self.name}: nothing to check (0 rows checked)"
        return f"{self.status} {self.name}: {self.violations} violations in {self.checked_rows} rows"


def check_names(database: str, table_prefix: str = "") -> None:
    """Raise ValueError unless the database and table prefix are letters, digits and underscores:
    they are spliced into the validation SQL and the catalog's DDL as names, never as values."""
    for label, value in (("database", database), ("table_prefix", table_prefix)):
        if not _NAME.fullmatch(value):
            raise ValueError(f"{label} may only hold letters, digits and underscores: {value!r}")


def render_validation_sql(day: str, database: str, table_prefix: str = "") -> str:
    """The validation SQL for ``day``, its names checked (:func:`check_names`)."""
    return render_sql(VALIDATION_SQL.name, database, table_prefix, dt=check_date(day))


def render_sql(template: str, database: str, table_prefix: str = "", **values: object) -> str:
    """``include/sql/<template>`` rendered as Airflow renders it, its names checked (:func:`check_names`)."""
    check_names(database, table_prefix)
    return _sql_templates().get_template(template).render(database=database, table_prefix=table_prefix, **values)


def _sql_templates() -> jinja2.Environment:
    # Airflow's template options (airflow.sdk DAG.get_template_env): a missing variable is an
    # error; Jinja's default newline handling. SQL, not HTML: nothing to escape.
    return jinja2.Environment(  # nosec B701
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - renders SQL, not HTML; the values are checked names and a date
    )


def parse_rows(rows: Iterable[Sequence[Any]]) -> list[CheckResult]:
    """Rows of (check_name, violations, checked_rows) from any engine; values may be strings (Athena)."""
    results = []
    for row in rows:
        name, violations, checked = row[0], row[1], row[2]
        results.append(CheckResult(str(name), int(violations), int(checked)))
    return results


def judge(results: list[CheckResult], day: str) -> list[CheckResult]:
    """Return ``results`` if every check passed, else raise naming each failed check."""
    if not results:
        raise ValidationFailed(f"dt={day}: the validation query returned no checks")
    failed = [r for r in results if not r.passed]
    if failed:
        raise ValidationFailed(
            f"dt={day}: {len(failed)} of {len(results)} checks failed: " + "; ".join(r.describe() for r in failed)
        )
    return results


def report_and_judge(results: list[CheckResult], day: str, report: Callable[[str], None]) -> list[CheckResult]:
    """``report`` each check (one line each, both targets alike), then :func:`judge` them."""
    for result in results:
        report(result.describe())
    return judge(results, day)
