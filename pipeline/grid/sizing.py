"""Choosing block sizes: whole storage units, little halo re-read, enough tasks, bounded memory.

Pure arithmetic over a memory model the caller supplies; nothing here knows about files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import MemoryBudgetError
from pipeline.grid.levels import ceil_div
from pipeline.units import format_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_OVERHEAD",
    "BlockChoice",
    "budget_error",
    "choose_blocks",
    "divide_for_storage",
    "halo_overhead",
]

MAX_OVERHEAD = 0.10
"""Halo pixels a block may read beyond its own, as a share of them."""
TASKS_PER_WORKER = 4
"""Tasks per worker wanted for load balance: the last ones finish close together."""
LARGEST = 2048
"""Blocks grow to this side at most when there are tasks enough anyway."""
STORAGE_MAX = 2048
"""Stored chunks are at most this side: viewers and partial reads want modest chunks."""


def halo_overhead(
    block: tuple[int, int], halo: tuple[int, int], shape: tuple[int, int] | None = None
) -> float:
    """Extra pixels read for the halo of an interior block, as a share of its own. A block
    spanning a whole axis of an image of ``shape`` reads no halo along it."""
    (by, bx), (hy, hx) = block, halo
    if shape is not None:
        hy = 0 if by >= shape[0] else hy
        hx = 0 if bx >= shape[1] else hx
    return (by + 2 * hy) * (bx + 2 * hx) / (by * bx) - 1


@dataclass(frozen=True)
class BlockChoice:
    """A block shape and why it was chosen."""

    block: tuple[int, int]
    """Rows and columns of each block."""
    tasks: int
    """Blocks in the image."""
    overhead: float
    """Halo re-read overhead of an interior block."""
    memory: int
    """Projected peak memory per worker, bytes."""
    reason: str
    """One line for the plan."""


def _candidates(shape: tuple[int, int], unit: tuple[int, int]) -> list[tuple[int, int]]:
    """Square-ish shapes made of whole units, small to large, clipped to the image."""
    height, width = shape
    uy, ux = min(unit[0], height), min(unit[1], width)
    seen: list[tuple[int, int]] = []
    for k in range(1, ceil_div(height, uy) + 1):
        by = min(k * uy, height)
        bx = width if ux >= width else min(max(ux, round(by / ux) * ux), width)
        if (by, bx) not in seen:
            seen.append((by, bx))
    if uy >= height:  # one band of rows: grow along the columns instead
        seen = [(height, min(m * ux, width)) for m in range(1, ceil_div(width, ux) + 1)]
    return seen


def _narrower(
    block: tuple[int, int], shape: tuple[int, int], unit: tuple[int, int]
) -> list[tuple[int, int]]:
    """Shapes of whole units no larger than ``block`` along either axis, one unit upwards
    (1, 2, 4, ... units and the whole ``block``): for budgets too tight for square-ish ones."""
    sides = []
    for size, stored, extent in zip(block, unit, shape, strict=True):
        u = min(stored, extent)
        counts = {ceil_div(size, u)}
        counts.update(c for c in (2**k for k in range(32)) if c * u < size)
        sides.append(sorted(min(c * u, extent) for c in counts))
    return [(by, bx) for by in sides[0] for bx in sides[1]]


def _tasks(shape: tuple[int, int], block: tuple[int, int]) -> int:
    return ceil_div(shape[0], block[0]) * ceil_div(shape[1], block[1])


def choose_blocks(
    shape: tuple[int, int],
    unit: tuple[int, int],
    halo: tuple[int, int],
    *,
    memory: Callable[[tuple[int, int]], int],
    budget: int,
    workers: int,
    budget_source: str = "",
    task_memory: Callable[[tuple[int, int]], int] | None = None,
    task_target: int | None = None,
) -> BlockChoice:
    """The block shape for a run.

    Candidates are made of whole ``unit`` s (storage tiles, or stored chunks). Of those whose
    projected ``memory`` per worker fits the ``budget``, prefer halo overhead under
    :data:`MAX_OVERHEAD`, then the largest block (up to :data:`LARGEST`, and whose
    ``task_memory`` is at most ``task_target`` when given) that still gives every worker
    :data:`TASKS_PER_WORKER` tasks, else the block giving the most tasks. Square-ish
    candidates come first; narrower ones are tried only when none of those fits. Raises
    :class:`~pipeline.errors.MemoryBudgetError` when not even one ``unit`` fits the budget,
    saying where the budget comes from (``budget_source``).
    """

    def evaluate(blocks: list[tuple[int, int]]) -> list[tuple[tuple[int, int], int, float, int]]:
        return [(b, _tasks(shape, b), halo_overhead(b, halo, shape), memory(b)) for b in blocks]

    options = evaluate(_candidates(shape, unit))
    fitting = [o for o in options if o[3] <= budget]
    if not fitting:  # square-ish blocks re-read the least halo; narrower ones may still fit
        fitting = [o for o in evaluate(_narrower(options[0][0], shape, unit)) if o[3] <= budget]
    if not fitting:
        by, bx = min(unit[0], shape[0]), min(unit[1], shape[1])
        what = f"even blocks of one storage unit, {by}x{bx},"
        raise budget_error(
            what,
            memory((by, bx)),
            budget=budget,
            source=budget_source,
            fix="raise the memory limit (compute.memory_limit), use fewer threads per worker, or "
            "reduce what each block holds",
        )
    lean = [o for o in fitting if o[2] <= MAX_OVERHEAD]
    if not lean:
        block, tasks, overhead, mem = min(fitting, key=lambda o: o[2])
        reason = (
            f"the largest block that fits the memory budget; its halo re-read is "
            f"{overhead:.0%}, over the {MAX_OVERHEAD:.0%} aimed at"
        )
        return BlockChoice(block, tasks, overhead, mem, reason)
    wanted = TASKS_PER_WORKER * workers
    balanced = [o for o in lean if o[1] >= wanted and max(o[0]) <= LARGEST]
    light = [
        o
        for o in balanced
        if task_memory is None or task_target is None or task_memory(o[0]) <= task_target
    ]
    if balanced:
        block, tasks, overhead, mem = max(light or balanced[:1], key=lambda o: o[0][0] * o[0][1])
        reason = (
            f"the largest block with halo re-read under {MAX_OVERHEAD:.0%} that gives "
            f"{workers} workers {TASKS_PER_WORKER}+ tasks each, within the memory budget"
        )
        if len(light) < len(balanced):
            limit = f"{format_bytes(task_target or 0)} per task"
            reason += (
                f"; larger blocks would hold over {limit}"
                if light
                else f"; the smallest such block, as every one holds over {limit}"
            )
    else:
        block, tasks, overhead, mem = max(lean, key=lambda o: o[1])
        reason = (
            f"the most tasks a halo re-read under {MAX_OVERHEAD:.0%} allows "
            "(the image is small for its halo)"
        )
    return BlockChoice(block, tasks, overhead, mem, reason)


def divide_for_storage(block: tuple[int, int], unit: tuple[int, int]) -> tuple[int, int]:
    """Stored chunks for blocks of ``block``: the block itself up to :data:`STORAGE_MAX`,
    else the largest whole-unit divisor of it that is no larger."""
    chunks = []
    for size, u in zip(block, unit, strict=True):
        if size <= STORAGE_MAX:
            chunks.append(size)
            continue
        units = max(1, size // u) if size % u == 0 else 0
        best = size
        for parts in range(2, (units or 1) + 1):
            if units % parts == 0 and units // parts * u <= STORAGE_MAX:
                best = units // parts * u
                break
        chunks.append(best)
    return (chunks[0], chunks[1])


def budget_error(
    blocks: str, projected: int, *, budget: int, source: str, fix: str, detail: str = ""
) -> MemoryBudgetError:
    """The error for blocks whose projected memory per worker is over the budget."""
    where = f" ({source})" if source else ""
    return MemoryBudgetError(
        f"{blocks} project {format_bytes(projected)} per worker{detail}, over the budget of "
        f"{format_bytes(budget)}{where}; {fix}"
    )
