"""In-memory arrays as window sources: views in this process, one memory-mapped copy elsewhere.

A numpy array given to :func:`~pipeline.apply` or :func:`~pipeline.open_image` is planned as a
file is (the plan chooses its blocks) and read window by window as read-only views: no copy,
and the user's array is never written. Tasks that run in other processes (the ``processes``
scheduler, a LocalCluster) cannot see this process's memory, and pickling the array into every
task is what had each of them copy it again. While :func:`spill_arrays` is active (a run on
such a scheduler), an array pickles instead as a reference to a ``.npy`` file written once,
which every worker memory-maps: the operating system shares its pages between them.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from pipeline.grid import Window

__all__ = ["ArraySource", "SpilledArray", "spill_arrays"]

TILE = (256, 256)
"""The unit blocks of an in-memory array are made of (any block reads as cheaply)."""
_LOCK = threading.Lock()
_SPILL: dict[str, Any] = {"directory": None, "files": {}}
"""The active spill directory (``None``: arrays pickle by value) and the files written there,
by token."""


@dataclass(frozen=True, eq=False)
class ArraySource:
    """A window reader over a numpy array held in this process."""

    array: NDArray[Any]
    """The pixels, native byte order."""
    token: str
    """A hash of the pixels (as dask tokenizes arrays): a changed array is a new input."""

    format = "array"
    path = None
    level = 0
    levels = 1
    tile = TILE
    views = True
    """Reads are views into the array: a block holds no memory of its own."""

    @classmethod
    def of(cls, array: NDArray[Any]) -> ArraySource:
        """The source over ``array`` (copied only when its byte order is not native)."""
        from dask.base import tokenize

        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return cls(array, f"array:{tokenize(array)}")

    @property
    def shape(self) -> tuple[int, ...]:
        """``(Y, X)`` or ``(Y, X, C)``."""
        return tuple(int(n) for n in self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Pixel type."""
        return self.array.dtype

    def describe(self) -> dict[str, Any]:
        """What `pipeline info` and plans print."""
        return {"format": "in-memory numpy array", "layout": "views", "compression": "none"}

    def read(self, window: Window) -> NDArray[Any]:
        """A read-only view of the pixels of ``window``: a function that writes into its
        block gets an error instead of silently changing the user's array."""
        view = self.array[window.to_slices()].view()
        view.flags.writeable = False
        return view

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if _SPILL["directory"] is None:
            return (ArraySource, (self.array, self.token))
        path = _spilled(self)
        return (SpilledArray, (str(path), self.shape, self.dtype.str, self.token))


def _spilled(source: ArraySource) -> Path:
    """The ``.npy`` file of ``source`` in the active spill directory, written once."""
    with _LOCK:
        files: dict[str, Path] = _SPILL["files"]
        path = files.get(source.token)
        if path is None:
            path = Path(_SPILL["directory"]) / f"array-{len(files)}.npy"
            np.save(path, source.array, allow_pickle=False)
            files[source.token] = path
        return path


@dataclass(frozen=True)
class SpilledArray:
    """A window reader over an in-memory array's spilled ``.npy`` copy, memory-mapped."""

    file: str
    """The spilled file."""
    shape: tuple[int, ...]
    """``(Y, X)`` or ``(Y, X, C)``."""
    dtype_str: str
    """Pixel type, as ``numpy.dtype.str``."""
    token: str
    """The array's token (the same as its :class:`ArraySource`)."""

    format = "array"
    path = None
    level = 0
    levels = 1
    tile = TILE

    @property
    def dtype(self) -> np.dtype[Any]:
        """Pixel type."""
        return np.dtype(self.dtype_str)

    def read(self, window: Window) -> NDArray[Any]:
        """A read-only view of the memory map (its pages shared by every worker)."""
        return np.asarray(_memmap(self.file)[window.to_slices()])


@functools.lru_cache(maxsize=8)
def _memmap(path: str) -> NDArray[Any]:
    return np.load(path, mmap_mode="r", allow_pickle=False)  # type: ignore[no-any-return]


@contextlib.contextmanager
def spill_arrays(directory: Path | None = None) -> Iterator[Path]:
    """While active, in-memory arrays pickle as a ``.npy`` file in a new temporary folder
    (under ``directory``, else the system's), removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="pipeline-arrays-", dir=directory))
    with _LOCK:
        previous = dict(_SPILL)
        _SPILL.update(directory=folder, files={})
    try:
        yield folder
    finally:
        with _LOCK:
            _SPILL.clear()
            _SPILL.update(previous)
        _memmap.cache_clear()
        shutil.rmtree(folder, ignore_errors=True)  # a worker may still map a file (Windows)
