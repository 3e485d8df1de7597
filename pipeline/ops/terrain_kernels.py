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
    from collections.abc import Callable

    from numpy.typing import NDArray

    from pipeline.ops.kernels import Kernel

    Image = NDArray[Any]
    Finish = Callable[[NDArray[Any]], NDArray[Any]] | None

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


# The Horn kernels below follow gdaldem, the field's reference. By default a pixel whose 3x3
# window holds a missing value (NaN, or nodata read as NaN) or reaches past the image edge
# (boundary ``nan``) is missing too. With ``compute_edges`` they compute those pixels as
# ``gdaldem -compute_edges`` does: a missing neighbour takes the centre's value, and a row or
# column beyond the image edge is extrapolated linearly from the two inside it. That mode is
# a variant compiled on its own, with boundary ``none`` (the arrays end at the image edge, so
# the window tells the edge from a void); the usual loop keeps no branch for it and stays
# vectorised. ``cell_size`` is the distance between pixel centres along a row (x),
# ``cell_size_y`` along a column (0: the same), in the unit of the elevations; `apply` fills
# them in from a georeferenced image's transform. The helpers are compiled with the kernels.


def horn_gradient(  # noqa: PLR0917 - a helper compiled with the kernels
    z: Image, i: int, j: int, cell_size: float, cell_size_y: float, compute_edges: bool
) -> tuple[float, float]:
    """Horn's (1981) weighted differences ``(dz/dx, dz/dy)`` at pixel ``(i, j)``, x east and
    y south: NaN when the pixel is missing or, without ``compute_edges``, when its window is
    incomplete. Kernels pass ``compute_edges`` as a constant, which compiles the other mode
    away."""
    if compute_edges:
        a, b, c, d, e, f, g, h, k = _window_with_edges(z, i, j)
    else:
        a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
        d, e, f = z[i, j - 1], z[i, j], z[i, j + 1]
        g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    if math.isnan(e):
        return math.nan, math.nan
    dy = cell_size_y if cell_size_y > 0.0 else cell_size
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / (8.0 * dy)
    return dzdx, dzdy


def _window_with_edges(z: Image, i: int, j: int) -> tuple[float, ...]:
    """The 3x3 window around ``(i, j)`` as ``gdaldem -compute_edges`` builds it, on arrays that
    end at the image edge (boundary ``none``). On the image's first and last rows the row
    beyond the edge is extrapolated and the columns beyond it repeat the edge column; on the
    other rows the column beyond the edge is extrapolated. A missing value then takes the
    centre's (all NaN when the image is a single row or column, which gdaldem leaves empty)."""
    height, width = z.shape
    e = z[i, j]
    w = np.full(9, np.nan)
    if height > 1 and width > 1:
        edge_row = i in {0, height - 1}
        for di in range(-1, 2):
            for dj in range(-1, 2):
                y, x = i + di, j + dj
                if edge_row:
                    x = min(max(x, 0), width - 1)
                    v = z[y, x] if 0 <= y < height else _beyond(z[i, x], z[i - di, x])
                else:
                    v = z[y, x] if 0 <= x < width else _beyond(z[y, j], z[y, j - dj])
                w[3 * di + dj + 4] = e if math.isnan(v) else v
    return w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]


def _beyond(edge: float, inside: float) -> float:
    """The value one pixel beyond an image edge, extrapolated linearly from the edge pixel and
    the one inside it: ``2 * edge - inside`` in the image's own type, as gdaldem computes it."""
    return (edge + edge) - inside


def _tangent(  # noqa: PLR0917 - a helper compiled with the kernels
    z: Image, i: int, j: int, cell_size: float, cell_size_y: float, z_factor: float, edges: bool
) -> float:
    dzdx, dzdy = horn_gradient(z, i, j, cell_size, cell_size_y, edges)
    return z_factor * math.sqrt(dzdx * dzdx + dzdy * dzdy)


def _direction(  # noqa: PLR0917 - a helper compiled with the kernels
    z: Image, i: int, j: int, cell_size: float, cell_size_y: float, flat: bool, edges: bool
) -> float:
    dzdx, dzdy = horn_gradient(z, i, j, cell_size, cell_size_y, edges)
    if math.isnan(dzdx):
        return math.nan
    if dzdx == 0.0 and dzdy == 0.0:
        return 0.0 if flat else math.nan
    return math.degrees(math.atan2(-dzdx, dzdy)) % 360.0


