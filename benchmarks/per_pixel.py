"""Per-pixel kernels on the demo's 24-megapixel elevation model: hours become seconds.

For each kernel, in one run on this machine:

  (a) the original style: the same kernel as a plain Python loop over the pixels, timed on a
      sample of pixels and extrapolated to the whole image (one core);
  (b) the kernel compiled with numba, one thread, over the whole array in one piece (the
      array already in memory, padded, compile time excluded);
  (c) pipeline on all cores, end to end: open the TIFF, compute, write Zarr (compile excluded:
      it is reported separately);
  (d) for slope only: plain dask, from tifffile's Zarr store through ``map_overlap`` with a
      vectorised numpy Horn slope to ``to_zarr``.

It prints the times and the ratios a/c, b/(c x cores) (parallel efficiency) and d/c. (b), (c)
and (d) run in turns (b, c, d, b, c, d, ...) and each counts its fastest run: a noisy minute
on a shared machine then slows all of them, not only the one that happened to run in it.

Usage (from the repository root, with the project installed):

    python benchmarks/per_pixel.py                      # sky_view and slope, 24 megapixels
    python benchmarks/per_pixel.py --kernels slope --size 2000x3000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import pipeline
from pipeline.demo import CELL_SIZE, DEMO_SHAPE, write_dem
from pipeline.grid import BlockInfo, Boundary, Window
from pipeline.io.cache import tile_cache
from pipeline.machine import default_workers
from pipeline.ops import terrain, terrain_kernels
from pipeline.ops.kernels import KernelBlock

KERNELS: dict[str, tuple[Any, dict[str, Any], int]] = {
    # name: (kernel, settings, pixels to time uncompiled)
    "sky_view": (
        terrain_kernels.sky_view,
        {"radius": 64, "directions": 16, "cell_size": CELL_SIZE},
        60,
    ),
    "slope": (terrain_kernels.slope, {"cell_size": CELL_SIZE}, 20_000),
}


REPEAT = 3
"""Each timed contender runs this many times and its fastest run counts: on a shared
virtual machine, slower runs measure the neighbours, not the code."""


def timed(func: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - start, result


def padded_whole(
    dem: np.ndarray, kernel: Any, settings: dict[str, Any]
) -> tuple[np.ndarray, BlockInfo]:
    depth = kernel.depth(settings)
    boundary = Boundary.parse(kernel.boundary)
    mode = {"nan": "constant", "nearest": "edge"}[boundary.mode]
    extra = {"constant_values": np.nan} if mode == "constant" else {}
    padded = np.pad(
        dem.astype(boundary.padded_dtype(dem.dtype)),
        [(depth[0],) * 2, (depth[1],) * 2],
        mode=mode,
        **extra,
    )
    core = Window.from_shape(dem.shape)
    return padded, BlockInfo(core, core.pad(depth), dem.shape, depth, boundary.mode)


def uncompiled_seconds(
    dem: np.ndarray, kernel: Any, settings: dict[str, Any], pixels: int
) -> float:
    """(a): the Python function on a sample of pixels at the image centre, extrapolated."""
    padded, whole = padded_whole(dem, kernel, settings)
    depth = whole.depth
    side = max(1, min(int(np.sqrt(pixels)), *dem.shape))
    cy, cx = (dem.shape[0] - side) // 2, (dem.shape[1] - side) // 2
    window = Window(cy, cy + side, cx, cx + side)
    sample = padded[window.pad(depth).translate(depth[0], depth[1]).to_slices()]
    info = BlockInfo(window, window.pad(depth), dem.shape, depth, whole.boundary)
    values = kernel.ordered_params(settings)
    block = KernelBlock(kernel, values, np.dtype("f8"), None, compiled=False)
    seconds, _ = timed(block, sample, block_info=info)
    return seconds / window.size * dem.size


def compiled_single_thread(
    dem: np.ndarray, kernel: Any, settings: dict[str, Any]
) -> tuple[Any, float]:
    """(b): the compiled kernel on one thread over the whole padded array; returns a function
    that runs it once and returns its time, and the time the first compilation took in this
    process (from numba's disk cache, if an earlier run left it there)."""
    padded, info = padded_whole(dem, kernel, settings)
    values = kernel.ordered_params(settings)
    start = time.perf_counter()
    inferred, channels, _ = kernel.prepare([padded.dtype], values)
    loop = inferred if kernel.finish else None  # as apply() runs it: finish casts to float32
    kernel.compile_loop([padded.dtype], values, loop or np.dtype("float32"), channels, info.depth)
    compile_seconds = time.perf_counter() - start
    block = KernelBlock(kernel, values, np.dtype("float32"), channels, loop_dtype=loop)
    return (lambda: timed(block, padded, block_info=info)[0]), compile_seconds


def product(path: Path, kernel: Any, settings: dict[str, Any], out: Path, chunks: int) -> float:
    """(c): pipeline end to end on all cores, from opening the TIFF to the last Zarr chunk."""
    tile_cache.clear()  # start cold, as a fresh run would
    start = time.perf_counter()
    image = pipeline.open_image(path, chunks=chunks)
    result = pipeline.apply(kernel, image, dtype="float32", **settings)
    pipeline.save(result, out, overwrite=True, progress=False)
    return time.perf_counter() - start


def side_by_side(*contenders: Any) -> list[float]:
    """The fastest of ``REPEAT`` runs of each contender (a function returning its own time),
    run in turns (c, d, c, d, ...): a noisy minute on a shared machine slows both, not one."""
    times = [[contender() for contender in contenders] for _ in range(REPEAT)]
    return [min(column) for column in zip(*times, strict=True)]


def plain_dask_slope(path: Path, out: Path, chunks: int) -> float:
    """(d): what users write with dask alone."""
    import dask.array as da
    import tifffile
    import zarr

    start = time.perf_counter()
    store = tifffile.imread(path, aszarr=True)
    dem = da.from_zarr(zarr.open(store, mode="r"), chunks=chunks)

    def horn(block: np.ndarray) -> np.ndarray:
        return np.pad(terrain.slope(block, cell_size=CELL_SIZE), 1).astype(np.float32)

    slope = dem.map_overlap(horn, depth=1, boundary="nearest", dtype=np.float32)
    slope.to_zarr(str(out), overwrite=True)
    store.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", default="sky_view,slope")
    parser.add_argument("--size", default="x".join(map(str, DEMO_SHAPE)), help="ROWSxCOLS")
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs per contender")
    args = parser.parse_args()
    globals()["REPEAT"] = args.repeat
    shape = tuple(int(n) for n in args.size.lower().split("x"))
    path = args.data / ("dem.tif" if shape == DEMO_SHAPE else f"dem-{shape[0]}x{shape[1]}.tif")
    if not path.exists():
        write_dem(path, shape)  # type: ignore[arg-type]
    import tifffile

    dem = tifffile.imread(path)
    cores = default_workers()
    print(
        f"{shape[0]}x{shape[1]} DEM ({dem.size / 1e6:.1f} Mpx) from {path}; {cores} cores; "
        f"blocks of {args.chunks}x{args.chunks}; best of {REPEAT} runs"
    )
    workdir = Path(tempfile.mkdtemp(prefix="per-pixel-"))
    try:
        for name in args.kernels.split(","):
            kernel, settings, sample = KERNELS[name]
            a = uncompiled_seconds(dem, kernel, settings, sample)
            single, compiled = compiled_single_thread(dem, kernel, settings)
            out = workdir / f"{name}.zarr"
            contenders = [single, partial(product, path, kernel, settings, out, args.chunks)]
            if name == "slope":
                dask_out = workdir / "dask-slope.zarr"
                contenders.append(partial(plain_dask_slope, path, dask_out, args.chunks))
            b, c, *d = side_by_side(*contenders)
            print(f"\n{name} {settings}")
            print(f"  (a) uncompiled Python loop, extrapolated   {a:10.1f} s  ({a / 3600:.2f} h)")
            print(
                f"  (b) compiled, 1 thread, whole array         {b:10.2f} s  "
                f"(first compile in this process: {compiled:.2f} s, not included)"
            )
            print(
                f"  (c) pipeline, {cores} cores, TIFF -> Zarr       {c:10.2f} s  "
                "((b), (c) and (d) run in turns)"
            )
            print(f"      a/c = {a / c:8.0f}x    b/(c x cores) = {b / (c * cores):.2f}")
            if d:
                print(f"  (d) plain dask map_overlap + numpy Horn    {d[0]:10.2f} s")
                print(f"      d/c = {d[0] / c:.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
