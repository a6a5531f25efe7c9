"""The validation judge and the validation SQL's rendering (spotify_etl.quality)."""

from __future__ import annotations

import pytest
from spotify_etl import quality


def test_judge_names_every_failed_check() -> None:
    rows = quality.parse_rows([("songs_not_empty", "0", "5"), ("songs_pk_unique_not_null", 2, 7), ("x_range", 1, 3)])
    with pytest.raises(quality.ValidationFailed) as err:
        quality.judge(rows, "2026-11-20")
    text = str(err.value)
    assert "2 of 3 checks failed" in text
    assert "FAIL songs_pk_unique_not_null: 2 violations in 7 rows" in text and "FAIL x_range: 1 violations" in text
    assert "songs_not_empty" not in text
    assert quality.judge(rows[:1], "2026-11-20") == rows[:1]
    with pytest.raises(quality.ValidationFailed, match="returned no checks"):
        quality.judge([], "2026-11-20")


def test_render_validation_sql_refuses_odd_names() -> None:
    sql = quality.render_validation_sql("2026-11-20", "spotify_etl", "p_")
    assert '"spotify_etl"."p_songs" WHERE dt = \'2026-11-20\'' in sql and "{{" not in sql
    with pytest.raises(ValueError, match="database"):
        quality.render_validation_sql("2026-11-20", 'x"; DROP TABLE y; --', "")
    with pytest.raises(ValueError, match="not a date"):
        quality.render_validation_sql("2026-11-20' OR '1'='1", "db", "")
