"""Out of core: slope of a 20000 x 20000 tiled uint16 TIFF into Zarr, against plain dask and
against the I/O floor, with wall time and peak memory of each.

In one run, each contender in its own child process (so that peak memory is its own), the
four in turns, each counting its fastest run:

  (a) plain dask: tifffile's Zarr store, ``da.from_zarr``, ``map_overlap`` with a vectorised
      numpy Horn slope (depth 1), ``to_zarr``, at the blocks (d) chose;
  (b) the I/O floor: one pass that decodes every tile, one pass that writes a same-size
      float32 Zarr of slope values (one block's, repeated: a codec's speed depends on what it
      compresses) with pipeline's codec and settings, both on all cores;
  (c) pipeline: ``open_image``, ``apply(slope)`` (the compiled built-in), ``save``, blocks
      chosen by the plan;
  (d) pipeline with a user's function: the same numpy Horn slope as (a), given to
      ``apply(horn, image, depth=1)``, blocks chosen by the plan (which measures the
      function on its first block).

It also times the slope kernel alone on a sample of blocks, to state the compute floor
(compute / cores), and runs (c) and (d) again on an image 4x larger to show that their
memory does not grow with the image.

Usage (from the repository root, with the project installed; the TIFFs are generated once
under --data and kept):

    python benchmarks/out_of_core.py                          # 20000^2, then (c) on 40000^2
    python benchmarks/out_of_core.py --sizes 8000 --repeat 1  # a quick look
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CELL_SIZE = 30.0


# --------------------------------------------------------------------------- children


def horn(block: np.ndarray) -> np.ndarray:
    """A user's vectorised numpy Horn slope: a block with a 1-pixel halo in, its interior out."""
    from pipeline.ops import terrain

    return terrain.slope(block, cell_size=CELL_SIZE).astype(np.float32)


def plain_dask(path: Path, out: Path, block: int) -> None:
    import dask.array as da
    import tifffile
    import zarr

    store = tifffile.imread(path, aszarr=True)
    dem = da.from_zarr(zarr.open(store, mode="r"), chunks=block)

    def padded_horn(b: np.ndarray) -> np.ndarray:  # map_overlap trims the halo itself
        return np.pad(horn(b), 1)

    dem.map_overlap(padded_horn, depth=1, boundary="nearest", dtype=np.float32).to_zarr(str(out))
    store.close()


