"""Never lose work: kill a run, resume it, and get what an uninterrupted run writes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from conftest import loopback_cluster, run_cli

import pipeline
from pipeline.demo import write_dem
from pipeline.errors import ResumeError
from pipeline.io.records import DONE_DIR
from pipeline.io.writer import ZarrTarget
from pipeline.ops.terrain_kernels import slope

KERNELS = """
import time
import numpy as np

def slow_relief(dem, pause=0.15):
    time.sleep(pause)
    h, w = dem.shape[0] - 2, dem.shape[1] - 2
    views = [dem[i:i + h, j:j + w] for i in range(3) for j in range(3)]
    return np.max(views, axis=0) - np.min(views, axis=0)
"""


def chunk_bytes(store: Path) -> dict[str, bytes]:
    """Every stored chunk file, by its path in the store."""
    base = store / "0" / "c"
    return {
        str(p.relative_to(store)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }


def markers(store: Path) -> int:
    folder = store / DONE_DIR / "0"
    return (
        len([p for p in folder.iterdir() if not p.name.endswith(".partial")])
        if folder.is_dir()
        else 0
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_dem(tmp_path / "dem.tif", (300, 360), tile=(64, 64))
    (tmp_path / "kernels.py").write_text(KERNELS)
    (tmp_path / "run.yaml").write_text(
        textwrap.dedent("""\
        input: {path: dem.tif, chunks: [50, 60]}
        steps:
          - function: kernels.py:slow_relief
            depth: 1
            boundary: nearest
            dtype: float32
        output: {path: out.zarr, chunks: [50, 60]}
        compute: {scheduler: threads, workers: 2}
        """)
    )
    return tmp_path


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_writes_what_a_clean_run_writes(project: Path) -> None:
    total = 6 * 6
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"],
        cwd=project,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = project / "out.zarr"
    deadline = time.monotonic() + 120
    while markers(store) < total // 2:  # about half the blocks written
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = markers(store)
    assert 0 < done < total

    info = run_cli("info", "out.zarr", cwd=project)
    assert (
        f"INCOMPLETE: {done} of {total} blocks written (finish it with --resume, or "
        "resume=True in Python)"
    ) in info.stdout
    again = run_cli("run", "run.yaml", "--quiet", cwd=project)
    assert again.returncode == 2
    assert (
        f"exists and is incomplete ({done} of {total} blocks written): pass --resume to "
        "finish it, or --overwrite to start again" in again.stderr
    )

    resumed = run_cli("run", "run.yaml", "--resume", "--quiet", "--json", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["extra"]["blocks_skipped"] == done
    assert report["tasks"] == total - done, "only the missing blocks were computed"
    assert not list(store.rglob("*.partial")), "interrupted writes are swept"

    clean = run_cli("run", "run.yaml", "--quiet", "--set", "output.path=clean.zarr", cwd=project)
    assert clean.returncode == 0, clean.stderr
    assert chunk_bytes(store) == chunk_bytes(project / "clean.zarr"), "byte for byte"
    assert zarr.open_group(store, mode="r").attrs["pipeline"]["complete"] is True
    assert "state         complete" in run_cli("info", "out.zarr", cwd=project).stdout


def test_resume_detects_a_damaged_chunk_and_computes_its_block_again(tmp_path: Path) -> None:
    dem = write_dem(tmp_path / "dem.tif", (200, 240), tile=(48, 48))
    lazy = pipeline.apply(slope, pipeline.open_image(dem, chunks=80), cell_size=30.0)
    pipeline.save(lazy, tmp_path / "out.zarr", progress=False)
    pipeline.save(lazy, tmp_path / "clean.zarr", progress=False)
    victim = tmp_path / "out.zarr" / "0" / "c" / "1" / "1"
    victim.write_bytes(b"\x00" * victim.stat().st_size)  # bit rot, same size
    (
        tmp_path / "out.zarr" / "0" / "c" / "0" / "0.1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.partial"
    ).write_bytes(b"x")
    report = pipeline.save(lazy, tmp_path / "out.zarr", resume=True, progress=False)
    assert report.tasks == 1
    assert report.extra["blocks_skipped"] == 3 * 3 - 1
    assert chunk_bytes(tmp_path / "out.zarr") == chunk_bytes(tmp_path / "clean.zarr")


def test_records_checksum_the_bytes_written_without_reading_chunks_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zlib

    from pipeline.io import writer

    def no_read_back(path: Path) -> int | None:
        msg = f"{path} was read back to checksum it"
        raise AssertionError(msg)

    monkeypatch.setattr(writer, "checksum", no_read_back)
    image = np.random.default_rng(4).random((150, 260)).astype(np.float32)
    pipeline.save(pipeline.open_image(image, chunks=(64, 128)), tmp_path / "o.zarr", progress=False)
    records = list((tmp_path / "o.zarr" / DONE_DIR / "0").iterdir())
    sums = {k: v for r in records for k, v in json.loads(r.read_text()).items()}
    assert len(records) == 3 * 3 and len(sums) == 3 * 3
    for key, crc in sums.items():
        assert crc == zlib.crc32((tmp_path / "o.zarr" / key).read_bytes()), key


def test_resume_of_a_changed_run_is_refused_saying_what_changed(tmp_path: Path) -> None:
    dem = write_dem(tmp_path / "dem.tif", (120, 120), tile=(48, 48))
    image = pipeline.open_image(dem, chunks=40)
    pipeline.save(pipeline.apply(slope, image, cell_size=30.0), tmp_path / "o.zarr", progress=False)
    with pytest.raises(
        ResumeError,
        match=r"cannot resume .*o.zarr: the run changed since it was "
        r"started \(step 0 \(slope\) changed: cell_size 30.0 -> 10.0\); run without "
        r"--resume and with --overwrite",
    ):
        pipeline.save(
            pipeline.apply(slope, image, cell_size=10.0),
            tmp_path / "o.zarr",
            resume=True,
            progress=False,
        )
    with pytest.raises(
        ResumeError, match=r"the output chunks changed \(\[40, 40\] -> \[20, 20\]\)"
    ):
        pipeline.save(
            pipeline.apply(slope, image, cell_size=30.0),
            tmp_path / "o.zarr",
            chunks=20,
            resume=True,
            progress=False,
        )


def test_resume_without_an_output_simply_runs(tmp_path: Path) -> None:
    report = pipeline.save(np.ones((20, 20)), tmp_path / "o.zarr", resume=True, progress=False)
    assert report.tasks == 1


def test_transient_io_errors_are_retried_and_the_function_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = ZarrTarget.write

    def flaky(self: ZarrTarget, window: Any, block: Any) -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise OSError(errno.EIO, "Input/output error (simulated)")
        return original(self, window, block)

    monkeypatch.setattr(ZarrTarget, "write", flaky)
    pipeline.save(np.ones((10, 10)), tmp_path / "a.zarr", progress=False, scheduler="synchronous")
    assert len(calls) == 3, "two failures, then success"

    calls.clear()
    checked = pipeline.plan(
        np.ones((10, 10)), tmp_path / "b.zarr", scheduler="synchronous", retries=0
    )
    with pytest.raises(OSError, match="simulated"):
        checked.execute(progress=False)

    attempts: list[int] = []

    def broken(block: np.ndarray) -> np.ndarray:
        attempts.append(1)
        raise OSError(errno.EIO, "raised by the function itself")

    from pipeline.errors import BlockFunctionError

    with pytest.raises(BlockFunctionError):
        pipeline.save(
            pipeline.apply(broken, np.ones((10, 10))),
            tmp_path / "c.zarr",
            progress=False,
            scheduler="synchronous",
        )
    assert len(attempts) == 1, "an error of the function is reported, not retried"


@pytest.mark.slow
def test_killing_a_distributed_worker_does_not_fail_the_run(project: Path) -> None:
    dem = pipeline.open_image(project / "dem.tif", chunks=(50, 60))
    sys.path.insert(0, str(project))
    try:
        import kernels  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(project))
    lazy = pipeline.apply(
        kernels.slow_relief, dem, depth=1, boundary="nearest", dtype="float32", pause=0.3
    )
    pipeline.save(lazy, project / "clean.zarr", progress=False, scheduler="synchronous")
    with loopback_cluster(2) as client:
        client.upload_file(str(project / "kernels.py"))
        checked = pipeline.plan(lazy, project / "out.zarr", scheduler=client)
        victim = next(iter(client.run(os.getpid).values()))
        killed: list[bool] = []

        def kill_when_running() -> None:
            while markers(project / "out.zarr") < 4:
                time.sleep(0.02)
            os.kill(victim, signal.SIGKILL)
            killed.append(True)

        import threading

        killer = threading.Thread(target=kill_when_running, daemon=True)
        killer.start()
        report = checked.execute(progress=False)
        killer.join(timeout=5)
    assert killed == [True]
    assert report.tasks == 36
    assert chunk_bytes(project / "out.zarr") == chunk_bytes(project / "clean.zarr")


def test_progress_of_a_resumed_run_starts_from_the_blocks_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.runtime import run

    lazy = pipeline.apply(np.negative, np.ones((40, 40)).astype("f4"))
    pipeline.save(lazy.rechunk(10), tmp_path / "o.zarr", progress=False)
    for marker in list((tmp_path / "o.zarr" / DONE_DIR / "0").iterdir())[:5]:
        marker.unlink()  # as if the run had been killed before recording these
    seen: list[tuple[int, int]] = []
    original = run.progress_bar

    def spy(total: int, label: str, enabled: bool = True, completed: int = 0) -> Any:
        seen.append((total, completed))
        return original(total, label, enabled=False, completed=completed)

    monkeypatch.setattr(run, "progress_bar", spy)
    report = pipeline.save(lazy.rechunk(10), tmp_path / "o.zarr", resume=True)
    assert seen == [(16, 11)]
    assert report.tasks == 5
