"""The README's settings table is the settings module's declaration, row for row."""

from __future__ import annotations

from pathlib import Path

from spotify_etl.settings import SETTINGS_DOC

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_settings_module() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("| `")]
    documented = {row.split("`")[1]: row for row in rows}
    assert list(documented) == list(SETTINGS_DOC)
    for name, (default, description) in SETTINGS_DOC.items():
        assert (f"`{default}`" if default else "") in documented[name]
        assert description in documented[name]


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