def _shade(  # noqa: PLR0917 - a helper compiled with the kernels
    z: Image,
    i: int,
    j: int,
    cell_size: float,
    cell_size_y: float,
    light: tuple[float, float, float],
    edges: bool,
) -> float:
    azimuth, altitude, z_factor = light
    dzdx, dzdy = horn_gradient(z, i, j, cell_size, cell_size_y, edges)
    if math.isnan(dzdx) or math.isnan(dzdy):
        return math.nan
    dzdx *= z_factor
    dzdy *= z_factor
    sun = math.radians(azimuth)
    elevation = math.radians(altitude)
    # The cosine of the angle between the light and the surface's normal.
    cang = (
        math.sin(elevation) + math.cos(elevation) * (math.cos(sun) * dzdy - math.sin(sun) * dzdx)
    ) / math.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)
    return 1.0 if cang <= 0.0 else 1.0 + 254.0 * cang


def _horn(make: Callable[[bool], Callable[..., float]], finish: Finish = None) -> Kernel:
    """The Horn kernel ``make(False)`` (boundary ``nan``), with ``make(True)``, the same body
    with ``compute_edges`` on as a constant, as its variant for ``compute_edges`` (boundary
    ``none``): numba compiles each mode without the other's branch."""
    edges = neighbourhood(make(True), radius=1, boundary="none", finish=finish)
    return neighbourhood(
        make(False), radius=1, boundary="nan", finish=finish, variants={"compute_edges": edges}
    )


def _slope(edges: bool) -> Callable[..., float]:
    def slope(  # noqa: PLR0917 - a kernel's settings are positional for numba
        z: Image,
        i: int,
        j: int,
        cell_size: float = 1.0,
        z_factor: float = 1.0,
        cell_size_y: float = 0.0,
        compute_edges: bool = False,
    ) -> float:
        """Slope in degrees (0 flat, 90 vertical) from Horn's 3x3 weighted differences, as
        ``gdaldem slope`` (``compute_edges``: as ``gdaldem slope -compute_edges``).

        ``z_factor`` scales the elevations (0.3048 for feet over metres). Per pixel the
        kernel gives the tangent of the slope; its ``finish`` turns a block of tangents into
        degrees.
        """
        return _tangent(z, i, j, cell_size, cell_size_y, z_factor, edges)

    return slope


def _aspect(edges: bool) -> Callable[..., float]:
    def aspect(  # noqa: PLR0917 - a kernel's settings are positional for numba
        z: Image,
        i: int,
        j: int,
        cell_size: float = 1.0,
        zero_for_flat: bool = False,
        cell_size_y: float = 0.0,
        compute_edges: bool = False,
    ) -> float:
        """Compass direction of steepest descent in degrees (0 north, 90 east), as ``gdaldem
        aspect``: a flat pixel has no direction (NaN, written as nodata), or 0 with
        ``zero_for_flat``. ``compute_edges``: as ``gdaldem aspect -compute_edges``."""
        return _direction(z, i, j, cell_size, cell_size_y, zero_for_flat, edges)

    return aspect


def _hillshade(edges: bool) -> Callable[..., float]:
    def hillshade(  # noqa: PLR0917 - a kernel's settings are positional for numba
        z: Image,
        i: int,
        j: int,
        cell_size: float = 1.0,
        azimuth: float = 315.0,
        altitude: float = 45.0,
        z_factor: float = 1.0,
        cell_size_y: float = 0.0,
        compute_edges: bool = False,
    ) -> float:
        """Shaded relief under a light at ``azimuth`` (compass degrees) and ``altitude``
        (degrees above the horizon), as ``gdaldem hillshade``: 1 (in shadow) to 255 (facing
        the light), so that 0 stays free for nodata in an 8-bit copy. ``compute_edges``: as
        ``gdaldem hillshade -compute_edges``."""
        return _shade(z, i, j, cell_size, cell_size_y, (azimuth, altitude, z_factor), edges)

    return hillshade


slope = _horn(_slope, finish=degrees_of_arctan)
aspect = _horn(_aspect)
hillshade = _horn(_hillshade)


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
