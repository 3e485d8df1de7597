"""Scheduler names and worker counts, checked before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ArgumentError, SchedulerError
from pipeline.machine import default_workers
from pipeline.runtime import RunOptions, check_scheduler, parallelism, scheduler_label


@pytest.mark.parametrize(
    ("workers", "message"),
    [(True, "must be a whole number"), (2.5, "must be a whole number"), (0, "at least 1")],
)
def test_a_bad_worker_count_is_refused(workers: object, message: str) -> None:
    with pytest.raises(SchedulerError, match=message):
        check_scheduler("threads", workers)  # type: ignore[arg-type]


def test_an_unknown_scheduler_is_refused_with_the_closest_name() -> None:
    with pytest.raises(SchedulerError, match=r"unknown scheduler 'proceses': did you mean"):
        check_scheduler("proceses")
    with pytest.raises(SchedulerError, match="is not a scheduler"):
        check_scheduler(42)
    check_scheduler("tcp://127.0.0.1:8786")  # an address is taken as it is


@pytest.mark.parametrize(
    ("scheduler", "workers", "threads_per_worker", "expected"),
    [
        ("synchronous", 4, 1, (1, 1)),
        ("threads", 3, 1, (3, 3)),
        (None, 3, 1, (3, 3)),
        ("processes", 3, 1, (1, 3)),
        ("distributed", 2, 2, (2, 4)),
        ("tcp://127.0.0.1:8786", 2, 1, (1, 2)),
    ],
)
def test_tasks_at_once_per_process_and_in_all(
    scheduler: str | None, workers: int, threads_per_worker: int, expected: tuple[int, int]
) -> None:
    assert parallelism(scheduler, workers, threads_per_worker) == expected


def test_without_a_count_every_core_is_a_worker() -> None:
    cores = default_workers()
    assert parallelism("threads", None, 1) == (cores, cores)
    assert scheduler_label("processes", None) == "processes, one worker per core"
    assert scheduler_label(None, 2) == "threads, 2 workers"


def test_an_unknown_option_names_the_closest_one() -> None:
    with pytest.raises(ArgumentError, match=r"unknown option 'pyramids': did you mean 'pyramid'"):
        RunOptions.of({"pyramids": 2})
    assert RunOptions.of({"pyramid": 2}).pyramid == 2


def test_a_cluster_gets_the_tasks_in_waves(
    tmp_path: Path, cluster_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most WAVE tasks are on the scheduler at once, topped up as they finish: its memory
    stays bounded and the first task starts at once, whatever the plan's size."""
    import numpy as np

    import pipeline
    from pipeline.runtime import scheduler as module

    monkeypatch.setattr(module, "WAVE", 4)
    batches: list[int] = []
    compute = cluster_client.compute

    def counted(batch: Any, *args: Any, **kwargs: Any) -> Any:
        batches.append(len(batch))
        return compute(batch, *args, **kwargs)

    monkeypatch.setattr(cluster_client, "compute", counted)
    image = np.arange(60 * 50, dtype="float32").reshape(60, 50)
    report = pipeline.save(
        pipeline.apply(lambda b: b + 1, image), tmp_path / "o.zarr", chunks=10, progress=False,
        scheduler=cluster_client,
    )  # fmt: skip
    assert report.tasks > 4  # more than one wave
    assert batches[0] == 4 and max(batches) <= 4 and sum(batches) == report.tasks
    np.testing.assert_array_equal(pipeline.open_image(tmp_path / "o.zarr").compute(), image + 1)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_the_largest_blocks_run_first_and_the_edge_blocks_last(
    tmp_path: Path, scheduler: str
) -> None:
    """The last tasks of a run leave cores idle as they end unevenly: they are the smallest
    (the blocks cut by the image's border), and the full blocks run before them."""
    import numpy as np

    import pipeline

    seen: list[int] = []

    def record(block: np.ndarray) -> np.ndarray:
        seen.append(block.size)
        return block

    image = pipeline.open_image(np.zeros((250, 370), dtype="float32"), chunks=(100, 100))
    pipeline.save(
        pipeline.apply(record, image), tmp_path / "o.zarr", scheduler=scheduler, workers=1,
        progress=False,
    )  # fmt: skip
    assert len(seen) == 3 * 4
    assert seen == sorted(seen, reverse=True)
    assert seen[0] == 100 * 100 and seen[-1] == 50 * 70
