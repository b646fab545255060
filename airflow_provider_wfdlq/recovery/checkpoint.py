"""Where a redrive keeps its place between pages, so a retried task goes on from there."""

from __future__ import annotations

from typing import Any, Protocol


class CheckpointStore(Protocol):
    """Durable per-try state: Airflow's ``task_state_store`` in a task, memory in tests."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


class MemoryCheckpoint:
    """A checkpoint that lives as long as the object: for tests and for runs without Airflow."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = state
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return None if self.state is None else dict(self.state)

    def save(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
        self.saves += 1

    def clear(self) -> None:
        self.state = None
