"""A progress bar of blocks done out of the total, with rate and time left, for any scheduler."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(
    total: int, label: str, enabled: bool = True, completed: int = 0
) -> Iterator[Callable[[], None]]:
    """Yield a function to call once per finished block; draws a live bar on stderr, starting
    at ``completed`` (blocks a resumed run finds written).

    A bar opened while another is live (a pyramid level inside its run) is a second line of
    the same display: one live display per run, which Jupyter shows as one output widget
    (two, refreshed by two threads, interleave their output).
    """
    if not enabled:
        yield lambda: None
        return
    if _LIVE:
        yield _task(_LIVE[-1], total, label, completed)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        _LIVE.append(bar)
        try:
            yield _task(bar, total, label, completed)
        finally:
            _LIVE.remove(bar)


_LIVE: list[Any] = []
"""The live progress display of the run in progress in this process, if any."""


def _task(bar: Any, total: int, label: str, completed: int) -> Callable[[], None]:
    """A line of ``bar`` and the function that advances it by one block."""
    task = bar.add_task(label, total=total, completed=completed, rate="")

    def advance() -> None:
        bar.advance(task)
        speed = bar.tasks[task].speed
        bar.update(task, rate=f"{speed:.1f}/s" if speed else "")

    return advance
