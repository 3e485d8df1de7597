"""Inputs on an object store (issue 17), against a real S3 server on 127.0.0.1 that the tests
start (moto's server mode): no mock of any client. A GeoTIFF and a Zarr store read from the
store give what the same files give from local disk, byte for byte; a block fetches only its
tiles; a failure is one line naming the address; secrets are never shown or recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import S3Server, geotiff, new_bucket, run_cli, start_s3_server, upload

import pipeline
from pipeline.errors import SourceNotFoundError, StorageAccessError
from pipeline.grid import Window
from pipeline.io import done_blocks, open_source
from pipeline.ops import program_of
from pipeline.ops.terrain_kernels import slope
from pipeline.ops.tree import georef_of

pytest.importorskip("s3fs")


def chunk_bytes(store: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(store)): p.read_bytes() for p in (store / "0").rglob("*") if p.is_file()
    }


def dem(shape: tuple[int, int] = (300, 400)) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    data = (100 + 3 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.01 * x * y).astype("float32")
    data[100:120, 150:190] = -9999  # a void, read as NaN from either place
    return data


def test_a_geotiff_and_a_zarr_on_s3_give_what_local_files_give(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = new_bucket(s3_server)
    tif = geotiff(tmp_path / "dem.tif", dem())
    zarr_store = tmp_path / "dem.zarr"
    pipeline.save(pipeline.open_image(tif, nodata="keep"), zarr_store, progress=False)
    for local in (tif, zarr_store):
        url = upload(s3_server, local, f"s3://{bucket}/inputs/{local.name}")
        here = pipeline.open_image(local, chunks=(96, 128))
        there = pipeline.open_image(url, chunks=(96, 128))
        assert open_source(url).format == open_source(local).format
        local_georef = georef_of(program_of(here).root)  # type: ignore[union-attr]
        remote_georef = georef_of(program_of(there).root)  # type: ignore[union-attr]
        assert remote_georef.crs == local_georef.crs and remote_georef.crs is not None
        assert remote_georef.transform == local_georef.transform
        out_here, out_there = (
            tmp_path / f"{local.name}-here.zarr",
            tmp_path / f"{local.name}-s3.zarr",
        )
        pipeline.save(pipeline.apply(slope, here), out_here, progress=False)
        pipeline.save(pipeline.apply(slope, there), out_there, progress=False)
        expected, got = chunk_bytes(out_here), chunk_bytes(out_there)
        assert len(got) > 4 and got == expected


def test_a_block_fetches_only_its_tiles(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = new_bucket(s3_server)
    pixels = np.random.default_rng(0).random((2048, 2048), dtype="float32")  # incompressible
    big = geotiff(tmp_path / "big.tif", pixels, nodata=None, tile=256)
    size = big.stat().st_size
    url = upload(s3_server, big, f"s3://{bucket}/big.tif")
    source = open_source(url)
    before = s3_server.bytes_sent()
    block = source.read(Window(512, 768, 1024, 1280))  # one 256x256 tile
    sent = s3_server.bytes_sent() - before
    np.testing.assert_array_equal(block, pixels[512:768, 1024:1280])
    assert sent > 256 * 256 * 4 * 0.9  # the tile did come from the server
    assert sent < size / 8, f"{sent} bytes sent for one tile of a {size}-byte file"


def test_a_missing_bucket_or_object_is_one_line_naming_the_address(s3_server: S3Server) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        pipeline.open_image("s3://no-such-bucket-here/dem.tif")
    message = str(info.value)
    assert message.startswith("s3://no-such-bucket-here/dem.tif: no such object")
    assert "\n" not in message
    bucket = new_bucket(s3_server)
    with pytest.raises(SourceNotFoundError, match=rf"s3://{bucket}/missing.zarr: no such"):
        pipeline.open_image(f"s3://{bucket}/missing.zarr")


def test_storage_options_reach_cluster_workers_and_are_never_shown(
    tmp_path: Path, s3_server: S3Server, cluster_client: Any
) -> None:
    """The session's cluster was started without the server's environment: the options
    travel with the source. They never appear in a repr, a message or the output's record."""
    bucket = new_bucket(s3_server)
    url = upload(s3_server, geotiff(tmp_path / "dem.tif", dem()), f"s3://{bucket}/dem.tif")
    options = {**s3_server.options, "secret": "testing"}
    image = pipeline.open_image(url, chunks=(96, 128), storage_options=options)
    got = pipeline.apply(slope, image).compute(scheduler=cluster_client)
    expected = pipeline.apply(slope, pipeline.open_image(tmp_path / "dem.tif")).compute()
    np.testing.assert_array_equal(got, expected)
    source = program_of(image).root.sources()  # type: ignore[union-attr]
    assert "testing" not in repr(list(source))


