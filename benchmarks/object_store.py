"""Throughput of a run whose input is on local disk against the same input on an S3 server
on loopback (moto's server mode, started here): a GeoTIFF read by range requests and a Zarr
store read chunk by chunk, side by side, alternating, medians of the repeats.

The loopback store has no network latency or bandwidth limit; what it measures is the cost
of the client (requests, signing, copies) and of the server, the floor a real store adds to.

Usage (from the repository root, with the project installed with its dev extras):

    python benchmarks/object_store.py
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x6000", help="HEIGHTxWIDTH of the DEM")
    parser.add_argument("--repeat", type=int, default=3)
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
    try:
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

        cases = {
            "GeoTIFF, local disk": str(tif),
            "GeoTIFF, loopback S3": "s3://bench/dem.tif",
            "Zarr, local disk": str(store),
            "Zarr, loopback S3": "s3://bench/dem.zarr",
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, source in cases.items():
                out = folder / "out.zarr"
                start = time.perf_counter()
                image = pipeline.open_image(source, chunks=1024)
                pipeline.save(pipeline.apply(slope, image), out, progress=False, overwrite=True)
                times[name].append(time.perf_counter() - start)
                shutil.rmtree(out)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    megapixels = height * width / 1e6
    print(
        f"slope of a {height}x{width} float32 DEM ({megapixels:.0f} Mpx) to a local Zarr, "
        f"threads, median of {args.repeat}:"
    )
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"  {name:>22}: {median:6.2f} s, {megapixels / median:6.1f} Mpx/s")


if __name__ == "__main__":
    main()
