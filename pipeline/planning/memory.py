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
    from pipeline.planning.probe import Measurement

__all__ = [
    "ALLOCATOR_SLACK",
    "BASELINE_BYTES",
    "BUDGET_SHARE",
    "TASK_TARGET",
    "cache_bytes",
    "check_budget",
    "check_units",
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
TASK_TARGET = 64 * 2**20
"""Bytes a task should hold at its peak when the plan chooses blocks and memory does not ask
for smaller ones. Worker threads allocate from glibc's per-thread heaps, of 64 MiB each; a task
holding more gets its arrays freshly mapped, and zeroed by the kernel, on every use. Measured
(a numpy Horn slope, 35 bytes per pixel, 2 threads): 33 ns per pixel with blocks of 1536, 24
with blocks of 1024 or 512."""
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


def task_bytes(
    root: Node | None,
    block: tuple[int, int],
    array: da.Array | None = None,
    measured: Measurement | None = None,
) -> int:
    """One task's projected peak: its program on a block at the image corner (where padding
    copies add up) or in the middle, whichever is more, plus the write's buffers; or, when
    the program was ``measured`` on a real block, that block's peak scaled by pixels. Without
    a program, the block of ``array``, its copy and its compressed copy."""
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
    if measured is not None:
        compute = int(measured.bytes_per_pixel * by * bx)
    else:
        compute = max(root.peak_bytes(corner), root.peak_bytes(middle))
    return compute + 2 * by * bx * root.pixel_nbytes  # the block and its compressed copy


def worker_bytes(per_task: int, threads: int, cache: int | None = None) -> int:
    """A worker's resident memory: its tasks' arrays with the allocator's slack, its tile
    cache (``cache`` bytes, by default its budget) and its runtime."""
    cache = tile_cache.max_bytes if cache is None else cache
    return int(threads * per_task * ALLOCATOR_SLACK) + BASELINE_BYTES + cache


def cache_bytes(root: Node | None, threads: int) -> int:
    """A worker's tile cache: its budget, or more when an input's storage units (tiles,
    chunks) are larger. A read decodes whole units, and readers grow the cache to keep one
    (`TileCache.hold_at_least`): with ``threads`` decoding side by side, one each."""
    units = [getattr(s, "unit_bytes", 0) for s in root.sources()] if root is not None else []
    return max(tile_cache.max_bytes, max(units, default=0) * threads)


def check_units(root: Node | None, threads: int, budget: int, source: str) -> None:
    """Refuse inputs whose storage units alone do not fit a worker: blocks of any size must
    decode whole units, so smaller blocks would not help."""
    if root is None:
        return
    for leaf in root.sources():
        unit = getattr(leaf, "unit_bytes", 0)
        if unit * threads <= tile_cache.max_bytes:
            continue  # the units fit the cache's own budget: not the cause of any excess
        projected = worker_bytes(0, threads, unit * threads)
        if projected <= budget:
            continue
        ty, tx = leaf.tile
        what = (
            f"{leaf.path} stores its pixels in units (tiles, strips or chunks) of {ty}x{tx}, "
            f"{format_bytes(unit)} each decoded, and every read decodes whole units: "
            f"{threads} task(s) at once"
        )
        raise budget_error(
            what,
            projected,
            budget=budget,
            source=source,
            fix="rewrite the input with smaller tiles or chunks (such as 512x512: "
            "`gdal_translate -co TILED=YES -co BLOCKXSIZE=512 -co BLOCKYSIZE=512`, "
            "tifffile.imwrite(..., tile=(512, 512)), or a Zarr with chunks of 512), or give "
            "a larger memory limit (compute.memory_limit)",
        )


def check_budget(
    block: tuple[int, int],
    per_task: int,
    threads: int,
    budget: int,
    source: str,
    *,
    cache: int | None = None,
) -> int:
    """A worker's projected memory with blocks of ``block``; refused when over ``budget``."""
    per_worker = worker_bytes(per_task, threads, cache)
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
