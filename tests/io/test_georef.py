"""Georeferencing travels (issue 16): CRS, transform and nodata are read from GeoTIFF, OME-TIFF
and Zarr (GeoZarr, CF, GDAL), carried through `apply`, and written so that rasterio/GDAL and
rioxarray read the same values back; nodata reaches functions as NaN."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
import zarr
from conftest import geotiff
from hypothesis import given
from hypothesis import strategies as st
from rasterio.transform import from_origin

import pipeline
from pipeline.errors import AlignmentError
from pipeline.grid import Georef, Window
from pipeline.grid.crs import ground_spacing
from pipeline.io import open_source

UTM = "EPSG:32633"
TRANSFORM = from_origin(500000, 6000000, 30, 30)


def dem(shape: tuple[int, int] = (96, 128), dtype: str = "float32") -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    data = (100 + 0.5 * x + 0.25 * y).astype(dtype)
    data[40:50, 60:80] = -9999
    return data


def test_a_geotiff_is_read_with_the_crs_transform_and_nodata_gdal_reads(tmp_path: Path) -> None:
    path = geotiff(tmp_path / "dem.tif", dem())
    georef = open_source(path).georef
    with rasterio.open(path) as ds:
        assert pipeline.grid.crs.same_crs(georef.crs, ds.crs.to_wkt())
        assert georef.transform == tuple(ds.transform)[:6]
        assert georef.nodata == ds.nodata == -9999


def test_nodata_pixels_reach_functions_as_nan(tmp_path: Path) -> None:
    data = dem(dtype="int16")
    path = geotiff(tmp_path / "dem.tif", data)
    seen = pipeline.open_image(path, chunks=32)
    assert seen.dtype == np.float32  # holds every int16 exactly, and NaN
    values = seen.compute()
    np.testing.assert_array_equal(np.isnan(values), data == -9999)
    np.testing.assert_array_equal(values[data != -9999], data[data != -9999])
    kept = pipeline.open_image(path, nodata="keep").compute()
    np.testing.assert_array_equal(kept, data)


def test_an_omero_tiff_gives_its_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        np.zeros((20, 30), "u2"),
        metadata={"PhysicalSizeX": 0.65, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm"},
    )
    georef = open_source(path).georef
    assert georef.pixel_size == (0.5, 0.65)
    assert georef.unit == "micrometer" and georef.crs is None


@pytest.mark.parametrize("ngff", ["0.5", "0.4"])
def test_an_output_keeps_the_georeferencing_of_its_input(tmp_path: Path, ngff: str) -> None:
    import zarr_cm

    source = geotiff(tmp_path / "dem.tif", dem())
    out = tmp_path / "o.zarr"
    image = pipeline.open_image(source, chunks=32)
    pipeline.save(pipeline.apply(lambda b: b * 2, image), out, progress=False, pyramid=1, ngff=ngff)
    group = zarr.open_group(out, mode="r")
    zarr_cm.validate_many(dict(group.attrs), ["proj", "spatial"])
    zarr_cm.validate_many(dict(group["1"].attrs), ["proj", "spatial"])
    assert group.attrs["proj:code"] == UTM
    assert group["1"].attrs["spatial:transform"] == [60.0, 0.0, 500000.0, 0.0, -60.0, 6000000.0]
    back = open_source(out).georef  # our reader reads what our writer wrote
    assert back.transform == tuple(TRANSFORM)[:6]
    assert math.isnan(back.nodata or 0.0)
    level = open_source(out, level=1).georef
    assert level.transform == (60.0, 0.0, 500000.0, 0.0, -60.0, 6000000.0)


def test_rioxarray_reads_the_output_as_rasterio_reads_the_input(tmp_path: Path) -> None:
    pytest.importorskip("rioxarray")
    source = geotiff(tmp_path / "dem.tif", dem())
    out = tmp_path / "o.zarr"
    pipeline.save(pipeline.open_image(source, chunks=32), out, progress=False, pyramid=1)
    data = pipeline.open_dataarray(out)
    with rasterio.open(source) as ds:
        assert data.rio.crs == ds.crs
        assert data.rio.transform() == ds.transform
        assert data.x.values[0] == ds.xy(0, 0)[0] and data.y.values[0] == ds.xy(0, 0)[1]
    assert math.isnan(data.rio.nodata)
    assert pipeline.open_dataarray(out, level=1).rio.transform() == TRANSFORM @ TRANSFORM.scale(2)


def test_gdal_reads_the_zarr_v2_output_with_crs_transform_and_nodata(tmp_path: Path) -> None:
    source = geotiff(tmp_path / "dem.tif", dem())
    out = tmp_path / "o.zarr"
    pipeline.save(pipeline.open_image(source, chunks=32), out, progress=False, ngff="0.4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(f'ZARR:"{out}":/0') as ds, rasterio.open(source) as src:
            assert ds.crs == src.crs
            assert ds.transform == src.transform
            assert math.isnan(ds.nodata)
            stored = ds.read(1)
    expected = dem()
    np.testing.assert_array_equal(np.isnan(stored), expected == -9999)


@pytest.mark.parametrize(
    ("other", "says"),
    [
        ({"crs": "EPSG:32632"}, "are in different coordinate reference systems"),
        ({"transform": from_origin(500015, 6000000, 30, 30)}, "are on different grids"),
        ({"transform": from_origin(500000, 6000000, 10, 10)}, "are on different grids"),
    ],
)
def test_inputs_on_different_grids_are_refused_before_anything_runs(
    tmp_path: Path, other: dict[str, object], says: str
) -> None:
    first = geotiff(tmp_path / "a.tif", dem())
    second = geotiff(tmp_path / "b.tif", dem(), **other)  # type: ignore[arg-type]
    with pytest.raises(AlignmentError, match=says) as raised:
        pipeline.apply(np.subtract, pipeline.open_image(first), pipeline.open_image(second))
    assert (
        "first" in str(raised.value)
        or "resample" in str(raised.value)
        or "reproject" in str(raised.value)
    )


def test_zarr_inputs_in_the_cf_and_gdal_conventions_are_read(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "cf.zarr", mode="w", zarr_format=2)
    array = group.create_array("band", shape=(4, 5), dtype="f4", fill_value=-1.0)
    array.attrs.update({"grid_mapping": "crs", "_ARRAY_DIMENSIONS": ["y", "x"]})
    crs = group.create_array("crs", shape=(), dtype="i1")
    crs.attrs.update({"crs_wkt": "EPSG:4326", "GeoTransform": "10 0.5 0 60 0 -0.5"})
    georef = open_source(tmp_path / "cf.zarr" / "band").georef
    assert georef.transform == (0.5, 0.0, 10.0, 0.0, -0.5, 60.0)
    assert pipeline.grid.crs.crs_code(georef.crs or "") == "EPSG:4326"
    plain = zarr.create_array(tmp_path / "gdal.zarr", shape=(4, 5), dtype="f4", fill_value=-1)
    plain.attrs.update({"_CRS": {"url": "http://www.opengis.net/def/crs/EPSG/0/32633"}})
    found = open_source(tmp_path / "gdal.zarr").georef
    assert pipeline.grid.crs.crs_code(found.crs or "") == UTM
    assert found.nodata == -1.0


def test_ground_spacing_on_a_geographic_grid_follows_the_ellipsoid() -> None:
    """An independent oracle: the length of one arc-second of longitude and of latitude on
    the WGS 84 ellipsoid (radii of curvature), against pyproj's geodesics per row."""
    second = 1 / 3600
    georef = Georef(crs="EPSG:4326", transform=(second, 0.0, 10.0, 0.0, -second, 60.5))
    dx, dy = ground_spacing(georef, range(3))
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    for row in range(3):
        phi = math.radians(60.5 - second * (row + 0.5))
        w = math.sqrt(1 - e2 * math.sin(phi) ** 2)
        east = math.radians(second) * a * math.cos(phi) / w
        north = math.radians(second) * a * (1 - e2) / w**3
        assert dx[row] == pytest.approx(east, rel=1e-6)
        assert dy[row] == pytest.approx(north, rel=1e-6)
    assert dx[0] / dy[0] == pytest.approx(0.49, abs=0.01)  # half: gdaldem's 111120 m is not


