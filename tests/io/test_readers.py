"""Reader conformance: every format opens lazily, reads any window exactly, and travels.

Each case writes the same kind of image in one format and says what reading it must give; the
`TestReader` suite then runs identically over all of them (as zarr's ``StoreTests`` do).
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from conftest import S3Server, raise_if_dask_computes, ramp

import pipeline
from pipeline.grid import Window
from pipeline.ops import program_of

SHAPE = (101, 157)  # odd sizes: every tile row and column at the edge is ragged


@dataclass
class Case:
    """An image written in one format, and what reading it must return."""

    source: Any
    expected: np.ndarray
    tile: tuple[int, int] | None = None  # storage unit the default chunks must follow


def _tiff(tmp: Path, data: np.ndarray, name: str = "img.tif", **kwargs: Any) -> Case:
    path = tmp / name
    tifffile.imwrite(path, data, **kwargs)
    tile = kwargs.get("tile") or (kwargs.get("rowsperstrip", data.shape[0]), data.shape[1])
    return Case(path, tifffile.imread(path), tuple(tile))


def tiff_tiled(tmp: Path) -> Case:
    return _tiff(tmp, ramp(SHAPE, np.float32), tile=(32, 48), compression="zlib")


def tiff_zstd_predictor(tmp: Path) -> Case:
    return _tiff(tmp, ramp(SHAPE, np.uint16), tile=(16, 32), compression="zstd", predictor=True)


def tiff_rgb_lzw(tmp: Path) -> Case:
    return _tiff(tmp, ramp((*SHAPE, 3), np.uint8), tile=(32, 32), compression="lzw")


def tiff_planar_separate(tmp: Path) -> Case:
    planes = ramp((3, *SHAPE), np.uint8)
    path = tmp / "planar.tif"
    tifffile.imwrite(
        path, planes, planarconfig="separate", photometric="rgb", tile=(32, 32), compression="zlib"
    )
    return Case(path, np.moveaxis(planes, 0, -1), (32, 32))


def tiff_strips(tmp: Path) -> Case:
    return _tiff(tmp, ramp(SHAPE, np.int16), rowsperstrip=7, compression="deflate")


def tiff_uncompressed_contiguous(tmp: Path) -> Case:
    return _tiff(tmp, ramp(SHAPE, np.float64))


def bigtiff_big_endian(tmp: Path) -> Case:
    return _tiff(tmp, ramp(SHAPE, np.int32), tile=(32, 32), bigtiff=True, byteorder=">")


def tiff_jpeg(tmp: Path) -> Case:
    return _tiff(tmp, ramp((*SHAPE, 3), np.uint8), tile=(32, 32), compression="jpeg")


def tiff_pyramid_level1(tmp: Path) -> Case:
    base = ramp((202, 314), np.uint16)
    path = tmp / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(base, subifds=1, tile=(32, 32), compression="zlib")
        tif.write(base[::2, ::2], subfiletype=1, tile=(32, 32), compression="zlib")
    return Case((path, 1), base[::2, ::2], (32, 32))


def zarr_v3(tmp: Path) -> Case:
    data = ramp(SHAPE, np.float32)
    z = zarr.create_array(tmp / "a.zarr", shape=SHAPE, chunks=(30, 40), dtype=data.dtype)
    z[:] = data
    return Case(tmp / "a.zarr", data, (30, 40))


def zarr_v3_sharded(tmp: Path) -> Case:
    data = ramp(SHAPE, np.uint16)
    z = zarr.create_array(
        tmp / "s.zarr", shape=SHAPE, chunks=(10, 20), shards=(40, 40), dtype=data.dtype
    )
    z[:] = data
    return Case(tmp / "s.zarr", data, (40, 40))


def zarr_v2(tmp: Path) -> Case:
    data = ramp((*SHAPE, 2), np.int16)
    z = zarr.create_array(
        tmp / "v2.zarr", shape=data.shape, chunks=(25, 25, 2), dtype="i2", zarr_format=2
    )
    z[:] = data
    return Case(tmp / "v2.zarr", data, (25, 25))


def ome_zarr_level1(tmp: Path) -> Case:
    full = ramp((3, 202, 314), np.float32)
    group = zarr.open_group(tmp / "ome.zarr", mode="w")
    for k, level in enumerate((full, full[:, ::2, ::2])):
        arr = group.create_array(str(k), shape=level.shape, chunks=(3, 32, 32), dtype="f4")
        arr[:] = level
    axes = [
        {"name": "c", "type": "channel"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": axes, "datasets": [{"path": "0"}, {"path": "1"}]}],
    }
    return Case((tmp / "ome.zarr", 1), np.moveaxis(full[:, ::2, ::2], 0, -1), (32, 32))


def npy_c_order(tmp: Path) -> Case:
    data = ramp(SHAPE, np.float32)
    np.save(tmp / "a.npy", data)
    return Case(tmp / "a.npy", data, (1, SHAPE[1]))


def npy_fortran_order(tmp: Path) -> Case:
    data = np.asfortranarray(ramp((*SHAPE, 2), np.uint8))
    np.save(tmp / "f.npy", data)
    return Case(tmp / "f.npy", data, (SHAPE[0], 1))


def numpy_array(tmp: Path) -> Case:
    data = ramp(SHAPE, np.float64)
    return Case(data, data)


def dask_array(tmp: Path) -> Case:
    data = ramp((*SHAPE, 2), np.float32)
    return Case(da.from_array(data, chunks=(50, 60, 1)), data)


CASES: list[Callable[[Path], Case]] = [
    tiff_tiled,
    tiff_zstd_predictor,
    tiff_rgb_lzw,
    tiff_planar_separate,
    tiff_strips,
    tiff_uncompressed_contiguous,
    bigtiff_big_endian,
    tiff_jpeg,
    tiff_pyramid_level1,
    zarr_v3,
    zarr_v3_sharded,
    zarr_v2,
    ome_zarr_level1,
    npy_c_order,
    npy_fortran_order,
    numpy_array,
    dask_array,
]


def on_s3(make: Callable[[Path], Case]) -> Callable[..., Case]:
    """The same case read from the loopback S3 server (issue 17): the file, uploaded."""

    def remote(tmp: Path, server: S3Server) -> Case:
        import s3fs

        case = make(tmp)
        path, level = case.source if isinstance(case.source, tuple) else (case.source, None)
        url = f"s3://readers/{uuid.uuid4().hex[:8]}/{Path(path).name}"
        fs = s3fs.S3FileSystem(**server.options)
        fs.mkdirs("readers", exist_ok=True)
        fs.put(str(path), url, recursive=Path(path).is_dir())
        return Case(url if level is None else (url, level), case.expected, case.tile)

    remote.__name__ = f"{make.__name__}_on_s3"
    remote.on_s3 = True  # type: ignore[attr-defined]
    return remote


REMOTE_CASES = [
    on_s3(make)
    for make in (
        tiff_tiled,
        tiff_rgb_lzw,
        tiff_planar_separate,
        tiff_strips,
        bigtiff_big_endian,
        tiff_pyramid_level1,
        zarr_v3,
        zarr_v3_sharded,
        zarr_v2,
        ome_zarr_level1,
    )
]
CASES += REMOTE_CASES
FILE_CASES = [c for c in CASES if c not in (numpy_array, dask_array)]


def open_case(case: Case, **kwargs: Any) -> da.Array:
    if isinstance(case.source, tuple):
        path, level = case.source
        return pipeline.open_image(path, level=level, **kwargs)
    return pipeline.open_image(case.source, **kwargs)


def _make(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if getattr(request.param, "on_s3", False):
        return request.param(tmp_path, request.getfixturevalue("s3_server"))
    return request.param(tmp_path)


@pytest.fixture(params=CASES, ids=lambda f: f.__name__.replace("_", "-"))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _make(request, tmp_path)


@pytest.fixture(params=FILE_CASES, ids=lambda f: f.__name__.replace("_", "-"))
def file_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _make(request, tmp_path)


class TestReader:
    """What every format must do."""

    def test_shape_dtype_and_every_pixel(self, case: Case) -> None:
        image = open_case(case)
        assert image.shape == case.expected.shape
        assert image.dtype == case.expected.dtype.newbyteorder("=")
        assert image.dtype.isnative
        np.testing.assert_array_equal(image.compute(scheduler="synchronous"), case.expected)

    @pytest.mark.parametrize(
        "window",
        [
            Window(0, 1, 0, 1),
            Window(0, 101, 156, 157),
            Window(31, 33, 47, 49),
            Window(5, 96, 17, 140),
            Window(100, 101, 0, 157),
        ],
        ids=["first-pixel", "last-column", "tile-corner", "interior", "last-row"],
    )
    def test_any_window_reads_exactly(self, case: Case, window: Window) -> None:
        image = open_case(case, chunks=(23, 31))
        window = window.clip(image.shape)
        expected = case.expected[window.to_slices()]
        np.testing.assert_array_equal(image[window.to_slices()].compute(), expected)

    def test_default_chunks_are_whole_storage_units(self, case: Case) -> None:
        image = open_case(case)
        assert all(len(c) == 1 for c in image.chunks[2:]), "channels are never split"
        if case.tile is not None:
            for size, tile, length in zip(
                image.chunksize[:2], case.tile, image.shape, strict=False
            ):
                assert size % min(tile, length) == 0 or size == length

    def test_explicit_chunks(self, case: Case) -> None:
        image = open_case(case, chunks=(40, -1))
        assert image.chunks[:2] == (
            (40, 40, 21) if image.shape[0] == 101 else image.chunks[0],
            (image.shape[1],),
        )


class TestFileReader:
    """What every file-backed format must do on top: laziness and picklable tasks."""

    def test_opening_reads_no_pixel(self, file_case: Case, no_pixel_reads: list[str]) -> None:
        with raise_if_dask_computes():
            image = open_case(file_case)
            pipeline.apply(lambda b: b, image, depth=2)
        assert no_pixel_reads == []

    def test_tasks_pickle_small_and_read_after_unpickling(self, file_case: Case) -> None:
        image = open_case(file_case, chunks=50)
        program = program_of(image)
        assert program is not None
        payload = pickle.dumps(program.root)
        assert len(payload) < 4000, "a task carries a description of the file, not its pixels"
        root = pickle.loads(payload)
        window = Window(10, 60, 20, 90).clip(image.shape)
        np.testing.assert_array_equal(root.read(window, {}), file_case.expected[window.to_slices()])
        graph = dict(image.__dask_graph__())
        assert len(graph) == image.npartitions
        cloudpickle.dumps(graph)


@pytest.mark.slow
@pytest.mark.parametrize("make", [tiff_tiled, zarr_v3, npy_c_order], ids=["tiff", "zarr", "npy"])
def test_graphs_compute_in_spawned_processes(make: Callable[[Path], Case], tmp_path: Path) -> None:
    case = make(tmp_path)
    image = open_case(case, chunks=(60, 80))
    with dask.config.set({"multiprocessing.context": "spawn"}):
        result = image.compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(result, case.expected)


def test_a_10_gigabyte_tiff_opens_instantly_without_reading_pixels(
    tmp_path: Path, no_pixel_reads: list[str]
) -> None:
    path = tmp_path / "huge.tif"
    # Uncompressed and never written: the file is sparse, 10 GB long, a few kB on disk.
    tifffile.imwrite(path, shape=(100_000, 50_000), dtype=np.uint16, bigtiff=True)
    assert path.stat().st_size > 10**10
    with raise_if_dask_computes():
        image = pipeline.open_image(path)
    assert image.shape == (100_000, 50_000)
    assert image.npartitions > 250  # ~32 MB blocks
    assert no_pixel_reads == []
