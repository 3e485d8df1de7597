"""Writing an output's georeferencing in the forms its readers look for.

- GeoZarr's ``proj:`` and ``spatial:`` conventions, registered in ``zarr_conventions`` and
  checked against the published schemas by `zarr_cm` before anything is written: on the
  group (for level 0) and on each level's array (its own transform).
- GDAL's ``_CRS`` attribute on each array (what GDAL's Zarr driver reads for the CRS).
- CF / rioxarray: a ``spatial_ref`` variable holding ``crs_wkt`` and GDAL's ``GeoTransform``,
  named by each array's ``grid_mapping``.
- ``nodata``: the value that marks missing pixels (NaN for floats).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipeline.grid.crs import crs_code, is_geographic

if TYPE_CHECKING:
    from pipeline.grid import Georef

__all__ = [
    "GRID_MAPPING",
    "array_attributes",
    "coordinate_variables",
    "grid_mapping_attributes",
    "group_attributes",
]

GRID_MAPPING = "spatial_ref"
"""The CF grid-mapping variable's name (rioxarray's)."""


def _conventions(georef: Georef, shape: tuple[int, int]) -> dict[str, Any]:
    import zarr_cm

    found: dict[str, dict[str, Any]] = {}
    if georef.crs is not None:
        proj: dict[str, Any] = {"proj:wkt2": georef.crs}
        code = crs_code(georef.crs)
        if code is not None:
            proj["proj:code"] = code
        found["proj"] = proj
    if georef.transform is not None:
        bounds = georef.bounds(shape)
        found["spatial"] = {
            "spatial:dimensions": ["y", "x"],
            "spatial:transform_type": "affine",
            "spatial:transform": list(georef.transform),
            "spatial:shape": list(shape),
            "spatial:registration": "pixel",
            **({"spatial:bbox": list(bounds)} if bounds is not None else {}),
        }
    if not found:
        return {}
    attrs = dict(zarr_cm.create_many(found))  # type: ignore[arg-type]
    zarr_cm.validate_many(attrs, list(found))  # type: ignore[arg-type]
    return attrs


def group_attributes(georef: Georef, shape: tuple[int, int]) -> dict[str, Any]:
    """The attributes of an output group whose level 0 has ``shape`` and ``georef``."""
    return _conventions(georef, shape)


def array_attributes(georef: Georef, shape: tuple[int, int]) -> dict[str, Any]:
    """The attributes of one level's array, with that level's ``georef`` and ``shape``."""
    attrs = _conventions(georef, shape)
    if georef.crs is not None:
        attrs["_CRS"] = {"wkt": georef.crs}
    if georef.crs is not None or georef.transform is not None:
        attrs["grid_mapping"] = GRID_MAPPING
    if georef.nodata is not None:
        attrs["nodata"] = _json_number(georef.nodata)
    return attrs


def grid_mapping_attributes(georef: Georef) -> dict[str, Any]:
    """The attributes of the CF ``spatial_ref`` variable (for level 0, as rioxarray writes)."""
    attrs: dict[str, Any] = {}
    if georef.crs is not None:
        attrs["crs_wkt"] = georef.crs
        attrs["spatial_ref"] = georef.crs
    if georef.transform is not None:
        a, b, c, d, e, f = georef.transform
        attrs["GeoTransform"] = " ".join(f"{v!r}" for v in (c, a, b, f, d, e))
    return attrs


def coordinate_variables(
    georef: Georef, shape: tuple[int, int]
) -> dict[str, tuple[list[str], Any, dict[str, Any]]]:
    """CF coordinate variables ``y`` and ``x`` of a north-up image of ``shape``: the
    coordinates of its pixel centres, as ``name: (dimensions, values, attributes)``; none
    for a rotated or sheared transform, which 1-D coordinates cannot describe."""
    import numpy as np

    if georef.transform is None or not georef.is_rectilinear:
        return {}
    a, _, c, _, e, f = georef.transform
    geographic = georef.crs is not None and is_geographic(georef.crs)
    unit = georef.unit or ("degrees" if geographic else "metre")
    names = {
        "x": ("longitude" if geographic else "projection_x_coordinate", "X", unit),
        "y": ("latitude" if geographic else "projection_y_coordinate", "Y", unit),
    }
    if geographic:
        names = {"x": (*names["x"][:2], "degrees_east"), "y": (*names["y"][:2], "degrees_north")}
    values = {
        "y": f + e * (np.arange(shape[0], dtype=np.float64) + 0.5),
        "x": c + a * (np.arange(shape[1], dtype=np.float64) + 0.5),
    }
    return {
        name: (
            [name],
            values[name],
            {"standard_name": standard, "axis": axis, "units": unit},
        )
        for name, (standard, axis, unit) in names.items()
    }


def _json_number(value: float) -> float | str:
    """JSON has no NaN: written as ``"NaN"``, as zarr writes a NaN fill value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
