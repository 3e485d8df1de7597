"""What `pipeline info` says about a file: format, shape, layout, size and provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.grid import Georef, Window
from pipeline.grid.crs import describe_crs
from pipeline.io import open_source
from pipeline.io.base import directory_size
from pipeline.io.location import Remote, as_location
from pipeline.io.records import output_progress, read_record
from pipeline.io.zarr_ import ZarrSource

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["describe_path", "output_state", "value_summary"]

SUMMARY_MAX_PIXELS = 64_000_000
"""Pixels read at most to summarise an output's values (a pyramid level small enough)."""


def describe_path(path: str | Path | Remote) -> dict[str, Any]:
    """Everything known about the image at ``path`` without reading pixel data."""
    path = as_location(path)
    source = open_source(path)
    details = source.describe()
    info: dict[str, Any] = {
        "path": str(path),
        "format": details.pop("format"),
        "shape": list(source.shape),
        "dtype": str(source.dtype),
        "layout": details.pop("layout"),
        **details,
        "levels": source.levels,
        **georef_info(getattr(source, "georef", None), source.shape[:2]),
        "size_on_disk": path.size() if isinstance(path, Remote) else directory_size(path),
        "uncompressed": int(source.dtype.itemsize * _prod(source.shape)),
    }
    record = read_record(path) if isinstance(source, ZarrSource) and source.array_path else None
    if record is not None:
        info["pipeline"] = record.to_json()
        info["values"] = (
            value_summary(path, source.levels)
            if record.complete
            else {"level": None, "reason": "the output is incomplete"}
        )
    return info


def georef_info(georef: Georef | None, shape: tuple[int, ...]) -> dict[str, Any]:
    """What the georeferencing says, in words: CRS (name and code), pixel size, bounds and
    nodata; nothing for an image without any."""
    if georef is None or (georef.is_empty and georef.unit is None):
        return {}
    found: dict[str, Any] = {}
    if georef.crs is not None:
        found["crs"] = describe_crs(georef.crs)
    size = georef.pixel_size
    if size is not None:
        unit = georef.unit or (_crs_unit(georef.crs) if georef.crs else "pixel coordinates")
        found["pixel_size"] = f"{size[1]:g} x {size[0]:g} {unit} (x by y)"
        bounds = georef.bounds((int(shape[0]), int(shape[1])))
        if bounds is not None:
            found["bounds"] = (
                f"x {bounds[0]:.10g} to {bounds[2]:.10g}, y {bounds[1]:.10g} to {bounds[3]:.10g}"
            )
    if georef.nodata is not None:
        found["nodata"] = f"{georef.nodata:g}"
    return found


def _crs_unit(crs: str) -> str:
    from pipeline.grid.crs import is_geographic, linear_unit_metres

    if is_geographic(crs):
        return "degrees"
    factor = linear_unit_metres(crs)
    return "metres" if factor == 1.0 else f"units of {factor:g} m"


def output_state(path: str | Path) -> str:
    """``complete``, or how much of an interrupted output is written and how to finish it."""
    progress = output_progress(as_location(path))
    if progress is None:
        return "complete"
    return (
        f"INCOMPLETE: {progress[0]} of {progress[1]} blocks written (finish it with --resume, "
        "or resume=True in Python)"
    )


def value_summary(path: Path | Remote, levels: int) -> dict[str, Any]:
    """Range and NaN count of an output's values, read from its smallest pyramid level (whose
    pixels are means or samples of the full resolution's), row band by row band."""
    for level in range(levels - 1, -1, -1):
        source = open_source(path, level=level)
        height, width = source.shape[:2]
        if height * width <= SUMMARY_MAX_PIXELS:
            break
    else:
        return {"level": None, "reason": "too large to read without a pyramid (output.pyramid)"}
    low, high, nans = np.inf, -np.inf, 0
    rows = max(1, 2**22 // max(width, 1))
    for y0 in range(0, height, rows):
        band = source.read(Window(y0, min(y0 + rows, height), 0, width))
        if band.dtype.kind in "fc":
            finite = np.isfinite(band)
            nans += int(np.isnan(band).sum())
            band = band[finite]
        if band.size:
            low, high = min(low, band.min().item()), max(high, band.max().item())
    found = high >= low
    return {
        "level": level,
        "pixels": height * width,
        "min": low if found else None,
        "max": high if found else None,
        "nan": nans,
    }


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
