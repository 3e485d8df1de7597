"""Running a checked job: schedulers, the write task, retries, resume and progress.

Nothing here imports `pipeline.planning`: a plan hands the runtime a :class:`Job`.
"""

from __future__ import annotations

from pipeline.runtime.job import Job, RunOptions
from pipeline.runtime.run import execute, level_grids
from pipeline.runtime.scheduler import (
    SCHEDULERS,
    check_scheduler,
    executor,
    parallelism,
    scheduler_label,
)
from pipeline.runtime.supervisor import can_supervise, supervise
from pipeline.runtime.tasks import blocks_running, write_tasks

__all__ = [
    "SCHEDULERS",
    "Job",
    "RunOptions",
    "blocks_running",
    "can_supervise",
    "check_scheduler",
    "execute",
    "executor",
    "level_grids",
    "parallelism",
    "scheduler_label",
    "supervise",
    "write_tasks",
]
