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

import numpy as np

from pipeline.ops.kernels import neighbourhood, pointwise

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Image = NDArray[Any]

__all__ = ["aspect", "degrees_of_arctan", "hillshade", "ray_tables", "sky_view", "slope", "square"]


RAD_TO_DEG = 180.0 / math.pi
"""The factor ``np.degrees`` multiplies by (the same double)."""


def degrees_of_arctan(tangent: NDArray[Any]) -> NDArray[Any]:
    """The angle in degrees of each tangent, in place: numpy's ``arctan`` is vectorised, where
    numba calls ``math.atan`` pixel by pixel. The conversion is a multiplication by
    ``180 / pi``: the same bits as ``np.degrees``, which calls a scalar function per element."""
    np.arctan(tangent, out=tangent)
    np.multiply(tangent, RAD_TO_DEG, out=tangent)
    return tangent


# The Horn kernels below follow gdaldem, the field's reference, by default: a pixel whose 3x3
# window holds a missing value (NaN, nodata read as NaN, or beyond the image edge, where the
# boundary is NaN) is missing too. Horn's sums leave out the centre, so it is checked itself;
# NaN in any neighbour makes the sums NaN. ``cell_size`` is the distance between pixel centres
# along a row (x), ``cell_size_y`` along a column (0: the same), in the unit of the
# elevations; `apply` fills them in from a georeferenced image's transform.


@neighbourhood(radius=1, boundary="nan", finish=degrees_of_arctan)
def slope(  # noqa: PLR0917 - a kernel's settings are positional for numba
    z: Image,
    i: int,
    j: int,
    cell_size: float = 1.0,
    z_factor: float = 1.0,
    cell_size_y: float = 0.0,
) -> float:
    """Slope in degrees (0 flat, 90 vertical) from Horn's 3x3 weighted differences, as
    ``gdaldem slope``.

    ``z_factor`` scales the elevations (0.3048 for feet over metres). Per pixel the kernel
    gives the tangent of the slope; its ``finish`` turns a block of tangents into degrees.
    """
    if math.isnan(z[i, j]):
        return math.nan
    dy = cell_size_y if cell_size_y > 0.0 else cell_size
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * dy)
    return z_factor * math.sqrt(dzdx * dzdx + dzdy * dzdy)


@neighbourhood(radius=1, boundary="nan")
def aspect(  # noqa: PLR0917 - a kernel's settings are positional for numba
    z: Image,
    i: int,
    j: int,
    cell_size: float = 1.0,
    zero_for_flat: bool = False,
    cell_size_y: float = 0.0,
) -> float:
    """Compass direction of steepest descent in degrees (0 north, 90 east), as ``gdaldem
    aspect``: a flat pixel has no direction (NaN, written as nodata), or 0 with
    ``zero_for_flat``."""
    if math.isnan(z[i, j]):
        return math.nan
    dy = cell_size_y if cell_size_y > 0.0 else cell_size
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * dy)
    if dzdx == 0.0 and dzdy == 0.0:
        return 0.0 if zero_for_flat else math.nan
    return math.degrees(math.atan2(-dzdx, dzdy)) % 360.0


@neighbourhood(radius=1, boundary="nan")
def hillshade(  # noqa: PLR0917 - a kernel's settings are positional for numba
    z: Image,
    i: int,
    j: int,
    cell_size: float = 1.0,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    z_factor: float = 1.0,
    cell_size_y: float = 0.0,
) -> float:
    """Shaded relief under a light at ``azimuth`` (compass degrees) and ``altitude``
    (degrees above the horizon), as ``gdaldem hillshade``: 1 (in shadow) to 255 (facing the
    light), so that 0 stays free for nodata in an 8-bit copy."""
    if math.isnan(z[i, j]):
        return math.nan
    dy = cell_size_y if cell_size_y > 0.0 else cell_size
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = z_factor * (((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size))
    dzdy = z_factor * (((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * dy))
    if math.isnan(dzdx) or math.isnan(dzdy):
        return math.nan
    sun = math.radians(azimuth)
    elevation = math.radians(altitude)
    # The cosine of the angle between the light and the surface's normal.
    cang = (
        math.sin(elevation) + math.cos(elevation) * (math.cos(sun) * dzdy - math.sin(sun) * dzdx)
    ) / math.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)
    return 1.0 if cang <= 0.0 else 1.0 + 254.0 * cang


def ray_tables(
    radius: int = 10, directions: int = 16, cell_size: float = 1.0
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """The settings of :func:`sky_view` as the tables its rays follow: for each of
    ``directions`` rays (0 pointing north, clockwise) and each step out to ``radius``, the
    pixel offsets ``(dy, dx)`` and the reciprocal of the ground distance to that pixel.

    Computed once per block; every pixel reuses them."""
    steps = np.arange(1, radius + 1)
    angles = 2.0 * np.pi * np.arange(directions) / directions
    dy = np.floor(-np.cos(angles)[:, None] * steps + 0.5).astype(np.intp)
    dx = np.floor(np.sin(angles)[:, None] * steps + 0.5).astype(np.intp)
    inverse = 1.0 / (np.hypot(dy, dx) * cell_size)
    return dy, dx, inverse


@neighbourhood(radius="radius", boundary="nan", settings=ray_tables)
def sky_view(  # noqa: PLR0917 - numba kernels take positional arguments
    z: Image, i: int, j: int, dy: Image, dx: Image, inverse: Image
) -> float:
    """Sky-view factor (Zakšek et al. 2011): the share of the sky visible from the pixel,
    1 on a plain or a peak, lower in valleys. Settings: ``radius`` (10), ``directions``
    (16), ``cell_size`` (1.0); see :func:`ray_tables`.

    Along each ray the horizon is the steepest elevation angle to any pixel on it (0 if all
    are lower); the factor is ``1 - mean(sin(horizon))``. A ray stops at the image edge (NaN
    beyond it, or the edge of the array with boundary ``none``) and at NaN pixels, never at a
    block's edge.
    """
    z0 = z[i, j]
    if math.isnan(z0):
        return math.nan
    directions, radius = dy.shape
    height, width = z.shape
    total = 0.0
    for d in range(directions):
        best = 0.0
        for s in range(radius):
            yy = i + dy[d, s]
            xx = j + dx[d, s]
            if yy < 0 or yy >= height or xx < 0 or xx >= width:
                break
            v = z[yy, xx]
            if math.isnan(v):
                break
            best = max(best, (v - z0) * inverse[d, s])
        total += best / math.sqrt(1.0 + best * best)  # sin(atan(best))
    return float(1.0 - total / directions)


@pointwise
def square(value: float) -> float:
    """The pixel's value squared: the per-pixel example users start from."""
    return value * value