@given(
    st.tuples(*[st.floats(-1e4, 1e4, allow_nan=False) for _ in range(6)]),
    st.integers(0, 500),
    st.integers(0, 500),
)
def test_a_windows_transform_places_its_pixels_where_the_images_does(
    coefficients: tuple[float, ...], y0: int, x0: int
) -> None:
    georef = Georef(transform=coefficients)  # type: ignore[arg-type]
    window = Window(y0, y0 + 7, x0, x0 + 5)
    inner = georef.window(window)
    for row, col in ((0, 0), (6, 4), (3, 2)):
        expected = georef.affine @ (x0 + col, y0 + row)
        got = inner.affine @ (col, row)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)
    xs, ys = georef.centres(window)
    assert (xs[0, 0], ys[0, 0]) == pytest.approx(
        georef.affine @ (x0 + 0.5, y0 + 0.5), rel=1e-9, abs=1e-6
    )


def test_block_info_places_every_block_in_the_world(tmp_path: Path) -> None:
    """Each block learns its own transform and the world coordinates of its pixel centres:
    the chunked result equals the whole image's and rasterio's pixel-centre coordinates."""
    path = geotiff(tmp_path / "dem.tif", dem())
    corners: list[tuple[float, float]] = []

    def world(block: np.ndarray, block_info: pipeline.BlockInfo) -> np.ndarray:
        x, y = block_info.world_coords()
        assert block_info.crs is not None and "UTM zone 33N" in block_info.crs
        a, _, c, _, e, f = block_info.transform or (0, 0, 0, 0, 0, 0)
        corners.append((c, f))
        assert (a, e) == (30.0, -30.0)
        return np.stack([x, y], axis=-1)

    image = pipeline.open_image(path, chunks=(32, 48))
    got = pipeline.apply(world, image, dtype="f8", channels=2).compute()
    with rasterio.open(path) as ds:
        rows, cols = np.mgrid[: ds.height, : ds.width]
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols)  # pixel centres
    np.testing.assert_array_equal(got[..., 0], np.asarray(xs).reshape(rows.shape))
    np.testing.assert_array_equal(got[..., 1], np.asarray(ys).reshape(rows.shape))
    assert (500000.0 + 48 * 30, 6000000.0) in corners  # the block at row 0, column 48


