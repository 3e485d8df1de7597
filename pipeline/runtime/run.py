"""Executing a job: start the workers, create (or resume) the output, write every block of
every level with progress, then record the run as complete."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    InputChangedError,
    OutputWriteError,
    PipelineError,
    WorkerDiedError,
)
from pipeline.grid import ChunkGrid, level_shape
from pipeline.io import (
    Remote,
    RunRecord,
    ZarrTarget,
    add_level,
    create_target,
    directory_size,
    done_blocks,
    hold,
    is_store_failure,
    open_source,
    read_record,
    refusal,
    sweep_partials,
    write_record,
)
from pipeline.ops import SourceNode, program_of, to_dask, tokenize
from pipeline.ops.memory import spill_arrays
from pipeline.ops.pyramid import DownsampleNode
from pipeline.report import BlockStats, RunReport
from pipeline.runtime.pool import broken_pool_message
from pipeline.runtime.progress import progress_bar
from pipeline.runtime.resume import resume_output
from pipeline.runtime.scheduler import Executor, executor
from pipeline.runtime.tasks import died_on, forget_running, wait_for_blocks, write_tasks
from pipeline.runtime.watchdog import Watch, watch_blocks

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pipeline.runtime.job import Job

__all__ = ["execute", "level_grids"]


def level_grids(job: Job) -> list[ChunkGrid]:
    """The block grid of every level: level 0's, then each level's stored chunks."""
    grids = [job.grid]
    for level in range(1, job.options.pyramid + 1):
        height, width = level_shape(tuple(int(n) for n in job.image.shape[:2]), level)
        chunks = (min(job.store_chunks[0], height), min(job.store_chunks[1], width))
        grids.append(ChunkGrid.regular((height, width), chunks))
    return grids


def execute(job: Job, *, progress: bool = True) -> RunReport:
    """Run ``job``: create the output, compute and write every block, mark it complete.

    With ``job.options.resume``, an existing incomplete output of the same run (same
    fingerprint) is finished instead: blocks recorded as written, and whose chunks still match
    their checksums, are skipped; damaged or unrecorded ones are computed again.
    """
    from pipeline import __version__

    options = job.options
    record = RunRecord(
        version=__version__,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_id=uuid.uuid4().hex,
        blocks=job.grid.num_blocks,
        fingerprint=job.fingerprint,
        inputs=job.inputs,
        metadata=dict(options.metadata),
    )
    try:
        with hold(job.target, record.run_id) as killed:
            # A run killed while it created the output (its lock is still there) left a store
            # without its record or array, and no block: it is created again.
            unborn = killed is not None and not _has_level(job.target)
            return _execute(job, record, progress=progress, unborn=unborn)
    except Exception as exc:
        if isinstance(job.target, Remote) and is_store_failure(exc):
            if isinstance(exc, PipelineError):
                raise
            # The store failing after its client's retries: the lock, the ledger, the record.
            raise job.target.failure(exc, writing=True) from exc
        if not isinstance(exc, OSError):
            raise
        # Storage refusing a write at any moment (the lock, the ledger, the record), not only
        # while a block is written.
        kept = job.target.is_dir() and bool(_done_or_none(job.target))
        refused = refusal(exc, job.target, doing="writing the output", resumable=kept)
        if refused is None:
            raise
        raise refused from exc


def _done_or_none(target: Path | Remote) -> int:
    """How many blocks of level 0 are recorded as written (none if the ledger is unreadable)."""
    try:
        return len(done_blocks(target, "0"))
    except (OSError, ValueError):
        return 0


def _remove(target: Path | Remote) -> None:
    """Delete an output the run created and wrote no block to: there is nothing to resume."""
    if isinstance(target, Remote):
        with contextlib.suppress(Exception):  # the store failing is what stopped the run
            target.remove_tree()
    else:
        shutil.rmtree(target, ignore_errors=True)


def _has_level(target: Path | Remote) -> bool:
    """Whether the output has its record and its full-resolution array."""
    return (
        read_record(target) is not None
        and (target / "0").is_dir()
        and any((target / "0" / marker).exists() for marker in ("zarr.json", ".zarray"))
    )


def _execute(job: Job, record: RunRecord, *, progress: bool, unborn: bool) -> RunReport:
    """`execute`, holding the output's lock."""
    resumed = job.options.resume and not unborn and read_record(job.target) is not None
    created: list[bool] = []
    try:
        return _compute(
            job, record, progress=progress, resumed=resumed, unborn=unborn, created=created
        )
    except WorkerDiedError as exc:
        # The pool is gone: every worker stopped cleanly but the one that died, whose note of
        # the block it was computing is still there.
        blocks = _died_on(job)
        if created and not done_blocks(job.target, "0"):
            _remove(job.target)  # nothing to resume
        raise WorkerDiedError(broken_pool_message(blocks)) from exc.__cause__
    except BaseException:
        # Blocks of threads still running (stuck, and abandoned) are not blocks it died on.
        forget_running(job.target)
        # After the executor stopped and this process's blocks ended, so that no worker
        # still running writes the folder again.
        if created:
            wait_for_blocks()
        if created and not done_blocks(job.target, "0"):
            _remove(job.target)  # nothing to resume
        raise