def test_a_config_reads_from_the_store_and_records_no_secret(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = new_bucket(s3_server)
    upload(s3_server, geotiff(tmp_path / "dem.tif", dem()), f"s3://{bucket}/dem.tif")
    secret = "do-not-print-me-7f3a"  # noqa: S105 - moto takes any secret
    (tmp_path / "run.yaml").write_text(
        f"input:\n  path: s3://{bucket}/dem.tif\n"
        f"  storage_options: {{endpoint_url: '{s3_server.endpoint}', key: testing, "
        f"secret: {secret}}}\n"
        "steps:\n  - function: slope\noutput: {path: slope.zarr}\n"
    )
    done = run_cli("run", "run.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recorded = "".join(p.read_text() for p in (tmp_path / "slope.zarr").rglob("*.json"))
    assert secret not in recorded and secret not in done.stdout + done.stderr
    assert f"s3://{bucket}/dem.tif" in recorded  # the address is provenance, the secret is not
    info = run_cli("info", "slope.zarr", "--json", cwd=tmp_path)
    assert info.returncode == 0 and secret not in info.stdout
    assert json.loads(info.stdout)
    (tmp_path / "run.yaml").write_text(
        (tmp_path / "run.yaml").read_text().replace("dem.tif", "gone.tif")
    )
    failed = run_cli("run", "run.yaml", "--quiet", cwd=tmp_path)
    assert failed.returncode == 2
    assert f"s3://{bucket}/gone.tif: no such object" in failed.stderr
    assert secret not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1


def test_wrong_credentials_are_one_line_naming_the_address(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """A server that checks signatures (moto with IAM): the right key reads, a wrong secret
    is one line naming the address and the fix, and the secret is not in it."""
    import boto3
    import s3fs

    server = start_s3_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="admin",
            aws_secret_access_key="admin",  # noqa: S106 - moto's first calls need none
        )
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        iam.put_user_policy(
            UserName="reader",
            PolicyName="s3",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
        )
        good = {
            "endpoint_url": server.endpoint,
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
        }
        fs = s3fs.S3FileSystem(**good)
        fs.mkdir("guarded")
        fs.put(str(geotiff(tmp_path / "dem.tif", dem())), "guarded/dem.tif")
        url = "s3://guarded/dem.tif"
        assert pipeline.open_image(url, storage_options=good).shape == (300, 400)
        wrong = {**good, "secret": "not-the-secret-9d1c"}
        with pytest.raises(StorageAccessError) as info:
            pipeline.open_image(url, storage_options=wrong)
        message = str(info.value)
        assert message.startswith(f"{url}: access denied")
        assert "check the credentials" in message and "\n" not in message
        assert "not-the-secret-9d1c" not in message
    finally:
        server.stop()


SLOW_STEP = """
import time


def slow_copy(block):
    time.sleep(0.25)
    return block
"""


def test_the_server_stopped_mid_run_is_one_line_and_resume_finishes(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """The store goes away mid-run: the client retries, then the run stops with one line
    naming the address, keeping the blocks written; once the store is back, --resume
    finishes an output equal to a local run's, byte for byte."""
    import os
    import time

    import s3fs

    server = start_s3_server()
    # One attempt per request from botocore (s3fs still retries with backoff): the run fails
    # the same way, in seconds rather than a minute.
    env = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint, "AWS_MAX_ATTEMPTS": "1"}
    local = geotiff(tmp_path / "dem.tif", dem((512, 640)), tile=64)

    def publish() -> None:
        fs = s3fs.S3FileSystem(**{**server.options, "endpoint_url": server.endpoint})
        fs.mkdir("survey")
        fs.put(str(local), "survey/dem.tif")

    try:
        publish()
        (tmp_path / "steps.py").write_text(SLOW_STEP)
        config = (
            "input: {path: %s, chunks: [64, 64]}\n"
            "steps:\n  - function: steps.py:slow_copy\n"
            "output: {path: %s, chunks: [64, 64]}\n"
            "compute: {scheduler: threads, workers: 2}\n"
        )
        (tmp_path / "run.yaml").write_text(config % ("s3://survey/dem.tif", "from-s3.zarr"))
        output = tmp_path / "from-s3.zarr"
        command = [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"]
        run = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (output.exists() and len(done_blocks(output)) >= 6):
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.25)
        server.stop()
        kept = len(done_blocks(output))
        _, err = run.communicate(timeout=300)
        assert run.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "s3://survey/dem.tif: the store did not answer" in lines[0]
        assert "--resume" in lines[0] or "resume" in lines[0]
        assert len(done_blocks(output)) >= kept  # nothing written was lost

        server = start_s3_server(port=server.port)  # the store is back, with the same object
        publish()
        resumed = run_cli("run", "run.yaml", "--quiet", "--resume", env=env, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        (tmp_path / "run.yaml").write_text(config % ("dem.tif", "from-disk.zarr"))
        assert run_cli("run", "run.yaml", "--quiet", cwd=tmp_path).returncode == 0
        assert chunk_bytes(output) == chunk_bytes(tmp_path / "from-disk.zarr")
    finally:
        server.stop()


def test_info_preview_and_export_read_an_output_on_the_store(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """An output copied to a store is read in place: `pipeline info`, `preview` and `export`
    (a COG with the CRS and transform GDAL reads from the local copy)."""
    import rasterio

    from pipeline.io.info import describe_path, output_state

    bucket = new_bucket(s3_server)
    local = tmp_path / "slope.zarr"
    image = pipeline.open_image(geotiff(tmp_path / "dem.tif", dem()))
    pipeline.save(pipeline.apply(slope, image), local, progress=False, pyramid=1)
    url = upload(s3_server, local, f"s3://{bucket}/results/slope.zarr")
    info = describe_path(url)
    assert info["path"] == url and info["crs"] == describe_path(local)["crs"]
    assert info["values"] == describe_path(local)["values"]
    assert output_state(url) == "complete"
    shown = pipeline.preview(url, tmp_path / "slope.png")
    assert (tmp_path / "slope.png").read_bytes().startswith(b"\x89PNG")
    assert shown.shape == (300, 400)  # small enough to draw from full resolution
    cog = pipeline.export_tiff(url, tmp_path / "slope.tif")
    with rasterio.open(cog) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform.a == 30.0
        np.testing.assert_array_equal(ds.read(1), pipeline.open_image(local).compute())


def test_images_on_a_web_server_are_read_in_place(tmp_path: Path, s3_server: S3Server) -> None:
    """``http(s)://`` addresses (here public objects served by the loopback server), a
    GeoTIFF and a Zarr store, read as the local files are."""
    import s3fs

    bucket = new_bucket(s3_server)
    tif = geotiff(tmp_path / "dem.tif", dem())
    store = tmp_path / "dem.zarr"
    pipeline.save(pipeline.open_image(tif), store, progress=False)
    fs = s3fs.S3FileSystem(**s3_server.options)
    for local in (tif, store):
        upload(s3_server, local, f"s3://{bucket}/{local.name}")
    for key in fs.find(bucket):
        fs.chmod(key, "public-read")
    for local in (tif, store):
        url = f"{s3_server.endpoint}/{bucket}/{local.name}"
        got = pipeline.open_image(url, chunks=(96, 128)).compute()
        np.testing.assert_array_equal(got, pipeline.open_image(local).compute())
