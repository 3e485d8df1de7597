"""The one task of a run: compute a block, write it, record it."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pipeline.grid import chunks_in
from pipeline.io.lock import process_gone
from pipeline.ops import block_task, program_for
from pipeline.report import BlockStats
from pipeline.runtime.retry import attempts

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import dask.array as da
    from numpy.typing import NDArray

    from pipeline.grid import ChunkGrid, Window
    from pipeline.io import Remote, ZarrTarget
    from pipeline.ops import Node
    from pipeline.ops.nodes import ChunkKey

__all__ = [
    "RUNNING_DIR",
    "blocks_running",
    "died_on",
    "forget_running",
    "running",
    "wait_for_blocks",
    "write_block",
    "write_tasks",
]


def write_block(  # noqa: PLR0917 - a task function: dask passes arguments by position
    root: Node,
    window: Window,
    target: ZarrTarget,
    index: tuple[int, int],
    retries: int,
    kept: NDArray[Any] | None,
    keys: tuple[ChunkKey, ...],
    *blocks: Any,
) -> BlockStats:
    """Compute the block at ``window`` (from ``blocks``, the dask blocks it depends on), or
    take its ``kept`` result (computed while planning), write it and record it, again after
    a transient I/O error."""
    start = time.perf_counter()

    def work() -> int:
        array = kept
        if array is None:
            array = root.read(window, dict(zip(keys, blocks, strict=True)))
        written = target.write(window, array)
        target.mark_done(index, window)
        return written

    with running(target.path, index, window):
        written = attempts(work, retries, target.path, window)
    return BlockStats(
        chunks=chunks_in(window, target.chunks),
        bytes_read=root.bytes_read(window) if kept is None else 0,
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


RUNNING_DIR = ".pipeline/running"
"""Inside an output: one empty file per block being computed, named ``PID-I.J``. A process
that dies at once (``os._exit``, a crash in native code) leaves its file behind, which names
the block it died on."""


_BUSY: set[int] = set()
"""The threads of this process computing a block now."""


def blocks_running() -> int:
    """How many threads of this process are computing a block now (after a run stopped:
    stuck in the function)."""
    return len(_BUSY)


def wait_for_blocks(seconds: float = 10.0) -> None:
    """Wait, at most ``seconds``, for the blocks this process's threads are computing to end
    (written, or failed): a run that stopped at another block's error must not remove an
    output a thread is still writing to (it would make the folder again). A block stuck in
    the function past that is abandoned, as a block past ``block_timeout`` is."""
    deadline = time.monotonic() + seconds
    while _BUSY and time.monotonic() < deadline:
        time.sleep(0.01)


@contextlib.contextmanager
def running(
    store: Path | Remote, index: tuple[int, int], window: Window | None = None
) -> Iterator[None]:
    """Mark block ``index`` as being computed by this process while the block runs. The note
    holds the thread computing it and the block's pixels, for the report of a crash."""
    marker = store / RUNNING_DIR / f"{os.getpid()}-{index[0]}.{index[1]}"
    me = threading.get_ident()
    note = {"thread": me, "window": None if window is None else str(window)}
    _BUSY.add(me)
    try:
        # Not its parents: a worker still running after its run ended (and removed an output
        # it had written nothing to) must not make the folder again.
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(json.dumps(note))
    except OSError:  # a note for a crash report: never a reason to fail the block
        with contextlib.suppress(OSError):
            marker.unlink(missing_ok=True)  # half written on a full disk
        try:
            yield
        finally:
            _BUSY.discard(me)
        return
    try:
        yield
    finally:
        _BUSY.discard(me)
        marker.unlink(missing_ok=True)


def forget_running(store: Path | Remote) -> None:
    """Remove this process's notes: the run stops, and blocks its threads are still running
    (stuck, abandoned) are not blocks it died on."""
    folder = store / RUNNING_DIR
    for marker in folder.glob(f"{os.getpid()}-*") if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            marker.unlink()


def died_on(store: Path | Remote) -> list[tuple[int, int]]:
    """Blocks that a process of this machine, now gone, was computing when it died."""
    found = []
    folder = store / RUNNING_DIR
    markers: list[Path | Remote] = list(folder.iterdir()) if folder.is_dir() else []
    for marker in sorted(markers, key=lambda m: m.name):
        pid, _, index = marker.name.partition("-")
        i, _, j = index.partition(".")
        try:
            if process_gone(int(pid)):
                found.append((int(i), int(j)))
                marker.unlink(missing_ok=True)
        except ValueError:
            continue
    return found


def write_tasks(
    array: da.Array,
    grid: ChunkGrid,
    target: ZarrTarget,
    *,
    skip: set[tuple[int, int]] | None = None,
    retries: int = 2,
    kept: dict[tuple[int, int], Any] | None = None,
) -> list[Any]:
    """One Delayed per block not in ``skip``: compute it (fused with its program), or take
    its result from ``kept``, write it, record it.

    Largest blocks first, so that the last tasks, which leave cores idle when they end
    unevenly, are the smallest (edge blocks cut by the image's border). The list is in that
    order (a cluster runs its waves in it), and so are the keys: dask's local schedulers
    start independent tasks in reverse order of their keys, compared as text (so the rank is
    zero-padded)."""
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    program = program_for(array)
    name = f"write-{array.name}"
    layer: dict[Any, Any] = {}
    blocks = [(index, w) for index, w in grid.blocks() if not (skip and index in skip)]
    blocks.sort(key=lambda block: -block[1].size)  # stable: row-major among equals
    for rank, ((i, j), window) in enumerate(blocks):
        key = (name, f"{len(blocks) - 1 - rank:09d}")
        result = (kept or {}).get((i, j))
        layer[key] = block_task(key, write_block, program, window, target, (i, j), retries, result)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(program.collections))
    return [Delayed(key, graph, layer=name) for key in layer]
