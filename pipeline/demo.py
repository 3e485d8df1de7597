"""A deterministic synthetic elevation model, written tile by tile: demo and test data.

Nothing is downloaded: the terrain is a sum of seeded sinusoidal waves with a fractal (1/f)
spectrum, plus ridges, evaluated from global pixel coordinates. Any window can be computed on
its own and equals the same window of the whole, so an image of any size is written one tile
at a time in bounded memory.

``pipeline run configs/demo.yaml`` writes the 24-megapixel demo DEM on first use (see the
``generate`` section of that config) and computes its hillshade.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.grid import Window

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

__all__ = [
    "CELL_SIZE",
    "DEMO_CRS",
    "DEMO_ORIGIN",
    "DEMO_SHAPE",
    "DEM_DTYPE",
    "dem_window",
    "geotiff_tags",
    "write_dem",
]

DEMO_SHAPE = (4000, 6000)
"""24 megapixels: the size of the image this project was started for."""
CELL_SIZE = 30.0
"""Metres between pixel centres (an SRTM-like grid)."""
DEM_DTYPE = np.dtype(np.float32)
DEMO_CRS = "EPSG:32633"
"""Where the demo terrain lies: WGS 84 / UTM zone 33N, in metres."""
DEMO_ORIGIN = (500_000.0, 6_000_000.0)
"""The corner of its top-left pixel (easting, northing)."""


def geotiff_tags(cell_size: float = CELL_SIZE) -> list[tuple[int, str, int, Any, bool]]:
    """The GeoTIFF tags of the demo DEM (tifffile's ``extratags``): pixel size, the tie point
    of its top-left corner and the GeoKeys of EPSG:32633 (a projected CRS, pixels as areas,
    metres), as GDAL writes them."""
    keys = [1, 1, 0, 4]  # GeoKey directory 1.1.0, four keys
    keys += [1024, 0, 1, 1]  # GTModelTypeGeoKey: projected
    keys += [1025, 0, 1, 1]  # GTRasterTypeGeoKey: a pixel is an area
    keys += [3072, 0, 1, 32633]  # ProjectedCSTypeGeoKey: EPSG:32633
    keys += [3076, 0, 1, 9001]  # ProjLinearUnitsGeoKey: metre
    x0, y0 = DEMO_ORIGIN
    return [
        (33550, "d", 3, (cell_size, cell_size, 0.0), True),  # ModelPixelScale
        (33922, "d", 6, (0.0, 0.0, 0.0, x0, y0, 0.0), True),  # ModelTiepoint
        (34735, "H", len(keys), tuple(keys), True),  # GeoKeyDirectory
    ]


"""Elevations are float32 metres."""


def _waves(
    seed: int, count: int, shortest: float, longest: float
) -> tuple[NDArray[np.float64], ...]:
    """``count`` plane waves: wave numbers along y and x, phases, amplitudes in metres.

    Wavelengths (in pixels) are log-uniform between ``shortest`` and ``longest``; amplitudes
    grow as wavelength**1.3, the fractal (red) spectrum of real terrain: large forms carry the
    relief, small ones the texture.
    """
    rng = np.random.default_rng(seed)
    wavelength = np.exp(rng.uniform(np.log(shortest), np.log(longest), count))
    angle = rng.uniform(0, np.pi, count)
    phase = rng.uniform(0, 2 * np.pi, count)
    k = 2 * np.pi / wavelength
    amplitude = 2.05e-4 * (wavelength * CELL_SIZE) ** 1.3
    return k * np.sin(angle), k * np.cos(angle), phase, amplitude


def dem_window(window: Window, seed: int = 0) -> NDArray[np.float32]:
    """Elevations (metres, float32) of ``window`` of the synthetic terrain of ``seed``.

    A pure function of global coordinates: any window equals that part of any larger one.
    """
    ys = np.arange(window.y0, window.y1, dtype=np.float64)[:, None]
    xs = np.arange(window.x0, window.x1, dtype=np.float64)[None, :]
    z = np.full(window.shape, 1600.0) + (0.05 * ys - 0.03 * xs)
    tmp = np.empty(window.shape)
    wave = np.empty(window.shape)
    # Separable: a*sin(row + col) = (a sin row) cos col + (a cos row) sin col, two outer
    # products of 1-D tables, computed into preallocated buffers.
    ky, kx, phase, amplitude = _waves(seed, 40, 16.0, 4000.0)
    for i in range(ky.size):
        row, col = ky[i] * ys, kx[i] * xs + phase[i]
        z += np.multiply(amplitude[i] * np.sin(row), np.cos(col), out=tmp)
        z += np.multiply(amplitude[i] * np.cos(row), np.sin(col), out=tmp)
    ky, kx, phase, amplitude = _waves(seed + 1, 6, 400.0, 3000.0)
    for i in range(ky.size):  # ridged terms: sharp crests where a wave changes sign
        row, col = ky[i] * ys, kx[i] * xs + phase[i]
        np.multiply(np.sin(row), np.cos(col), out=wave)
        wave += np.multiply(np.cos(row), np.sin(col), out=tmp)
        np.abs(wave, out=wave)
        z += 0.25 * amplitude[i]
        z -= np.multiply(0.5 * amplitude[i], wave, out=tmp)
    return np.maximum(z, 0.0).astype(np.float32)


def _tiles(shape: tuple[int, int], tile: tuple[int, int], seed: int) -> Iterator[NDArray[Any]]:
    """Full-size tiles in row-major order, computed on all cores, yielded in order."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from pipeline.machine import default_workers

    def make(origin: tuple[int, int]) -> NDArray[Any]:
        block = np.zeros(tile, np.float32)
        win = Window(origin[0], origin[0] + tile[0], origin[1], origin[1] + tile[1]).clip(shape)
        block[: win.height, : win.width] = dem_window(win, seed)
        return block

    origins = [(y, x) for y in range(0, shape[0], tile[0]) for x in range(0, shape[1], tile[1])]
    workers = default_workers()
    with ThreadPoolExecutor(workers) as pool:
        # A bounded queue of tiles in flight: memory stays a few tiles per worker.
        ahead: deque[Future[NDArray[Any]]] = deque()
        for origin in origins:
            ahead.append(pool.submit(make, origin))
            if len(ahead) > 2 * workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def write_dem(
    path: str | Path,
    shape: tuple[int, int] = DEMO_SHAPE,
    *,
    seed: int = 0,
    tile: tuple[int, int] = (512, 512),
    dtype: Any = np.float32,
) -> Path:
    """Write the synthetic terrain as a tiled, zstd-compressed (Big)GeoTIFF with a
    floating-point predictor, one tile at a time: 30 m pixels in UTM zone 33N
    (`geotiff_tags`), so that GIS tools place it and built-ins take its cell size from it."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dt = np.dtype(dtype)
    tiles = _tiles(shape, tile, seed)
    if dt != np.float32:
        tiles = (t.astype(dt) for t in tiles)
    partial = path.with_name(path.name + ".partial")
    tifffile.imwrite(
        partial,
        tiles,
        shape=shape,
        dtype=dt,
        tile=tile,
        compression="zstd",  # as modern cloud-optimised GeoTIFFs are
        predictor=True,
        bigtiff=shape[0] * shape[1] * dt.itemsize > 2**31,
        resolution=(1 / CELL_SIZE, 1 / CELL_SIZE),
        metadata=None,
        extratags=geotiff_tags(),
    )
    partial.replace(path)  # never leave a half-written demo file where the demo looks
    return path
