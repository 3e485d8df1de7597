"""`pipeline run` against `gdaldem` on the same GeoTIFF, as whole processes: what a user waits
for, start-up included.

For each size, the two commands run in turns (pipeline, gdaldem, pipeline, gdaldem, ...) and
each reports its median wall time, its CPU seconds and its peak resident memory (from the
kernel's accounting of the finished process, ``wait4``). A 256 x 256 DEM measures the fixed
cost of a run, start-up to exit, where the pixels cost nothing.

- pipeline: ``pipeline run slope.yaml`` (the built-in slope, all cores, to Zarr), with its
  kernels already compiled and cached, as every run after a user's first is;
- gdaldem: ``gdaldem slope dem.tif slope.tif`` (GDAL's C, one thread, to a GeoTIFF), as
  Debian's gdal-bin installs it.

Usage (from the repository root, with the project installed and gdal-bin on the PATH):

    python benchmarks/vs_gdal.py                         # 256x256 and 24 Mpx
    python benchmarks/vs_gdal.py --sizes 4000x6000 20000x20000 --repeat 3
    python benchmarks/vs_gdal.py --sizes 20000x20000 --dtype uint16 --repeat 3   # 400 Mpx
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
input:
  path: {dem}
steps:
  - function: slope
output:
  path: {out}
  overwrite: true
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of ``command`` run to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        msg = f"{' '.join(command)} failed with exit code {os.waitstatus_to_exitcode(status)}"
        raise RuntimeError(msg)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["256x256", "4000x6000"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", default="float32", help="of the DEMs (float32 or uint16)")
    args = parser.parse_args()
    gdaldem = shutil.which("gdaldem")
    if gdaldem is None:
        sys.exit("gdaldem is not on the PATH: install GDAL's command-line tools (gdal-bin)")
    pipeline_command = str(Path(sys.executable).parent / "pipeline")

    from pipeline.demo import write_dem

    folder = Path(tempfile.mkdtemp(prefix="vs-gdal-"))
    try:
        rows = []
        for size in args.sizes:
            height, width = (int(n) for n in size.lower().split("x"))
            dem = write_dem(
                folder / f"dem-{size}.tif",
                (height, width),
                seed=0,
                tile=(512, 512),
                dtype=args.dtype,
            )
            config = folder / f"slope-{size}.yaml"
            config.write_text(CONFIG.format(dem=dem, out=folder / "slope.zarr"))
            commands = {
                "pipeline run": [pipeline_command, "run", str(config), "--quiet"],
                "gdaldem slope": [gdaldem, "slope", "-q", str(dem), str(folder / "slope.tif")],
            }
            timed(commands["pipeline run"], folder)  # compiles and caches the kernels once
            measured: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}
            for _ in range(args.repeat):
                for name, command in commands.items():
                    measured[name].append(timed(command, folder))
            medians = {
                name: tuple(statistics.median(m[k] for m in runs) for k in range(3))
                for name, runs in measured.items()
            }
            rows.append((size, height * width / 1e6, medians))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(
        f"slope of {args.dtype} DEMs, whole processes, median of {args.repeat} alternating runs, "
        f"{os.cpu_count()} cores"
    )
    for size, megapixels, medians in rows:
        ours, theirs = medians["pipeline run"], medians["gdaldem slope"]
        print(f"  {size} ({megapixels:.1f} Mpx):")
        for name, (wall, cpu, rss) in medians.items():
            print(f"    {name:>14}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, {rss:6.0f} MB peak")
        print(f"    gdaldem / pipeline wall time: {theirs[0] / ours[0]:.2f}")


if __name__ == "__main__":
    main()
