"""One run at a time writes an output: a second is refused naming the first, and the lock a
killed run leaves behind is taken over by ``--resume`` (issue 15's "two runs, one output")."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import pipeline
from pipeline.demo import write_dem
from pipeline.errors import OutputLockedError
from pipeline.io.lock import LOCK_FILE, STALE_SECONDS
from pipeline.io.records import DONE_DIR

KERNELS = """
import time

def slow_copy(dem, pause=0.25):
    time.sleep(pause)
    return dem * 1.0

def other(dem):
    return dem * 2.0
"""


def config(folder: Path, name: str, function: str, extra: str = "") -> None:
    (folder / name).write_text(
        textwrap.dedent(f"""\
        input: {{path: dem.tif, chunks: [64, 64]}}
        steps:
          - function: kernels.py:{function}
            dtype: float32
        output: {{path: out.zarr, chunks: [64, 64]{extra}}}
        compute: {{scheduler: threads, workers: 2}}
        """)
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_dem(tmp_path / "dem.tif", (240, 320), tile=(64, 64))
    (tmp_path / "kernels.py").write_text(KERNELS)
    config(tmp_path, "a.yaml", "slow_copy")
    config(tmp_path, "b.yaml", "other", ", overwrite: true")
    return tmp_path


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def write_lock(store: Path, *, pid: int, host: str | None = None, age: float = 0.0) -> None:
    store.mkdir(parents=True, exist_ok=True)
    lock = store / LOCK_FILE
    owner = {
        "run_id": "f" * 32,
        "host": host or socket.gethostname(),
        "pid": pid,
        "started": "2026-12-03T00:00:00+00:00",
    }
    lock.write_text(json.dumps(owner))
    if age:
        then = time.time() - age
        os.utime(lock, (then, then))


@pytest.mark.slow
def test_issue_15_two_runs_one_output_the_second_is_refused_naming_the_first(
    project: Path,
) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "a.yaml", "--quiet"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = project / "out.zarr" / DONE_DIR / "0"
    deadline = time.monotonic() + 120
    while not (records.is_dir() and any(records.iterdir())):  # A is writing blocks
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The run itself: the command's forked child, which writes the output (read while A runs).
    writer = json.loads((project / "out.zarr" / LOCK_FILE).read_text())["pid"]
    assert _parent_of(writer) == first.pid
    second = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "b.yaml", "--quiet", "--overwrite"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"process {writer} on {socket.gethostname()}" in lines[0]
    assert "is being written by another run" in lines[0]
    _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    group = zarr.open_group(project / "out.zarr", mode="r")
    assert group.attrs["pipeline"]["complete"] is True
    dem = pipeline.open_image(project / "dem.tif").compute()
    np.testing.assert_array_equal(group["0"][:], dem.astype("f4"))  # A's data only
    assert not (project / "out.zarr" / LOCK_FILE).exists(), "the lock is released"


def test_a_live_owner_is_refused_in_python_before_anything_changes(tmp_path: Path) -> None:
    store = tmp_path / "o.zarr"
    pipeline.save(np.ones((50, 50), "f4"), store, progress=False)
    before = sorted(p.name for p in store.iterdir())
    write_lock(store, pid=os.getpid())
    with pytest.raises(OutputLockedError, match=rf"process {os.getpid()} on "):
        pipeline.save(np.zeros((50, 50), "f4"), store, progress=False, overwrite=True)
    assert sorted(p.name for p in store.iterdir()) == sorted([*before, LOCK_FILE])
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["0"][:], 1)


def test_a_lock_left_by_a_killed_run_is_taken_over_by_resume(tmp_path: Path) -> None:
    store = tmp_path / "o.zarr"
    image = np.arange(80 * 90, dtype="f4").reshape(80, 90)
    pipeline.save(pipeline.open_image(image, chunks=(40, 45)), store, progress=False)
    group = zarr.open_group(store, mode="r+")
    record = dict(group.attrs["pipeline"])
    group.attrs["pipeline"] = {**record, "complete": False}
    (store / DONE_DIR / "0" / "1.1").unlink()  # as if killed before recording this block
    write_lock(store, pid=dead_pid())
    report = pipeline.save(
        pipeline.open_image(image, chunks=(40, 45)), store, progress=False, resume=True
    )
    assert report.extra["blocks_skipped"] == 3
    assert zarr.open_group(store, mode="r").attrs["pipeline"]["complete"] is True
    assert not (store / LOCK_FILE).exists()


@pytest.mark.parametrize("host_age", [("elsewhere", STALE_SECONDS + 5), ("here", 0.0)])
def test_a_stale_lock_is_recognised_by_its_dead_process_or_its_age(
    tmp_path: Path, host_age: tuple[str, float]
) -> None:
    host, age = host_age
    store = tmp_path / "o.zarr"
    write_lock(
        store,
        pid=dead_pid() if host == "here" else 1,
        host=None if host == "here" else host,
        age=age,
    )
    pipeline.save(np.ones((30, 30), "f4"), store, progress=False, overwrite=True)
    assert zarr.open_group(store, mode="r").attrs["pipeline"]["complete"] is True


def test_a_fresh_lock_of_another_host_is_respected(tmp_path: Path) -> None:
    store = tmp_path / "o.zarr"
    write_lock(store, pid=1, host="elsewhere")
    with pytest.raises(OutputLockedError, match="process 1 on elsewhere"):
        pipeline.save(np.ones((30, 30), "f4"), store, progress=False, overwrite=True)


@pytest.mark.parametrize("moment", ["group without attributes", "record without array"])
def test_issue_15_a_run_killed_while_creating_its_output_is_resumed(
    tmp_path: Path, moment: str
) -> None:
    # SIGKILL within milliseconds of zarr.json appearing: the lock is there, the array is not.
    store = tmp_path / "o.zarr"
    image = np.arange(60 * 70, dtype="f4").reshape(60, 70)
    pipeline.save(image, store, progress=False)
    expected = zarr.open_group(store, mode="r")["0"][:]
    if moment == "group without attributes":
        for item in list(store.iterdir()):
            if item.name != "zarr.json":
                subprocess.run(["rm", "-rf", str(item)], check=True)
        zarr.open_group(store, mode="r+").attrs.clear()
    else:
        subprocess.run(["rm", "-rf", str(store / "0"), str(store / ".pipeline")], check=True)
    write_lock(store, pid=dead_pid())
    pipeline.save(image, store, progress=False, resume=True)
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["0"][:], expected)


def test_the_lock_never_goes_into_a_folder_that_is_not_ours(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(pipeline.PipelineError, match="not a Zarr store"):
        pipeline.save(np.ones((10, 10)), folder, progress=False, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_sigint_of_the_owner_releases_its_lock(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "a.yaml", "--quiet"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lock = project / "out.zarr" / LOCK_FILE
    records = project / "out.zarr" / DONE_DIR / "0"
    deadline = time.monotonic() + 120
    while not (records.is_dir() and any(records.iterdir())):  # computing blocks
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not lock.exists()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:  # noqa: PTH123
        return int(stat.read().rsplit(")", 1)[-1].split()[1])
