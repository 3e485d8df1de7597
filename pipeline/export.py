"""Export an output to a tiled, pyramidal OME-TIFF, streamed tile by tile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ArgumentError
from pipeline.export_cog import write_cog
from pipeline.grid import Window
from pipeline.io import open_source
from pipeline.io.base import prepare_file_output
from pipeline.io.location import Remote, as_location

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""The first bytes of TIFF and BigTIFF files."""

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    from numpy.typing import NDArray

__all__ = ["export_tiff"]


def _tiles(array: Any, tile: tuple[int, int]) -> Iterator[NDArray[Any]]:
    """Full-size tiles in row-major order, read one band of chunks at a time: memory holds
    one tile row's piece of one stored chunk column, whatever the image size."""
    height, width = array.shape[:2]
    ty, tx = tile
    chunk_x = max(tx, (array.chunks[1] // tx) * tx) if hasattr(array, "chunks") else tx
    for y0 in range(0, height, ty):
        for x_start in range(0, width, chunk_x):
            band = Window(y0, y0 + ty, x_start, x_start + chunk_x).clip((height, width))
            piece = np.asarray(array.read(band))
            for x0 in range(band.x0, band.x1, tx):
                out = np.zeros((ty, tx, *piece.shape[2:]), dtype=piece.dtype)
                part = piece[:, x0 - band.x0 : x0 - band.x0 + tx]
                out[: part.shape[0], : part.shape[1]] = part
                yield out


class _Level:
    """One pyramid level of an output, read window by window."""

    def __init__(self, path: Path | Remote, level: int) -> None:
        self.source = open_source(path, level=level)
        self.shape = self.source.shape
        self.dtype = self.source.dtype
        self.chunks = self.source.tile

    def read(self, window: Window) -> NDArray[Any]:
        return self.source.read(window)


def export_tiff(
    path: str | os.PathLike[str] | Remote,
    target: str | os.PathLike[str],
    *,
    tile: tuple[int, int] = (512, 512),
    compression: str = "zstd",
    overwrite: bool = False,
) -> Path:
    """Write the image at ``path`` (every pyramid level it has) to a TIFF at ``target``,
    streamed tile by tile so that memory stays bounded, written to a temporary name and
    renamed when complete.

    A georeferenced image becomes a Cloud-Optimized GeoTIFF with its CRS, transform and nodata,
    its stored levels as overviews (`pipeline.export_cog`); any other an OME-TIFF: tiled,
    BigTIFF, the reduced levels as SubIFDs.
    """
    import tifffile

    path, target = as_location(path), Path(target)
    if any(t <= 0 or t % 16 for t in tile):
        msg = (
            f"tile {tile} must be positive multiples of 16 (a TIFF requirement), such as (512, 512)"
        )
        raise ArgumentError(msg)
    first = open_source(path)
    prepare_file_output(target, source=path, kind="TIFF", magic=TIFF_MAGIC, overwrite=overwrite)
    levels = [_Level(path, k) for k in range(first.levels)]
    channels = len(first.shape) == 3
    partial = target.with_name(target.name + ".partial")
    georef = getattr(first, "georef", None)
    try:
        if georef is not None and (georef.crs is not None or georef.transform is not None):
            write_cog([lv.source for lv in levels], georef, partial, tile, compression)
        else:
            _write(tifffile, partial, levels, tile, compression, channels=channels)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def _write(
    tifffile: Any,
    partial: Path,
    levels: list[_Level],
    tile: tuple[int, int],
    compression: str,
    *,
    channels: bool,
) -> None:
    with tifffile.TiffWriter(partial, bigtiff=True, ome=True) as tif:
        for k, level in enumerate(levels):
            options: dict[str, Any] = {
                "shape": level.shape,
                "dtype": level.dtype,
                "tile": tile,
                "compression": compression,
                "photometric": "minisblack",
            }
            if channels:
                options["planarconfig"] = "contig"
            if k == 0:
                options["subifds"] = len(levels) - 1
                options["metadata"] = {"axes": "YXS" if channels else "YX"}
            else:
                options["subfiletype"] = 1
            tif.write(_tiles(level, tile), **options)
