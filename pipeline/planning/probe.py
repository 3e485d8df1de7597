"""Measuring a program on one real block before its blocks are chosen.

A compiled kernel says what it allocates; any other function (a user's numpy expression) can
hold anything from one copy of its block to tens of them. Rather than guess, the plan runs the
program on a real block of the real input, under :mod:`tracemalloc` (numpy reports its arrays
to it), and sizes blocks from what it held at its peak. The block's result is kept for the
run's tasks: see :meth:`Measurement.kept`.

A slow function is first measured on a small window, so that measuring never costs more than
about :data:`PROBE_SECONDS`; a fast one is then measured on the whole first block of the
blocks the plan would otherwise choose.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import BlockFunctionError
from pipeline.grid import Window
from pipeline.ops.tree import steps
from pipeline.units import format_bytes

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pipeline.grid import ChunkGrid
    from pipeline.ops import Node

__all__ = ["PROBE_SECONDS", "SMALL", "Measurement", "measure", "needs_measuring"]

PROBE_SECONDS = 2.0
"""Time a whole first block may take to be measured; a slower function is measured on a
small window only (its figures scaled by pixels)."""
SMALL = 256
"""Least side of the window a function is first timed on (one storage unit, when larger: a
smaller window would be timed decoding pixels it does not use)."""


@dataclass(frozen=True, eq=False)
class Measurement:
    """What a program held and took on one real block."""

    window: Window
    """The block measured."""
    peak_bytes: int
    """Bytes of the arrays held at once while computing it (its input, temporaries, result;
    not the tile cache, which the plan counts apart)."""
    seconds: float
    """Time computing it took (under tracemalloc, which adds little to numpy's large
    allocations and more to many small Python objects)."""
    result: NDArray[Any] | None = field(default=None, repr=False)
    """The block's values, kept for the run's tasks."""

    @property
    def bytes_per_pixel(self) -> float:
        """Peak bytes per output pixel: a block of ``n`` pixels is projected to hold this
        times ``n``."""
        return self.peak_bytes / max(self.window.size, 1)

    @property
    def seconds_per_pixel(self) -> float:
        return self.seconds / max(self.window.size, 1)

    def describe(self) -> str:
        """One line for the plan."""
        w = self.window
        return (
            f"{format_bytes(self.peak_bytes)} at its peak ({self.bytes_per_pixel:.0f} bytes per "
            f"pixel) and {self.seconds_per_pixel * 1e9:,.0f} ns per pixel, measured on the block "
            f"at rows {w.y0}:{w.y1}, columns {w.x0}:{w.x1}"
        )

    def kept(self, grid: ChunkGrid) -> dict[tuple[int, int], NDArray[Any]]:
        """The results of the blocks of ``grid`` the measured block covers whole (a block's
        result does not depend on how the image is cut: its halo is read either way)."""
        if self.result is None:
            return {}
        w = self.window
        found = {}
        for index, block in grid.blocks():
            if block.y0 >= w.y1 or block.x0 >= w.x1:
                continue
            if w.y0 <= block.y0 and block.y1 <= w.y1 and w.x0 <= block.x0 and block.x1 <= w.x1:
                found[index] = self.result[  # a view: pickled, it carries its own pixels
                    block.y0 - w.y0 : block.y1 - w.y0, block.x0 - w.x0 : block.x1 - w.x0
                ]
        return found


def needs_measuring(root: Node | None) -> bool:
    """Whether ``root`` runs a function that does not say what it allocates, on file or
    in-memory inputs only (blocks of a foreign dask array exist only inside its graph)."""
    if root is None or not any(not hasattr(s.func, "temporary_nbytes") for s in steps(root)):
        return False
    return not root.chunk_keys(Window(0, 1, 0, 1))


def _traced(root: Node, window: Window) -> Measurement:
    """Compute ``window`` under tracemalloc."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.perf_counter()
        result = root.read(window, {})
        seconds = time.perf_counter() - start
        current, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    # What stays allocated besides the result is what the tile cache kept: counted apart.
    cached = max(0, current - base - int(result.nbytes))
    held = max(peak - base - cached, int(result.nbytes))
    return Measurement(window, held, seconds, result)


def measure(root: Node, block: tuple[int, int], unit: tuple[int, int]) -> Measurement | None:
    """``root`` measured on the first block of ``block`` (the top-left one), or on the first
    storage ``unit`` when that block would take more than :data:`PROBE_SECONDS`.

    A function that fails there raises its :class:`~pipeline.errors.BlockFunctionError`
    now, as its task would (a function's error is not retried); any other failure (reading
    the input, say) gives ``None``, and the run's task meets it and reports it."""
    height, width = root.shape[:2]
    by, bx = min(block[0], height), min(block[1], width)
    small = Window(0, min(max(SMALL, unit[0]), by), 0, min(max(SMALL, unit[1]), bx))
    try:
        first = _traced(root, small)
        whole = Window(0, by, 0, bx)
        if whole == small or first.seconds_per_pixel * whole.size > PROBE_SECONDS:
            return first
        return _traced(root, whole)
    except BlockFunctionError:
        raise
    except Exception:  # measuring is optional; the run's task reports the error
        return None
