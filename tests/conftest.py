"""Shared test fixtures: paths to the recorded Spotify payloads and a fresh local lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "spotify_api"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_dir: Path):  # type: ignore[no-untyped-def]
    from spotify_etl.lake import Lake

    return Lake.local(lake_dir)
