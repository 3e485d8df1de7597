"""Plans: one task per output block, blocks chosen for the run, memory projected and bounded."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import pipeline
from pipeline.demo import write_dem
from pipeline.errors import MemoryBudgetError, PerformanceWarning
from pipeline.grid import Window, choose_blocks, divide_for_storage, halo_overhead
from pipeline.grid.sizing import LARGEST, MAX_OVERHEAD, TASKS_PER_WORKER
from pipeline.io import create_target
from pipeline.ops import program_of, terrain
from pipeline.ops.terrain_kernels import sky_view, slope
from pipeline.planning import memory
from pipeline.runtime import write_tasks


@pytest.fixture(scope="module")
def dem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dem(tmp_path_factory.mktemp("dem") / "dem.tif", (600, 900), tile=(128, 128))


def test_one_task_per_output_block_for_a_fused_chain(dem: Path, tmp_path: Path) -> None:
    image = pipeline.open_image(dem, chunks=256)
    chain = pipeline.apply(slope, pipeline.apply(terrain.slope, image, depth=1), cell_size=2.0)
    checked = pipeline.plan(pipeline.apply(np.sqrt, chain), tmp_path / "o.zarr")
    out = create_target(
        tmp_path / "t.zarr",
        (600, 900),
        np.dtype("f8"),
        (256, 256),
        overwrite=False,
        attributes={},
        run_id="x",
    )
    tasks = write_tasks(checked.image, checked.grid, out)
    graph = dict(tasks[0].__dask_graph__())
    assert len(graph) == checked.tasks == 3 * 4, "nothing but the write tasks"
    assert checked.halo == (2, 2)


def test_the_plan_says_what_the_run_will_do(dem: Path, tmp_path: Path) -> None:
    image = pipeline.open_image(dem, chunks=(200, 300))
    checked = pipeline.plan(pipeline.apply(slope, image, cell_size=30.0), tmp_path / "o.zarr")
    rows = dict(checked.describe())
    assert rows["tasks"] == "9, one per block (3x3 blocks of 200x300)"
    assert rows["blocks"] == "200x300, as given"
    assert rows["halo"] == "1x1 pixels around each block"
    # Every block reads its core plus the halo that lies inside the image.
    inside = sum(w.pad((1, 1)).clip((600, 900)).size for _, w in checked.grid.blocks())
    assert checked.bytes_read == inside * 4
    assert rows["re-read"] == f"{inside / (600 * 900) - 1:.1%} of the input read again as halos"
    assert rows["writes"] == "4.3 MB before compression"  # float64, as the kernel returns
    assert "per task" in rows["memory"] and "budget" in rows["memory"]


def test_blocks_nobody_chose_are_chosen_by_the_plan(dem: Path, tmp_path: Path) -> None:
    image = pipeline.open_image(dem)  # no chunks: the plan may choose
    checked = pipeline.plan(pipeline.apply(slope, image), tmp_path / "o.zarr", workers=2)
    assert checked.choice is not None
    by, bx = checked.grid.chunk_shape
    assert by % 128 == 0 and bx % 128 == 0, "whole storage tiles"
    assert checked.tasks >= TASKS_PER_WORKER * 2
    assert halo_overhead((by, bx), (1, 1)) <= MAX_OVERHEAD
    assert "chosen: the largest block" in dict(checked.describe())["blocks"]
    # Output chunks given: blocks are made of whole output chunks.
    chunked = pipeline.plan(
        pipeline.apply(slope, image), tmp_path / "o.zarr", chunks=100, workers=2
    )
    assert chunked.store_chunks == (100, 100)
    assert chunked.grid.chunk_shape[0] % 100 == 0
    # A deep halo asks for larger blocks.
    deep = pipeline.plan(pipeline.apply(sky_view, image, radius=20), tmp_path / "o.zarr", workers=2)
    assert halo_overhead(deep.grid.chunk_shape, (20, 20), (600, 900)) <= MAX_OVERHEAD
    np.testing.assert_array_equal(
        checked.image.compute(),
        pipeline.apply(slope, pipeline.open_image(dem, chunks=64)).compute(),
    )


def test_a_run_over_its_memory_budget_is_refused_with_both_numbers(
    dem: Path, tmp_path: Path
) -> None:
    image = pipeline.open_image(dem, chunks=(600, 900))
    with pytest.raises(
        MemoryBudgetError,
        match=r"blocks of 600x900 project [\d.]+ MB per worker "
        r"\(2 task\(s\) of [\d.]+ MB at once, plus tile cache and runtime\), over "
        r"the budget of 100.0 MB \(memory_limit 100MB\); use smaller blocks",
    ):
        pipeline.plan(
            pipeline.apply(terrain.slope, image, depth=1),
            tmp_path / "o.zarr",
            workers=2,
            memory_limit="100MB",
        )
    assert not (tmp_path / "o.zarr").exists()


def test_a_budget_no_block_fits_is_refused() -> None:
    with pytest.raises(
        MemoryBudgetError,
        match=r"even blocks of one storage unit, 64x64, project 1.0 GB per worker, "
        r"over the budget of 500.0 MB; raise the memory limit \(compute.memory_limit\)",
    ):
        choose_blocks(
            (1000, 1000), (64, 64), (1, 1), memory=lambda b: 10**9, budget=5 * 10**8, workers=2
        )


def test_issue_narrow_blocks_fit_where_square_ones_do_not() -> None:
    # Hypothesis found it: 2x2 blocks were the smallest tried, although 2x1 blocks fit.
    def memory(block: tuple[int, int]) -> int:
        return (block[0] + 72) * (block[1] + 82) * 169

    choice = choose_blocks((3, 2), (2, 1), (36, 41), memory=memory, budget=2**20, workers=1)
    assert choice.block == (2, 1)
    assert choice.memory <= 2**20 < memory((2, 2))


def test_narrow_blocks_are_only_a_fallback() -> None:
    # With room for square-ish blocks, a tight budget still gets the largest of those.
    choice = choose_blocks(
        (4096, 4096),
        (256, 256),
        (1, 1),
        memory=lambda b: b[0] * b[1] * 40,
        budget=50 * 2**20,
        workers=2,
    )
    assert choice.block[0] == choice.block[1]
    assert choice.memory <= 50 * 2**20


@pytest.mark.parametrize("function", [slope, terrain.slope], ids=["kernel", "numpy"])
def test_projected_task_memory_bounds_what_a_task_allocates(dem: Path, function: object) -> None:
    image = pipeline.open_image(dem, chunks=(256, 256))
    kwargs = {} if function is slope else {"depth": 1}
    lazy = pipeline.apply(function, image, dtype="float32", **kwargs)  # type: ignore[arg-type]
    program = program_of(lazy)
    assert program is not None
    root = program.root
    projected = memory.task_bytes(root, (256, 256))
    window = Window(256, 512, 256, 512)
    root.read(window, {})  # warm up: compile, fill the tile cache
    tracemalloc.start()
    try:
        root.read(window, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= projected, "the projection is an upper bound"
    assert projected <= 6 * max(peak, 256 * 256 * 4), "and not a wild one"


@example(h=3, w=2, unit=(2, 1), halo=(36, 41), per_pixel=169, budget_mb=1, workers=1)
@given(
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    unit=st.tuples(st.integers(1, 600), st.integers(1, 600)),
    halo=st.tuples(st.integers(0, 70), st.integers(0, 70)),
    per_pixel=st.integers(1, 200),
    budget_mb=st.integers(1, 4000),
    workers=st.integers(1, 16),
)
def test_chosen_blocks_fit_the_budget_and_the_units(
    h: int,
    w: int,
    unit: tuple[int, int],
    halo: tuple[int, int],
    per_pixel: int,
    budget_mb: int,
    workers: int,
) -> None:
    def memory(block: tuple[int, int]) -> int:
        return (block[0] + 2 * halo[0]) * (block[1] + 2 * halo[1]) * per_pixel

    budget = budget_mb * 2**20
    try:
        choice = choose_blocks((h, w), unit, halo, memory=memory, budget=budget, workers=workers)
    except MemoryBudgetError:
        smallest = (min(unit[0], h), min(unit[1], w))
        assert memory(smallest) > budget, "a block of one unit fits: the planner must find it"
        return
    by, bx = choice.block
    assert choice.memory <= budget
    assert 1 <= by <= h and 1 <= bx <= w
    assert by % min(unit[0], h) == 0 or by == h
    assert bx % min(unit[1], w) == 0 or bx == w
    if choice.overhead > MAX_OVERHEAD:
        assert "over the" in choice.reason
    elif choice.tasks >= TASKS_PER_WORKER * workers:
        assert max(choice.block) <= LARGEST or choice.block == (h, w)


@given(st.integers(1, 40), st.integers(1, 600))
def test_storage_chunks_divide_the_blocks(units: int, unit: int) -> None:
    block = units * unit
    chunk = divide_for_storage((block, block), (unit, unit))[0]
    assert block % chunk == 0
    assert chunk <= max(2048, unit)


def test_in_memory_inputs_are_not_regridded(tmp_path: Path) -> None:
    image = da.zeros((300, 300), chunks=100)
    checked = pipeline.plan(pipeline.apply(np.negative, image), tmp_path / "o.zarr")
    assert checked.choice is None
    assert checked.grid.chunk_shape == (100, 100)


def _plain_python(value: float) -> float:
    return float(len(repr(value)))


def _uncompiled_step(tmp_path: Path) -> da.Array:
    @pipeline.pointwise(uncompiled=True)
    def digits(value: float) -> float:
        return _plain_python(value)  # a Python function numba cannot call

    image = pipeline.open_image(write_dem(tmp_path / "d.tif", (64, 64), tile=(32, 32)))
    with pytest.warns(PerformanceWarning, match="uncompiled, as asked"):
        return pipeline.apply(digits, image)


def test_issue_a_gil_bound_step_is_budgeted_for_the_processes_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The switch to processes came after the memory check, which counted one process with two
    # threads: the second process's runtime and tile cache were never counted.
    lazy = _uncompiled_step(tmp_path)
    process = memory.worker_bytes(0, 1)
    with pytest.warns(PerformanceWarning, match="running in processes"):
        checked = pipeline.plan(lazy, tmp_path / "o.zarr", workers=2)
    assert checked.scheduler == "processes"
    assert checked.memory_per_worker == memory.worker_bytes(checked.memory_per_task, 1)
    assert "shared by 2 processes" in checked.budget_source
    # Room for one process holding two tasks, not for two processes of one task each.
    monkeypatch.setattr(memory, "available_memory", lambda: int(1.1 * process / 0.6))
    with (
        pytest.warns(PerformanceWarning, match="running in processes"),
        pytest.raises(MemoryBudgetError, match=r"shared by 2 processes"),
    ):
        pipeline.plan(lazy, tmp_path / "p.zarr", workers=2)
