"""Scheduler names and worker counts, checked before anything starts."""

from __future__ import annotations

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
