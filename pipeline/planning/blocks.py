"""The blocks a plan chooses when the caller leaves them to it: made of whole storage units
(or the stored chunks asked for), enough for every worker, their halo re-read bounded, their
projected memory within the budget and, per task, within ``memory.TASK_TARGET``; for a
function that does not say what it allocates, as measured on a real block."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import MemoryBudgetError
from pipeline.grid import BlockChoice, ChunkGrid, choose_blocks, halo_overhead, normalize_chunks
from pipeline.io.records import read_record
from pipeline.ops.tree import storage_tile, total_halo
from pipeline.planning import memory
from pipeline.planning.probe import Measurement, measure, needs_measuring

if TYPE_CHECKING:
    from pathlib import Path

    import dask.array as da

    from pipeline.grid import ChunksLike
    from pipeline.io import Remote
    from pipeline.ops import Program

__all__ = ["block_unit", "choose_plan_blocks"]


def block_unit(program: Program | None, array: da.Array, chunks: ChunksLike) -> tuple[int, int]:
    """What blocks are made of: the stored chunks asked for, else the input's storage tile."""
    shape = (int(array.shape[0]), int(array.shape[1]))
    if chunks is not None:
        return normalize_chunks(chunks, array.shape, (1, 1)).chunk_shape
    assert program is not None
    return storage_tile(program.root, shape)


def choose_plan_blocks(
    array: da.Array,
    program: Program,
    chunks: ChunksLike,
    *,
    threads: int,
    concurrent: int,
    budget: int,
    source: str,
    resuming: Path | Remote | None = None,
) -> tuple[da.Array, BlockChoice, Measurement | None]:
    """The program cut into the blocks the plan chooses (whole units, enough for every
    worker, halo re-read bounded, memory within the budget), and the measurement of its
    first block when it runs a function that does not say what it allocates: blocks are
    chosen a first time on the usual guess, the program is measured on the first of them,
    and blocks are chosen again on what it held.

    When ``resuming`` an output, the blocks are those its run chose (memory available and
    measurements vary from run to run; the blocks written must not)."""
    root = program.root
    shape = (int(array.shape[0]), int(array.shape[1]))
    unit = block_unit(program, array, chunks)
    cache = memory.cache_bytes(root, threads)
    before = _recorded_blocks(resuming, array) if resuming is not None else None
    if before is not None:
        per_worker = memory.worker_bytes(memory.task_bytes(root, before), threads, cache)
        choice = BlockChoice(
            before,
            ChunkGrid.regular(array.shape, before).num_blocks,
            halo_overhead(before, total_halo(root), shape),
            per_worker,
            "as the run being resumed chose them",
        )
        return program.regrid(ChunkGrid.regular(array.shape, before)), choice, None

    def choose(measured: Measurement | None) -> BlockChoice:
        return choose_blocks(
            shape,
            unit,
            total_halo(root),
            memory=lambda block: memory.worker_bytes(
                memory.task_bytes(root, block, measured=measured), threads, cache
            ),
            budget=budget,
            workers=concurrent,
            budget_source=source,
            task_memory=lambda block: memory.task_bytes(root, block, measured=measured),
            task_target=memory.TASK_TARGET,
        )

    if not needs_measuring(root):
        choice, measured = choose(None), None
    else:
        try:
            first = choose(None).block
        except MemoryBudgetError:  # the guess may be too high: measure one storage unit
            first = unit
        measured = measure(root, first, unit)
        choice = choose(measured)
    return program.regrid(ChunkGrid.regular(array.shape, choice.block)), choice, measured


def _recorded_blocks(output: Path | Remote, array: da.Array) -> tuple[int, int] | None:
    """The blocks the run that wrote ``output`` chose, if it wrote an image of this shape."""
    record = read_record(output)
    layout = record.fingerprint.get("layout", {}) if record is not None else {}
    if layout.get("shape") != list(array.shape) or len(layout.get("blocks", ())) != 2:
        return None
    by, bx = layout["blocks"]
    return (int(by), int(bx))
