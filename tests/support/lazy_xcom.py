"""A stand-in for the lazy sequence Airflow hands a task for a mapped task's results
(``airflow.sdk.execution_time.lazy_sequence.LazyXComSequence``), counting what would be requests to
the API server: one per item read by index (iteration reads item after item, then one past the
end), one per slice, one per ``len``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload


class CountingLazySequence(Sequence[Any]):
    def __init__(self, values: list[Any]) -> None:
        self._values = values
        self.requests: list[str] = []

    @overload
    def __getitem__(self, key: int) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[Any]: ...
    def __getitem__(self, key: int | slice) -> Any:
        self.requests.append("slice" if isinstance(key, slice) else "item")
        return self._values[key]

    def __len__(self) -> int:
        self.requests.append("len")
        return len(self._values)
