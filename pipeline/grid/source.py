"""The one interface between layers: a source of pixels that can read any window of itself.

Readers in `pipeline.io` implement it; block programs in `pipeline.ops` consume it. Neither
imports the other: both import this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from numpy.typing import NDArray

    from pipeline.grid.window import Window

__all__ = ["Address", "WindowSource"]


@runtime_checkable
class Address(Protocol):
    """An image's address on an object store or web server (``s3://bucket/key``)."""

    @property
    def url(self) -> str:
        """The address."""
        ...


@runtime_checkable
class WindowSource(Protocol):
    """A 2-D ``(Y, X)`` or 3-D ``(Y, X, C)`` raster that reads any window inside itself.

    Implementations are small and picklable: they hold what identifies the data (a path, a
    level), never an open file handle, so a task can be shipped to a process or a cluster
    worker and open the file there.
    """

    @property
    def shape(self) -> tuple[int, ...]:
        """``(Y, X)`` or ``(Y, X, C)``."""
        ...

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """Pixel type, native byte order."""
        ...

    @property
    def path(self) -> Path | Address | None:
        """The file or store it reads: a local path, an address on an object store (its
        ``str()`` is the address), or ``None`` for an array in memory."""
        ...

    @property
    def tile(self) -> tuple[int, int]:
        """The unit of storage along Y and X: a read decodes whole tiles (or chunks, strips)."""
        ...

    @property
    def level(self) -> int:
        """The pyramid level it reads (0: full resolution)."""
        ...

    @property
    def levels(self) -> int:
        """Pyramid levels the file holds (1 when it has none)."""
        ...

    @property
    def token(self) -> str:
        """A string that changes whenever the data may have changed (path, size, mtime)."""
        ...

    def read(self, window: Window) -> NDArray[np.generic]:
        """The pixels of ``window`` (inside the image), all channels."""
        ...
