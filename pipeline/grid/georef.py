"""What gives pixels their meaning: where they are (CRS and affine transform), how large, and
which value means "no data".

Pure arithmetic on the transform (`affine`, the package rasterio uses); the CRS is kept as
text (WKT2, or an authority code) and interpreted in `pipeline.grid.crs` with pyproj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affine import Affine

    from pipeline.grid.window import Window

__all__ = ["Georef"]

Coefficients = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Georef:
    """The georeferencing of an image (or of a block of it).

    ``transform`` maps pixel corners ``(column, row)`` to ``(x, y)`` as GDAL and rasterio do:
    ``x = a * column + b * row + c`` and ``y = d * column + e * row + f``, the coefficients
    ``(a, b, c, d, e, f)``. A north-up raster has ``b = d = 0`` and ``e < 0``; a microscopy
    image with a pixel size has ``e > 0`` (rows go down) and no CRS.
    """

    crs: str | None = None
    """The coordinate reference system: WKT2 or an authority code (``EPSG:32633``);
    ``None`` for an image without one (a microscopy image with a pixel size)."""
    transform: Coefficients | None = None
    """Pixel corner ``(column, row)`` to ``(x, y)``: ``(a, b, c, d, e, f)``."""
    nodata: float | None = None
    """The value that marks missing pixels in the stored data (``None``: every pixel is
    data; NaN in a float image always means missing)."""
    unit: str | None = None
    """The unit of ``x`` and ``y`` when there is no CRS to say it (``micrometer``)."""
    z_unit: str | None = None
    """The unit of the pixel values, when the file declares one (GDAL's band unit type:
    ``m``, ``ft``, ``US survey foot``): elevations in feet over a grid in metres, say."""

    @property
    def affine(self) -> Affine:
        """The transform as an :class:`affine.Affine` (identity without one)."""
        from affine import Affine

        return Affine(*self.transform) if self.transform is not None else Affine.identity()

    @property
    def is_empty(self) -> bool:
        """Nothing known: no CRS, transform or nodata."""
        return self.crs is None and self.transform is None and self.nodata is None

    @property
    def is_rectilinear(self) -> bool:
        """Rows and columns run along ``y`` and ``x`` (no rotation or shear)."""
        if self.transform is None:
            return True
        a, b, _, d, e, _ = self.transform
        return b == 0 and d == 0 and a != 0 and e != 0

    @property
    def pixel_size(self) -> tuple[float, float] | None:
        """``(dy, dx)``: a pixel's height and width in the units of ``x`` and ``y`` (positive);
        ``None`` without a transform."""
        if self.transform is None:
            return None
        a, b, _, d, e, _ = self.transform
        return (math.hypot(b, e), math.hypot(a, d))

    def window(self, window: Window) -> Georef:
        """The georeferencing of ``window``: its transform starts at its own corner."""
        if self.transform is None:
            return self
        a, b, c, d, e, f = self.transform
        x0, y0 = window.x0, window.y0
        moved = (a, b, a * x0 + b * y0 + c, d, e, d * x0 + e * y0 + f)
        return replace(self, transform=moved)

    def level(self, level: int) -> Georef:
        """The georeferencing of pyramid level ``level`` (each level halves the one below):
        pixels ``2**level`` times larger, with the same corner."""
        if self.transform is None or level == 0:
            return self
        k = 2.0**level
        a, b, c, d, e, f = self.transform
        return replace(self, transform=(a * k, b * k, c, d * k, e * k, f))

    def bounds(self, shape: tuple[int, int]) -> tuple[float, float, float, float] | None:
        """``(xmin, ymin, xmax, ymax)`` of an image of ``shape`` (outer pixel edges)."""
        if self.transform is None:
            return None
        height, width = shape
        corners = [self.affine @ (col, row) for col in (0, width) for row in (0, height)]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        return (min(xs), min(ys), max(xs), max(ys))

    def centres(self, window: Window) -> tuple[Any, Any]:
        """``(x, y)``: the world coordinates of the centres of the pixels of ``window``, two
        arrays of its shape."""
        import numpy as np

        rows, cols = np.mgrid[window.y0 : window.y1, window.x0 : window.x1].astype(np.float64)
        rows += 0.5
        cols += 0.5
        a, b, c, d, e, f = self.transform or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        return a * cols + b * rows + c, d * cols + e * rows + f

    def to_json(self) -> dict[str, Any]:
        """As stored in an output's record."""
        return {
            "crs": self.crs,
            "transform": list(self.transform) if self.transform is not None else None,
            "nodata": _json_number(self.nodata),
            "unit": self.unit,
            "z_unit": self.z_unit,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Georef:
        """The inverse of `to_json`."""
        if not data:
            return cls()
        transform = data.get("transform")
        nodata = data.get("nodata")
        return cls(
            crs=data.get("crs"),
            transform=tuple(float(v) for v in transform) if transform else None,  # type: ignore[arg-type]
            nodata=float(nodata) if nodata is not None else None,
            unit=data.get("unit"),
            z_unit=data.get("z_unit"),
        )


def _json_number(value: float | None) -> float | str | None:
    """JSON has no NaN: a NaN nodata is written as the string ``"NaN"`` (as GDAL does)."""
    if value is None or math.isfinite(value):
        return value
    return str(value).replace("nan", "NaN").replace("inf", "Infinity")
