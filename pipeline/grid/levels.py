"""Counting whole units: ceiling division, the chunks a window touches, pyramid level shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.grid.window import Window

__all__ = ["ceil_div", "chunk_span", "chunks_in", "level_shape"]


def ceil_div(n: int, d: int) -> int:
    """``ceil(n / d)`` for integers, without floating point."""
    return -(-n // d)


def chunk_span(window: Window, chunks: tuple[int, int]) -> tuple[range, range]:
    """Row and column indexes of the chunks of shape ``chunks`` that ``window`` touches."""
    cy, cx = chunks
    return (
        range(window.y0 // cy, ceil_div(window.y1, cy)),
        range(window.x0 // cx, ceil_div(window.x1, cx)),
    )


def chunks_in(window: Window, chunks: tuple[int, int]) -> int:
    """How many chunks of shape ``chunks`` a window aligned to them covers."""
    return ceil_div(window.height, chunks[0]) * ceil_div(window.width, chunks[1])


def level_shape(shape: tuple[int, ...], level: int) -> tuple[int, ...]:
    """The shape of pyramid level ``level``: Y and X halved (rounded up) ``level`` times, any
    channel axis kept."""
    height, width = shape[0], shape[1]
    for _ in range(level):
        height, width = ceil_div(height, 2), ceil_div(width, 2)
    return (height, width, *shape[2:])
