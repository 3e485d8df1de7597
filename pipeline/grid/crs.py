"""What a CRS means, from pyproj: its name and code, its units, whether two are the same, and
the ground distance between pixel centres (per row on a geographic CRS, on its ellipsoid).

pyproj is imported only when a CRS is met.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from pipeline.errors import ArgumentError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from pipeline.grid.georef import Georef

__all__ = [
    "canonical_crs",
    "crs_code",
    "describe_crs",
    "ground_spacing",
    "is_geographic",
    "linear_unit_metres",
    "same_crs",
    "vertical_unit_metres",
]


@functools.lru_cache(maxsize=64)
def _crs(text: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        msg = f"not a coordinate reference system pyproj knows: {text[:80]!r} ({exc})"
        raise ArgumentError(msg) from exc


def canonical_crs(text: str) -> str:
    """``text`` (WKT, PROJJSON, ``EPSG:4326``, a PROJ string) as WKT2, the form outputs keep."""
    return str(_crs(text).to_wkt())


def crs_code(text: str) -> str | None:
    """The authority code of a CRS (``EPSG:32633``), if it has one."""
    found = _crs(text).to_authority(min_confidence=90)
    return f"{found[0]}:{found[1]}" if found else None


def describe_crs(text: str) -> str:
    """A CRS in words: its name and code (``WGS 84 / UTM zone 33N (EPSG:32633)``)."""
    code = crs_code(text)
    name = _crs(text).name
    return f"{name} ({code})" if code else str(name)


def same_crs(a: str | None, b: str | None) -> bool:
    """Whether two CRSs are the same (both absent counts as the same)."""
    if a is None or b is None:
        return a is b
    return a == b or bool(_crs(a).equals(_crs(b), ignore_axis_order=True))


def is_geographic(text: str) -> bool:
    """Whether coordinates are longitudes and latitudes in degrees."""
    return bool(_crs(text).is_geographic)


def linear_unit_metres(text: str) -> float:
    """Metres per unit of the ``x`` and ``y`` of a projected CRS (1 for metres, 0.3048 for
    international feet)."""
    axis = _crs(text).axis_info[0]
    return float(axis.unit_conversion_factor or 1.0)


def ground_spacing(georef: Georef, rows: range) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(dx, dy)`` per row of ``rows``: the ground distance in metres between the centres of
    neighbouring pixels along the row and along the column.

    On a projected CRS both are the pixel size times the CRS's unit, the same on every row.
    On a geographic CRS (degrees) they change with latitude, the east-west one most (it
    halves at 60 degrees): computed per row, on the CRS's own ellipsoid (pyproj's
    geodesics), never with one metres-per-degree scale.
    """
    import numpy as np

    if georef.transform is None or georef.crs is None or not georef.is_rectilinear:
        msg = "ground distances need a CRS and a north-up transform"
        raise ArgumentError(msg)
    dy_unit, dx_unit = georef.pixel_size or (1.0, 1.0)
    crs = _crs(georef.crs)
    count = len(rows)
    if not crs.is_geographic:
        factor = linear_unit_metres(georef.crs)
        return np.full(count, dx_unit * factor), np.full(count, dy_unit * factor)
    geod = crs.get_geod()
    a, _, c, _, e, f = georef.transform
    lat = f + e * (np.asarray(rows, dtype=np.float64) + 0.5)
    lon = np.full_like(lat, c + a * 0.5)
    _, _, dx = geod.inv(lon - a / 2, lat, lon + a / 2, lat)
    _, _, dy = geod.inv(lon, lat - e / 2, lon, lat + e / 2)
    return np.abs(np.asarray(dx, dtype=np.float64)), np.abs(np.asarray(dy, dtype=np.float64))


def vertical_unit_metres(georef: Georef) -> float | None:
    """Metres per unit of the pixel values, when the file declares their unit: GDAL's band
    unit type (``m``, ``ft``, ``US survey foot``, as pyproj's unit names and abbreviations),
    or the vertical axis of a compound CRS. ``None`` when nothing says."""
    import pyproj

    if georef.z_unit:
        name = georef.z_unit.strip().lower()
        name = {"meter": "m", "meters": "m", "metres": "m", "feet": "ft"}.get(name, name)
        for unit in pyproj.get_units_map(category="linear").values():
            if name in {unit.name.lower(), (unit.proj_short_name or "").lower()}:
                return float(unit.conv_factor)
        msg = (
            f"the pixel values' unit {georef.z_unit!r} is not a length unit pyproj knows; "
            "give z_factor (metres per value unit over metres per CRS unit) explicitly"
        )
        raise ArgumentError(msg)
    if georef.crs is not None:
        crs = _crs(georef.crs)
        for part in crs.sub_crs_list if crs.is_compound else []:
            if part.is_vertical:
                return float(part.axis_info[0].unit_conversion_factor or 1.0)
    return None
