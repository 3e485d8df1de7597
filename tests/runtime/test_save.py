"""The Zarr writer: exact results on every scheduler, honest reports, and refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from oracle import whole_image

import pipeline
from pipeline.errors import AlignmentError, ArgumentError, BlockFunctionError, OutputExistsError
from pipeline.grid import ChunkGrid, Window


def horn_slope(dem: np.ndarray, cell_size: float = 30.0) -> np.ndarray:
    """Slope in degrees by Horn's method: a 3x3 neighbourhood operation (depth 1)."""
    z = dem.astype(np.float64)
    dzdx = (z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (
        z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2]
    )
    dzdy = (z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:]) - (
        z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:]
    )
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy) / (8 * cell_size)))


@pytest.fixture
def dem(tmp_path: Path) -> tuple[Path, np.ndarray]:
    y, x = np.mgrid[0:300, 0:410]
    data = (1000 + 200 * np.sin(y / 37.0) * np.cos(x / 23.0) + y * 0.7).astype(np.float32)
    path = tmp_path / "dem.tif"
    tifffile.imwrite(path, data, tile=(64, 64), compression="zlib")
    return path, data


def read_output(path: Path) -> np.ndarray:
    return np.asarray(pipeline.open_image(path).compute())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_is_exact_on_every_scheduler(
    dem: tuple[Path, np.ndarray], tmp_path: Path, scheduler: Any
) -> None:
    path, data = dem
    before = sha(path)
    image = pipeline.open_image(path, chunks=(128, 128))
    slope = pipeline.apply(
        horn_slope, image, depth=1, boundary="nearest", dtype="f4", cell_size=25.0
    )
    with dask.config.set({"multiprocessing.context": "spawn"}):
        report = pipeline.save(slope, tmp_path / "slope.zarr", scheduler=scheduler, progress=False)
    expected = whole_image(
        horn_slope, data, depth=(1, 1), boundary="nearest", dtype="f4", cell_size=25.0
    )
    np.testing.assert_array_equal(read_output(tmp_path / "slope.zarr"), expected)
    assert report.tasks == 3 * 4
    assert report.chunks_written == report.chunks_total == 12
    assert sha(path) == before, "the input is never modified"


