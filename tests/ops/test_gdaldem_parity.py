"""The built-in terrain kernels against the field's reference, gdaldem (Debian's gdal-bin,
which `.ci/run` installs), on a georeferenced DEM with a void and no cell size given: the cell
size comes from the GeoTIFF's transform, nodata in the same places, values to the last digit
that matters (issue 16)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import geotiff

import pipeline
from pipeline.demo import dem_window
from pipeline.grid import Window

pytestmark = pytest.mark.skipif(
    shutil.which("gdaldem") is None, reason="gdaldem (Debian's gdal-bin) is not installed"
)

TOLERANCE = {"slope": 1e-3, "aspect": 1e-3, "hillshade": 1.0}
"""Degrees for slope and aspect; one level of gdaldem's 8-bit hillshade (it rounds)."""


@pytest.fixture(scope="module")
def dem_with_voids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gdaldem")
    z = dem_window(Window(0, 300, 0, 400)).astype("float32")
    z[100:130, 150:200] = -9999  # a void
    z[0:5, 300:320] = -9999  # one touching the image edge
    z[250, 20] = -9999  # a single missing pixel
    z[299, 0] = -9999  # a corner
    return geotiff(folder / "dem.tif", z)


@pytest.mark.parametrize("edges", [False, True], ids=["default", "compute_edges"])
@pytest.mark.parametrize("name", ["slope", "aspect", "hillshade"])
def test_builtins_agree_with_gdaldem(
    dem_with_voids: Path, tmp_path: Path, name: str, edges: bool
) -> None:
    reference = tmp_path / f"{name}.tif"
    flags = ["-compute_edges"] if edges else []
    subprocess.run(["gdaldem", name, str(dem_with_voids), str(reference), "-q", *flags], check=True)
    with rasterio.open(reference) as ds:
        expected = ds.read(1).astype("float64")
        missing = expected == ds.nodata
    from pipeline.ops import terrain_kernels

    kernel = getattr(terrain_kernels, name)
    image = pipeline.open_image(dem_with_voids, chunks=(64, 96))  # blocks across the voids
    got = pipeline.apply(kernel, image, compute_edges=edges).compute().astype("float64")
    np.testing.assert_array_equal(np.isnan(got), missing)
    rim = _edges_and_rims(dem_with_voids)
    if not edges:  # the voids, their rims and the image edges
        assert missing[rim].all()
    elif name != "aspect":  # computed from the valid neighbours (aspect: flat land has none)
        assert np.isfinite(got[rim]).all()
    valid = ~missing
    assert np.abs(got[valid] - expected[valid]).max() <= TOLERANCE[name]


def _edges_and_rims(dem: Path) -> np.ndarray:
    """Valid pixels whose 3x3 window reaches a void or past the image edge."""
    with rasterio.open(dem) as ds:
        void = np.pad(ds.read(1) == ds.nodata, 1, constant_values=True)
    near = np.zeros_like(void)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(void, (dy, dx), axis=(0, 1))
    return (near & ~void)[1:-1, 1:-1]


def test_the_cell_size_comes_from_the_transform(dem_with_voids: Path) -> None:
    from pipeline.ops import terrain_kernels

    image = pipeline.open_image(dem_with_voids)
    implicit = pipeline.apply(terrain_kernels.slope, image).compute()
    explicit = pipeline.apply(terrain_kernels.slope, image, cell_size=30.0).compute()
    np.testing.assert_array_equal(implicit, explicit)
    one_metre = pipeline.apply(terrain_kernels.slope, image, cell_size=1.0).compute()
    assert np.nanmean(one_metre) > 5 * np.nanmean(implicit)  # what forgetting it would give
