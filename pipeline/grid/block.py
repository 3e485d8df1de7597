"""`BlockInfo`: what a user function may learn about the block it is computing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.grid.georef import Georef

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pipeline.grid.window import Window

__all__ = ["BlockInfo"]


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """Where a block sits in the image, passed to functions that accept ``block_info=``.

    Everything is in global pixel coordinates, so geometry that depends on absolute position
    (a pixel's row and column, its distance to a point, a georeferenced coordinate) comes out
    exactly as it would on the whole image.
    """

    core: Window
    """The pixels this call computes: the block without its halo."""
    padded: Window
    """The pixels the function's input array covers: ``core`` plus the halo. It reaches past
    the image edge by the depth, except with boundary ``none``, where it stops at the edge."""
    image_shape: tuple[int, int]
    """``(height, width)`` of the whole image."""
    depth: tuple[int, int]
    """The requested halo ``(dy, dx)``."""
    boundary: str
    """The boundary mode that filled the halo beyond the image edge."""
    image_georef: Georef = field(default_factory=Georef)
    """The georeferencing of the whole image (CRS, transform, nodata; empty without)."""

    @property
    def crs(self) -> str | None:
        """The image's coordinate reference system (WKT2), if it has one."""
        return self.image_georef.crs

    @property
    def georef(self) -> Georef:
        """The georeferencing of the function's input array: its transform starts at the
        array's first pixel (``padded``), so ``georef.affine @ (col, row)`` places the array's
        pixel ``[row, col]``."""
        return self.image_georef.window(self.padded)

    @property
    def transform(self) -> tuple[float, float, float, float, float, float] | None:
        """The affine transform of the function's input array (``None`` without one)."""
        return self.georef.transform

    def world_coords(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(x, y)``: world coordinates of the centres of the input array's pixels, two
        arrays of its shape (pixel centres ``col + 0.5, row + 0.5`` without a transform)."""
        return self.image_georef.centres(self.padded)

    @property
    def halo(self) -> tuple[int, int, int, int]:
        """Rows and columns of halo actually present: ``(top, bottom, left, right)``."""
        return (
            self.core.y0 - self.padded.y0,
            self.padded.y1 - self.core.y1,
            self.core.x0 - self.padded.x0,
            self.padded.x1 - self.core.x1,
        )

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Slices that select the core out of the function's input array."""
        return self.core.relative_to(self.padded)

    def trim(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        """The core of an array that covers the padded window."""
        return array[self.core_slices]

    def coords(self) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Global row and column coordinates of the input array, as ``(ys, xs)`` 1-D arrays.

        ``ys[:, None]`` and ``xs[None, :]`` broadcast to the block's shape.
        """
        return (
            np.arange(self.padded.y0, self.padded.y1, dtype=np.intp),
            np.arange(self.padded.x0, self.padded.x1, dtype=np.intp),
        )

    def inside(self) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Which rows and columns of the input array lie inside the image, as 1-D masks."""
        ys, xs = self.coords()
        return (ys >= 0) & (ys < self.image_shape[0]), (xs >= 0) & (xs < self.image_shape[1])