@pipeline.pointwise(coords="world")
def where_on_earth(value: float, x: float, y: float, offset: float = 0.0) -> tuple[float, float]:
    return (x + offset, y)


@pipeline.neighbourhood(radius=1, boundary="nan", coords="world")
def northing_of_the_pixel_above(z: np.ndarray, i: int, j: int, x: float, y: float) -> float:
    return y + 30.0  # the centre of the pixel above, in a north-up or a rotated grid


@pytest.mark.parametrize(
    "transform",
    [TRANSFORM, rasterio.Affine(10.0, 2.0, 500000.0, 1.5, -10.0, 6000000.0)],
    ids=["north-up", "rotated"],
)
def test_a_per_pixel_kernel_gets_world_coordinates(tmp_path: Path, transform: object) -> None:
    """``coords="world"``: a kernel gets the world ``x, y`` of each pixel centre, those
    rasterio gives, in any block."""
    path = geotiff(tmp_path / "dem.tif", dem(), transform=transform)
    image = pipeline.open_image(path, chunks=(32, 48))
    got = pipeline.apply(where_on_earth, image, offset=0.0).compute()
    with rasterio.open(path) as ds:
        rows, cols = np.mgrid[: ds.height, : ds.width]
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols)  # pixel centres
    np.testing.assert_array_equal(got[..., 0], np.asarray(xs).reshape(rows.shape))
    np.testing.assert_array_equal(got[..., 1], np.asarray(ys).reshape(rows.shape))
    above = pipeline.apply(northing_of_the_pixel_above, image).compute()
    np.testing.assert_array_equal(above, got[..., 1] + 30.0)


