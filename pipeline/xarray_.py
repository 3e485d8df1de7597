"""Images as ``xarray.DataArray``: named dimensions and coordinates, lazily (needs xarray).

Plain ``xarray.open_zarr`` reads an output as a dataset whose variables are the pyramid's
levels; levels share the dimension names ``y`` and ``x`` (as OME-Zarr requires) with different
lengths, which xarray refuses. :func:`open_dataarray` opens one level, with coordinates from
its OME-Zarr scale and translation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.image import open_image
from pipeline.io import level_transform, read_group_attributes
from pipeline.io.georef_write import GRID_MAPPING, coordinate_variables, grid_mapping_attributes
from pipeline.ops import program_of
from pipeline.ops.tree import georef_of

if TYPE_CHECKING:
    import os

    import xarray

__all__ = ["open_dataarray"]


def open_dataarray(source: str | os.PathLike[str], *, level: int = 0) -> xarray.DataArray:
    """Open an image (any that :func:`~pipeline.open_image` opens) as a lazy DataArray.

    Dimensions are ``("y", "x")``, or ``("y", "x", "c")`` for channels; coordinates are the
    pixel centres: in the CRS for a georeferenced image (with the CF ``spatial_ref`` that
    rioxarray reads as ``.rio.crs`` and ``.rio.transform()``), else in the units of the
    image's OME-Zarr ``scale`` and ``translation`` at that ``level`` (pixel indices of level 0
    for an image without them). The data is the dask array
    :func:`~pipeline.open_image` returns: nothing is read until computed.
    """
    try:
        import xarray as xr
    except ImportError as exc:
        msg = 'open_dataarray needs xarray: pip install "pipeline[xarray]"'
        raise ImportError(msg) from exc
    data = open_image(source, level=level)
    program = program_of(data)
    georef = georef_of(program.root if program else None)
    shape = (int(data.shape[0]), int(data.shape[1]))
    dims = ("y", "x", "c")[: data.ndim]
    coords: dict[str, Any]
    attrs: dict[str, Any] = {"source": str(source), "level": level}
    located = coordinate_variables(georef, shape)
    if located:
        # Pixel centres in the CRS, and the CF grid mapping rioxarray reads (.rio.crs,
        # .rio.transform()).
        coords = {name: (dims_, values, meta) for name, (dims_, values, meta) in located.items()}
        coords[GRID_MAPPING] = ((), 0, grid_mapping_attributes(georef))
        attrs["grid_mapping"] = GRID_MAPPING
    else:
        scale, translation = _transform(Path(source), level)
        coords = {
            name: translation[k] + scale[k] * _arange(shape[k]) for k, name in enumerate(("y", "x"))
        }
    if georef.nodata is not None:
        attrs["_FillValue"] = georef.nodata
    if data.ndim == 3:
        coords["c"] = list(range(int(data.shape[2])))
    return xr.DataArray(data, dims=dims, coords=coords, name=Path(source).stem, attrs=attrs)


def _arange(n: int) -> Any:
    import numpy as np

    return np.arange(n, dtype="f8")


def _transform(path: Path, level: int) -> tuple[list[float], list[float]]:
    """``(scale, translation)`` along Y and X of ``level``, from OME-Zarr metadata."""
    if not path.is_dir():
        return [1.0, 1.0], [0.0, 0.0]
    try:
        attrs = read_group_attributes(path)
    except Exception:  # a plain Zarr array, not a group: no multiscales
        return [1.0, 1.0], [0.0, 0.0]
    return level_transform(attrs, level)
