"""Throughput of a run whose input and output are on local disk against the same run with
its input, its output or both on an S3 server on loopback (moto's server mode, started here):
a GeoTIFF read by range requests, a Zarr store read chunk by chunk, an output written chunk
object by chunk object with its ledger; side by side, alternating, medians of the repeats.

The loopback store has no network latency or bandwidth limit; what it measures is the cost
of the client (requests, signing, copies) and of the server, the floor a real store adds to.

With ``--cluster`` the runs go to a real cluster started here from the command line, as the
test suite's (``dask scheduler`` and two 1-thread ``dask worker`` processes on 127.0.0.1,
each in an empty directory of its own), instead of this process's threads.

Usage (from the repository root, with the project installed with its dev extras):

    python benchmarks/object_store.py
    python benchmarks/object_store.py --cluster
    python benchmarks/object_store.py --size 1000x1500 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def start_cluster(folder: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    """``dask scheduler`` and two ``dask worker`` processes, as a user starts them."""
    import json

    bin_dir = Path(sys.executable).parent
    scheduler_file = folder / "scheduler.json"
    processes = [
        subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    while not scheduler_file.exists():
        time.sleep(0.1)
    time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    for k in range(2):
        home = folder / f"worker{k}"
        home.mkdir()
        processes.append(
            subprocess.Popen(
                [str(bin_dir / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                 "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                 "--local-directory", str(home)],
                cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return processes, address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x6000", help="HEIGHTxWIDTH of the DEM")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cluster", action="store_true", help="run on a command-line dask cluster of 2 workers"
    )
    args = parser.parse_args()
    height, width = (int(n) for n in args.size.lower().split("x"))

    server, endpoint = start_server()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - the loopback server takes any
        AWS_DEFAULT_REGION="us-east-1",
    )
    folder = Path(tempfile.mkdtemp(prefix="object-store-"))
    cluster: list[subprocess.Popen[bytes]] = []
    scheduler = "threads"
    try:
        if args.cluster:
            cluster, scheduler = start_cluster(folder)
        import s3fs

        import pipeline
        from pipeline.demo import write_dem
        from pipeline.ops.terrain_kernels import slope

        tif = folder / "dem.tif"
        write_dem(tif, (height, width), seed=0, tile=(512, 512))
        store = folder / "dem.zarr"
        pipeline.save(pipeline.open_image(tif, nodata="keep"), store, chunks=512, progress=False)
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        fs.put(str(tif), "bench/dem.tif")
        fs.put(str(store), "bench/dem.zarr", recursive=True)

        local_out, s3_out = str(folder / "out.zarr"), "s3://bench/out.zarr"
        cases = {
            "GeoTIFF disk -> disk": (str(tif), local_out),
            "GeoTIFF S3 -> disk": ("s3://bench/dem.tif", local_out),
            "Zarr disk -> disk": (str(store), local_out),
            "Zarr S3 -> disk": ("s3://bench/dem.zarr", local_out),
            "GeoTIFF disk -> S3": (str(tif), s3_out),
            "GeoTIFF S3 -> S3": ("s3://bench/dem.tif", s3_out),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, (source, out) in cases.items():
                start = time.perf_counter()
                image = pipeline.open_image(source, chunks=1024)
                pipeline.save(
                    pipeline.apply(slope, image),
                    out,
                    progress=False,
                    overwrite=True,
                    scheduler=scheduler,
                )
                times[name].append(time.perf_counter() - start)
                if out == local_out:
                    shutil.rmtree(out)
    finally:
        for process in [*reversed(cluster), server]:
            process.terminate()
            process.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    megapixels = height * width / 1e6
    print(
        f"slope of a {height}x{width} float32 DEM ({megapixels:.0f} Mpx), input -> output, "
        f"{'a command-line cluster of 2 workers' if args.cluster else 'threads'}, "
        f"median of {args.repeat}:"
    )
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"  {name:>22}: {median:6.2f} s, {megapixels / median:6.1f} Mpx/s")


if __name__ == "__main__":
    main()