def test_report_counts_the_work_done(dem: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, data = dem
    image = pipeline.open_image(path, chunks=(100, 128))
    slope = pipeline.apply(horn_slope, image, depth=1, boundary="nearest", dtype="f4")
    report = pipeline.save(slope, tmp_path / "s.zarr", chunks=(50, 64), progress=False)
    grid = ChunkGrid.regular(data.shape, (100, 128))
    # Each task reads its block plus the halo that exists inside the image.
    halo_reads = sum(w.pad((1, 1)).clip(data.shape).size * 4 for _, w in grid.blocks())
    assert report.tasks == grid.num_blocks == 12
    assert report.chunks_written == report.chunks_total == 6 * 7
    assert report.bytes_read == halo_reads
    assert report.bytes_written == data.size * 4
    assert 0 < report.bytes_stored < data.size * 4
    assert report.pixels == data.size
    assert report.task_seconds > 0 and report.elapsed > 0
    assert "s.zarr" in report.summary() and "Mpx/s" in report.summary()
    assert json.loads(report.to_json())["tasks"] == 12


def test_output_is_ome_zarr_with_provenance(dem: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, _ = dem
    pipeline.save(pipeline.open_image(path, chunks=128), tmp_path / "o.zarr", progress=False)
    group = zarr.open_group(tmp_path / "o.zarr", mode="r")
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5"
    assert [a["name"] for a in ome["multiscales"][0]["axes"]] == ["y", "x"]
    assert ome["multiscales"][0]["datasets"][0]["path"] == "0"
    array = group["0"]
    assert array.metadata.dimension_names == ("y", "x")
    assert array.chunks == (128, 128)
    codec = array.compressors[0]
    assert type(codec).__name__ == "BloscCodec"  # a float image: lz4 after a byte shuffle
    assert (codec.cname.value, codec.shuffle.value) == ("lz4", "shuffle")
    info = group.attrs["pipeline"]
    assert info["complete"] is True
    assert info["inputs"] == [str(path)]
    assert info["report"]["tasks"] == 12


def test_channels_are_stored_channel_first_and_read_back_last(tmp_path: Path) -> None:
    rgb = (np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8)
    pipeline.save(da.from_array(rgb, chunks=(32, 32, 3)), tmp_path / "rgb.zarr", progress=False)
    stored = zarr.open_group(tmp_path / "rgb.zarr", mode="r")["0"]
    assert stored.shape == (3, 70, 90)
    assert type(stored.compressors[0]).__name__ == "ZstdCodec"  # integers: zstd level 1
    assert stored.metadata.dimension_names == ("c", "y", "x")
    np.testing.assert_array_equal(read_output(tmp_path / "rgb.zarr"), rgb)


def test_a_foreign_dask_array_and_a_numpy_array_save_too(tmp_path: Path) -> None:
    data = np.arange(50 * 60, dtype=np.int32).reshape(50, 60)
    report = pipeline.save(
        da.from_array(data, chunks=(20, 30)) * 2, tmp_path / "d.zarr", progress=False
    )
    assert report.tasks == 6
    np.testing.assert_array_equal(read_output(tmp_path / "d.zarr"), data * 2)
    pipeline.save(data, tmp_path / "n.zarr", progress=False)
    np.testing.assert_array_equal(read_output(tmp_path / "n.zarr"), data)


def test_misaligned_output_chunks_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    image = da.zeros((200, 200), chunks=(100, 100))
    with pytest.raises(
        AlignmentError, match=r"output chunks 64x64 do not align.*such as \(100, 100\)"
    ):
        pipeline.save(image, tmp_path / "x.zarr", chunks=(64, 64), progress=False)
    assert not (tmp_path / "x.zarr").exists()


def test_irregular_blocks_are_refused_with_the_fix(tmp_path: Path) -> None:
    image = da.zeros((100, 100), chunks=((30, 70), (50, 50)))
    with pytest.raises(AlignmentError, match=r"irregular blocks.*image.rechunk"):
        pipeline.save(image, tmp_path / "x.zarr", progress=False)
    pipeline.save(image, tmp_path / "x.zarr", chunks=(10, 50), progress=False)


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    image = da.ones((20, 20), chunks=10)
    pipeline.save(image, tmp_path / "o.zarr", progress=False)
    with pytest.raises(OutputExistsError, match=r"o.zarr already exists; pass overwrite=True"):
        pipeline.save(image * 3, tmp_path / "o.zarr", progress=False)
    pipeline.save(image * 3, tmp_path / "o.zarr", overwrite=True, progress=False)
    np.testing.assert_array_equal(read_output(tmp_path / "o.zarr"), np.full((20, 20), 3.0))


def test_overwrite_never_deletes_something_that_is_not_a_zarr_store(tmp_path: Path) -> None:
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match=r"refusing to overwrite .*not a Zarr store"):
        pipeline.save(da.ones((4, 4), chunks=2), precious, overwrite=True, progress=False)
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_output_at_inside_or_around_the_input_is_refused(tmp_path: Path, where: str) -> None:
    source = tmp_path / "data" / "in.zarr"
    source.parent.mkdir()
    pipeline.save(da.ones((8, 8), chunks=4), source, progress=False)
    target = {"same": source, "inside": source / "out.zarr", "around": tmp_path / "data"}[where]
    image = pipeline.open_image(source)
    with pytest.raises(ArgumentError, match="could destroy the input"):
        pipeline.save(pipeline.apply(np.negative, image), target, overwrite=True, progress=False)
    np.testing.assert_array_equal(read_output(source), np.ones((8, 8)))


def test_failure_names_the_block_and_leaves_the_output_incomplete(tmp_path: Path) -> None:
    calls: list[int] = []

    def fragile(block: np.ndarray, block_info: pipeline.BlockInfo) -> np.ndarray:
        calls.append(block_info.core.y0)
        if len(calls) > 2:  # after two blocks are written
            msg = "no data here"
            raise ValueError(msg)
        return block

    lazy = pipeline.apply(fragile, da.zeros((40, 30), chunks=(10, 15)))
    with pytest.raises(
        BlockFunctionError,
        match=r"^test_save.fragile failed on the block at pixels \[\d+:\d+, ",
    ):
        pipeline.save(lazy, tmp_path / "f.zarr", scheduler="synchronous", progress=False)
    attrs = zarr.open_group(tmp_path / "f.zarr", mode="r").attrs["pipeline"]
    assert attrs["complete"] is False


def test_a_run_that_writes_no_block_leaves_no_output(tmp_path: Path) -> None:
    def broken(block: np.ndarray) -> np.ndarray:
        msg = "nothing works"
        raise ValueError(msg)

    lazy = pipeline.apply(broken, da.zeros((40, 30), chunks=(10, 15)))
    with pytest.raises(BlockFunctionError, match="nothing works"):
        pipeline.save(lazy, tmp_path / "f.zarr", progress=False)
    assert not (tmp_path / "f.zarr").exists(), "nothing to resume: nothing left behind"


def test_save_accepts_a_path_for_a_conversion(dem: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, data = dem
    pipeline.save(path, tmp_path / "dem.zarr", progress=False)
    np.testing.assert_array_equal(read_output(tmp_path / "dem.zarr"), data)


def test_windows_stay_in_one_task(dem: tuple[Path, np.ndarray]) -> None:
    """One task per output block: no separate read, pad, or trim tasks."""
    path, _ = dem
    image = pipeline.open_image(path, chunks=64)
    slope = pipeline.apply(horn_slope, image, depth=1)
    twice = pipeline.apply(horn_slope, slope, depth=2)
    assert len(dict(twice.__dask_graph__())) == twice.npartitions == 5 * 7
    assert Window(0, 64, 0, 64) == ChunkGrid.from_dask(twice.chunks).window(0, 0)


@pytest.mark.slow
def test_distributed_by_name_starts_a_loopback_cluster_for_the_run(tmp_path: Path) -> None:
    data = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    report = pipeline.save(
        pipeline.apply(np.sqrt, da.from_array(data, chunks=16)),
        tmp_path / "d.zarr",
        scheduler="distributed",
        workers=2,
        progress=False,
    )
    assert report.scheduler == "distributed"
    assert report.workers == 2
    np.testing.assert_array_equal(read_output(tmp_path / "d.zarr"), np.sqrt(data))


@pytest.mark.parametrize(
    ("scheduler", "match"),
    [
        ("thread", r"unknown scheduler 'thread': did you mean 'threads'\?"),
        (42, r"scheduler=42 is not a scheduler; use one of synchronous, threads, processes"),
    ],
)
def test_unknown_scheduler(tmp_path: Path, scheduler: object, match: str) -> None:
    from pipeline.errors import SchedulerError

    with pytest.raises(SchedulerError, match=match):
        pipeline.save(
            da.ones((4, 4), chunks=2), tmp_path / "u.zarr", scheduler=scheduler, progress=False
        )
    assert not (tmp_path / "u.zarr").exists(), "checked before anything is created"


def test_plan_checks_and_describes_without_computing(
    dem: tuple[Path, np.ndarray], tmp_path: Path, no_pixel_reads: list[str]
) -> None:
    from conftest import raise_if_dask_computes

    path, _ = dem
    image = pipeline.open_image(path, chunks=128)
    chain = pipeline.apply(horn_slope, pipeline.apply(np.sqrt, image, depth=2), depth=1)
    with raise_if_dask_computes():
        checked = pipeline.plan(chain, tmp_path / "p.zarr", chunks=64, scheduler="processes")
    assert checked.tasks == 12
    assert checked.halo == (3, 3)
    text = repr(checked)
    assert "steps          sqrt -> horn_slope" in text
    assert "tasks          12, one per block (3x4 blocks of 128x128)" in text
    assert "halo           3x3 pixels around each block" in text
    assert "stored chunks  64x64, blosc lz4, byte shuffle" in text
    assert no_pixel_reads == []
    assert not (tmp_path / "p.zarr").exists()