def io_floor(path: Path, out: Path, block: int) -> None:
    """Decode every tile once (threads), then write a same-size float32 Zarr (threads)."""
    from concurrent.futures import ThreadPoolExecutor

    import tifffile
    import zarr

    from pipeline.io.writer import output_codec
    from pipeline.machine import default_workers
    from pipeline.ops import terrain

    workers = default_workers()
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        shape = page.shape
        for _ in page.segments(maxworkers=workers):
            pass
    # What is written costs what it compresses: write slope values, as (a) and (c) do (one
    # block's worth from the image centre, computed once, written everywhere).
    y0, x0 = max(0, shape[0] // 2 - block // 2), max(0, shape[1] // 2 - block // 2)
    store = tifffile.imread(path, aszarr=True)
    dem = zarr.open(store, mode="r")[y0 : y0 + block + 2, x0 : x0 + block + 2]
    store.close()
    content = terrain.slope(dem, cell_size=CELL_SIZE).astype(np.float32)
    array = zarr.create_array(
        out, shape=shape, chunks=(block, block), dtype="float32", compressors=output_codec()
    ).with_config({"write_empty_chunks": True})  # as pipeline writes

    def write(origin: tuple[int, int]) -> None:
        y0, x0 = origin
        h, w = min(block, shape[0] - y0), min(block, shape[1] - x0)
        array[y0 : y0 + h, x0 : x0 + w] = content[:h, :w]

    origins = [(y0, x0) for y0 in range(0, shape[0], block) for x0 in range(0, shape[1], block)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(write, origins))


def product(path: Path, out: Path, block: int, *, user: bool = False) -> dict[str, Any]:
    import pipeline
    from pipeline.ops.terrain_kernels import slope

    del block  # the plan chooses
    image = pipeline.open_image(path)
    if user:
        lazy = pipeline.apply(horn, image, depth=1, dtype="float32")
    else:
        lazy = pipeline.apply(slope, image, dtype="float32", cell_size=CELL_SIZE)
    checked = pipeline.plan(lazy, out)
    report = checked.execute(progress=False)
    return {
        "block": list(checked.grid.chunk_shape),
        "tasks": report.tasks,
        "projected_worker_mb": checked.memory_per_worker / 2**20,
        "measured": checked.measured.describe() if checked.measured else None,
    }


def user_function(path: Path, out: Path, block: int) -> dict[str, Any]:
    return product(path, out, block, user=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(which: str, path: Path, out: Path, block: int) -> None:
    cpu = cpu_seconds()
    start = time.perf_counter()
    contenders = {
        "plain_dask": plain_dask,
        "io_floor": io_floor,
        "pipeline": product,
        "user_function": user_function,
    }
    extra = contenders[which](path, out, block) or {}
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": own_peak_mb(), **extra}))


def own_peak_mb() -> float:
    """This process's resident high-water mark, MB. Not ``ru_maxrss``, which also counts the
    parent's resident size at the fork that started this process."""
    try:
        with Path("/proc/self/status").open() as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --------------------------------------------------------------------------- parent


def run_child(which: str, path: Path, out: Path, block: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path), str(out), str(block)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with the highest peak memory of all the runs."""
    fastest = dict(min(runs, key=lambda r: r["seconds"]))
    fastest["peak_mb"] = max(r["peak_mb"] for r in runs)
    return fastest


def in_turns(path: Path, work: Path, repeat: int) -> tuple[dict[str, Any], ...]:
    """(c), (d), (a) and (b), ``repeat`` times in turns (c, d, a, b, c, d, a, b, ...): a
    noisy minute on a shared machine slows all four, not the one that happened to run in it.
    (c) and (d) run first in each round because their plans choose the blocks (b) and (a)
    then use."""
    order = ("pipeline", "user_function", "plain_dask", "io_floor")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    for _ in range(repeat):
        runs["pipeline"].append(run_child("pipeline", path, work / "c.zarr", 0))
        runs["user_function"].append(run_child("user_function", path, work / "d.zarr", 0))
        user_block = runs["user_function"][0]["block"][0]
        runs["plain_dask"].append(run_child("plain_dask", path, work / "a.zarr", user_block))
        block = runs["pipeline"][0]["block"][0]
        runs["io_floor"].append(run_child("io_floor", path, work / "b.zarr", block))
    return tuple(best(runs[name]) for name in order)


def compute_seconds(path: Path, block: tuple[int, int], *, user: bool = False) -> float:
    """The slope alone (the compiled kernel, or with ``user`` the numpy function of (a) and
    (d)), one thread, on a sample of blocks already read and padded, extrapolated to the
    whole image."""
    import pipeline
    from pipeline.grid import BlockInfo, ChunkGrid, padded_read
    from pipeline.ops import program_of
    from pipeline.ops.terrain_kernels import slope

    image = pipeline.open_image(path, chunks=block)
    if user:
        lazy = pipeline.apply(horn, image, depth=1, dtype="float32")
    else:
        lazy = pipeline.apply(slope, image, cell_size=CELL_SIZE, dtype="float32")
    program = program_of(lazy)
    assert program is not None
    step = program.root
    source = step.inputs[0]  # type: ignore[attr-defined]
    windows = [w for _, w in ChunkGrid.from_dask(lazy.chunks).blocks()]
    picked = windows[:: max(1, len(windows) // 6)][:6]
    seconds, pixels = 0.0, 0
    for window in picked:
        padded, covered = padded_read(
            lambda w: source.read(w, {}),
            window.pad((1, 1)),
            step.image_shape,
            step.boundary,
            source.dtype,
        )
        info = BlockInfo(window, covered, step.image_shape, (1, 1), "nearest")
        run = horn if user else functools.partial(step.func, block_info=info)
        run(padded)  # compiled already; warms the caches
        start = time.perf_counter()
        run(padded)
        seconds += time.perf_counter() - start
        pixels += window.size
    return seconds / pixels * sum(w.size for w in windows)


def ensure_tiff(path: Path, size: int) -> Path:
    if not path.exists():
        from pipeline.demo import write_dem

        print(f"generating a {size}x{size} uint16 DEM: {path}", flush=True)
        write_dem(path, (size, size), dtype=np.uint16)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="20000,40000",
        help="first size: all contenders; later sizes: pipeline's memory only",
    )
    parser.add_argument("--data", type=Path, default=Path("data/bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (fastest counts)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from pipeline.machine import default_workers

    cores = default_workers()
    args.data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="out-of-core-", dir=args.data))
    try:
        first = ensure_tiff(args.data / f"dem-{sizes[0]}.tif", sizes[0])
        c, d, a, b = in_turns(first, work, args.repeat)
        compute = compute_seconds(first, tuple(c["block"]))
        user_compute = compute_seconds(first, tuple(d["block"]), user=True)
        floor = b["seconds"] + compute / cores
        user_floor = b["seconds"] + user_compute / cores
        print(
            f"\n{sizes[0]}x{sizes[0]} uint16 TIFF ({first.stat().st_size / 1e9:.2f} GB), {cores} cores; "
            f"pipeline chose blocks of {c['block'][0]}x{c['block'][1]} ({c['tasks']} tasks); "
            f"fastest of {args.repeat} runs each, in turns"
        )
        print(
            f"  (a) plain dask map_overlap -> to_zarr   {a['seconds']:8.1f} s   peak {a['peak_mb']:7.0f} MB   cpu {a['cpu']:5.1f} s"
            f"   (blocks of {d['block'][0]}, as (d))"
        )
        print(
            f"  (b) I/O floor: decode + write           {b['seconds']:8.1f} s   peak {b['peak_mb']:7.0f} MB   cpu {b['cpu']:5.1f} s"
        )
        print(f"      slope compute alone, 1 core         {compute:8.1f} s")
        print(
            f"  (c) pipeline                             {c['seconds']:8.1f} s   peak {c['peak_mb']:7.0f} MB   cpu {c['cpu']:5.1f} s"
            f"   (projected {c['projected_worker_mb']:.0f} MB)"
        )
        print(
            f"  (d) pipeline, the user's numpy function  {d['seconds']:8.1f} s   peak {d['peak_mb']:7.0f} MB   cpu {d['cpu']:5.1f} s"
            f"   (projected {d['projected_worker_mb']:.0f} MB; blocks of {d['block'][0]}x{d['block'][1]},"
            f" {d['tasks']} tasks)"
        )
        print(f"      measured: {d['measured']}")
        print(f"      the numpy function alone, 1 core    {user_compute:8.1f} s")
        print(
            f"      a/d = {a['seconds'] / d['seconds']:.2f}    c / (b + compute/cores) = "
            f"{c['seconds'] / floor:.2f}    d / (b + function/cores) = "
            f"{d['seconds'] / user_floor:.2f}"
        )
        for size in sizes[1:]:
            bigger = ensure_tiff(args.data / f"dem-{size}.tif", size)
            for label, which, small in (("c", "pipeline", c), ("d", "user_function", d)):
                big = run_child(which, bigger, work / f"{label}.zarr", 0)
                growth = big["peak_mb"] / small["peak_mb"] - 1
                print(
                    f"  ({label}) at {size}x{size}: {big['seconds']:.1f} s, peak {big['peak_mb']:.0f} MB "
                    f"({growth:+.1%} for {size**2 / sizes[0] ** 2:.0f}x the pixels)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
