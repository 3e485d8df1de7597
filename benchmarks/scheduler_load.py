"""What a run costs the distributed scheduler, per task: for sizing runs on a cluster.

Builds the write graph of a slope run over a large TIFF in small blocks (many tasks), submits
it to a local distributed scheduler, measures the scheduler's memory before and once every
task is known to it, and the pickled size of the graph per task; then cancels the run. Prints
the task count of dask's ``map_overlap`` graph for the same blocks, for comparison.

Usage (from the repository root, with the project installed):

    python benchmarks/scheduler_load.py --tif data/bench/dem-40000.tif --block 256
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import cloudpickle
import dask.array as da
import numpy as np


def scheduler_rss(client: object) -> int:
    def rss(dask_scheduler: object = None) -> int:
        import psutil

        return int(psutil.Process().memory_info().rss)

    return int(client.run_on_scheduler(rss))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tif",
        type=Path,
        default=Path("data/bench/dem-40000.tif"),
        help="a large tiled TIFF (benchmarks/out_of_core.py writes one)",
    )
    parser.add_argument("--block", type=int, default=256)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import pipeline
    from pipeline.io import create_target
    from pipeline.ops.terrain_kernels import slope
    from pipeline.runtime import write_tasks

    work = Path(tempfile.mkdtemp(prefix="scheduler-load-"))
    block = args.block
    image = pipeline.open_image(args.tif, chunks=block)
    size = image.shape
    lazy = pipeline.apply(slope, image, cell_size=30.0, dtype="float32")
    checked = pipeline.plan(lazy, work / "plan.zarr")
    target = create_target(
        work / "out.zarr",
        size,
        np.dtype("float32"),
        (block, block),
        overwrite=False,
        attributes={},
        run_id="load",
    )
    tasks = write_tasks(lazy, checked.grid, target)
    ours = dict(tasks[0].__dask_graph__())
    ours_bytes = len(cloudpickle.dumps(ours, protocol=pickle.HIGHEST_PROTOCOL))

    def horn(b: np.ndarray) -> np.ndarray:
        return b

    plain = da.zeros(size, dtype=np.uint16, chunks=block)
    overlap = plain.map_overlap(horn, depth=1, boundary="nearest").to_zarr(
        str(work / "dask.zarr"), compute=False
    )
    theirs = dict(overlap.__dask_graph__())

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        before = scheduler_rss(client)
        start = time.perf_counter()
        futures = client.compute(tasks)

        def known(dask_scheduler: object) -> int:
            return len(dask_scheduler.tasks)  # type: ignore[attr-defined]

        while client.run_on_scheduler(known) < len(ours):
            time.sleep(0.2)
        submitted = time.perf_counter() - start
        after = scheduler_rss(client)
        client.cancel(futures)

    print(f"{size[0]}x{size[1]} image in {block}x{block} blocks")
    print(
        f"  pipeline graph: {len(ours)} tasks, {ours_bytes / len(ours):.0f} bytes per task pickled"
    )
    print(
        f"  dask map_overlap + to_zarr graph for the same blocks: {len(theirs)} tasks "
        f"({len(theirs) / len(ours):.1f}x)"
    )
    print(
        f"  scheduler memory: {before / 2**20:.0f} MB before, {after / 2**20:.0f} MB with the "
        f"run submitted: {(after - before) / len(ours) / 1024:.1f} kB per task "
        f"(submitted in {submitted:.1f} s)"
    )


if __name__ == "__main__":
    main()
