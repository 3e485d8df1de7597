"""Dask graphs for block programs: one task per output block, and nothing else.

`to_dask` turns a program and a chunk grid into a ``dask.array.Array`` whose every block is a
single task. The array remembers its program, so that `apply` can fuse a step onto it and
`save` can write each block in the same task that computes it; any other dask array becomes a
:class:`~pipeline.ops.nodes.ChunkedNode` whose blocks are task dependencies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ArgumentError
from pipeline.grid import ChunkGrid, Window, auto_chunks, normalize_chunks
from pipeline.ops.memory import ArraySource
from pipeline.ops.nodes import ChunkedNode, ChunkKey, Node, SourceNode

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import dask.array as da
    from numpy.typing import NDArray

    from pipeline.grid import ChunksLike, WindowSource

__all__ = [
    "Program",
    "as_dask",
    "as_node",
    "block_task",
    "compute_window",
    "program_for",
    "program_of",
    "source_array",
    "to_dask",
    "tokenize",
]

_ATTRIBUTE = "_pipeline_program"


@dataclass(frozen=True, eq=False)
class Program:
    """The recipe of an array made by `pipeline`: a root node cut into blocks by ``grid``."""

    name: str
    """The dask name of the array's blocks."""
    root: Node
    """What every block computes."""
    grid: ChunkGrid
    """The output blocks: one task each."""
    collections: tuple[Any, ...]
    """Dask arrays whose blocks the tasks depend on (those of the program's chunked leaves)."""
    auto_grid: bool = False
    """The blocks are a default, not the user's choice: a plan may choose better ones."""

    def regrid(self, grid: ChunkGrid) -> Any:
        """The same program cut into other blocks (any grid works: every node computes any
        window)."""
        name = f"{self.name.rsplit('-', 1)[0]}-{tokenize(self.root.token, grid)}"
        return to_dask(self.root, grid, name, self.collections)


def tokenize(*parts: object) -> str:
    """A deterministic token, or a random one for objects dask cannot tokenize."""
    from dask.base import tokenize as dask_tokenize

    try:
        return str(dask_tokenize(*parts, ensure_deterministic=True))
    except Exception:
        return uuid.uuid4().hex


def program_of(array: object) -> Program | None:
    """The program of an array `pipeline` made and that has not been transformed since."""
    program = getattr(array, _ATTRIBUTE, None)
    if isinstance(program, Program) and getattr(array, "name", None) == program.name:
        return program
    return None


def run_block(root: Node, window: Window, keys: tuple[ChunkKey, ...], *blocks: Any) -> Any:
    """The task behind every block: evaluate the program over one window."""
    return root.read(window, dict(zip(keys, blocks, strict=True)))


def block_task(
    key: ChunkKey,
    func: Callable[..., Any],
    program: Program,
    window: Window,
    *extra: object,
) -> Any:
    """A task calling ``func(root, window, *extra, keys, *blocks)`` with the dask blocks the
    window needs as dependencies."""
    from dask._task_spec import Task, TaskRef

    keys = tuple(sorted(program.root.chunk_keys(window)))
    return Task(key, func, program.root, window, *extra, keys, *(TaskRef(k) for k in keys))


def to_dask(
    root: Node,
    grid: ChunkGrid,
    name: str,
    collections: Sequence[Any] = (),
    *,
    auto_grid: bool = False,
) -> da.Array:
    """The dask array whose block ``(i, j)`` is ``root`` evaluated over ``grid.window(i, j)``.

    ``auto_grid`` marks blocks nobody asked for, which a plan may replace."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    program = Program(
        name=name, root=root, grid=grid, collections=tuple(collections), auto_grid=auto_grid
    )
    tail = (0,) if len(root.shape) == 3 else ()
    layer = {}
    for (i, j), window in grid.blocks():
        key = (name, i, j, *tail)
        layer[key] = block_task(key, run_block, program, window)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(collections))
    chunks: tuple[tuple[int, ...], ...] = (grid.rows, grid.cols)
    if tail:
        chunks += ((root.shape[2],),)
    meta = np.empty((0,) * len(root.shape), dtype=root.dtype)
    array = da.Array(graph, name, chunks=chunks, meta=meta)
    setattr(array, _ATTRIBUTE, program)
    return array


def source_array(source: WindowSource, grid: ChunkGrid, *, auto_grid: bool = False) -> da.Array:
    """A lazy dask array over a file: each block reads its window when computed."""
    name = f"{type(source).__name__.lower()}-{tokenize(source.token, grid)}"
    return to_dask(SourceNode(source), grid, name, auto_grid=auto_grid)


def as_dask(array: Any, chunks: ChunksLike = None) -> da.Array:
    """A numpy or dask array as a dask array chunked along Y and X only."""
    import dask.array as da

    if isinstance(array, da.Array):
        if array.ndim == 3 and len(array.chunks[2]) > 1:
            array = array.rechunk({2: -1})
        if chunks is not None:
            grid = normalize_chunks(chunks, array.shape, (1, 1))
            array = array.rechunk((grid.rows, grid.cols, *((-1,) if array.ndim == 3 else ())))
        return array
    if not isinstance(array, np.ndarray):
        msg = f"expected an image (numpy or dask array, or a path), got {type(array).__name__}"
        raise ArgumentError(msg)
    # Planned as a file is: the plan chooses the blocks unless ``chunks`` says otherwise.
    source = ArraySource.of(array)
    itemsize = source.dtype.itemsize * (array.shape[2] if array.ndim == 3 else 1)
    default = auto_chunks(source.shape, source.tile, itemsize)
    grid = normalize_chunks(chunks, source.shape, default)
    return source_array(source, grid, auto_grid=chunks is None)


def as_node(array: da.Array) -> tuple[Node, tuple[Any, ...]]:
    """The program node standing for ``array`` and the collections its tasks depend on."""
    program = program_of(array)
    if program is not None:
        return program.root, program.collections
    grid = ChunkGrid.from_dask(array.chunks)
    node = ChunkedNode(name=array.name, grid=grid, shape=tuple(array.shape), dtype=array.dtype)
    return node, (array,)


def program_for(array: da.Array) -> Program:
    """The program of an array `pipeline` made, or one whose blocks are those of ``array``."""
    program = program_of(array)
    if program is not None:
        return program
    root, collections = as_node(array)
    return Program(array.name, root, ChunkGrid.from_dask(array.chunks), collections)


def compute_window(array: da.Array, window: Window) -> NDArray[Any]:
    """Compute one window of an array `pipeline` made, reading only what it needs."""
    program = program_of(array)
    if program is None or program.collections:
        return np.asarray(array[window.to_slices()].compute())
    return program.root.read(window, {})
