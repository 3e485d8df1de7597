"""Terrain functions on surfaces with known answers, and the synthetic DEM's determinism."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
from oracle import whole_image

import pipeline
from pipeline.demo import dem_window, write_dem
from pipeline.grid import Window
from pipeline.ops.terrain import aspect, hillshade, slope, square


def plane(east: float, south: float, shape: tuple[int, int] = (7, 9)) -> np.ndarray:
    """Elevation rising by ``east`` per column and ``south`` per row."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return 100.0 + east * x + south * y


@pytest.mark.parametrize(("east", "south"), [(1.0, 0.0), (0.0, -2.0), (3.0, 4.0), (0.0, 0.0)])
def test_slope_of_a_plane(east: float, south: float) -> None:
    got = slope(plane(east, south), cell_size=10.0)
    expected = np.degrees(np.arctan(np.hypot(east, south) / 10.0))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("east", "south", "facing"),
    [(1.0, 0.0, 270.0), (-1.0, 0.0, 90.0), (0.0, 1.0, 0.0), (0.0, -1.0, 180.0), (1.0, 1.0, 315.0)],
    ids=["rises-east", "rises-west", "rises-south", "rises-north", "rises-south-east"],
)
def test_aspect_is_the_compass_direction_downhill(east: float, south: float, facing: float) -> None:
    np.testing.assert_allclose(aspect(plane(east, south)), facing, atol=1e-9)


def test_aspect_of_flat_ground_has_no_direction() -> None:
    assert np.isnan(aspect(plane(0.0, 0.0))).all()  # as gdaldem: nodata, not a compass angle


def test_hillshade_is_brightest_facing_the_light() -> None:
    flat = hillshade(plane(0, 0), altitude=30.0)
    np.testing.assert_allclose(flat, 1 + 254 * np.sin(np.radians(30.0)))
    towards = hillshade(plane(1.0, 1.0), azimuth=315.0)  # faces north-west, the light
    away = hillshade(plane(-1.0, -1.0), azimuth=315.0)
    assert (towards > flat.max()).all()
    assert (away < towards).all()
    assert ((away >= 1) & (towards <= 255)).all()


@pytest.mark.parametrize("func", [slope, aspect, hillshade])
def test_terrain_functions_are_exact_when_chunked(func: object) -> None:
    dem = dem_window(Window(0, 150, 0, 170))
    image = da.from_array(dem, chunks=(23, 41))
    got = pipeline.apply(func, image, depth=1, boundary="nearest", dtype="f8", cell_size=30.0)
    expected = whole_image(func, dem, depth=(1, 1), boundary="nearest", dtype="f8", cell_size=30.0)
    np.testing.assert_array_equal(got.compute(), expected)


def test_square() -> None:
    np.testing.assert_array_equal(square(np.array([[2, -3]])), [[4, 9]])


def test_synthetic_dem_is_deterministic_and_window_independent(tmp_path: Path) -> None:
    whole = dem_window(Window(0, 300, 0, 400), seed=3)
    np.testing.assert_array_equal(whole[120:250, 33:301], dem_window(Window(120, 250, 33, 301), 3))
    assert not np.array_equal(whole, dem_window(Window(0, 300, 0, 400), seed=4))
    assert whole.min() >= 0 and whole.max() < 9000, "elevations of a plausible terrain"
    path = write_dem(tmp_path / "d.tif", (300, 400), seed=3, tile=(128, 128))
    np.testing.assert_array_equal(tifffile.imread(path), whole)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.is_tiled
