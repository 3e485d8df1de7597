"""Nothing computes before it is asked to, and everything a task carries survives pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import tifffile
from conftest import raise_if_dask_computes

import pipeline
from pipeline import errors
from pipeline.grid import BlockInfo, Boundary, ChunkGrid, Window
from pipeline.io import create_target
from pipeline.ops import program_of
from pipeline.report import BlockStats, RunReport


@pytest.fixture
def tiff(tmp_path: Path) -> Path:
    tifffile.imwrite(tmp_path / "a.tif", np.ones((64, 80), np.float32), tile=(16, 16))
    return tmp_path / "a.tif"


def test_open_and_chained_apply_compute_nothing(tiff: Path, no_pixel_reads: list[str]) -> None:
    with raise_if_dask_computes():
        image = pipeline.open_image(tiff, chunks=32)
        first = pipeline.apply(np.sqrt, image, depth=1)
        second = pipeline.apply(lambda a, b: a + b, first, image, depth=(2, 3), boundary="nan")
        assert second.shape == (64, 80)
    assert no_pixel_reads == []


def test_apply_on_a_foreign_dask_array_computes_nothing() -> None:
    with raise_if_dask_computes():
        lazy = pipeline.apply(np.negative, da.random.random((50, 50), chunks=10) + 1, depth=2)
    assert lazy.npartitions == 25


def test_the_graph_of_a_fused_chain_carries_descriptions_not_pixels(tiff: Path) -> None:
    image = pipeline.open_image(tiff, chunks=32)
    lazy = pipeline.apply(lambda b, scale: b * scale, pipeline.apply(np.sqrt, image), scale=2)
    program = program_of(lazy)
    assert program is not None
    blob = cloudpickle.dumps(dict(lazy.__dask_graph__()))
    assert len(blob) < 20_000
    root = cloudpickle.loads(cloudpickle.dumps(program.root))
    np.testing.assert_array_equal(root.read(Window(0, 10, 0, 10), {}), np.full((10, 10), 2.0))


@pytest.mark.parametrize(
    "value",
    [
        Window(1, 2, 3, 4),
        BlockInfo(Window(0, 2, 0, 2), Window(-1, 3, -1, 3), (5, 5), (1, 1), "reflect"),
        Boundary.parse(2.5),
        ChunkGrid((3, 3, 1), (4,)),
        BlockStats(chunks=1, bytes_read=2, bytes_written=3, seconds=0.5),
        RunReport("o.zarr", (4, 4), "float32", (2, 2), 4, 4, 4, 1.0, 2.0, 64, 64, 10, "threads", 2),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_sent_to_and_from_workers_pickle(value: object) -> None:
    assert pickle.loads(pickle.dumps(value)) == value


def test_zarr_target_pickles_and_writes_after_unpickling(tmp_path: Path) -> None:
    target = create_target(
        tmp_path / "t.zarr",
        (8, 8),
        np.dtype("f4"),
        (4, 4),
        overwrite=False,
        attributes={},
        run_id="r1",
    )
    clone = pickle.loads(pickle.dumps(target))
    clone.write(Window(4, 8, 0, 4), np.full((4, 4), 7, np.float32))
    out = pipeline.open_image(tmp_path / "t.zarr", missing_chunks="fill").compute()
    assert (out[4:, :4] == 7).all() and np.isnan(out[:4]).all()


@pytest.mark.parametrize(
    "cls", [getattr(errors, name) for name in errors.__all__ if name.endswith("Error")]
)
def test_errors_survive_the_trip_back_from_a_worker(cls: type[Exception]) -> None:
    err = cls("what failed, the values, the fix")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err)
