"""A function that does not say what it allocates is measured on one real block before the
plan chooses blocks; its result is kept for the run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline
from pipeline.demo import write_dem
from pipeline.errors import BlockFunctionError
from pipeline.grid import ChunkGrid, Window, choose_blocks
from pipeline.ops import terrain
from pipeline.ops.terrain_kernels import slope
from pipeline.planning import probe
from pipeline.planning.probe import Measurement


@pytest.fixture(scope="module")
def dem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dem(tmp_path_factory.mktemp("dem") / "dem.tif", (1000, 1200), tile=(128, 128))


class Counting:
    """A numpy function holding ``copies`` float64 copies of its block at once, counting the
    windows it is called on."""

    def __init__(self, copies: int) -> None:
        self.copies = copies
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.__name__ = f"hold{copies}"

    def __call__(self, block: np.ndarray, block_info: Any) -> np.ndarray:
        with self.lock:
            self.calls.append(block_info.core.shape)
        held = [block.astype(np.float64) + k for k in range(self.copies)]
        return (sum(held) / self.copies)[1:-1, 1:-1].astype(np.float32)


def test_a_function_is_measured_and_its_blocks_sized_from_what_it_held(
    dem: Path, tmp_path: Path
) -> None:
    image = pipeline.open_image(dem)
    light = pipeline.plan(
        pipeline.apply(Counting(1), image, depth=1, dtype="float32"),
        tmp_path / "l.zarr",
        memory_limit="500MB",
    )
    heavy = pipeline.plan(
        pipeline.apply(Counting(40), image, depth=1, dtype="float32"),
        tmp_path / "h.zarr",
        memory_limit="500MB",
    )
    assert light.measured is not None and heavy.measured is not None
    # 40 float64 copies of the block at once: at least 320 bytes per pixel, measured.
    assert heavy.measured.bytes_per_pixel >= 40 * 8
    assert light.measured.bytes_per_pixel < heavy.measured.bytes_per_pixel / 8
    assert heavy.grid.chunk_shape[0] * heavy.grid.chunk_shape[1] < (
        light.grid.chunk_shape[0] * light.grid.chunk_shape[1]
    ), "the heavy function gets smaller blocks"
    assert heavy.memory_per_worker <= heavy.memory_budget
    # The projection is the measured figure scaled by pixels (plus the write's buffers).
    by, bx = heavy.grid.chunk_shape
    assert heavy.memory_per_task >= heavy.measured.bytes_per_pixel * by * bx
    w = heavy.measured.window
    row = dict(heavy.describe())["measured"]
    assert f"measured on the block at rows {w.y0}:{w.y1}, columns {w.x0}:{w.x1}" in row
    assert "bytes per pixel" in row and "ns per pixel" in row


def test_the_measured_block_is_not_computed_again(dem: Path, tmp_path: Path) -> None:
    function = Counting(2)
    image = pipeline.open_image(dem)
    lazy = pipeline.apply(function, image, depth=1, dtype="float32")
    checked = pipeline.plan(lazy, tmp_path / "o.zarr", scheduler="threads")
    assert checked.measured is not None
    kept = checked.job().kept
    assert kept, "the measured block covers at least the first block"
    measuring = len(function.calls)
    assert measuring == 2, "a storage unit to time it, then the whole first block"
    report = checked.execute(progress=False)
    assert len(function.calls) - measuring == report.tasks - len(kept)
    # Kept or computed, the output equals the whole image computed at once.
    whole = pipeline.open_image(dem, chunks=(1000, 1200))
    expected = pipeline.apply(Counting(2), whole, depth=1, dtype="float32").compute()
    np.testing.assert_array_equal(pipeline.open_image(tmp_path / "o.zarr").compute(), expected)


def test_a_slow_function_is_measured_on_one_storage_unit_only(
    dem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe, "PROBE_SECONDS", 0.0)
    function = Counting(1)
    lazy = pipeline.apply(function, pipeline.open_image(dem), depth=1, dtype="float32")
    checked = pipeline.plan(lazy, tmp_path / "o.zarr")
    assert checked.measured is not None
    assert checked.measured.window == Window(0, 256, 0, 256), "at least 256, whole tiles"
    assert function.calls == [(256, 256)]


def test_a_function_failing_on_the_measured_block_fails_the_plan_with_its_block(
    dem: Path, tmp_path: Path
) -> None:
    calls: list[int] = []

    def broken(block: np.ndarray) -> np.ndarray:
        calls.append(1)
        msg = "no good"
        raise ValueError(msg)

    lazy = pipeline.apply(broken, pipeline.open_image(dem), depth=1, dtype="float32")
    with pytest.raises(
        BlockFunctionError,
        match=r"broken failed on the block at pixels \[0:256, 0:256\] .* ValueError: no good",
    ):
        pipeline.plan(lazy, tmp_path / "o.zarr")
    assert calls == [1], "called once, as the run would have (a function's error is final)"
    assert not (tmp_path / "o.zarr").exists()


def test_an_input_failing_while_measuring_is_left_to_the_run(
    dem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy = pipeline.apply(Counting(1), pipeline.open_image(dem), depth=1, dtype="float32")

    def unreadable(*args: object) -> None:
        msg = "the disk went away"
        raise OSError(msg)

    monkeypatch.setattr(probe, "_traced", unreadable)
    checked = pipeline.plan(lazy, tmp_path / "o.zarr")
    assert checked.measured is None
    assert "measured" not in dict(checked.describe())
    assert checked.choice is not None, "blocks chosen on the usual guess"


def test_compiled_kernels_and_given_blocks_are_not_measured(dem: Path, tmp_path: Path) -> None:
    image = pipeline.open_image(dem)
    assert pipeline.plan(pipeline.apply(slope, image), tmp_path / "a.zarr").measured is None
    chunked = pipeline.open_image(dem, chunks=256)
    numpy = pipeline.apply(terrain.slope, chunked, depth=1)
    assert pipeline.plan(numpy, tmp_path / "b.zarr").measured is None


@given(
    window=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    block=st.tuples(st.integers(1, 200), st.integers(1, 200)),
)
def test_kept_blocks_are_exactly_those_inside_the_measured_block(
    window: tuple[int, int], block: tuple[int, int]
) -> None:
    shape = (400, 450)
    measured_window = Window(0, window[0], 0, window[1])
    values = np.arange(window[0] * window[1], dtype=np.float32).reshape(window)
    measurement = Measurement(measured_window, 1, 0.0, values)
    grid = ChunkGrid.regular(shape, block)
    kept = measurement.kept(grid)
    for index, w in grid.blocks():
        inside = w.y1 <= window[0] and w.x1 <= window[1]
        assert (index in kept) == inside
        if inside:
            np.testing.assert_array_equal(kept[index], values[w.y0 : w.y1, w.x0 : w.x1])


@given(
    side=st.integers(1000, 20000),
    unit=st.sampled_from([128, 256, 512]),
    per_pixel=st.integers(1, 400),
    target_mb=st.integers(1, 256),
)
def test_blocks_hold_at_most_the_task_target_when_tasks_allow(
    side: int, unit: int, per_pixel: int, target_mb: int
) -> None:
    target = target_mb * 2**20

    def task(block: tuple[int, int]) -> int:
        return (block[0] + 2) * (block[1] + 2) * per_pixel

    choice = choose_blocks(
        (side, side),
        (unit, unit),
        (1, 1),
        memory=task,
        budget=2**40,
        workers=2,
        task_memory=task,
        task_target=target,
    )
    free = choose_blocks((side, side), (unit, unit), (1, 1), memory=task, budget=2**40, workers=2)
    assert choice.block[0] * choice.block[1] <= free.block[0] * free.block[1]
    if task(choice.block) > target:  # only when no block is under it: then the smallest
        assert choice.block[0] == min(unit, side)
        assert "as every one holds over" in choice.reason or "the most tasks" in choice.reason
    elif choice.block != free.block:
        assert "larger blocks would hold over" in choice.reason


HEAVY_CALLS: list[int] = []


def heavy(block: np.ndarray) -> np.ndarray:
    """40 float64 copies of the block at once."""
    HEAVY_CALLS.append(1)
    held = [block.astype(np.float64) + k for k in range(40)]
    return (sum(held) / 40)[1:-1, 1:-1].astype(np.float32)


def test_a_resumed_run_keeps_the_blocks_its_output_was_written_in(
    dem: Path, tmp_path: Path
) -> None:
    image = pipeline.open_image(dem)
    lazy = pipeline.apply(heavy, image, depth=1, dtype="float32")
    first = pipeline.plan(lazy, tmp_path / "o.zarr", memory_limit="500MB")
    first.execute(progress=False)
    # Measured afresh with more memory, the blocks would differ: a resume keeps the old ones.
    fresh = pipeline.plan(lazy, tmp_path / "other.zarr")
    assert fresh.grid.chunk_shape != first.grid.chunk_shape
    HEAVY_CALLS.clear()
    resumed = pipeline.plan(lazy, tmp_path / "o.zarr", resume=True)
    assert resumed.grid.chunk_shape == first.grid.chunk_shape
    assert resumed.choice is not None
    assert resumed.choice.reason == "as the run being resumed chose them"
    assert resumed.measured is None and HEAVY_CALLS == [], "nothing computed to plan it"
    report = resumed.execute(progress=False)
    assert report.extra["blocks_skipped"] == first.tasks
