"""The seed's own path: a numpy array in memory, planned as files are, read as views, and
shipped once to processes that all work from the first task."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

import pipeline
from pipeline.errors import BlockFunctionError, SchedulerError
from pipeline.grid import Window
from pipeline.ops import program_of
from pipeline.ops.memory import ArraySource, SpilledArray, spill_arrays
from pipeline.ops.nodes import SourceNode


@pytest.mark.parametrize("dtype", ["uint16", "float64"])
def test_an_in_memory_array_is_planned_into_tasks_for_every_worker(
    dtype: str, tmp_path: Path
) -> None:
    image = np.zeros((4000, 6000), dtype)
    checked = pipeline.plan(pipeline.apply(np.negative, image), tmp_path / "o.zarr", workers=2)
    assert checked.choice is not None, "the plan chose the blocks"
    assert checked.grid.num_blocks >= 4 * 2
    assert checked.bytes_read == image.nbytes, "each pixel read once, as from a file"
    # 12 tasks on 2 workers (as a .npy file would be), not 2 or 6 from dask's defaults.
    assert checked.grid.num_blocks == 12


def test_chunks_given_by_the_user_are_kept(tmp_path: Path) -> None:
    image = pipeline.open_image(np.zeros((400, 600), "f4"), chunks=(100, 300))
    checked = pipeline.plan(pipeline.apply(np.negative, image), tmp_path / "o.zarr")
    assert checked.choice is None
    assert checked.grid.chunk_shape == (100, 300)


def test_blocks_are_read_only_views_of_the_array(tmp_path: Path) -> None:
    image = np.arange(200 * 300, dtype="f8").reshape(200, 300)
    seen = []

    def shares(block: np.ndarray) -> np.ndarray:
        seen.append(np.shares_memory(block, image))
        return block * 2

    pipeline.save(pipeline.apply(shares, image), tmp_path / "o.zarr", progress=False)
    assert seen and all(seen), "no copy of the input per block"

    def in_place(block: np.ndarray) -> np.ndarray:
        block += 1
        return block

    with pytest.raises(BlockFunctionError, match="read-only"):
        pipeline.save(pipeline.apply(in_place, image), tmp_path / "p.zarr", progress=False)
    assert image[0, 1] == 1.0, "the user's array is never written"


def test_a_view_costs_no_memory_in_the_projection() -> None:
    node = SourceNode(ArraySource.of(np.zeros((100, 100))))
    assert node.peak_bytes(Window(0, 50, 0, 50)) == 0


def test_processes_get_the_array_once_as_a_memory_map_not_in_every_task() -> None:
    image = np.random.default_rng(0).random((500, 700))
    root = program_of(pipeline.apply(np.sqrt, image)).root  # type: ignore[union-attr]
    assert len(cloudpickle.dumps(root)) > image.nbytes, "by value outside a run"
    with spill_arrays() as folder:
        first, second = cloudpickle.dumps(root), cloudpickle.dumps(root)
        assert len(first) < 10_000 and len(second) < 10_000
        assert [p.name for p in folder.iterdir()] == ["array-0.npy"], "written once"
        clone = pickle.loads(first)
        leaf = clone.inputs[0].source
        assert isinstance(leaf, SpilledArray)
        window = Window(10, 60, 20, 90)
        np.testing.assert_array_equal(leaf.read(window), image[window.to_slices()])
    assert not folder.exists(), "the spilled copy is removed after the run"


RENDEZVOUS = """\
def meet(block, folder, others):
    # Each task waits until a task of another process is running too: with dask's batches
    # of 6, one process took every task and this waited in vain.
    import os, time
    from pathlib import Path
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(Path(folder).iterdir())) < others:
        if time.monotonic() > deadline:
            raise TimeoutError("no other worker ran a task at the same time")
        time.sleep(0.01)
    return block
"""


@pytest.mark.slow
def test_processes_run_one_task_per_worker_at_a_time(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(RENDEZVOUS, namespace)  # noqa: S102 - the test's own function
    (tmp_path / "met").mkdir()
    image = np.ones((120, 180), "f4")
    lazy = pipeline.apply(
        namespace["meet"],
        pipeline.open_image(image, chunks=60),
        folder=str(tmp_path / "met"),
        others=2,
    )
    report = pipeline.save(
        lazy, tmp_path / "o.zarr", scheduler="processes", workers=2, progress=False
    )
    assert report.tasks == 6
    assert len(list((tmp_path / "met").iterdir())) == 2, "both processes ran tasks"
    np.testing.assert_array_equal(pipeline.open_image(tmp_path / "o.zarr").compute(), image)


def test_an_in_memory_array_is_refused_on_a_cluster_of_other_machines(tmp_path: Path) -> None:
    with pytest.raises(
        SchedulerError,
        match=r"an in-memory array cannot reach the workers of the cluster at "
        r"tcp://10.1.2.3:8786, which may run on other machines; save it where they can read "
        r"it \(numpy.save or a Zarr store on shared storage\)",
    ):
        pipeline.plan(
            pipeline.apply(np.negative, np.zeros((10, 10))),
            tmp_path / "o.zarr",
            scheduler="tcp://10.1.2.3:8786",
        )


UNGUARDED = """\
import numpy as np
import pipeline

image = np.zeros((64, 64), "f4")
pipeline.save(pipeline.apply(np.negative, image), "o.zarr", scheduler="processes", workers=2,
              progress=False)
"""


@pytest.mark.slow
def test_a_script_without_the_main_guard_gets_one_line_naming_the_fix(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("pipeline.errors.SchedulerError: the processes scheduler could not")
    assert "put the code that runs pipeline under 'if __name__ == \"__main__\":'" in last
    assert done.stderr.count("Traceback") == 1, "the workers print nothing of their own"
    assert not (tmp_path / "o.zarr").exists(), "no empty output left behind"