def test_world_coordinates_need_a_georeferenced_image() -> None:
    with pytest.raises(pipeline.errors.ArgumentError) as info:
        pipeline.apply(where_on_earth, np.zeros((4, 4)))
    message = str(info.value)
    assert "where_on_earth takes world coordinates" in message
    assert "coords=True for pixel coordinates" in message


def test_elevations_in_a_declared_unit_are_converted(tmp_path: Path) -> None:
    """A DEM whose band says its values are in feet, on a grid in metres: slope converts them
    (z_factor 0.3048) as gdaldem would need to be told with -s; the output does not claim
    feet, and a unit that is no length is refused with the fix."""
    path = geotiff(tmp_path / "feet.tif", dem())
    with rasterio.open(path, "r+") as ds:
        ds.units = ("ft",)
    image = pipeline.open_image(path)
    implicit = pipeline.apply(pipeline.ops.terrain_kernels.slope, image).compute()
    explicit = pipeline.apply(
        pipeline.ops.terrain_kernels.slope, image, cell_size=30.0, z_factor=0.3048
    ).compute()
    np.testing.assert_array_equal(implicit, explicit)
    given = pipeline.apply(pipeline.ops.terrain_kernels.slope, image, z_factor=1.0).compute()
    assert np.nanmax(given) > np.nanmax(implicit)  # a given z_factor wins
    from pipeline.ops import program_of

    program = program_of(pipeline.apply(pipeline.ops.terrain_kernels.slope, image))
    assert program is not None and program.root.georef.z_unit is None  # degrees, not feet
    with rasterio.open(path, "r+") as ds:
        ds.units = ("degC",)
    with pytest.raises(pipeline.errors.ArgumentError, match="'degC' is not a length unit"):
        pipeline.apply(pipeline.ops.terrain_kernels.slope, pipeline.open_image(path))


def test_a_georeferenced_output_exports_to_a_valid_cog(tmp_path: Path) -> None:
    """`pipeline export` of a georeferenced output writes a Cloud-Optimized GeoTIFF: valid for
    rio-cogeo's validator, with the input's CRS, transform and nodata, and the stored pyramid
    as its overviews, pixel for pixel."""
    from rio_cogeo.cogeo import cog_validate

    from pipeline.cli import main

    source = geotiff(tmp_path / "dem.tif", dem((200, 300)))
    out = tmp_path / "o.zarr"
    pipeline.save(pipeline.open_image(source, chunks=64), out, progress=False, pyramid=2)
    assert main(["export", str(out), "--out", str(tmp_path / "o.tif"), "--tile", "64"]) == 0
    valid, errors, warnings_ = cog_validate(str(tmp_path / "o.tif"))
    assert valid and not errors and not warnings_
    stored = zarr.open_group(out, mode="r")
    with rasterio.open(tmp_path / "o.tif") as ds, rasterio.open(source) as src:
        assert (ds.crs, ds.transform) == (src.crs, src.transform)
        assert math.isnan(ds.nodata)
        assert ds.overviews(1) == [2, 4]
        assert ds.block_shapes == [(64, 64)]
        np.testing.assert_array_equal(ds.read(1), stored["0"][:])
        for k, factor in ((1, 2), (2, 4)):
            shape = stored[str(k)].shape
            np.testing.assert_array_equal(
                ds.read(1, out_shape=shape, resampling=rasterio.enums.Resampling.nearest),
                stored[str(k)][:],
            )
            assert shape == (math.ceil(200 / factor), math.ceil(300 / factor))
    rioxarray = pytest.importorskip("rioxarray")
    cog = rioxarray.open_rasterio(tmp_path / "o.tif")  # GeoTIFF -> Zarr -> COG, in xarray
    with rasterio.open(source) as src:
        assert cog.rio.crs == src.crs
        assert cog.rio.transform() == src.transform
    assert math.isnan(cog.rio.nodata)


