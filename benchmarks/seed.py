"""The seed's case: a numpy array in memory and a per-pixel function, on every core.

A 4000 x 6000 float64 array (24 megapixels, as built from many processed images) and a
per-pixel geometry kernel reading a 9 x 9 neighbourhood. Each contender runs in a fresh
process, so start-up (imports, spawning workers, compiling in each) counts as a user sees it:

- (b) the compiled kernel on the whole array, one thread (no pipeline): the work itself;
- (t) pipeline, threads; (p) pipeline, processes (spawned, as on Windows);
- (m) the multiprocessing.Pool recipe: strips with halos, one per core, Pool.map, concatenate.

It prints wall time, CPU time / wall time (2.0 is both cores busy throughout) and the
parallel efficiency b / (wall x cores), contenders in turns, each its fastest.

Usage (from the repository root, with the project installed):

    python benchmarks/seed.py [--size 4000x6000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import time

import numpy as np

import pipeline

RADIUS = 4


@pipeline.neighbourhood(radius=RADIUS, boundary="nearest")
def geometry(z, i, j):  # type: ignore[no-untyped-def]
    """Inverse-distance-weighted mean absolute difference to the 9 x 9 neighbours."""
    total = 0.0
    weights = 0.0
    for di in range(-RADIUS, RADIUS + 1):
        for dj in range(-RADIUS, RADIUS + 1):
            if di or dj:
                w = 1.0 / (di * di + dj * dj)
                total += w * abs(z[i + di, j + dj] - z[i, j])
                weights += w
    return total / weights


def image(shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(0).random(shape)


def _strip(args: tuple[np.ndarray, int, int]) -> np.ndarray:
    block, top, bottom = args
    out = pipeline.compute_window(
        pipeline.apply(geometry, block), pipeline.Window(0, block.shape[0], 0, block.shape[1])
    )
    return out[top : block.shape[0] - bottom]


def run(mode: str, shape: tuple[int, int], out: str) -> None:
    """One contender, in this (fresh) process."""
    data = image(shape)
    if mode == "b":
        pipeline.compute_window(
            pipeline.apply(geometry, data), pipeline.Window(0, *shape[:1], 0, shape[1])
        )
    elif mode in ("t", "p"):
        scheduler = "threads" if mode == "t" else "processes"
        lazy = pipeline.apply(geometry, data)
        pipeline.save(lazy, out, scheduler=scheduler, overwrite=True, progress=False)
    elif mode == "m":
        import multiprocessing

        cores = os.cpu_count() or 1
        edges = np.linspace(0, shape[0], cores + 1).astype(int)
        padded = np.pad(data, RADIUS, mode="edge")[:, RADIUS:-RADIUS]
        strips = [
            (padded[a : b + 2 * RADIUS], RADIUS, RADIUS) for a, b in itertools.pairwise(edges)
        ]
        with multiprocessing.get_context("spawn").Pool(cores) as pool:
            np.concatenate(pool.map(_strip, strips))


def measure(mode: str, shape: tuple[int, int], out: str) -> tuple[float, float]:
    """Wall time and CPU time of a fresh process running ``mode`` (its workers included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--run", mode, "--size", f"{shape[0]}x{shape[1]}", "--out", out],
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x6000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="out/bench/seed.zarr")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.size.split("x"))
    if args.run:
        run(args.run, shape, args.out)  # type: ignore[arg-type]
        return
    cores = os.cpu_count() or 1
    names = {
        "b": "(b) compiled kernel, 1 thread, no pipeline",
        "t": "(t) pipeline, threads",
        "p": "(p) pipeline, processes (spawned)",
        "m": "(m) multiprocessing.Pool recipe, strips",
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):  # in turns: a noisy minute does not land on one contender
        for mode in names:
            wall, cpu = measure(mode, shape, args.out)  # type: ignore[arg-type]
            if mode not in best or wall < best[mode][0]:
                best[mode] = (wall, cpu)
    print(
        f"{shape[0]}x{shape[1]} float64 in memory, 9x9 kernel, {cores} cores, "
        f"fresh process each, fastest of {args.repeat}"
    )
    base = best["b"][0]
    for mode, name in names.items():
        wall, cpu = best[mode]
        line = f"  {name:44} {wall:6.2f} s   cpu/wall {cpu / wall:4.2f}"
        if mode != "b":
            line += f"   efficiency b/(wall x cores) {base / (wall * cores):4.2f}"
        print(line)
    print(f"  m/p = {best['m'][0] / best['p'][0]:.2f}   m/t = {best['m'][0] / best['t'][0]:.2f}")


if __name__ == "__main__":
    main()
