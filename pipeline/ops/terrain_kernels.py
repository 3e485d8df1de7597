"""Terrain geometry as compiled per-pixel kernels: the built-ins ``slope``, ``aspect``,
``hillshade``, ``sky_view`` and ``square``.

Written as the per-pixel loop bodies they are, compiled by numba, they run several times
faster than the vectorised numpy versions in :mod:`pipeline.ops.terrain` (which hold eight
temporary images per block) and use a fraction of their memory. Conventions follow Horn (1981)
as GDAL and ArcGIS do: rows grow southwards, columns eastwards, angles in degrees.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipeline.ops.kernels import neighbourhood, pointwise

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Image = NDArray[Any]

__all__ = ["aspect", "hillshade", "sky_view", "slope", "square"]


@neighbourhood(radius=1, boundary="nearest")
def slope(z: Image, i: int, j: int, cell_size: float = 1.0, z_factor: float = 1.0) -> float:
    """Slope in degrees (0 flat, 90 vertical) from Horn's 3x3 weighted differences.

    ``cell_size`` is the distance between pixel centres in the unit of the elevations;
    ``z_factor`` scales the elevations.
    """
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * cell_size)
    return math.degrees(math.atan(z_factor * math.hypot(dzdx, dzdy)))


@neighbourhood(radius=1, boundary="nearest")
def aspect(z: Image, i: int, j: int, cell_size: float = 1.0) -> float:
    """Compass direction of steepest descent in degrees (0 north, 90 east); -1 where flat."""
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * cell_size)
    if dzdx == 0.0 and dzdy == 0.0:
        return -1.0
    return math.degrees(math.atan2(-dzdx, dzdy)) % 360.0


@neighbourhood(radius=1, boundary="nearest")
def hillshade(  # noqa: PLR0917 - a kernel's settings are positional for numba
    z: Image,
    i: int,
    j: int,
    cell_size: float = 1.0,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    z_factor: float = 1.0,
) -> float:
    """Shaded relief in 0..255 under a light at ``azimuth`` (compass degrees) and
    ``altitude`` (degrees above the horizon)."""
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * cell_size)
    slope_rad = math.atan(z_factor * math.hypot(dzdx, dzdy))
    aspect_rad = math.atan2(-dzdx, dzdy)
    zenith = math.radians(90.0 - altitude)
    shade = math.cos(zenith) * math.cos(slope_rad) + math.sin(zenith) * math.sin(
        slope_rad
    ) * math.cos(math.radians(azimuth) - aspect_rad)
    return min(max(255.0 * shade, 0.0), 255.0)


@neighbourhood(radius="radius", boundary="nan")
def sky_view(  # noqa: PLR0917 - a kernel's settings are positional for numba
    z: Image, i: int, j: int, radius: int = 10, directions: int = 16, cell_size: float = 1.0
) -> float:
    """Sky-view factor (Zakšek et al. 2011): the share of the sky visible from the pixel,
    1 on a plain or a peak, lower in valleys.

    Along each of ``directions`` rays, up to ``radius`` pixels long, the horizon is the
    steepest elevation angle to any pixel on the ray (0 if all are lower); the factor is
    ``1 - mean(sin(horizon))``. A ray stops at the image edge (NaN beyond it, or the edge of
    the array with boundary ``none``) and at NaN pixels, never at a block's edge.
    """
    z0 = z[i, j]
    if math.isnan(z0):
        return math.nan
    total = 0.0
    for d in range(directions):
        angle = 2.0 * math.pi * d / directions
        dy, dx = -math.cos(angle), math.sin(angle)  # direction 0 points north
        best = 0.0
        for s in range(1, radius + 1):
            yy = i + math.floor(dy * s + 0.5)
            xx = j + math.floor(dx * s + 0.5)
            if yy < 0 or yy >= z.shape[0] or xx < 0 or xx >= z.shape[1]:
                break
            v = z[yy, xx]
            if math.isnan(v):
                break
            rise = (v - z0) / (math.hypot(yy - i, xx - j) * cell_size)
            best = max(best, rise)
        total += best / math.sqrt(1.0 + best * best)  # sin(atan(best))
    return 1.0 - total / directions


@pointwise
def square(value: float) -> float:
    """The pixel's value squared: the per-pixel example users start from."""
    return value * value
