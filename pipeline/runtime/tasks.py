"""The one task of a run: compute a block, write it, record it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipeline.grid import chunks_in
from pipeline.ops import block_task, program_for
from pipeline.report import BlockStats
from pipeline.runtime.retry import attempts

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.grid import ChunkGrid, Window
    from pipeline.io import ZarrTarget
    from pipeline.ops import Node
    from pipeline.ops.nodes import ChunkKey

__all__ = ["write_block", "write_tasks"]


def write_block(  # noqa: PLR0917 - a task function: dask passes arguments by position
    root: Node,
    window: Window,
    target: ZarrTarget,
    index: tuple[int, int],
    retries: int,
    keys: tuple[ChunkKey, ...],
    *blocks: Any,
) -> BlockStats:
    """Compute the block at ``window`` (from ``blocks``, the dask blocks it depends on),
    write it and record it, again after a transient I/O error."""
    start = time.perf_counter()

    def work() -> int:
        array = root.read(window, dict(zip(keys, blocks, strict=True)))
        written = target.write(window, array)
        target.mark_done(index, window)
        return written

    written = attempts(work, retries, target.path, window)
    return BlockStats(
        chunks=chunks_in(window, target.chunks),
        bytes_read=root.bytes_read(window),
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


def write_tasks(
    array: da.Array,
    grid: ChunkGrid,
    target: ZarrTarget,
    *,
    skip: set[tuple[int, int]] | None = None,
    retries: int = 2,
) -> list[Any]:
    """One Delayed per block not in ``skip``: compute it (fused with its program), write it,
    record it."""
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    program = program_for(array)
    name = f"write-{array.name}"
    layer: dict[Any, Any] = {}
    for (i, j), window in grid.blocks():
        if skip and (i, j) in skip:
            continue
        key = (name, i, j)
        layer[key] = block_task(key, write_block, program, window, target, (i, j), retries)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(program.collections))
    return [Delayed(key, graph, layer=name) for key in layer]