def _compute(
    job: Job,
    record: RunRecord,
    *,
    progress: bool,
    resumed: bool,
    unborn: bool,
    created: list[bool],
) -> RunReport:
    """Start the executor, create or resume the output, write every level, record it."""
    options, array = job.options, job.image
    skip: set[tuple[int, int]] = set()
    # The executor starts first: a cluster that cannot start leaves no empty output behind.
    with executor(
        options.scheduler,
        options.workers,
        threads_per_worker=options.threads_per_worker,
        memory_limit=options.memory_limit,
    ) as ex:
        if resumed:
            out, skip, record = resume_output(job.target, record)
        else:
            out = create_target(
                job.target,
                tuple(int(n) for n in array.shape),
                array.dtype,
                job.store_chunks,
                overwrite=options.overwrite or unborn,
                attributes={"pipeline": record.to_json()},
                run_id=record.run_id,
                ngff=options.ngff,
                downsampling=job.downsampling,
                georef=job.georef,
            )
            created.append(True)
        tasks = write_tasks(array, job.grid, out, skip=skip, retries=options.retries, kept=job.kept)
        if ex.dashboard and progress:
            print(f"Dask dashboard: {ex.dashboard}", file=sys.stderr)
        stats: list[BlockStats] = []
        start = time.perf_counter()
        with progress_bar(
            job.grid.num_blocks, job.target.name, enabled=progress, completed=len(skip)
        ) as advance:

            def on_done(result: BlockStats) -> None:
                stats.append(result)
                advance()

            # Workers in other processes memory-map one copy of an in-memory input.
            with (
                contextlib.nullcontext() if ex.shares_memory else spill_arrays(),
                _timed(job) as watch,
            ):
                ex.run(tasks, on_done)
                for level in range(1, options.pyramid + 1):
                    _build_level(job, ex, out, level, progress=progress)
        if watch.expired:  # stopped by the watchdog after all: a block ended just then
            raise watch.error()
        elapsed = time.perf_counter() - start
        report = _report(
            job, ex, stats, len(tasks), elapsed, skipped=len(skip) if resumed else None
        )
    _check_complete(job)
    _check_inputs_unchanged(job)
    record.complete, record.report = True, report.to_dict()
    write_record(job.target, record)
    return report


@contextlib.contextmanager
def _timed(job: Job) -> Iterator[Watch]:
    """Stop the run, naming the block, when a block runs past ``job.options.block_timeout``.

    The watchdog's interrupt may land as the run ends, while the watchdog is stopped: caught
    around the whole watch, not only around the work."""
    seen: list[Watch] = []
    try:
        with watch_blocks(job.target, job.options.block_timeout) as watch:
            seen.append(watch)
            yield watch
    except KeyboardInterrupt:
        if seen and seen[0].expired:
            raise seen[0].error() from None
        raise


