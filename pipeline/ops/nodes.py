"""Block programs: the lazy recipe behind every array `pipeline` makes, evaluated per window.

A program is a small tree of nodes. Leaves read pixels: a :class:`SourceNode` reads any window
straight from a file; a :class:`ChunkedNode` assembles a window out of the blocks of a dask
array that `pipeline` did not make, which arrive as task dependencies. A :class:`StepNode`
applies a user function to its inputs read with a halo, padded by a boundary mode.

Evaluating the root over one output block is one task. Because every node can compute any
window, a chain of steps fuses into that one task: the halos add up, intermediate results are
never shipped between tasks, and each task reads its inputs directly from storage.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import BlockFunctionError, BlockShapeError, WorkerStopped
from pipeline.grid import (
    BlockInfo,
    Boundary,
    ChunkGrid,
    Georef,
    Window,
    WindowSource,
    padded_read,
    padded_windows,
    unsafe_cast_reason,
)
from pipeline.ops.shipping import shippable

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "BLOCK_INFO_KEYWORD",
    "TEMPORARIES",
    "ChunkKey",
    "ChunkedNode",
    "Node",
    "SourceNode",
    "StepNode",
    "accepts_block_info",
    "describe_function",
]

TEMPORARIES = 4
"""float64 copies of its padded block a function other than a compiled kernel is assumed to
hold at its peak (for the memory projection of a plan), until measured: a plan that chooses
blocks measures it on one (`pipeline.planning.probe`)."""

BLOCK_INFO_KEYWORD = "block_info"
"""A function with a parameter of this name receives a :class:`~pipeline.BlockInfo`."""

ChunkKey = tuple[Any, ...]
"""A dask key ``(name, i, j[, 0])``."""
DaskBlocks = Mapping[ChunkKey, "NDArray[Any]"]
"""The blocks of foreign dask arrays a task received, by key."""


class Node(ABC):
    """A lazily computed image that can produce any window of itself."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.shape[0], self.shape[1])

    @property
    @abstractmethod
    def token(self) -> str:
        """Deterministic identity of what the node computes."""

    @abstractmethod
    def read(self, window: Window, blocks: DaskBlocks) -> NDArray[Any]:
        """The pixels of ``window`` (inside the image); ``blocks``: the dask blocks it needs."""

    @abstractmethod
    def leaf_reads(self, window: Window) -> Iterator[tuple[Node, Window]]:
        """Every ``(leaf, window)`` read that computing ``window`` performs."""

    def chunk_keys(self, window: Window) -> set[ChunkKey]:
        """The dask blocks computing ``window`` needs (none for file-backed programs)."""
        keys: set[ChunkKey] = set()
        for leaf, win in self.leaf_reads(window):
            if isinstance(leaf, ChunkedNode):
                keys.update(leaf.keys(win))
        return keys

    def bytes_read(self, window: Window) -> int:
        """Bytes of input pixels computing ``window`` reads (halos included)."""
        total = 0
        for leaf, win in self.leaf_reads(window):
            if isinstance(leaf, ChunkedNode):
                total += sum(leaf.chunk_nbytes(key) for key in leaf.keys(win))
            else:
                total += win.size * leaf.pixel_nbytes
        return total

    @abstractmethod
    def peak_bytes(self, window: Window) -> int:
        """Projected peak memory of computing ``window`` (arrays held at once, bytes)."""

    @property
    def pixel_nbytes(self) -> int:
        """Bytes per pixel, all channels."""
        channels = self.shape[2] if len(self.shape) == 3 else 1
        return int(self.dtype.itemsize * channels)

    def sources(self) -> Iterator[WindowSource]:
        """The file-backed sources this program reads."""
        for leaf, _ in self.leaf_reads(Window.from_shape(self.shape)):
            if isinstance(leaf, SourceNode):
                yield leaf.source


@dataclass(frozen=True, eq=False)
class SourceNode(Node):
    """A leaf that reads windows straight from a file (or any :class:`WindowSource`)."""

    source: WindowSource
    shape: tuple[int, ...] = field(init=False)
    dtype: np.dtype[Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.source.shape))
        object.__setattr__(self, "dtype", np.dtype(self.source.dtype))

    @property
    def token(self) -> str:
        return self.source.token

    def read(self, window: Window, blocks: DaskBlocks) -> NDArray[Any]:
        return self.source.read(window)

    def leaf_reads(self, window: Window) -> Iterator[tuple[Node, Window]]:
        yield self, window

    def peak_bytes(self, window: Window) -> int:
        # The window read (nothing for a view into memory); decoded tiles live in the
        # per-process tile cache, budgeted apart.
        return 0 if getattr(self.source, "views", False) else window.size * self.pixel_nbytes


