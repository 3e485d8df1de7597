"""NumPy ``.npy`` reader: windows of a memory-mapped array, opened afresh in each task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import CorruptSourceError, UnsupportedSourceError
from pipeline.io.base import check_channels_last, check_image_dtype, check_image_shape

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from pipeline.grid import Window

__all__ = ["NpySource"]


def _memmap(path: Path) -> np.memmap[Any, Any]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        # numpy says "mmap length is greater than file size" for a truncated file and
        # "cannot load file containing pickled data" for object arrays.
        msg = f"{path}: cannot read this .npy file ({exc}); it is damaged or holds objects"
        raise CorruptSourceError(msg) from exc
    if not isinstance(array, np.memmap):
        msg = f"{path}: not a plain .npy array (got {type(array).__name__})"
        raise UnsupportedSourceError(msg)
    return array


@dataclass(frozen=True, slots=True)
class NpySource:
    """A window reader for a ``.npy`` file."""

    path: Path
    """The file."""
    shape: tuple[int, ...]
    """``(Y, X)`` or ``(Y, X, C)``."""
    dtype: np.dtype[Any]
    """Pixel type (native byte order)."""
    tile: tuple[int, int]
    """Contiguous unit: a row (C order) or a column (Fortran order)."""
    file_size: int
    """Size in bytes when opened."""
    mtime_ns: int
    """Modification time when opened: part of the token."""

    format = "npy"
    level = 0
    levels = 1

    @classmethod
    def open(cls, path: Path) -> NpySource:
        """Read the header and check the file holds every byte the header promises."""
        stat = path.stat()
        array = _memmap(path)
        shape = tuple(int(n) for n in array.shape)
        check_image_shape(shape, str(path))
        check_channels_last(shape, str(path))
        check_image_dtype(array.dtype, str(path))
        fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
        tile = (shape[0], 1) if fortran else (1, shape[1])
        return cls(
            path=path,
            shape=shape,
            dtype=array.dtype.newbyteorder("="),
            tile=tile,
            file_size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
        )

    @property
    def token(self) -> str:
        """Identity of the data: path, size and modification time."""
        return f"npy:{self.path}:{self.file_size}:{self.mtime_ns}"

    def describe(self) -> dict[str, Any]:
        """What `pipeline info` prints."""
        order = "column-major" if self.tile[1] == 1 and self.shape[1] > 1 else "row-major"
        return {"format": "NumPy .npy", "layout": f"{order}, memory-mapped", "compression": "none"}

    def read(self, window: Window) -> NDArray[Any]:
        """A copy of the pixels of ``window``."""
        return np.array(_memmap(self.path)[window.to_slices()], dtype=self.dtype)
