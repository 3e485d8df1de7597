"""A time limit per block (issue 15: ``compute.block_timeout``, for runs nobody watches): a
block past it stops the run with one line naming the block, whatever the scheduler, the
blocks written are kept, and nothing is marked complete."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import pipeline
from pipeline.demo import write_dem
from pipeline.errors import ArgumentError, BlockTimeoutError
from pipeline.io.records import done_blocks
from pipeline.runtime.tasks import RUNNING_DIR


def test_a_block_past_its_time_limit_stops_the_run_naming_it(tmp_path: Path) -> None:
    release = threading.Event()

    def stuck(block: np.ndarray, block_info: pipeline.BlockInfo) -> np.ndarray:
        if (block_info.core.y0, block_info.core.x0) == (32, 32):
            release.wait(60)  # released when the test ends: no thread outlives it
        return block

    image = pipeline.open_image(np.ones((64, 96), "f4"), chunks=32)
    try:
        with pytest.raises(BlockTimeoutError) as raised:
            pipeline.save(
                pipeline.apply(stuck, image),
                tmp_path / "o.zarr",
                progress=False,
                scheduler="threads",
                workers=2,
                block_timeout=0.5,
            )
        assert str(raised.value).startswith(
            "the block at pixels [32:64, 32:64] ran for more than 0.5 s (block_timeout=0.5; "
            "config: compute.block_timeout), so the run was stopped"
        )
        record = zarr.open_group(tmp_path / "o.zarr", mode="r").attrs["pipeline"]
        assert record["complete"] is False
        assert (1, 1) not in done_blocks(tmp_path / "o.zarr")  # while it is still stuck
    finally:
        release.set()
    # Released, the abandoned thread runs on (a thread cannot be killed) and may finish its
    # block; it leaves no note of a running block behind.
    deadline = time.monotonic() + 10
    while (1, 1) not in done_blocks(tmp_path / "o.zarr") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((tmp_path / "o.zarr" / RUNNING_DIR).iterdir())


def test_notes_of_an_earlier_dead_run_do_not_count_against_the_limit(tmp_path: Path) -> None:
    store = tmp_path / "o.zarr"
    image = pipeline.open_image(np.ones((64, 64), "f4"), chunks=32)
    pipeline.save(image, store, progress=False)
    stale = store / RUNNING_DIR / "999999-0.0"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text('{"window": "[0:32, 0:32]"}')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    def slowish(block: np.ndarray) -> np.ndarray:
        time.sleep(0.6)  # long enough for the watchdog to look
        return block

    report = pipeline.save(
        pipeline.apply(slowish, image), store, progress=False, overwrite=True, block_timeout=30
    )
    assert report.tasks == 4


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "600", True])
def test_a_time_limit_is_a_positive_number_of_seconds(value: object) -> None:
    image = pipeline.open_image(np.ones((8, 8), "f4"))
    with pytest.raises(ArgumentError, match=r"block_timeout=.* must be a .*number of seconds"):
        pipeline.plan(image, "o.zarr", block_timeout=value)  # type: ignore[arg-type]


HANGING = """\
import time

def f(dem, block_info):
    if (block_info.core.y0, block_info.core.x0) == (32, 32):
        time.sleep(3600)
    return dem * 2
"""


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_issue_15_a_hanging_function_with_block_timeout_ends_the_command(
    tmp_path: Path, scheduler: str
) -> None:
    write_dem(tmp_path / "dem.tif", (96, 96), tile=(32, 32))
    (tmp_path / "kernels.py").write_text(HANGING)
    (tmp_path / "run.yaml").write_text(
        "input: {path: dem.tif, chunks: [32, 32]}\nsteps:\n  - function: kernels.py:f\n"
        f"output: {{path: o.zarr}}\ncompute: {{scheduler: {scheduler}, block_timeout: 1}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,  # the run must end by itself: the function never returns
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "error: the block at pixels [32:64, 32:64] ran for more than 1 s (block_timeout=1; "
        "config: compute.block_timeout), so the run was stopped"
    )
    assert done.stderr.strip().endswith("and run again with --resume")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert zarr.open_group(tmp_path / "o.zarr", mode="r").attrs["pipeline"]["complete"] is False


def test_a_time_limit_in_a_config_must_be_positive(tmp_path: Path) -> None:
    from pipeline.cli import main

    write_dem(tmp_path / "dem.tif", (32, 32))
    (tmp_path / "run.yaml").write_text(
        "input: dem.tif\nsteps:\n  - function: slope\noutput: {path: o.zarr}\n"
        "compute: {block_timeout: 0}\n"
    )
    assert main(["validate", str(tmp_path / "run.yaml")]) == 2
