"""Faults at the edges of a run (issue 15): damaged records, inputs that change under a run,
inputs that lie, settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import pipeline
from pipeline.errors import InputChangedError
from pipeline.io.records import DONE_DIR, done_blocks


@pytest.mark.parametrize("damage", ["null", "[]", '{"0/c/0/0": "x"}', "{}", "not json"])
def test_issue_15_a_damaged_ledger_record_means_the_block_is_done_again(
    tmp_path: Path, damage: str
) -> None:
    image = np.arange(40 * 60, dtype="f4").reshape(40, 60)
    store = tmp_path / "o.zarr"
    pipeline.save(pipeline.open_image(image, chunks=(20, 30)), store, progress=False)
    group = zarr.open_group(store, mode="r+")
    group.attrs["pipeline"] = {**group.attrs["pipeline"], "complete": False}
    (store / DONE_DIR / "0" / "0.1").write_text(damage)
    assert (0, 1) not in done_blocks(store)
    report = pipeline.save(
        pipeline.open_image(image, chunks=(20, 30)), store, progress=False, resume=True
    )
    assert report.tasks == 1 and report.extra["blocks_skipped"] == 3
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["0"][:], image)


def test_issue_15_an_input_rewritten_during_the_run_is_not_marked_complete(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.ones((64, 64), "f4"), tile=(32, 32))

    def rewrite_once(block: np.ndarray, block_info: pipeline.BlockInfo) -> np.ndarray:
        if block_info.core.y0 == 0 and block_info.core.x0 == 0:
            tifffile.imwrite(path, np.zeros((64, 64), "f4"), tile=(32, 32))
            os.utime(path, ns=(1, 1))  # the same size: only the time tells
        return block

    image = pipeline.open_image(path, chunks=32)
    with pytest.raises(InputChangedError, match=r"in.tif changed while the run read it"):
        pipeline.save(
            pipeline.apply(rewrite_once, image),
            tmp_path / "o.zarr",
            progress=False,
            scheduler="synchronous",
        )
    record = zarr.open_group(tmp_path / "o.zarr", mode="r").attrs["pipeline"]
    assert record["complete"] is False


def test_issue_15_a_sparse_zarr_input_is_read_with_missing_chunks_fill(tmp_path: Path) -> None:
    z = zarr.create_array(
        tmp_path / "s.zarr", shape=(64, 64), chunks=(32, 32), dtype="f4", fill_value=-1
    )
    z[:32, :32] = 5.0  # the other chunks were never written
    with pytest.raises(pipeline.PipelineError, match="chunk c/0/1 of array"):
        pipeline.open_image(tmp_path / "s.zarr").compute()
    out = pipeline.open_image(tmp_path / "s.zarr", missing_chunks="fill").compute()
    assert (out[:32, :32] == 5).all() and (out[32:] == -1).all()


@pytest.mark.parametrize("value", ["nan", "-1", "lots"])
def test_issue_15_a_bad_tile_cache_setting_is_one_line(tmp_path: Path, value: str) -> None:
    np.save(tmp_path / "a.npy", np.ones((8, 8), "f4"))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "info", str(tmp_path / "a.npy")],
        env={**os.environ, "PIPELINE_TILE_CACHE_MB": value},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    expected = (
        f"error: PIPELINE_TILE_CACHE_MB={value!r}: give the size of the decoded-tile cache in "
        "megabytes, 0 or more, such as 128 (or unset it)"
    )
    assert done.stderr.strip().splitlines() == [expected]


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_worker_quietly() -> None:
    """SIGTERM's SystemExit raised inside a weakref callback is "ignored" by Python, which
    prints a traceback and runs on; a pool worker stops at once instead, saying nothing."""
    code = (
        "import sys, weakref\n"
        "from pipeline.runtime.pool import _worker_signals\n"
        "_worker_signals()\n"
        "class A: pass\n"
        "def stop(_):\n"
        "    raise SystemExit(143)\n"
        "a = A()\n"
        "r = weakref.ref(a, stop)\n"
        "del a\n"
        "print('ran on')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 143
    assert done.stdout == "" and "Exception ignored" not in done.stderr
