"""Reading what files say about their pixels' meaning: CRS, transform, pixel size, nodata.

- GeoTIFF: its GeoKeys and model tags, read by rasterio (GDAL, the field's reference), only
  when the file has them; ``GDAL_NODATA`` for nodata.
- OME-TIFF: ``PhysicalSizeX/Y`` and their unit.
- Zarr: the GeoZarr conventions (``proj:`` and ``spatial:``), the CF / rioxarray
  ``grid_mapping`` variable (``crs_wkt``, ``GeoTransform``), GDAL's ``_CRS``, and OME-Zarr
  coordinate transformations (scale, translation, axis units); nodata from ``_FillValue``
  or ``nodata``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pipeline.errors import CorruptSourceError
from pipeline.grid import Georef
from pipeline.grid.crs import canonical_crs
from pipeline.io.location import Remote

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.grid.georef import Coefficients

__all__ = ["tiff_georef", "zarr_georef"]

_GEO_TAGS = {33550, 33922, 34264, 34735}
"""ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory."""
_GDAL_NODATA = 42113


def tiff_georef(
    tif: Any, page: Any, path: Path | Remote, level: int, shape: tuple[int, int]
) -> Georef:
    """The georeferencing of level ``level`` (of ``shape``) of an open TIFF."""
    first = tif.pages.first
    nodata = _nodata(first.tags.get(_GDAL_NODATA), path)
    if any(tag in first.tags for tag in _GEO_TAGS):
        crs, transform, z_unit = _geotiff(path)
        if transform is not None and level:
            height, width = shape
            full_h, full_w = first.imagelength, first.imagewidth
            a, b, c, d, e, f = transform
            sx, sy = full_w / width, full_h / height
            transform = (a * sx, b * sy, c, d * sx, e * sy, f)
        return Georef(crs=crs, transform=transform, nodata=nodata, z_unit=z_unit)
    if tif.is_ome:
        ome = _ome_pixel_size(tif.ome_metadata or "")
        if ome is not None:
            (sy, sx), unit = ome
            k = 2.0**level if level else 1.0
            return Georef(transform=(sx * k, 0.0, 0.0, 0.0, sy * k, 0.0), nodata=nodata, unit=unit)
    return Georef(nodata=nodata)


def _geotiff(path: Path | Remote) -> tuple[str | None, Coefficients | None, str | None]:
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            opened = (
                rasterio.open(path.url, opener=path.filesystem())
                if isinstance(path, Remote)
                else rasterio.open(path)
            )
            with opened as ds:
                crs = ds.crs.to_wkt() if ds.crs else None
                a, b, c, d, e, f = (float(v) for v in tuple(ds.transform)[:6])
                transform = None if ds.transform.is_identity else (a, b, c, d, e, f)
                z_unit = ds.units[0] or None  # GDAL's band unit type
    except rasterio.errors.RasterioError as exc:
        msg = f"{path}: its GeoTIFF tags cannot be read ({exc}); the file is damaged"
        raise CorruptSourceError(msg) from exc
    return (canonical_crs(crs) if crs else None), transform, z_unit


def _nodata(tag: Any, path: Path | Remote) -> float | None:
    if tag is None:
        return None
    text = str(tag.value).strip().rstrip("\x00").strip()
    try:
        return float(text)
    except ValueError:
        msg = f"{path}: its GDAL_NODATA tag holds {text!r}, not a number; fix or remove the tag"
        raise CorruptSourceError(msg) from None


_UNITS = {"µm": "micrometer", "um": "micrometer", "nm": "nanometer", "mm": "millimeter"}


def _ome_pixel_size(xml: str) -> tuple[tuple[float, float], str] | None:
    found = {}
    for axis in ("X", "Y"):
        size = re.search(rf'PhysicalSize{axis}="([^"]+)"', xml)
        if size is None:
            return None
        found[axis] = float(size.group(1))
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    name = unit.group(1) if unit else "µm"
    return (found["Y"], found["X"]), _UNITS.get(name, name)


def zarr_georef(attributes: list[dict[str, Any]], fill_value: Any, siblings: Any) -> Georef:
    """The georeferencing of a Zarr array from the attributes of the array and its parent
    groups (``attributes``, nearest first), its fill value and its sibling arrays
    (``siblings(name)`` gives the attributes of an array beside it, for CF's
    ``grid_mapping``)."""
    merged: dict[str, Any] = {}
    for attrs in reversed(attributes):
        merged.update(attrs)
    crs = _zarr_crs(merged, siblings)
    transform = _zarr_transform(merged, siblings)
    nodata = merged.get("nodata", merged.get("_FillValue"))
    if nodata is None and crs is not None and fill_value is not None:
        nodata = fill_value  # GDAL's Zarr driver keeps nodata as the fill value
    value = _as_float(nodata)
    return Georef(crs=crs, transform=transform, nodata=value)


def _zarr_crs(attrs: dict[str, Any], siblings: Any) -> str | None:
    for key in ("proj:wkt2", "proj:projjson", "proj:code"):
        if attrs.get(key):
            value = attrs[key]
            return canonical_crs(value if isinstance(value, str) else _json(value))
    gdal = attrs.get("_CRS")
    if isinstance(gdal, dict):
        for key in ("wkt", "projjson", "url"):
            if gdal.get(key):
                value = gdal[key]
                return canonical_crs(value if isinstance(value, str) else _json(value))
    mapping = attrs.get("grid_mapping")
    if isinstance(mapping, str):
        cf = siblings(mapping) or {}
        for key in ("crs_wkt", "spatial_ref"):
            if cf.get(key):
                return canonical_crs(str(cf[key]))
    return None


def _zarr_transform(attrs: dict[str, Any], siblings: Any) -> Coefficients | None:
    spatial = attrs.get("spatial:transform")
    if spatial is not None and len(spatial) == 6:
        a, b, c, d, e, f = (float(v) for v in spatial)
        return (a, b, c, d, e, f)
    mapping = attrs.get("grid_mapping")
    if isinstance(mapping, str):
        gdal = (siblings(mapping) or {}).get("GeoTransform")
        if gdal:
            c, a, b, f, d, e = (float(v) for v in str(gdal).split())
            return (a, b, c, d, e, f)
    return None


def _as_float(value: Any) -> float | None:
    """A nodata value as a number (``"NaN"`` included); ``None`` for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
