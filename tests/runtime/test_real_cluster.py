"""A real cluster, not a LocalCluster: ``dask scheduler`` and two ``dask worker`` processes
started from the command line on 127.0.0.1, each worker in its own empty directory (it cannot
see the config's folder), with the input and the output on the S3 server the tests start on
127.0.0.1 (the workers get its credentials from their environment, as deployed workers do).
`pipeline run CONFIG --scheduler tcp://...` must ship the config's ``file.py`` function to
them, survive one worker killed with SIGKILL mid-run, and write what a local run writes, byte
for byte (issue 17)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import S3Server, new_bucket, upload

from pipeline.demo import write_dem
from pipeline.io import Remote, done_blocks

pytest.importorskip("distributed")

BIN = Path(sys.executable).parent

FUNCTIONS = '''
import time

import numpy as np


def slow_relief(block):
    """Local relief over a 3x3 window, slowly: long enough to kill a worker mid-run."""
    time.sleep(0.6)
    padded = np.asarray(block, dtype="float64")
    core = padded[1:-1, 1:-1]
    return (padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2]) / 4 - core
'''

CONFIG = """
input:
  path: {input}
steps:
  - function: functions.py:slow_relief
    depth: 1
    boundary: nearest
    dtype: float32
output:
  path: {output}
  chunks: [96, 128]
  overwrite: true
"""


def _wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    msg = f"timed out after {seconds} s waiting for {what}"
    raise AssertionError(msg)


@pytest.fixture
def command_line_cluster(
    tmp_path: Path, s3_server: S3Server
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes, as a user starts them (in the
    environment that names the S3 server and its credentials)."""
    scheduler_file = tmp_path / "scheduler.json"
    processes = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]  # fmt: skip
    try:
        _wait_for(scheduler_file.exists, 60, "the scheduler")
        address = json.loads(scheduler_file.read_text())["address"]
        for k in range(2):
            home = tmp_path / f"worker{k}"  # an empty working directory of its own
            home.mkdir()
            processes.append(
                subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                     "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                     "--local-directory", str(home)],
                    cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, processes
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _run(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "pipeline"), "run", "run.yaml", "--quiet", *args],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _chunks(store: Path | Remote) -> dict[str, bytes]:
    """Every chunk object of the output's full-resolution array, by key."""
    if isinstance(store, Remote):
        keys = [k for k in store.find() if k.startswith("0/c/")]
        return {k: v for k, v in store.read_many(keys).items() if v is not None}
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in (store / "0" / "c").rglob("*")
        if p.is_file()
    }


def test_a_command_line_cluster_survives_a_killed_worker_byte_for_byte(
    tmp_path: Path,
    command_line_cluster: tuple[str, list[subprocess.Popen[bytes]]],
    s3_server: S3Server,
) -> None:
    address, processes = command_line_cluster
    project = tmp_path / "project"
    project.mkdir()
    bucket = new_bucket(s3_server)
    dem = write_dem(project / "dem.tif", (768, 1024), seed=5, tile=(256, 256))
    source = upload(s3_server, dem, f"s3://{bucket}/dem.tif")
    (project / "functions.py").write_text(FUNCTIONS)
    url = f"s3://{bucket}/cluster.zarr"
    (project / "run.yaml").write_text(CONFIG.format(input=source, output=url))
    run = _run(project, "--scheduler", address)
    output = Remote.of(url)
    _wait_for(lambda: len(done_blocks(output)) >= 3, 120, "three blocks")
    os.kill(processes[1].pid, signal.SIGKILL)  # one worker, mid-run, without a word
    killed_at = len(done_blocks(output))
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out
    assert processes[1].wait(timeout=10) == -signal.SIGKILL
    total = int(out.split(" tasks)")[0].rsplit(", ", 1)[1])  # "(768x1024 float32, 12 tasks)"
    assert killed_at < total, "the run ended before the worker was killed"
    assert len(done_blocks(output)) == total

    (project / "run.yaml").write_text(CONFIG.format(input="dem.tif", output="local.zarr"))
    local = _run(project, "--scheduler", "threads")
    out, _ = local.communicate(timeout=300)
    assert local.returncode == 0, out
    cluster_chunks, local_chunks = _chunks(output), _chunks(project / "local.zarr")
    assert len(cluster_chunks) == 8 * 8
    assert cluster_chunks == local_chunks
