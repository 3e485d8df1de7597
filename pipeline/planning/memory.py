"""The memory model: what a task holds at its peak, what a worker process holds, and the
budget they must fit. Nodes report their own arrays (``Node.peak_bytes``); this adds the
write's buffers, the allocator's slack, the tile cache and the runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import ArgumentError
from pipeline.grid import ChunkGrid, Window, budget_error
from pipeline.io.cache import tile_cache
from pipeline.machine import available_memory
from pipeline.units import format_bytes

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.ops import Node

__all__ = [
    "ALLOCATOR_SLACK",
    "BASELINE_BYTES",
    "BUDGET_SHARE",
    "check_budget",
    "memory_budget",
    "task_bytes",
    "worker_bytes",
]

BASELINE_BYTES = 256 * 2**20
"""A worker process before it holds any block: Python, numpy, dask, zarr, numba."""
ALLOCATOR_SLACK = 2.0
"""Resident memory per byte a task holds at its peak. The allocator keeps blocks a task freed
for the next (glibc's per-thread arenas, which fragment), so a process's resident size grows
past the live arrays; the README's out-of-core benchmark gives the measurements."""
BUDGET_SHARE = 0.6
"""Share of the available memory a run plans to use by default."""


def memory_budget(memory_limit: str | None, processes: int) -> tuple[int, str]:
    """Bytes one worker process may use, and where that figure comes from."""
    if memory_limit is not None:
        from dask.utils import parse_bytes

        try:
            limit = int(parse_bytes(memory_limit))
        except (ValueError, TypeError):
            limit = 0
        if limit <= 0:
            msg = (
                f"memory_limit={memory_limit!r} is not a size of memory: give a positive size "
                "such as '4GB' or '512MiB'"
            )
            raise ArgumentError(msg)
        return limit, f"memory_limit {memory_limit}"
    available = available_memory()
    share = int(available * BUDGET_SHARE / max(processes, 1))
    return share, (
        f"{BUDGET_SHARE:.0%} of the {format_bytes(available)} available"
        + (f", shared by {processes} processes" if processes > 1 else "")
    )


def task_bytes(root: Node | None, block: tuple[int, int], array: da.Array | None = None) -> int:
    """One task's projected peak: its program on a block at the image corner (where padding
    copies add up) or in the middle, whichever is more, plus the write's buffers. Without a
    program, the block of ``array``, its copy and its compressed copy."""
    if root is None:
        assert array is not None
        by, bx = ChunkGrid.from_dask(array.chunks).chunk_shape
        per_pixel = int(array.dtype.itemsize) * (int(array.shape[2]) if array.ndim == 3 else 1)
        return 3 * by * bx * per_pixel
    height, width = root.image_shape
    by, bx = min(block[0], height), min(block[1], width)
    corner = Window(0, by, 0, bx)
    y0, x0 = max(0, (height - by) // 2), max(0, (width - bx) // 2)
    middle = Window(y0, y0 + by, x0, x0 + bx)
    compute = max(root.peak_bytes(corner), root.peak_bytes(middle))
    return compute + 2 * by * bx * root.pixel_nbytes  # the block and its compressed copy


def worker_bytes(per_task: int, threads: int) -> int:
    """A worker's resident memory: its tasks' arrays with the allocator's slack, its tile
    cache and its runtime."""
    return int(threads * per_task * ALLOCATOR_SLACK) + BASELINE_BYTES + tile_cache.max_bytes


def check_budget(
    block: tuple[int, int], per_task: int, threads: int, budget: int, source: str
) -> int:
    """A worker's projected memory with blocks of ``block``; refused when over ``budget``."""
    per_worker = worker_bytes(per_task, threads)
    if per_worker > budget:
        what = f"blocks of {block[0]}x{block[1]}"
        raise budget_error(
            what,
            per_worker,
            budget=budget,
            source=source,
            fix="use smaller blocks (open_image(chunks=...), or leave them to the plan), fewer "
            "threads per worker, or a larger memory limit (compute.memory_limit)",
            detail=f" ({threads} task(s) of {format_bytes(per_task)} at once, plus tile cache "
            "and runtime)",
        )
    return per_worker
