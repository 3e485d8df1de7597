"""The blocks a plan chooses when the caller leaves them to it: made of whole storage units
(or the stored chunks asked for), enough for every worker, their halo re-read bounded, their
projected memory within the budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.grid import BlockChoice, ChunkGrid, choose_blocks, normalize_chunks
from pipeline.ops.tree import storage_tile, total_halo
from pipeline.planning import memory

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.grid import ChunksLike
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
) -> tuple[da.Array, BlockChoice]:
    """The program cut into the blocks the plan chooses (whole units, enough for every
    worker, halo re-read bounded, memory within the budget)."""
    root = program.root
    choice = choose_blocks(
        (int(array.shape[0]), int(array.shape[1])),
        block_unit(program, array, chunks),
        total_halo(root),
        memory=lambda block: memory.worker_bytes(
            memory.task_bytes(root, block), threads, memory.cache_bytes(root, threads)
        ),
        budget=budget,
        workers=concurrent,
        budget_source=source,
    )
    return program.regrid(ChunkGrid.regular(array.shape, choice.block)), choice