@dataclass(frozen=True, eq=False)
class ChunkedNode(Node):
    """A leaf over a dask array that `pipeline` did not make (in-memory data, arithmetic).

    Only its name and chunk grid travel with the task; its blocks arrive as dependencies.
    """

    name: str
    grid: ChunkGrid
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def token(self) -> str:
        return f"dask:{self.name}"

    def keys(self, window: Window) -> list[ChunkKey]:
        """Keys of the blocks overlapping ``window``."""
        tail = (0,) if len(self.shape) == 3 else ()
        return [(self.name, i, j, *tail) for i, j in self.grid.overlapping(window)]

    def chunk_nbytes(self, key: ChunkKey) -> int:
        """Bytes of one block."""
        i, j = key[1], key[2]
        return self.grid.rows[i] * self.grid.cols[j] * self.pixel_nbytes

    def peak_bytes(self, window: Window) -> int:
        blocks = sum(self.chunk_nbytes(key) for key in self.keys(window))
        return blocks + window.size * self.pixel_nbytes

    def read(self, window: Window, blocks: DaskBlocks) -> NDArray[Any]:
        keys = self.keys(window)
        if len(keys) == 1 and self.grid.window(keys[0][1], keys[0][2]) == window:
            return np.asarray(blocks[keys[0]])  # exactly one block: no copy
        out = np.empty((*window.shape, *self.shape[2:]), dtype=self.dtype)
        for key in keys:
            block = self.grid.window(key[1], key[2])
            part = block.intersection(window)
            out[part.relative_to(window)] = blocks[key][part.relative_to(block)]
        return out

    def leaf_reads(self, window: Window) -> Iterator[tuple[Node, Window]]:
        yield self, window


def accepts_block_info(func: Callable[..., Any], n_images: int) -> bool:
    """True when ``func`` has a ``block_info`` parameter that is not taken by an image."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    taken = {p.name for p in positional[:n_images]}
    return any(
        p.name == BLOCK_INFO_KEYWORD
        and p.name not in taken
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in params
    )


def _function_traceback(exc: BaseException) -> str:
    """The traceback of a user function's exception, without our frame above it."""
    import traceback
    from pathlib import Path

    package = str(Path(__file__).resolve().parents[1])
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(package):
        tb = tb.tb_next  # our frames (the call into the function, its by-value wrapper)
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _restore_node(cls: type[Node], state: dict[str, Any]) -> Node:
    node = object.__new__(cls)
    node.__dict__.update(state)  # frozen: set as unpickling does, without __init__
    return node


