"""Would Athena (Trino) accept this SQL? A syntax check with sqlglot's Trino dialect.

That parser accepts a superset of Trino (DuckDB's ``::`` casts, unknown function names...), so
the check also allows only functions known to exist in Trino and rejects DuckDB-only syntax;
tests/unit/test_validation_sql.py proves it rejects such SQL.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError
from sqlglot.tokens import TokenType

# Functions the project's SQL may call: each exists in Trino/Athena engine v3 with these semantics
# (validate.sql; the history views add the window functions and MIN/MAX; the report queries
# date_diff('second', start, end), Trino's as DuckDB's).
TRINO_FUNCTIONS = frozenset(
    {"And", "Or", "Not", "Count", "CountIf", "Case", "If", "Cast", "Coalesce", "Lag", "RowNumber", "Min", "Max",
     "DateDiff"}
)  # fmt: skip


def athena_sql_problems(sql: str, functions: frozenset[str] = TRINO_FUNCTIONS) -> list[str]:
    """Why Athena would reject ``sql`` (empty when it would not, as far as a parser can tell);
    ``functions``: the sqlglot function classes it may call."""
    try:
        statements = sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)
    except ParseError as exc:
        return [f"syntax: {exc}"]
    problems = [
        f"DuckDB cast '::' at {t.line}:{t.col}"
        for t in sqlglot.tokenize(sql, read="trino")
        if t.token_type == TokenType.DCOLON
    ]
    if len([s for s in statements if s is not None]) != 1:
        problems.append("Athena runs exactly one statement per query")
    for tree in statements:
        if tree is None:
            continue
        for func in tree.find_all(exp.Func):
            name = func.sql("trino") if isinstance(func, exp.Anonymous) else type(func).__name__
            if type(func).__name__ not in functions:
                problems.append(f"function not known to exist in Trino: {name}")
        for star in tree.find_all(exp.Star):
            if any(star.args.get(k) for k in ("except", "except_", "replace", "rename", "ilike")):
                problems.append("SELECT * EXCLUDE/REPLACE/RENAME is not Trino syntax")
    return problems
