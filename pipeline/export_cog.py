"""A georeferenced output as a Cloud-Optimized GeoTIFF, as GIS tools want it.

Each stored level is written, tile by tile, to a tiled GeoTIFF beside the target (memory holds
one tile); a VRT names level 0 and the reduced levels as its overviews; GDAL's COG driver then
lays them out as a COG, using those overviews as they are (``OVERVIEWS=FORCE_USE_EXISTING``):
the pyramid that was computed, not one GDAL resamples again. CRS, transform and nodata are
the output's.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from pipeline.grid import Window

if TYPE_CHECKING:
    from pipeline.grid import Georef

__all__ = ["GDAL_CACHE_MB", "write_cog"]

GDAL_CACHE_MB = 64
"""GDAL's block cache while exporting, in MB. Its default, 5% of the machine's memory, would
grow with the image up to that share; the copy reads each tile once, so a small cache costs
nothing."""

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "uint64": "UInt64",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


def write_cog(
    levels: list[Any], georef: Georef, partial: Path, tile: tuple[int, int], compression: str
) -> None:
    """Write the window sources ``levels`` (level 0 first) as a COG at ``partial``."""
    import rasterio
    import rasterio.shutil

    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        tempfile.TemporaryDirectory(prefix=".cog-", dir=partial.parent) as folder,
    ):
        files = []
        for k, level in enumerate(levels):
            files.append(Path(folder) / f"level{k}.tif")
            _write_level(rasterio, level, georef.level(k), files[-1], tile)
        vrt = Path(folder) / "pyramid.vrt"
        vrt.write_text(_vrt(levels[0], georef, files))
        rasterio.shutil.copy(
            str(vrt),
            str(partial),
            driver="COG",
            BLOCKSIZE=str(tile[0]),
            COMPRESS=compression.upper(),
            OVERVIEWS="FORCE_USE_EXISTING",
            BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",
        )


def _write_level(
    rasterio: Any, level: Any, georef: Georef, path: Path, tile: tuple[int, int]
) -> None:
    """One level as a tiled GeoTIFF, written tile by tile."""
    from affine import Affine

    height, width = level.shape[:2]
    bands = level.shape[2] if len(level.shape) == 3 else 1
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": bands,
        "dtype": str(level.dtype),
        "tiled": True,
        "blockxsize": tile[1],
        "blockysize": tile[0],
        "compress": "zstd",
        "BIGTIFF": "IF_SAFER",
        "transform": Affine(*georef.transform) if georef.transform else Affine.identity(),
        "crs": georef.crs,
        "nodata": georef.nodata,
    }
    with rasterio.open(path, "w", **profile) as ds:
        for y0 in range(0, height, tile[0]):
            for x0 in range(0, width, tile[1]):
                window = Window(y0, y0 + tile[0], x0, x0 + tile[1]).clip((height, width))
                block = level.read(window)
                stacked = block[None] if block.ndim == 2 else block.transpose(2, 0, 1)
                where = rasterio.windows.Window(x0, y0, window.width, window.height)
                ds.write(stacked, window=where)


def _vrt(level0: Any, georef: Georef, files: list[Path]) -> str:
    """A VRT of level 0 whose bands have the other levels as overviews."""
    height, width = level0.shape[:2]
    bands = level0.shape[2] if len(level0.shape) == 3 else 1
    kind = _GDAL_TYPES[str(level0.dtype)]
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">']
    if georef.crs:
        lines.append(f"  <SRS>{escape(georef.crs)}</SRS>")
    if georef.transform:
        a, b, c, d, e, f = georef.transform
        lines.append(f"  <GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>")
    for band in range(1, bands + 1):
        lines.append(f'  <VRTRasterBand dataType="{kind}" band="{band}">')
        if georef.nodata is not None:
            value = "nan" if math.isnan(georef.nodata) else repr(georef.nodata)
            lines.append(f"    <NoDataValue>{value}</NoDataValue>")
        lines.append(_source("SimpleSource", files[0], band))
        lines.extend(_source("Overview", path, band) for path in files[1:])
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines)


def _source(element: str, path: Path, band: int) -> str:
    return (
        f"    <{element}><SourceFilename>{escape(str(path))}</SourceFilename>"
        f"<SourceBand>{band}</SourceBand></{element}>"
    )
