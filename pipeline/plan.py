"""`save`: stream an image into a Zarr store, one task per block, checked before it starts."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import AlignmentError, ArgumentError
from pipeline.grid import ChunkGrid, Window, check_write_alignment, normalize_chunks
from pipeline.image import open_image
from pipeline.io import ZarrTarget, create_target, directory_size, update_group_attributes
from pipeline.ops import Node, as_dask, block_task, program_of
from pipeline.progress import progress_bar
from pipeline.report import BlockStats, RunReport
from pipeline.scheduler import check_scheduler, executor

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.grid import ChunksLike
    from pipeline.ops.program import ChunkKey

__all__ = ["save"]


def save(
    image: Any,
    target: str | os.PathLike[str],
    *,
    chunks: ChunksLike = None,
    overwrite: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Compute ``image`` block by block and stream it into a Zarr store at ``target``.

    Parameters
    ----------
    image
        An array from :func:`~pipeline.apply` or :func:`~pipeline.open_image`, any dask or
        numpy array, or a path (which is opened, for a format conversion).
    target
        Directory of the output: an OME-Zarr (NGFF 0.5) group whose array ``"0"`` holds the
        image (zstd-compressed Zarr v3). ``(Y, X, C)`` images are stored channel first.
    chunks
        Stored chunk shape along Y and X. Default: the image's blocks. Every block must
        consist of whole stored chunks, so that no two tasks ever write the same chunk.
    overwrite
        Replace an existing output (only ever a Zarr store). The input is never touched.
    scheduler
        ``"threads"`` (default), ``"synchronous"``, ``"processes"`` (spawn-safe),
        ``"distributed"`` (a local cluster for this run), an address ``"tcp://host:port"``, or
        a ``distributed.Client``.
    workers
        Threads or processes; default: the cores available.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    RunReport
        Time, throughput, tasks, bytes read and written.
    """
    array = open_image(image) if isinstance(image, (str, os.PathLike)) else as_dask(image)
    if array.ndim not in (2, 3) or 0 in array.shape:
        msg = f"cannot save an image of shape {array.shape}: it must be non-empty (Y, X[, C])"
        raise ArgumentError(msg)
    grid = ChunkGrid.from_dask(array.chunks)
    store_chunks = _store_chunks(grid, chunks, array.shape)
    check_write_alignment(grid, store_chunks)
    check_scheduler(scheduler, workers)
    program = program_of(array)
    target_path = Path(target).expanduser()
    if program is not None:
        _check_not_inside_inputs(target_path, program.root)

    from pipeline import __version__

    run_id = uuid.uuid4().hex
    attributes = {
        "pipeline": {
            "version": __version__,
            "complete": False,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "inputs": sorted({str(p) for p in _input_paths(program.root)}) if program else [],
        }
    }
    out = create_target(
        target_path,
        tuple(int(n) for n in array.shape),
        array.dtype,
        store_chunks,
        overwrite=overwrite,
        attributes=attributes,
        run_id=run_id,
    )
    tasks = _write_tasks(array, grid, out)
    stats: list[BlockStats] = []
    with executor(scheduler, workers) as ex:
        if ex.dashboard and progress:
            print(f"Dask dashboard: {ex.dashboard}", file=sys.stderr)
        label = f"{target_path.name}"
        with progress_bar(len(tasks), label, enabled=progress) as advance:

            def on_done(result: BlockStats) -> None:
                stats.append(result)
                advance()

            start = time.perf_counter()
            ex.run(tasks, on_done)
            elapsed = time.perf_counter() - start
        scheduler_name, n_workers = ex.name, ex.workers
    report = RunReport(
        target=str(target_path),
        shape=tuple(int(n) for n in array.shape),
        dtype=str(array.dtype),
        chunks=store_chunks,
        tasks=len(tasks),
        chunks_written=sum(s.chunks for s in stats),
        chunks_total=len(ChunkGrid.regular(array.shape, store_chunks).rows)
        * len(ChunkGrid.regular(array.shape, store_chunks).cols),
        elapsed=elapsed,
        task_seconds=sum(s.seconds for s in stats),
        bytes_read=sum(s.bytes_read for s in stats),
        bytes_written=sum(s.bytes_written for s in stats),
        bytes_stored=directory_size(target_path),
        scheduler=scheduler_name,
        workers=n_workers,
    )
    update_group_attributes(
        target_path,
        {"pipeline": {**attributes["pipeline"], "complete": True, "report": report.to_dict()}},
    )
    return report


def _store_chunks(grid: ChunkGrid, chunks: ChunksLike, shape: tuple[int, ...]) -> tuple[int, int]:
    """The stored chunk shape: given, or the image's block shape."""
    if chunks is None:
        if not grid.is_regular:
            msg = (
                f"the image has irregular blocks (rows {grid.rows[:6]}, cols {grid.cols[:6]}) "
                "and Zarr chunks are regular; rechunk it first (image.rechunk((1024, 1024))) "
                "or pass chunks= that divide every block"
            )
            raise AlignmentError(msg)
        return grid.chunk_shape
    store = normalize_chunks(chunks, shape, grid.chunk_shape)
    return store.chunk_shape


def _input_paths(root: Node) -> list[Path]:
    return [Path(p) for s in root.sources() if (p := getattr(s, "path", None)) is not None]


def _check_not_inside_inputs(target: Path, root: Node) -> None:
    """Refuse an output at, inside, or around an input: overwriting it would destroy data."""
    out = target.resolve()
    for source in _input_paths(root):
        src = source.resolve()
        if out == src or src in out.parents or out in src.parents:
            relation = "is" if out == src else "is inside" if src in out.parents else "contains"
            msg = (
                f"output {target} {relation} the input {source}; writing there could destroy "
                "the input: choose an output path outside it"
            )
            raise ArgumentError(msg)


def _write_program_block(
    root: Node,
    window: Window,
    target: ZarrTarget,
    keys: tuple[ChunkKey, ...],
    *blocks: Any,
) -> BlockStats:
    """The task that computes one block of a `pipeline` program and writes it."""
    start = time.perf_counter()
    array = root.read(window, dict(zip(keys, blocks, strict=True)))
    written = target.write(window, array)
    return BlockStats(
        chunks=_chunks_in(window, target.chunks),
        bytes_read=root.bytes_read(window),
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


def _write_array_block(target: ZarrTarget, window: Window, block: Any) -> BlockStats:
    """The task that writes one block of a dask array `pipeline` did not make."""
    import numpy as np

    start = time.perf_counter()
    array = np.asarray(block)
    written = target.write(window, array)
    return BlockStats(
        chunks=_chunks_in(window, target.chunks),
        bytes_read=int(array.nbytes),
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


def _chunks_in(window: Window, chunks: tuple[int, int]) -> int:
    return -(-window.height // chunks[0]) * -(-window.width // chunks[1])


def _write_tasks(array: da.Array, grid: ChunkGrid, target: ZarrTarget) -> list[Any]:
    """One Delayed per block: compute it (fused with its program when there is one), write it."""
    from dask._task_spec import Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    program = program_of(array)
    name = f"write-{array.name}"
    tail = (0,) if array.ndim == 3 else ()
    layer: dict[Any, Any] = {}
    for (i, j), window in grid.blocks():
        key = (name, i, j)
        if program is not None:
            layer[key] = block_task(key, _write_program_block, program, window, target)
        else:
            layer[key] = Task(
                key, _write_array_block, target, window, TaskRef((array.name, i, j, *tail))
            )
    dependencies = list(program.collections) if program is not None else [array]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    return [Delayed(key, graph, layer=name) for key in layer]
