"""One builder per target: ``{target: catalog_and_validate}``, over the core's targets
(:data:`spotify_etl.targets.TARGETS`, the same names).

Each builder adds the target's ``catalog`` and ``validate`` stages downstream of the
transform, with the same signature ``(settings, upstream) -> validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spotify_etl.airflow import aws_target, local_target
from spotify_etl.settings import Settings

CatalogAndValidate = Callable[[Settings, Any], Any]
BUILDERS: dict[str, CatalogAndValidate] = {
    "local": local_target.catalog_and_validate,
    "aws": aws_target.catalog_and_validate,
}


def catalog_and_validate(settings: Settings, upstream: Any) -> Any:
    """The settings' target's catalog and validate stages downstream of ``upstream``."""
    return BUILDERS[settings.target](settings, upstream)
