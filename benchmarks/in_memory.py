"""In-memory inputs: pipeline's path (one task per block gathering its neighbours' blocks)
against dask's ``map_overlap``, for the same function and blocks, in one run.

This is the measurement behind sending numpy and dask inputs through the same path as files:
both compute the same halo; this prints which is faster here, and each one's peak traced
memory.

Usage (from the repository root, with the project installed):

    python benchmarks/in_memory.py [--size 4000x6000] [--block 1024]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from typing import Any

import dask.array as da
import numpy as np

import pipeline
from pipeline.demo import dem_window
from pipeline.grid import Window
from pipeline.ops import terrain
from pipeline.ops.terrain_kernels import slope


def measure(compute: Any, repeat: int) -> tuple[float, float]:
    times = []
    tracemalloc.start()
    for _ in range(repeat):
        start = time.perf_counter()
        compute()
        times.append(time.perf_counter() - start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(times), peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x6000")
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    h, w = (int(n) for n in args.size.split("x"))
    dem = da.from_array(dem_window(Window(0, h, 0, w)), chunks=args.block).persist()

    def numpy_slope(block: np.ndarray) -> np.ndarray:
        return terrain.slope(block, cell_size=30.0).astype(np.float32)

    def padded_numpy_slope(block: np.ndarray) -> np.ndarray:
        return np.pad(numpy_slope(block), 1)

    contenders = {
        "pipeline.apply, numpy slope": lambda: pipeline.apply(
            numpy_slope, dem, depth=1, boundary="nearest", dtype="float32"
        ).compute(),
        "dask map_overlap, numpy slope": lambda: dem.map_overlap(
            padded_numpy_slope, depth=1, boundary="nearest", dtype=np.float32
        ).compute(),
        "pipeline.apply, compiled slope": lambda: pipeline.apply(
            slope, dem, dtype="float32", cell_size=30.0
        ).compute(),
    }
    print(f"{h}x{w} float32 in memory, blocks of {args.block}; fastest of {args.repeat}")
    results = {name: measure(run, args.repeat) for name, run in contenders.items()}
    for name, (seconds, peak) in results.items():
        print(f"  {name:34} {seconds:6.2f} s   peak traced {peak:7.0f} MB")
    ours = results["pipeline.apply, numpy slope"][0]
    theirs = results["dask map_overlap, numpy slope"][0]
    print(f"  map_overlap / pipeline (same numpy function) = {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
