"""Outputs on an object store (issue 17), against a real S3 server on 127.0.0.1 that the tests
start (moto's server mode): no mock of any client. An output written to the store holds what a
local run writes, byte for byte, with the same ledger, lock and resume: after SIGKILL, after
the server stopped answering, with damaged chunks; two runs never both own it; a failure is one
line naming the address."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import S3Server, geotiff, new_bucket, run_cli, start_s3_server, upload

import pipeline
from pipeline.errors import OutputLockedError, SourceNotFoundError, StorageAccessError
from pipeline.io import Remote, done_blocks, hold, read_record
from pipeline.io.info import describe_path, output_state
from pipeline.ops.terrain_kernels import slope

pytest.importorskip("s3fs")


def dem(shape: tuple[int, int] = (300, 400)) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    data = (100 + 3 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.01 * x * y).astype("float32")
    data[100:120, 150:190] = -9999
    return data


def stored(location: Path | Remote) -> dict[str, bytes]:
    """Every file of an output but its run's provenance and ledger (which name the run):
    metadata and chunks of every level."""
    if isinstance(location, Remote):
        keys = [k for k in location.find() if not k.startswith(".pipeline")]
        found = location.read_many(keys)
        return {k: v for k, v in found.items() if v is not None and not k.endswith("zarr.json")}
    return {
        str(p.relative_to(location)): p.read_bytes()
        for p in location.rglob("*")
        if p.is_file() and ".pipeline" not in p.parts and p.name != "zarr.json"
    }


def test_inputs_and_output_on_the_store_give_what_a_local_run_writes(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """A GeoTIFF and a Zarr input on the store, each written to the store with a pyramid:
    every chunk of every level equals the local run's, the run is recorded complete with its
    blocks, and the output reads back with its CRS and transform."""
    bucket = new_bucket(s3_server)
    tif = geotiff(tmp_path / "dem.tif", dem())
    as_zarr = tmp_path / "dem.zarr"
    pipeline.save(pipeline.open_image(tif, nodata="keep"), as_zarr, progress=False)
    for local in (tif, as_zarr):
        url = upload(s3_server, local, f"s3://{bucket}/inputs/{local.name}")
        here = pipeline.apply(slope, pipeline.open_image(local, chunks=(96, 128)))
        there = pipeline.apply(slope, pipeline.open_image(url, chunks=(96, 128)))
        out_here = tmp_path / f"{local.name}-slope.zarr"
        out_there = f"s3://{bucket}/outputs/{local.name}-slope.zarr"
        pipeline.save(here, out_here, progress=False, pyramid=2)
        report = pipeline.save(there, out_there, progress=False, pyramid=2)
        assert report.target == out_there
        remote = Remote.of(out_there)
        expected, got = stored(out_here), stored(remote)
        assert len(got) > 20 and got.keys() == expected.keys()
        assert got == expected
        record = read_record(remote)
        assert record is not None and record.complete and record.blocks == 16
        assert len(done_blocks(remote)) == 16 and len(done_blocks(remote, "2")) == 1
        assert not remote.is_dir() or ".pipeline-lock.json" not in remote.find()
        assert output_state(out_there) == "complete"
        assert describe_path(out_there)["crs"] == describe_path(out_here)["crs"]
        np.testing.assert_array_equal(
            pipeline.open_image(out_there, level=1).compute(),
            pipeline.open_image(out_here, level=1).compute(),
        )


def test_an_output_on_the_store_is_refused_replaced_or_resumed_as_on_disk(
    s3_server: S3Server,
) -> None:
    bucket = new_bucket(s3_server)
    url = f"s3://{bucket}/out.zarr"
    image = pipeline.open_image(dem(), chunks=(100, 200))
    pipeline.save(image, url, progress=False)
    with pytest.raises(pipeline.errors.OutputExistsError, match=f"output {url} already exists"):
        pipeline.save(image, url, progress=False)
    pipeline.save(image * 2, url, progress=False, overwrite=True)
    np.testing.assert_array_equal(pipeline.open_image(url).compute(), dem() * 2)
    report = pipeline.save(image * 2, url, progress=False, resume=True)
    assert report.extra["blocks_skipped"] == 6 and report.tasks == 0
    # Not a Zarr store: overwriting would delete what is not ours.
    notes = Remote.of(f"s3://{bucket}/notes")
    (notes / "keep.txt").write_text("mine")
    with pytest.raises(pipeline.errors.OutputExistsError, match="it is not a Zarr store"):
        pipeline.save(image, notes.url, progress=False, overwrite=True)
    assert (notes / "keep.txt").read_text() == "mine"
    # An output inside an input on the store would destroy it.
    with pytest.raises(pipeline.errors.ArgumentError, match="is inside the input"):
        pipeline.plan(pipeline.open_image(url), f"{url}/inner.zarr")


def test_two_runs_never_both_own_an_output_on_the_store(s3_server: S3Server) -> None:
    """The lock is created by one conditional request (If-None-Match): of eight runs taking
    it at the same instant, exactly one gets it; the others are refused, naming the owner."""
    bucket = new_bucket(s3_server)
    lock = Remote.of(f"s3://{bucket}/out.zarr/.pipeline-lock.json")
    start = threading.Barrier(8)
    won: list[bool] = []

    def take(n: int) -> None:
        start.wait()
        won.append(lock.create(json.dumps({"run": n}).encode()))

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]

    output = Remote.of(f"s3://{bucket}/held.zarr")
    with hold(output, "first-run"):
        with (
            pytest.raises(OutputLockedError, match=r"being written by another run \(run first"),
            hold(output, "second-run"),
        ):
            pass
        with pytest.raises(OutputLockedError, match="being written by another run"):
            pipeline.save(pipeline.open_image(dem()), output.url, progress=False, overwrite=True)
    with hold(output, "second-run"):  # released: free again
        pass


SLOW_STEP = """
import time


