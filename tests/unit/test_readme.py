"""The README and docs/ stay small, linked and true to the repository.

The settings table in docs/settings.md is the settings module's declaration, row for row; every
relative link in README.md and docs/*.md reaches a file (and a heading, for an #anchor); the
README's layout section names only paths that exist and every top-level folder that is tracked.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
from spotify_etl.settings import SETTINGS_DOC

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
SETTINGS_PAGE = PROJECT / "docs" / "settings.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
DOCS = sorted((PROJECT / "docs").glob("*.md"))
# [text](target): the target up to the first space or closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section, up to the next heading of level 1 or 2."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0].split("\n# ", 1)[0]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def settings_table() -> str:
    """The settings table as docs/settings.md shows it, one row per entry of SETTINGS_DOC."""
    rows = [
        f"| `{name}` | {f'`{s.default}`' if s.default else ''} | {s.description} | {s.allowed} |"
        for name, s in SETTINGS_DOC.items()
    ]
    return "\n".join(["| setting | default | what it does | allowed |", "|---|---|---|---|", *rows])


def write_settings_table() -> None:
    """Regenerate the table between the markers of docs/settings.md (python -m tests.unit.test_readme)."""
    text = SETTINGS_PAGE.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    SETTINGS_PAGE.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")


def test_settings_table_matches_settings_module() -> None:
    table = SETTINGS_PAGE.read_text(encoding="utf-8").split(START)[1].split(END)[0]
    assert table.strip() == settings_table(), "run: .venv/bin/python -m tests.unit.test_readme"


def test_readme_shows_the_two_commands() -> None:
    quick_start = section(README.read_text(encoding="utf-8"), "Quick start")
    assert "make run" in quick_start and "make test" in quick_start


def test_readme_stays_short() -> None:
    size = len(README.read_bytes())
    assert size <= 10_240, f"README.md is {size} bytes; move detail to a page under docs/ and link it"


@pytest.mark.parametrize(
    "page", [README, PROJECT / "SECURITY.md", *DOCS], ids=lambda p: p.relative_to(PROJECT).as_posix()
)
def test_relative_links_reach_a_file_and_heading(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(PROJECT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(PROJECT)}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(README.read_text(encoding="utf-8"))}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def layout_paths() -> list[str]:
    """The path each line of the README's layout tree starts with (continuation lines start blank)."""
    block = section(README.read_text(encoding="utf-8"), "Layout").split("```")[1]
    return [line.split()[0] for line in block.splitlines()[1:] if line and not line[0].isspace()]


def tracked_files() -> list[str]:
    """The repository's files: tracked, or new and not ignored (so a path can be named before its commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_readme_layout_names_only_paths_that_exist() -> None:
    files = tracked_files()
    paths = layout_paths()
    assert len(paths) >= 8, paths
    missing = [
        p for p in paths if not any(fnmatch.fnmatchcase(f, p) or f.startswith(p.rstrip("/") + "/") for f in files)
    ]
    assert missing == [], f"README layout names paths the repository does not have: {missing}"


def test_readme_layout_names_every_top_level_folder() -> None:
    folders = {f.split("/")[0] for f in tracked_files() if "/" in f and not f.startswith(".")}
    named = {p.split("/")[0] for p in layout_paths()}
    assert sorted(folders - named) == [], "top-level folders missing from the README's layout section"


if __name__ == "__main__":
    write_settings_table()
