"""Geometry a kernel takes from its image's georeferencing: the distance between pixel
centres (``cell_size``, and ``cell_size_y`` for rectangular pixels), so that nobody types it
and nobody forgets it (a slope computed for 1-unit pixels on a 30 m DEM is wrong everywhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.errors import ArgumentError
from pipeline.grid.crs import is_geographic
from pipeline.ops.program import program_of
from pipeline.ops.tree import georef_of

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.ops.kernels import Kernel

__all__ = ["cell_size_from", "geographic", "per_row_spacing", "require_transform"]


def cell_size_from(kernel: Kernel, arrays: list[da.Array], given: dict[str, Any]) -> dict[str, Any]:
    """The ``cell_size`` (and ``cell_size_y``) settings of ``kernel`` from the transform of
    the image it runs on, unless given; nothing for a kernel without them or an image without
    a transform. Elevations are taken to be in the unit of the CRS unless the file declares
    theirs (then ``z_factor`` converts, unless given)."""
    found = _cell_size(kernel, arrays, given)
    if found and "z_factor" in kernel.parameter_names() and "z_factor" not in given:
        factor = _z_factor(arrays)
        if factor is not None and factor != 1.0:
            found["z_factor"] = factor
    return found


def _z_factor(arrays: list[da.Array]) -> float | None:
    """Metres per value unit over metres per CRS unit (per metre on a geographic CRS, where
    cell sizes are in metres), when the image is a file that declares its values' unit."""
    from pipeline.grid.crs import linear_unit_metres, vertical_unit_metres
    from pipeline.ops.nodes import SourceNode

    program = program_of(arrays[0])
    root = program.root if program is not None else None
    if not isinstance(root, SourceNode):  # a function's values: their unit is unknown
        return None
    georef = georef_of(root)
    vertical = vertical_unit_metres(georef)
    if vertical is None or georef.crs is None:
        return None
    return vertical if is_geographic(georef.crs) else vertical / linear_unit_metres(georef.crs)


def _cell_size(kernel: Kernel, arrays: list[da.Array], given: dict[str, Any]) -> dict[str, Any]:
    names = kernel.parameter_names()
    if "cell_size" not in names or "cell_size" in given:
        return {}
    program = program_of(arrays[0])
    georef = georef_of(program.root if program is not None else None)
    if georef.transform is None:
        return {}
    if not georef.is_rectilinear:
        msg = (
            f"{kernel.pipeline_label}: the image's transform is rotated or sheared "
            f"({georef.transform}), so its pixels have no cell size along rows and columns; "
            "give cell_size, or resample it north-up first (gdalwarp)"
        )
        raise ArgumentError(msg)
    if georef.crs is not None and is_geographic(georef.crs):
        if not per_row_spacing(kernel):
            msg = (
                f"{kernel.pipeline_label}: the image is in degrees, where the ground distance "
                "between pixels changes with latitude, and this kernel takes one cell size; "
                "reproject it to a projected CRS in metres first (gdalwarp -t_srs), or give "
                "cell_size in metres for a small area"
            )
            raise ArgumentError(msg)
        # Placeholders, replaced row by row with the ground distances in metres (KernelBlock).
        return {"cell_size": 1.0, "cell_size_y": 1.0}
    dy, dx = georef.pixel_size or (1.0, 1.0)
    found: dict[str, Any] = {"cell_size": dx}
    if dy != dx and "cell_size_y" in names:
        found["cell_size_y"] = dy
    return found


def per_row_spacing(kernel: Kernel) -> tuple[int, int] | None:
    """Where ``kernel`` takes ``cell_size`` and ``cell_size_y`` among its settings, if it takes
    both as plain settings: then a geographic image gets them row by row."""
    if kernel.settings is not None:
        return None
    names = kernel.parameter_names()
    if "cell_size" not in names or "cell_size_y" not in names:
        return None
    return names.index("cell_size"), names.index("cell_size_y")


def geographic(arrays: list[da.Array]) -> bool:
    """Whether the image is on a geographic CRS (degrees)."""
    program = program_of(arrays[0])
    georef = georef_of(program.root if program is not None else None)
    return georef.crs is not None and is_geographic(georef.crs)


def require_transform(kernel: Kernel, arrays: list[da.Array]) -> None:
    """Refuse, before anything runs, a kernel that takes world coordinates on an image
    without a transform."""
    if kernel.coords != "world":
        return
    program = program_of(arrays[0])
    if georef_of(program.root if program is not None else None).transform is None:
        msg = (
            f"kernel {kernel.pipeline_label} takes world coordinates (coords='world') but the "
            "image has no georeferencing (no transform); open a georeferenced image (a "
            "GeoTIFF, a GeoZarr), or use coords=True for pixel coordinates"
        )
        raise ArgumentError(msg)