def slow_copy(block):
    time.sleep(0.2)
    return block
"""

CONFIG = """
input: {{path: dem.tif, chunks: [64, 64]}}
steps:
  - function: steps.py:slow_copy
output:
  path: {output}
  chunks: [64, 64]
  storage_options: {options}
compute: {{scheduler: threads, workers: 2}}
"""


def _project(tmp_path: Path, output: str, options: dict[str, Any] | None = None) -> Path:
    geotiff(tmp_path / "dem.tif", dem((384, 512)), tile=64)
    (tmp_path / "steps.py").write_text(SLOW_STEP)
    (tmp_path / "run.yaml").write_text(
        CONFIG.format(output=output, options=json.dumps(options or {}))
    )
    return tmp_path


def _wait_for_blocks(output: Remote, count: int, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(done_blocks(output)) < count:
        assert time.monotonic() < deadline and run.poll() is None, "the run did not get there"
        time.sleep(0.25)  # not faster: the server is one Python process, shared with the run


def test_sigkill_at_half_the_blocks_then_resume_on_the_store(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """`pipeline run` writing to the store is killed at half its 48 blocks; a chunk of a
    recorded block is then damaged on the store. `--resume` takes the lock over, verifies the
    recorded blocks against the store (computing the damaged one again), and finishes an
    output equal, byte for byte, to a local run's. The secret in the config's
    ``storage_options`` is never recorded or printed."""
    bucket = new_bucket(s3_server)
    secret = "never-record-me-5e1b"  # noqa: S105 - moto takes any secret
    url = f"s3://{bucket}/relief.zarr"
    project = _project(tmp_path, url, {**s3_server.options, "secret": secret})
    output = Remote.of(url)
    command = [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"]
    run = subprocess.Popen(
        command, cwd=project, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    _wait_for_blocks(output, 24, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    written = done_blocks(output)
    assert 24 <= len(written) < 48
    assert ".pipeline-lock.json" in output.find()  # left by the killed run
    damaged = sorted(written)[0]
    (output / next(iter(written[damaged]))).write_bytes(b"not a chunk")

    resumed = run_cli("run", "run.yaml", "--quiet", "--resume", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    record = read_record(output)
    assert record is not None and record.complete
    assert record.report is not None
    assert record.report["extra"]["blocks_skipped"] == len(written) - 1  # the damaged one
    (project / "run.yaml").write_text(CONFIG.format(output="local.zarr", options="{}"))
    assert run_cli("run", "run.yaml", "--quiet", cwd=project).returncode == 0
    assert stored(output) == stored(project / "local.zarr")
    recorded = b"".join(v for v in output.read_many(output.find()).values() if v)
    assert secret.encode() not in recorded and secret not in resumed.stdout + resumed.stderr
    assert "***" in json.dumps(record.metadata["config"]["output"]["storage_options"])
    info = run_cli("info", url, "--json", cwd=project)
    assert info.returncode == 0 and json.loads(info.stdout)["pipeline"]["complete"] is True
    shown = run_cli("info", url, cwd=project)
    assert shown.returncode == 0 and "state         complete" in shown.stdout


class InProcessServer:
    """moto's S3 server on a thread of the test process: stopped, it refuses connections;
    started again on its port, it still holds what was stored (its backend lives on)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()
        if self.server._server is not None:
            self.server._server.server_close()  # refuse connections, do not leave them hanging

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer("127.0.0.1", self.port, verbose=False)
        self.server.start()


