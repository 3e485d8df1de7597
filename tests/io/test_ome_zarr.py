"""OME-Zarr outputs viewers open: valid NGFF metadata, pyramids from storage, previews, OME-TIFF."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path
from typing import Any

import dask.array as da
import imagecodecs
import numpy as np
import pytest
import tifffile
import zarr
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import pipeline
from pipeline.cli import main
from pipeline.demo import dem_window
from pipeline.grid import Window
from pipeline.io.cache import tile_cache
from pipeline.ops.pyramid import downsample
from pipeline.ops.terrain_kernels import slope

SCHEMAS = Path(__file__).parents[1] / "data" / "ngff"


def validator(version: str) -> Draft202012Validator:
    """The strict NGFF image schema of ``version``, with its references resolved offline."""
    resources = []
    for path in (SCHEMAS / version).glob("*.schema"):
        schema = json.loads(path.read_text())
        resources.append(
            (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        )
    registry = Registry().with_resources(resources)
    strict = json.loads((SCHEMAS / version / "strict_image.schema").read_text())
    return Draft202012Validator(strict, registry=registry)


@pytest.fixture(scope="module")
def dem() -> np.ndarray:
    return dem_window(Window(0, 333, 0, 517))


def test_output_metadata_validates_against_the_ngff_schemas(
    dem: np.ndarray, tmp_path: Path
) -> None:
    image = da.from_array(dem, chunks=128)
    for version in ("0.5", "0.4"):
        out = tmp_path / f"v{version}.zarr"
        pipeline.save(image, out, progress=False, pyramid=2, ngff=version)
        attrs = zarr.open_group(out, mode="r").attrs.asdict()
        errors = list(validator(version).iter_errors(attrs))
        assert errors == [], [e.message for e in errors]
        array = zarr.open_group(out, mode="r")["0"]
        assert array.metadata.zarr_format == (3 if version == "0.5" else 2)
        if version == "0.5":
            assert array.metadata.dimension_names == ("y", "x")
    # Invalid metadata must fail, or the test proves nothing.
    broken = zarr.open_group(tmp_path / "v0.5.zarr", mode="r").attrs.asdict()
    broken["ome"]["multiscales"][0]["axes"] = [{"name": "y", "type": "space"}]
    assert list(validator("0.5").iter_errors(broken))


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_ome_zarr_py_reads_the_output_and_its_levels(
    dem: np.ndarray, tmp_path: Path, version: str
) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    out = tmp_path / "o.zarr"
    pipeline.save(da.from_array(dem, chunks=128), out, progress=False, pyramid=2, ngff=version)
    nodes = list(Reader(parse_url(str(out)))())
    levels = nodes[0].data
    assert [tuple(level.shape) for level in levels] == [(333, 517), (167, 259), (84, 130)]
    np.testing.assert_array_equal(np.asarray(levels[0]), dem)


def test_pyramid_levels_come_from_the_stored_level_below(dem: np.ndarray, tmp_path: Path) -> None:
    calls: list[int] = []

    def counted(block: np.ndarray) -> np.ndarray:
        calls.append(1)
        return block

    image = da.from_array(dem, chunks=(111, 173))  # 3x3 blocks
    lazy = pipeline.apply(counted, image)
    pipeline.save(lazy, tmp_path / "o.zarr", pyramid=3, progress=False, scheduler="synchronous")
    assert len(calls) == 9, "the function ran once per block of level 0, never for a level"
    levels = [pipeline.open_image(tmp_path / "o.zarr", level=k).compute() for k in range(4)]
    for below, level in itertools.pairwise(levels):
        np.testing.assert_array_equal(level, downsample(below, "mean", below.dtype))
    group = zarr.open_group(tmp_path / "o.zarr", mode="r")
    scales = [
        d["coordinateTransformations"][0]["scale"]
        for d in group.attrs["ome"]["multiscales"][0]["datasets"]
    ]
    assert scales == [[1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [8.0, 8.0]]


def test_labels_are_downsampled_by_nearest_and_floats_by_nan_aware_mean() -> None:
    labels = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.uint8)
    np.testing.assert_array_equal(downsample(labels, "nearest", labels.dtype), [[1, 3], [7, 9]])
    floats = np.array([[np.nan, 1.0], [3.0, 5.0]])
    assert downsample(floats, "mean", np.dtype("f8"))[0, 0] == 3.0
    assert np.isnan(downsample(np.full((2, 2), np.nan), "mean", np.dtype("f4"))[0, 0])


def test_integer_outputs_get_nearest_pyramids(tmp_path: Path) -> None:
    classes = (np.arange(64 * 64) % 5).reshape(64, 64).astype(np.uint8)
    pipeline.save(classes, tmp_path / "c.zarr", pyramid=1, progress=False)
    level = pipeline.open_image(tmp_path / "c.zarr", level=1).compute()
    np.testing.assert_array_equal(level, classes[::2, ::2])
    assert (
        zarr.open_group(tmp_path / "c.zarr", mode="r").attrs["ome"]["multiscales"][0]["type"]
        == "nearest"
    )


def test_a_pyramid_deeper_than_the_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pyramid=9: a 100x200 image has room for 0 to 8 levels"):
        pipeline.save(np.zeros((100, 200)), tmp_path / "p.zarr", pyramid=9, progress=False)


def test_preview_renders_the_best_level(
    dem: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.zarr"
    data = dem.copy()
    data[:10, :10] = np.nan
    pipeline.save(da.from_array(data, chunks=128), out, pyramid=2, progress=False)
    assert main(["preview", str(out), "--out", str(tmp_path / "p.png")]) == 0
    assert "from level 0" in capsys.readouterr().out  # 517 px fits: the full resolution
    picture = imagecodecs.png_decode((tmp_path / "p.png").read_bytes())
    assert picture.shape == (333, 517, 2)
    assert (picture[:10, :10, 1] == 0).all(), "NaN is transparent"
    assert (picture[20:, 20:, 1] == 255).all()
    small = pipeline.preview(out, tmp_path / "s.png", max_side=150)
    assert small.level == 2
    assert max(small.shape) <= 150
    window = pipeline.preview(out, tmp_path / "w.png", window=Window(100, 200, 300, 420))
    assert window.shape == (100, 120)
    assert main(["preview", str(out), "--out", str(tmp_path / "x.png"), "--window", "5:1"]) == 2
    assert "window '5:1' is not Y0:Y1,X0:X1" in capsys.readouterr().err


def test_export_to_a_pyramidal_ome_tiff_streams_tile_by_tile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = dem_window(Window(0, 1500, 0, 2000))
    pipeline.save(da.from_array(data, chunks=512), tmp_path / "o.zarr", pyramid=2, progress=False)
    # Decoded chunks are kept in the tile cache, a budget of its own: one chunk here.
    monkeypatch.setattr(tile_cache, "max_bytes", 512 * 512 * 4)
    # Once first, so that what is measured is the export, not the first imports of modules.
    pipeline.export_tiff(tmp_path / "o.zarr", tmp_path / "warm.ome.tif", tile=(256, 256))
    tile_cache.clear()
    tracemalloc.start()
    try:
        pipeline.export_tiff(tmp_path / "o.zarr", tmp_path / "o.ome.tif", tile=(256, 256))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunk = 512 * 512 * 4  # the one kept in the cache, and one being decoded
    assert peak < data.nbytes / 3 + 2 * chunk, "memory holds pieces of tiles, not the image"
    with tifffile.TiffFile(tmp_path / "o.ome.tif") as tif:
        assert tif.is_ome
        assert tif.pages.first.is_tiled
        series = tif.series[0]
        assert [level.shape for level in series.levels] == [(1500, 2000), (750, 1000), (375, 500)]
        for k, level in enumerate(series.levels):
            stored = pipeline.open_image(tmp_path / "o.zarr", level=k).compute()
            np.testing.assert_array_equal(level.asarray(), stored)
    assert pipeline.open_image(tmp_path / "o.ome.tif", level=2).shape == (375, 500)
    assert main(["export", str(tmp_path / "o.zarr"), "--out", str(tmp_path / "o.ome.tif")]) == 2


def test_plans_and_reports_render_in_jupyter(dem: np.ndarray, tmp_path: Path) -> None:
    lazy = pipeline.apply(slope, da.from_array(dem, chunks=128), cell_size=30.0)
    checked: Any = pipeline.plan(lazy, tmp_path / "o.zarr")
    html = checked._repr_html_()
    assert html.startswith("<table>") and "halo" in html and "memory" in html
    report = checked.execute(progress=False)
    assert "Mpx/s" in report._repr_html_()