@pytest.mark.parametrize("direction", ["east", "south"])
def test_slope_on_a_geographic_grid_is_measured_on_the_ellipsoid(
    tmp_path: Path, direction: str
) -> None:
    """A planar ramp of 10 degrees laid out on a 1-arc-second grid near 60 degrees north, its
    elevations from geodesic distances: the slope comes out as 10 degrees whichever way it
    runs. gdaldem's one 111120 m per degree would make the east-west one about 5 degrees."""
    from pyproj import Geod

    second = 1 / 3600
    rows, cols = 60, 80
    lat = 60.05 - second * (np.arange(rows) + 0.5)
    lon = 10.0 + second * (np.arange(cols) + 0.5)
    geod = Geod(ellps="WGS84")
    tangent = math.tan(math.radians(10.0))
    if direction == "east":
        lons, lats = np.meshgrid(lon, lat)
        _, _, distance = geod.inv(np.full_like(lons, lon[0]), lats, lons, lats)
    else:
        lons, lats = np.meshgrid(lon, lat)
        _, _, distance = geod.inv(lons, np.full_like(lats, lat[0]), lons, lats)
    z = (tangent * np.asarray(distance)).astype("float64")
    path = geotiff(
        tmp_path / "ramp.tif",
        z,
        crs="EPSG:4326",
        transform=from_origin(10.0, 60.05, second, second),
        nodata=None,
    )
    from pipeline.ops import terrain_kernels

    image = pipeline.open_image(path, chunks=(16, 32))
    slope = pipeline.apply(terrain_kernels.slope, image).compute()
    inner = slope[1:-1, 1:-1]  # the edges are missing, as in gdaldem
    assert np.abs(inner - 10.0).max() < 0.01
    assert np.isnan(slope[0]).all() and np.isnan(slope[:, -1]).all()


@pytest.mark.parametrize(
    ("make", "unit", "size", "corner"),
    [
        ("ome", "micrometer", (0.5, 0.65), (0.0, 0.0)),
        ("geotiff", "meter", (30.0, 30.0), (0.0, 500000.0)),
    ],
)
def test_ome_zarr_viewers_get_the_physical_pixel_size(
    tmp_path: Path, make: str, unit: str, size: tuple[float, float], corner: tuple[float, float]
) -> None:
    """The multiscales' scale and translation are in the pixel's unit, so that OME-Zarr
    viewers show physical sizes; every level's pixel is twice the one below."""
    if make == "ome":
        path = tmp_path / "cells.ome.tif"
        tifffile.imwrite(
            path,
            np.zeros((40, 60), "f4"),
            metadata={"PhysicalSizeX": 0.65, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm"},
        )
    else:
        path = geotiff(tmp_path / "dem.tif", dem((40, 60)))
    out = tmp_path / "o.zarr"
    pipeline.save(pipeline.open_image(path), out, progress=False, pyramid=1)
    entry = zarr.open_group(out, mode="r").attrs["ome"]["multiscales"][0]
    assert [a.get("unit") for a in entry["axes"]] == [unit, unit]
    for level, dataset in enumerate(entry["datasets"]):
        scale, translation = (
            t.get("scale") or t.get("translation") for t in dataset["coordinateTransformations"]
        )
        k = 2**level
        assert scale == [size[0] * k, size[1] * k]
        # The centre of the level's first pixel, half of its own pixel from the corner.
        assert translation == pytest.approx(
            [corner[0] + size[0] * k / 2, corner[1] + size[1] * k / 2]
        )
    assert open_source(out, level=1).georef.pixel_size == (size[0] * 2, size[1] * 2)
