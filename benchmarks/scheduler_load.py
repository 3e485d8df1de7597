"""What a large plan costs a real distributed scheduler: the time to the first task, the
scheduler's peak memory and the tasks per second, for a plan submitted in waves (what
`pipeline` does) and all at once (what it did before), side by side.

The scheduler and the workers are real processes started from the command line (``dask
scheduler``, ``dask worker``) on 127.0.0.1. The image is virtual (a source that makes its
pixels), so that the plan, not the storage, is what is measured: by default 80000 x 80000 in
256 x 256 blocks, 97,969 tasks, each writing its chunk and its record.

Usage (from the repository root, with the project installed):

    python benchmarks/scheduler_load.py                   # about 10 minutes here
    python benchmarks/scheduler_load.py --size 8000 --block 256
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class VirtualSource:
    """A uint8 image that makes its pixels (zeros) instead of reading them."""

    shape: tuple[int, int]
    tile: tuple[int, int]
    path: None = None
    level: int = 0
    levels: int = 1

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype("uint8")

    @property
    def token(self) -> str:
        return f"virtual:{self.shape}:{self.tile}"

    def read(self, window: Any) -> np.ndarray:
        return np.zeros(window.shape, dtype=self.dtype)


def passthrough(block: np.ndarray) -> np.ndarray:
    return block


def start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    scheduler_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
            cwd=folder, **quiet,
        )
    ]  # fmt: skip
    while not scheduler_file.exists():
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    for k in range(workers):
        home = folder / f"worker{k}"
        home.mkdir()
        processes.append(
            subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                 "--dashboard-address", "127.0.0.1:0", "--local-directory", str(home)],
                cwd=home, **quiet,
            )
        )  # fmt: skip
    return address, processes


def scheduler_rss(dask_scheduler: Any = None) -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def measure(address: str, size: int, block: int, wave: int, folder: Path) -> dict[str, float]:
    from distributed import Client

    import pipeline
    from pipeline.grid import ChunkGrid
    from pipeline.io.records import DONE_DIR
    from pipeline.ops import source_array
    from pipeline.runtime import scheduler

    scheduler.WAVE = wave
    source = VirtualSource((size, size), (block, block))
    image = source_array(source, ChunkGrid.regular((size, size), (block, block)))
    lazy = pipeline.apply(passthrough, image)
    target = folder / f"out-{wave}.zarr"
    peak, first = [0], [0.0]
    stop = threading.Event()
    with Client(address) as watcher:
        base = watcher.run_on_scheduler(scheduler_rss)

        def watch() -> None:
            records = target / DONE_DIR
            while not stop.is_set():
                peak[0] = max(peak[0], watcher.run_on_scheduler(scheduler_rss))
                if not first[0] and records.is_dir() and any(os.scandir(records)):
                    first[0] = time.perf_counter()
                time.sleep(0.2)

        start = time.perf_counter()
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            report = pipeline.save(
                lazy, target, chunks=block, scheduler=address, progress=False, overwrite=True
            )
        finally:
            stop.set()
            thread.join()
        elapsed = time.perf_counter() - start
    shutil.rmtree(target, ignore_errors=True)
    return {
        "tasks": report.tasks,
        "first": (first[0] - start) if first[0] else float("nan"),
        "peak_mb": (peak[0] - base) / 2**20,
        "rate": report.tasks / elapsed,
        "elapsed": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=80000, help="image side, pixels")
    parser.add_argument("--block", type=int, default=256, help="block side, pixels")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="scheduler-load-"))
    address, processes = start_cluster(folder, args.workers)
    try:
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(args.workers, timeout=120)
        rows = []
        for label, wave in (("in waves of 4096", 4096), ("all at once", 10**9)):
            rows.append((label, measure(address, args.size, args.block, wave, folder)))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    tasks = rows[0][1]["tasks"]
    print(
        f"{args.size}x{args.size} virtual image in {args.block}x{args.block} blocks: "
        f"{tasks:.0f} tasks; a `dask scheduler` process and {args.workers} `dask worker` "
        "processes of 1 thread on 127.0.0.1"
    )
    for label, row in rows:
        print(
            f"  {label:>17}: first task after {row['first']:.1f} s, scheduler memory "
            f"+{row['peak_mb']:.0f} MB at its peak, {row['rate']:.0f} tasks/s "
            f"({row['elapsed']:.0f} s in all)"
        )


if __name__ == "__main__":
    main()