def _report(
    job: Job,
    ex: Executor,
    stats: list[BlockStats],
    tasks: int,
    elapsed: float,
    *,
    skipped: int | None,
) -> RunReport:
    extra: dict[str, Any] = {}
    if job.compile_seconds:
        extra["compile_seconds"] = job.compile_seconds
    if skipped is not None:
        extra["blocks_skipped"] = skipped
    shape = tuple(int(n) for n in job.image.shape)
    return RunReport(
        target=str(job.target),
        shape=shape,
        dtype=str(job.image.dtype),
        chunks=job.store_chunks,
        tasks=tasks,
        chunks_written=sum(s.chunks for s in stats),
        chunks_total=ChunkGrid.regular(shape, job.store_chunks).num_blocks,
        elapsed=elapsed,
        task_seconds=sum(s.seconds for s in stats),
        bytes_read=sum(s.bytes_read for s in stats),
        bytes_written=sum(s.bytes_written for s in stats),
        bytes_stored=directory_size(job.target),
        scheduler=ex.name,
        workers=ex.workers,
        extra=extra,
    )


def _check_complete(job: Job) -> None:
    """Every block of every level recorded, temporary files of killed writes swept."""
    sweep_partials(job.target)
    for level, grid in enumerate(level_grids(job)):
        written = len(done_blocks(job.target, str(level)))
        if written != grid.num_blocks:  # cannot happen unless a record was lost
            msg = (
                f"{job.target}: {written} of {grid.num_blocks} blocks of level {level} "
                "are recorded as written after the run; run again with resume=True "
                "(CLI: --resume)"
            )
            raise OutputWriteError(msg)


def _died_on(job: Job) -> list[str]:
    """The blocks a worker process died on, as messages name them."""
    return [_block_name(job.grid, index) for index in died_on(job.target)]


def _block_name(grid: ChunkGrid, index: tuple[int, int]) -> str:
    """A block, as messages name it."""
    window = grid.window(*index)
    return (
        f"the block at pixels {window} (rows {window.y0}-{window.y1 - 1}, columns "
        f"{window.x0}-{window.x1 - 1})"
    )


def _check_inputs_unchanged(job: Job) -> None:
    """Refuse to mark an output complete when an input changed while the run read it (its
    size or modification time): the output would mix old and new data."""
    program = program_of(job.image)
    for read in program.root.sources() if program else ():
        source = getattr(read, "inner", read)  # as stored (not with its nodata as NaN)
        if source.path is None:
            continue
        try:
            now = open_source(source.path, source.level).token
        except PipelineError:
            now = "gone"
        if now != source.token:
            msg = (
                f"the input {source.path} changed while the run read it, so the output mixes "
                f"old and new data; it is left incomplete: run again with overwrite=True "
                "(CLI: --overwrite) once the input stays as it is"
            )
            raise InputChangedError(msg)


def _build_level(job: Job, ex: Executor, base: ZarrTarget, level: int, *, progress: bool) -> None:
    """Write pyramid level ``level`` from level ``level - 1`` as stored, one task per chunk,
    with the same records (and resume) as level 0."""
    grid = level_grids(job)[level]
    target = add_level(base, level, grid.chunk_shape)
    below = SourceNode(open_source(job.target, level=level - 1))
    node = DownsampleNode(below, job.downsampling["type"])
    array = to_dask(node, grid, f"level{level}-{tokenize(node.token, grid)}")
    skip = set(done_blocks(job.target, str(level))) if job.options.resume else set()
    tasks = write_tasks(array, grid, target, skip=skip, retries=job.options.retries)
    label = f"{job.target.name} level {level}"
    with progress_bar(grid.num_blocks, label, enabled=progress, completed=len(skip)) as advance:
        ex.run(tasks, lambda _: advance())
