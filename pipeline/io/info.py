"""What `pipeline info` says about a file: format, shape, layout, size and provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io import open_source
from pipeline.io.zarr_ import ZarrSource, directory_size, read_group_attributes

__all__ = ["describe_path"]


def describe_path(path: str | Path) -> dict[str, Any]:
    """Everything known about the image at ``path`` without reading pixel data."""
    path = Path(path).expanduser()
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
        "size_on_disk": directory_size(path),
        "uncompressed": int(source.dtype.itemsize * _prod(source.shape)),
    }
    if isinstance(source, ZarrSource) and source.array_path:
        attrs = read_group_attributes(path)
        produced = attrs.get("pipeline")
        if isinstance(produced, dict):
            info["pipeline"] = produced
    return info


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