def test_the_store_stopped_mid_write_is_one_line_and_resume_finishes(tmp_path: Path) -> None:
    """The server goes away mid-run. The client retries, then the run stops with one line
    naming the output's address and --resume, keeping the blocks written; once the server
    is back, --resume finishes an output equal to a local run's, byte for byte."""
    import s3fs

    server = InProcessServer()
    try:
        options = {"endpoint_url": server.endpoint, "key": "testing", "secret": "testing"}
        s3fs.S3FileSystem(**options, skip_instance_cache=True).mkdir("results")
        url = "s3://results/out.zarr"
        project = _project(tmp_path, url, options)
        output = Remote.of(url, options)
        command = [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"]
        # One attempt per request from botocore (s3fs still retries with backoff): the run
        # fails the same way, in a few seconds rather than a minute.
        env = {**os.environ, "AWS_MAX_ATTEMPTS": "1"}
        run = subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
        _wait_for_blocks(output, 6, run)
        server.stop()
        _, err = run.communicate(timeout=240)
        assert run.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"error: {url}: the store did not answer"), err
        assert "--resume" in lines[0]
        server.start()
        kept = len(done_blocks(output))
        assert 6 <= kept < 48
        resumed = run_cli("run", "run.yaml", "--quiet", "--resume", cwd=project)
        assert resumed.returncode == 0, resumed.stderr
        record = read_record(output)
        assert record is not None and record.report is not None
        assert record.report["extra"]["blocks_skipped"] == kept
        (project / "run.yaml").write_text(CONFIG.format(output="local.zarr", options="{}"))
        assert run_cli("run", "run.yaml", "--quiet", cwd=project).returncode == 0
        assert stored(output) == stored(project / "local.zarr")
    finally:
        server.stop()


def test_a_missing_bucket_or_a_refused_write_is_one_line_naming_the_output(
    tmp_path: Path,
) -> None:
    """On a server that checks signatures (moto with IAM): a bucket that does not exist, and
    a user who may read but not write, are each one line naming the output and the fix."""
    import boto3
    import s3fs

    server = start_s3_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "6"})
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="admin",
            aws_secret_access_key="admin",  # noqa: S106 - moto's first calls need none
        )
        users = {}
        for name, actions in (("writer", ["s3:*"]), ("reader", ["s3:Get*", "s3:List*"])):
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            allow = {"Effect": "Allow", "Action": actions, "Resource": "*"}
            iam.put_user_policy(
                UserName=name,
                PolicyName="s3",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
            )
            users[name] = {
                "endpoint_url": server.endpoint,
                "key": key["AccessKeyId"],
                "secret": key["SecretAccessKey"],
            }
        s3fs.S3FileSystem(**users["writer"]).mkdir("results")
        image = pipeline.open_image(dem(), chunks=(100, 200))
        pipeline.save(
            image, "s3://results/ok.zarr", progress=False, storage_options=users["writer"]
        )
        with pytest.raises(StorageAccessError) as denied:
            pipeline.save(
                image, "s3://results/no.zarr", progress=False, storage_options=users["reader"]
            )
        message = str(denied.value)
        assert message.startswith("s3://results/no.zarr")
        assert "access denied" in message and "may write to it" in message
        assert "\n" not in message and users["reader"]["secret"] not in message
        with pytest.raises(SourceNotFoundError) as missing:
            pipeline.save(
                image,
                "s3://no-such-bucket-3c1d/out.zarr",
                progress=False,
                storage_options=users["writer"],
            )
        assert "no such object or bucket" in str(missing.value)
        assert "\n" not in str(missing.value)
    finally:
        server.stop()


def test_objects_written_by_another_process_after_a_listing_are_seen(
    s3_server: S3Server,
) -> None:
    """fsspec caches listings: after one, an object another process writes under a listed
    prefix read as missing, so a resume took a written chunk as lost, and a run could take
    a live run's lock as absent and delete it (regression: seen in CI)."""
    import s3fs

    bucket = new_bucket(s3_server)
    output = Remote.of(f"s3://{bucket}/out.zarr")
    (output / "0/c/3/1").write_bytes(b"mine")
    assert output.find() == ["0/c/3/1"]  # lists, and caches, every prefix under the output
    other = s3fs.S3FileSystem(**s3_server.options, skip_instance_cache=True)  # another run
    other.pipe_file(f"{bucket}/out.zarr/0/c/3/3", b"theirs")
    other.pipe_file(f"{bucket}/out.zarr/.pipeline-lock.json", b"{}")
    assert output.read_many(["0/c/3/1", "0/c/3/3"]) == {"0/c/3/1": b"mine", "0/c/3/3": b"theirs"}
    assert (output / ".pipeline-lock.json").stat().st_size == 2
    assert (output / "0/c/3/3").read_bytes() == b"theirs"
