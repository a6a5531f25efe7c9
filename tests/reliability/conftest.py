"""Fixtures shared by the reliability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_server import MotoAws, moto_server


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoAws]:
    """A moto server for the module: S3 for lakes on the aws target."""
    with moto_server() as server:
        yield server