def describe_function(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (``file.py:name`` for one loaded from a file), for
    messages and task names."""
    label = getattr(func, "pipeline_label", None)
    if isinstance(label, str):
        return label
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if name is None:
        return repr(func)
    if "<locals>" in name:  # a nested function: its own name reads better than the path to it
        name = name.rsplit(".", 1)[-1]
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module and module not in ("__main__", "builtins") else name


@dataclass(frozen=True, eq=False)
class StepNode(Node):
    """A user function applied to one or more aligned inputs, each read with a halo."""

    func: Callable[..., Any]
    inputs: tuple[Node, ...]
    depth: tuple[int, int]
    boundary: Boundary
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    params: dict[str, Any]
    block_info: bool
    label: str
    step_token: str
    """Identity of the function, its parameters and settings (inputs excluded)."""
    gil_bound: bool = False
    """The function holds the GIL throughout (an uncompiled kernel): run it in processes."""
    compile_seconds: float = 0.0
    """Time spent compiling the function in this process, when it is a kernel."""
    georef: Georef = field(default_factory=Georef)
    """The georeferencing of the step's image (its inputs'), for ``block_info``."""

    @property
    def token(self) -> str:
        return f"{self.step_token}({','.join(i.token for i in self.inputs)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The user's function travels so that a worker shows its file and lines.
        return (_restore_node, (type(self), dict(vars(self), func=shippable(self.func))))

    def leaf_reads(self, window: Window) -> Iterator[tuple[Node, Window]]:
        _, pieces = padded_windows(window.pad(self.depth), self.image_shape, self.boundary)
        for node in self.inputs:
            for piece in pieces:
                yield from node.leaf_reads(piece)

    def peak_bytes(self, window: Window) -> int:
        """Inputs are read one after the other and held; then the function runs on them.

        A compiled kernel allocates only its output (with ``finish``, also its values before
        finishing: see ``KernelBlock.temporary_nbytes``). Any other function is assumed to hold
        ``TEMPORARIES`` float64 copies of its padded block (a vectorised numpy expression
        typically does), the one part of the projection that is a guess.
        """
        covered, pieces = padded_windows(window.pad(self.depth), self.image_shape, self.boundary)
        gathered = len(pieces) > 1 or pieces[0] != covered
        held = peak = 0
        for node in self.inputs:
            padded = (
                covered.size
                * self.boundary.padded_dtype(node.dtype).itemsize
                * (node.pixel_nbytes // node.dtype.itemsize)
            )
            inner = max(node.peak_bytes(piece) for piece in pieces)
            # Across an edge the pieces are copied into one compact array, then gathered.
            assembling = 2 * padded if gathered else 0
            peak = max(peak, held + inner + assembling)
            held += padded
        temporaries = (
            self.func.temporary_nbytes(window.shape)
            if hasattr(self.func, "temporary_nbytes")
            else TEMPORARIES * covered.size * 8
        )
        result = window.size * self.pixel_nbytes
        return max(peak, held + temporaries + 2 * result)  # the result, and a cast copy

    def read(self, window: Window, blocks: DaskBlocks) -> NDArray[Any]:
        padded = window.pad(self.depth)
        arrays = []
        covered = padded
        for node in self.inputs:
            array, covered = padded_read(
                lambda w, node=node: node.read(w, blocks),  # type: ignore[misc]
                padded,
                self.image_shape,
                self.boundary,
                node.dtype,
            )
            arrays.append(array)
        kwargs = dict(self.params)
        if self.block_info:
            kwargs[BLOCK_INFO_KEYWORD] = BlockInfo(
                core=window,
                padded=covered,
                image_shape=self.image_shape,
                depth=self.depth,
                boundary=str(self.boundary),
                image_georef=self.georef,
            )
        try:
            result = self.func(*arrays, **kwargs)
        except WorkerStopped:
            raise  # the worker was told to stop: not the function's failure
        except (Exception, SystemExit) as exc:  # sys.exit() in a function ends no run quietly
            msg = (
                f"{self.label} failed on the block at pixels {window} (rows {window.y0}-"
                f"{window.y1 - 1}, columns {window.x0}-{window.x1 - 1}) of the "
                f"{self.shape[0]}x{self.shape[1]} image: {type(exc).__name__}: {exc}"
            )
            raise BlockFunctionError(msg, _function_traceback(exc)) from exc
        return self._check(np.asarray(result), window, covered)

    def _check(self, result: NDArray[Any], window: Window, covered: Window) -> NDArray[Any]:
        tail = self.shape[2:]
        if result.shape == (*window.shape, *tail):
            core = result
        elif result.shape == (*covered.shape, *tail):
            core = result[window.relative_to(covered)]
        else:
            hint = ""
            if result.shape[:2] in (window.shape, covered.shape):
                want = f"channels={result.shape[2]}" if result.ndim == 3 else "channels=None"
                hint = f"; if the output really has this shape, declare {want} in apply()"
            msg = (
                f"{self.label} returned shape {result.shape} for the block at pixels {window}; "
                f"expected the core {(*window.shape, *tail)} or the padded block "
                f"{(*covered.shape, *tail)}{hint}"
            )
            raise BlockShapeError(msg)
        if core.dtype != self.dtype:
            reason = unsafe_cast_reason(core.dtype, self.dtype)
            if reason:
                msg = (
                    f"{self.label} returned dtype {core.dtype} for the block at pixels "
                    f"{window}, but the declared output dtype is {self.dtype}: {reason}"
                )
                raise BlockShapeError(msg)
            core = core.astype(self.dtype)
        return core
