"""Shared fixtures: schedulers by name, a real distributed cluster, an S3 server on loopback,
the command line as a user runs it, and compute guards."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@contextlib.contextmanager
def loopback_cluster(workers: int = 2) -> Iterator[Any]:
    """A real distributed cluster of worker processes, listening on loopback only."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def cluster_client() -> Iterator[Any]:
    """A real two-process distributed cluster on loopback, shared by the session's tests."""
    with loopback_cluster(2) as client:
        yield client


@pytest.fixture(params=["synchronous", "threads", "processes", "distributed"])
def scheduler(request: pytest.FixtureRequest) -> Any:
    """Every scheduler a run can use, by name (``distributed`` is a real cluster's client)."""
    if request.param == "distributed":
        return request.getfixturevalue("cluster_client")
    return request.param


@dataclass(frozen=True)
class S3Server:
    """A real S3 server (moto's server mode) on 127.0.0.1, as a separate process."""

    endpoint: str
    process: Any
    options: dict[str, str]
    """The ``storage_options`` that reach it (for workers that did not inherit the environment)."""

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def bytes_sent(self) -> int:
        """Bytes sent over loopback so far (the server's answers, and little else while a
        test reads): what reads cost, measured outside the client."""
        return int(Path("/sys/class/net/lo/statistics/tx_bytes").read_text())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def start_s3_server(port: int = 0, env: dict[str, str] | None = None) -> S3Server:
    """Start moto's S3 server on ``port`` (0: a free one) of 127.0.0.1 and wait for it."""
    import os
    import socket
    import subprocess
    import sys
    import time

    if not port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    return S3Server(endpoint, process, options)


def new_bucket(server: S3Server) -> str:
    """A new, empty bucket on ``server``."""
    import s3fs

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**server.options).mkdir(name)
    return name


def upload(server: S3Server, local: Path, url: str) -> str:
    """Copy a local file or folder to ``url`` on ``server``; return ``url``."""
    import s3fs

    fs = s3fs.S3FileSystem(**server.options)
    fs.put(str(local), url, recursive=local.is_dir())
    fs.invalidate_cache()
    return url


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` in ``cwd``, as a user runs it; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, started by the tests; credentials and the
    endpoint are in the environment, as a user's would be (``AWS_ENDPOINT_URL``)."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    import os

    server = start_s3_server()
    env = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class ComputeError(AssertionError):
    """Raised when a dask task runs where none should."""


@contextlib.contextmanager
def raise_if_dask_computes() -> Iterator[None]:
    """Fail on any dask task executed by a local scheduler (as xarray's helper does)."""
    from dask.callbacks import Callback

    def pretask(key: Any, *_: Any) -> None:
        msg = f"dask computed {key!r} where nothing should be computed"
        raise ComputeError(msg)

    with Callback(pretask=pretask):
        yield


@pytest.fixture
def no_pixel_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and forbid) every pixel read by any file reader."""
    from pipeline.io import NpySource, TiffSource, ZarrSource

    calls: list[str] = []
    for cls in (TiffSource, ZarrSource, NpySource):

        def read(self: Any, window: Any, _cls: type = cls) -> Any:
            calls.append(f"{_cls.__name__}.read({window})")
            msg = f"{_cls.__name__} read pixels {window} where nothing should be read"
            raise ComputeError(msg)

        monkeypatch.setattr(cls, "read", read)
    return calls


def patch_tag_value(path: Path, tag: str, index: int, value: int) -> None:
    """Overwrite one entry of a TIFF's offsets or byte-counts tag in place (to damage it)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        t = tif.pages.first.tags[tag]
        fmt = tif.byteorder + {3: "H", 4: "I", 16: "Q"}[t.dtype]
        at = t.valueoffset + index * struct.calcsize(fmt)
    with path.open("r+b") as fh:
        fh.seek(at)
        fh.write(struct.pack(fmt, value))


def ramp(shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """Distinct, deterministic values: every pixel tells where it came from."""
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 1.5 + 3).astype(dtype)


def geotiff(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32633",
    transform: object = None,
    nodata: float | None = -9999,
    tile: int = 32,
) -> Path:
    """Write ``data`` as a tiled GeoTIFF with rasterio (GDAL): by default 30 m pixels in UTM
    zone 33N from (500000, 6000000), nodata -9999."""
    import rasterio
    from rasterio.transform import from_origin

    transform = transform if transform is not None else from_origin(500000, 6000000, 30, 30)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=data.shape[0],
        width=data.shape[1],
        count=1,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=tile,
        blockysize=tile,
    ) as ds:
        ds.write(data, 1)
    return path
