"""xarray opens outputs, with and without pyramids, on Zarr v3 and v2, without a warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import pipeline

xr = pytest.importorskip("xarray")

IMAGE = np.random.default_rng(3).random((90, 130)).astype("f4")


@pytest.fixture(params=["0.5", "0.4"], ids=["zarr-v3", "zarr-v2"])
def output(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "o.zarr"
    pipeline.save(
        pipeline.apply(np.sqrt, IMAGE), path, pyramid=2, ngff=request.param, progress=False
    )
    return path


def test_open_dataarray_opens_every_level_with_named_dimensions(output: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = pipeline.open_dataarray(output)
        half = pipeline.open_dataarray(output, level=1)
    assert full.dims == ("y", "x") and full.shape == (90, 130)
    np.testing.assert_array_equal(full.values, np.sqrt(IMAGE))
    np.testing.assert_array_equal(full.y.values, np.arange(90.0))
    assert half.shape == (45, 65)
    # A pixel of level 1 is the mean of 2x2 pixels of level 0: its centre is at 0.5, 2.5, ...
    np.testing.assert_array_equal(half.x.values[:3], [0.5, 2.5, 4.5])
    np.testing.assert_array_equal(half.values, pipeline.open_image(output, level=1).compute())
    assert float(full.sel(y=10, x=20)) == np.sqrt(IMAGE[10, 20])


def test_plain_xarray_opens_a_level_as_the_readme_says(output: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = xr.open_zarr(output, consolidated=False, drop_variables=["1", "2"])
    assert dataset["0"].dims == ("y", "x")
    np.testing.assert_array_equal(dataset["0"].values, np.sqrt(IMAGE))


def test_a_single_level_output_and_a_tiff_open_too(tmp_path: Path) -> None:
    from pipeline.demo import write_dem

    pipeline.save(pipeline.apply(np.sqrt, IMAGE), tmp_path / "o.zarr", progress=False)
    assert pipeline.open_dataarray(tmp_path / "o.zarr").shape == (90, 130)
    tiff = write_dem(tmp_path / "d.tif", (40, 50), tile=(16, 16))
    dem = pipeline.open_dataarray(tiff)  # a GeoTIFF: coordinates of pixel centres in metres
    assert dem.dims == ("y", "x")
    assert (dem.x.values[0], dem.x.values[-1]) == (500_015.0, 501_485.0)
    assert (dem.y.values[0], dem.y.values[-1]) == (5_999_985.0, 5_998_815.0)


def test_a_level_that_does_not_exist_is_refused(output: Path) -> None:
    with pytest.raises(
        pipeline.errors.UnsupportedSourceError,
        match=r"pyramid level 5 does not exist; the multiscales lists 3 level\(s\), 0 to 2",
    ):
        pipeline.open_dataarray(output, level=5)
