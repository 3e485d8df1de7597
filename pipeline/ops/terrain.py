"""Terrain geometry on elevation rasters, vectorised with numpy: slope, aspect, hillshade.

Each takes a block read with a halo of one pixel (``depth=1``) and returns its core. They
follow Horn (1981), "Hill shading and the reflectance map", as GDAL and ArcGIS do, with the
row axis pointing south (down the image) and the column axis east.

Every operation is elementwise on shifted views, so each output pixel depends only on its
3x3 neighbourhood and the result of a chunked run equals the whole-image result bit for bit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["aspect", "hillshade", "horn_gradient", "slope", "square"]


def horn_gradient(
    dem: NDArray[Any], cell_size: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(dz/dx, dz/dy)`` of the core of ``dem`` (a block with a 1-pixel halo) by Horn's
    3x3 weighted differences; x grows east (right), y grows south (down)."""
    z = np.asarray(dem, dtype=np.float64)
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * cell_size)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * cell_size)
    return dzdx, dzdy


def slope(dem: NDArray[Any], cell_size: float = 1.0, z_factor: float = 1.0) -> NDArray[Any]:
    """Slope in degrees (0 flat, 90 vertical) by Horn's method. ``depth=1``.

    Parameters
    ----------
    dem
        Elevation block with a 1-pixel halo.
    cell_size
        Ground distance between pixel centres, in the unit of the elevations.
    z_factor
        Multiplier of elevations (for instance to convert feet to metres).
    """
    dzdx, dzdy = horn_gradient(dem, cell_size)
    return _missing_centre(dem, np.degrees(np.arctan(z_factor * np.hypot(dzdx, dzdy))))


def aspect(dem: NDArray[Any], cell_size: float = 1.0) -> NDArray[Any]:
    """Direction of steepest descent in compass degrees (0 north, 90 east, clockwise); NaN
    where the terrain is flat (it has no direction), as ``gdaldem aspect``. ``depth=1``."""
    dzdx, dzdy = horn_gradient(dem, cell_size)
    # Downslope direction in compass terms: east component -dz/dx, north component +dz/dy
    # (rows grow southwards, so a rise towards the south means descent to the north).
    compass = np.degrees(np.arctan2(-dzdx, dzdy)) % 360.0
    return _missing_centre(dem, np.where((dzdx == 0) & (dzdy == 0), np.nan, compass))


def hillshade(
    dem: NDArray[Any],
    cell_size: float = 1.0,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    z_factor: float = 1.0,
) -> NDArray[Any]:
    """Shaded relief for a light at ``azimuth`` (compass degrees, default north-west) and
    ``altitude`` (degrees above the horizon): 1 (in shadow) to 255 (facing the light), as
    ``gdaldem hillshade``. ``depth=1``."""
    dzdx, dzdy = horn_gradient(dem, cell_size)
    dzdx, dzdy = z_factor * dzdx, z_factor * dzdy
    sun, elevation = math.radians(azimuth), math.radians(altitude)
    # The cosine of the angle between the light and the surface's normal (GDAL's algebra).
    shade = (
        math.sin(elevation) + math.cos(elevation) * (math.cos(sun) * dzdy - math.sin(sun) * dzdx)
    ) / np.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)
    lit = np.where(shade <= 0.0, 1.0, 1.0 + 254.0 * shade)
    return _missing_centre(dem, np.where(np.isnan(shade), np.nan, lit))


def _missing_centre(dem: NDArray[Any], values: NDArray[Any]) -> NDArray[Any]:
    """NaN where the centre of the 3x3 window is missing (Horn's sums leave it out)."""
    centre = np.asarray(dem)[1:-1, 1:-1]
    found: NDArray[Any] = np.where(np.isnan(centre), np.nan, values)
    return found


def square(image: NDArray[Any]) -> NDArray[Any]:
    """Every pixel squared: the pixel-wise example users start from. ``depth=0``."""
    squared: NDArray[Any] = np.square(image)
    return squared
