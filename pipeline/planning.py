"""Plans: every check done before computing, then one task per block streaming into Zarr.

`plan` checks a run without computing anything (chunk alignment, the scheduler, the output
path against the inputs, an existing output) and returns a :class:`Plan` that says what the
run will do. `Plan.execute` runs it; `save` is both in one call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    AlignmentError,
    ArgumentError,
    MemoryBudgetError,
    OutputExistsError,
    OutputWriteError,
    PerformanceWarning,
    PipelineError,
    ResumeError,
    SchedulerError,
)
from pipeline.grid import (
    BlockChoice,
    ChunkGrid,
    Window,
    check_write_alignment,
    choose_blocks,
    divide_for_storage,
    normalize_chunks,
)
from pipeline.image import open_image
from pipeline.io import (
    NGFF_VERSIONS,
    ZarrTarget,
    add_level,
    codec_label,
    create_target,
    damaged_chunks,
    directory_size,
    done_blocks,
    forget_block,
    open_target,
    read_group_attributes,
    sweep_partials,
    update_group_attributes,
)
from pipeline.machine import available_memory, default_workers
from pipeline.ops import (
    Node,
    Program,
    StepNode,
    as_dask,
    block_task,
    program_of,
    to_dask,
    tokenize,
)
from pipeline.ops.memory import ArraySource, spill_arrays
from pipeline.ops.pyramid import DOWNSAMPLE_METHODS, DownsampleNode, default_method
from pipeline.progress import progress_bar
from pipeline.report import BlockStats, RunReport, format_bytes
from pipeline.scheduler import check_scheduler, executor

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.grid import ChunksLike
    from pipeline.ops.program import ChunkKey

__all__ = ["Plan", "plan", "save"]


@dataclass
class Plan:
    """A checked run that has not started: what it reads, computes and writes, and where."""

    image: da.Array
    """The lazy result to write."""
    target: Path
    """Output store."""
    grid: ChunkGrid
    """Output blocks: one task each."""
    store_chunks: tuple[int, int]
    """Stored chunk shape."""
    overwrite: bool = False
    """Replace an existing output."""
    scheduler: Any = None
    """Scheduler name, address or client (``None``: threads, or the default client)."""
    workers: int | None = None
    """Worker threads or processes."""
    threads_per_worker: int = 1
    """Threads in each worker process of a cluster started for the run."""
    memory_limit: str | None = None
    """Memory limit per worker of a cluster started for the run (``"4GB"``)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance stored with the output (the config of a CLI run)."""
    choice: BlockChoice | None = None
    """How the blocks were chosen, when the plan chose them."""
    memory_per_task: int = 0
    """Projected peak of the arrays one task holds at once, bytes."""
    memory_per_worker: int = 0
    """Projected peak resident memory of one worker process (its tasks with the allocator's
    slack, its tile cache, its runtime), bytes."""
    memory_budget: int = 0
    """What a worker process may use, bytes."""
    budget_source: str = ""
    """Where the budget comes from."""
    retries: int = 2
    """Attempts more a block gets after a transient I/O error (not after an error of the
    function, which is reported at once)."""
    pyramid: int = 0
    """Pyramid levels to add, each half the size of the one below, built from the stored
    full-resolution level."""
    downsample: str | None = None
    """How a level is made from the one below: ``mean`` or ``nearest`` (default: by dtype)."""
    ngff: str = "0.5"
    """OME-Zarr version of the output: ``0.5`` (Zarr v3) or ``0.4`` (Zarr v2)."""

    @property
    def program(self) -> Program | None:
        """The fused program, when the image was made by `pipeline`."""
        return program_of(self.image)

    @property
    def tasks(self) -> int:
        """Tasks the run executes: one per output block (plus those of a foreign dask input)."""
        return self.grid.num_blocks

    @property
    def halo(self) -> tuple[int, int]:
        """Total halo each block reads, summed along the chain of steps."""
        return _total_halo(self.program.root) if self.program else (0, 0)

    @property
    def compile_seconds(self) -> float:
        """Time spent compiling per-pixel kernels for this run (in this process)."""
        return sum(s.compile_seconds for s in _steps(self.program.root)) if self.program else 0.0

    @property
    def inputs(self) -> list[Path]:
        """Files the run reads."""
        return _input_paths(self.program.root) if self.program else []

    @property
    def bytes_read(self) -> int:
        """Input bytes the tasks read, halos included (for a grid of over 10 000 blocks,
        extrapolated from a sample of them)."""
        if self.program is None:
            return int(self.image.nbytes)
        blocks = list(self.grid.blocks())
        step = max(1, len(blocks) // 10_000)
        sample = blocks[::step]
        total = sum(self.program.root.bytes_read(window) for _, window in sample)
        return int(total * len(blocks) / len(sample))

    @property
    def reread_overhead(self) -> float:
        """Bytes read beyond one read of every input, as a share of that."""
        if self.program is None:
            return 0.0
        inputs = sum(_leaf_bytes(self.program.root))
        return self.bytes_read / inputs - 1 if inputs else 0.0

    def describe(self) -> list[tuple[str, str]]:
        """``(label, value)`` rows of the readable summary."""
        shape = "x".join(map(str, self.image.shape))
        hy, hx = self.halo
        by, bx = self.grid.chunk_shape
        how = f"chosen: {self.choice.reason}" if self.choice else "as given"
        return [
            ("inputs", ", ".join(str(p) for p in self.inputs) or "in-memory array"),
            ("steps", " -> ".join(_step_labels(self.program.root)) if self.program else "-"),
            ("output", f"{self.target} ({shape} {self.image.dtype})"),
            ("tasks", f"{self.tasks}, one per block ({self.grid})"),
            ("blocks", f"{by}x{bx}, {how}"),
            ("halo", f"{hy}x{hx} pixels around each block"),
            ("re-read", f"{self.reread_overhead:.1%} of the input read again as halos"),
            (
                "stored chunks",
                f"{self.store_chunks[0]}x{self.store_chunks[1]}, {codec_label(self.image.dtype)}",
            ),
            ("format", _format_row(self)),
            ("reads", format_bytes(self.bytes_read) + " of input pixels, halos included"),
            ("writes", format_bytes(self.image.nbytes) + " before compression"),
            ("memory", _memory_row(self)),
            ("scheduler", _scheduler_label(self.scheduler, self.workers)),
        ]

    def _repr_html_(self) -> str:
        """The summary as a table, for Jupyter."""
        from html import escape

        body = "".join(
            f"<tr><th style='text-align:left'>{escape(label)}</th>"
            f"<td style='text-align:left'>{escape(value)}</td></tr>"
            for label, value in self.describe()
        )
        return f"<table><caption><b>pipeline Plan</b></caption>{body}</table>"

    def __repr__(self) -> str:
        rows = self.describe()
        width = max(len(label) for label, _ in rows)
        body = "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)
        return f"Plan(\n{body}\n)"

    def _downsampling(self) -> dict[str, Any]:
        """The multiscales ``type`` and ``metadata`` of the output (NGFF)."""
        from pipeline import __version__

        method = self.downsample or default_method(self.image.dtype)
        what = "mean of the non-NaN pixels" if method == "mean" else "top-left pixel"
        return {
            "type": method,
            "metadata": {
                "description": f"each level halves the one below: the {what} of each 2x2 block",
                "method": "pipeline.ops.pyramid.downsample",
                "version": __version__,
            },
        }

    def _level_grids(self) -> list[ChunkGrid]:
        """The block grid of every level: level 0's, then each level's stored chunks."""
        grids = [self.grid]
        height, width = (int(n) for n in self.image.shape[:2])
        for _ in range(self.pyramid):
            height, width = -(-height // 2), -(-width // 2)
            chunks = (min(self.store_chunks[0], height), min(self.store_chunks[1], width))
            grids.append(ChunkGrid.regular((height, width), chunks))
        return grids

    def _build_level(
        self, ex: Any, base: ZarrTarget, level: int, *, resume: bool, progress: bool
    ) -> None:
        """Write pyramid level ``level`` from level ``level - 1`` as stored, one task per
        chunk, with the same records (and resume) as level 0."""
        grid = self._level_grids()[level]
        target = add_level(base, level, grid.chunk_shape)
        below = open_image(self.target, level=level - 1)
        source = program_of(below)
        assert source is not None
        method = self.downsample or default_method(self.image.dtype)
        node = DownsampleNode(source.root, method)  # type: ignore[arg-type]
        name = f"level{level}-{tokenize(node.token, grid)}"
        array = to_dask(node, grid, name)
        skip = set(done_blocks(self.target, str(level))) if resume else set()
        tasks = _write_tasks(array, grid, target, skip=skip, retries=self.retries)
        label = f"{self.target.name} level {level}"
        with progress_bar(grid.num_blocks, label, enabled=progress, completed=len(skip)) as advance:
            ex.run(tasks, lambda _: advance())

    def fingerprint(self) -> dict[str, Any]:
        """What makes an output the output of this run: the identity of the inputs (path,
        size, modification time), every step (function source, settings, halo, boundary,
        dtype), the output layout and the package version. A resume must match it."""
        from pipeline import __version__

        root = self.program.root if self.program else None
        return {
            "inputs": sorted(s.token for s in root.sources()) if root else [self.image.name],
            "steps": [_describe_step(step) for step in _steps(root)] if root else [],
            "layout": {
                "shape": list(self.image.shape),
                "dtype": str(self.image.dtype),
                "blocks": list(self.grid.chunk_shape),
                "chunks": list(self.store_chunks),
                "codec": codec_label(self.image.dtype),
                "pyramid": self.pyramid,
                "downsample": self.downsample or default_method(self.image.dtype),
                "ngff": self.ngff,
            },
            "version": __version__,
        }

    def execute(self, *, progress: bool = True, resume: bool = False) -> RunReport:
        """Run the plan: create the output, compute and write every block, mark it complete.

        With ``resume``, an existing incomplete output of the same run (same fingerprint) is
        finished instead: blocks recorded as written, and whose chunks still match their
        checksums, are skipped; damaged or unrecorded ones are computed again.
        """
        array = self.image
        run_id = uuid.uuid4().hex
        fingerprint = self.fingerprint()
        info: dict[str, Any] = {
            "version": fingerprint["version"],
            "complete": False,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "inputs": sorted(str(p) for p in self.inputs),
            "blocks": self.grid.num_blocks,
            "fingerprint": fingerprint,
            **self.metadata,
        }
        skip: set[tuple[int, int]] = set()
        resumed = resume and self.target.exists()
        # The executor starts first: a cluster that cannot start leaves no empty output behind.
        with executor(
            self.scheduler,
            self.workers,
            threads_per_worker=self.threads_per_worker,
            memory_limit=self.memory_limit,
        ) as ex:
            if resumed:
                out, skip, info = _resume(self.target, fingerprint, run_id, info)
            else:
                out = create_target(
                    self.target,
                    tuple(int(n) for n in array.shape),
                    array.dtype,
                    self.store_chunks,
                    overwrite=self.overwrite,
                    attributes={"pipeline": info},
                    run_id=run_id,
                    ngff=self.ngff,
                    downsampling=self._downsampling(),
                )
            tasks = _write_tasks(array, self.grid, out, skip=skip, retries=self.retries)
            if ex.dashboard and progress:
                print(f"Dask dashboard: {ex.dashboard}", file=sys.stderr)
            stats: list[BlockStats] = []
            with progress_bar(
                self.grid.num_blocks, self.target.name, enabled=progress, completed=len(skip)
            ) as advance:

                def on_done(result: BlockStats) -> None:
                    stats.append(result)
                    advance()

                start = time.perf_counter()
                try:
                    # Workers in other processes memory-map one copy of an in-memory input.
                    with contextlib.nullcontext() if ex.shares_memory else spill_arrays():
                        ex.run(tasks, on_done)
                except BaseException:
                    if not resumed and not done_blocks(self.target, "0"):
                        shutil.rmtree(self.target, ignore_errors=True)  # nothing to resume
                    raise
                elapsed = time.perf_counter() - start
            for level in range(1, self.pyramid + 1):
                self._build_level(ex, out, level, resume=resumed, progress=progress)
            elapsed = time.perf_counter() - start
            scheduler_name, n_workers = ex.name, ex.workers
        stored = ChunkGrid.regular(array.shape, self.store_chunks)
        extra: dict[str, Any] = {}
        if self.compile_seconds:
            extra["compile_seconds"] = self.compile_seconds
        if resumed:
            extra["blocks_skipped"] = len(skip)
        report = RunReport(
            target=str(self.target),
            shape=tuple(int(n) for n in array.shape),
            dtype=str(array.dtype),
            chunks=self.store_chunks,
            tasks=len(tasks),
            chunks_written=sum(s.chunks for s in stats),
            chunks_total=stored.num_blocks,
            elapsed=elapsed,
            task_seconds=sum(s.seconds for s in stats),
            bytes_read=sum(s.bytes_read for s in stats),
            bytes_written=sum(s.bytes_written for s in stats),
            bytes_stored=directory_size(self.target),
            scheduler=scheduler_name,
            workers=n_workers,
            extra=extra,
        )
        sweep_partials(self.target)  # writes a killed worker left behind, redone since
        for level, grid in enumerate(self._level_grids()):
            written = len(done_blocks(self.target, str(level)))
            if written != grid.num_blocks:  # cannot happen unless a record was lost
                msg = (
                    f"{self.target}: {written} of {grid.num_blocks} blocks of level {level} "
                    "are recorded as written after the run; run again with resume=True "
                    "(CLI: --resume)"
                )
                raise OutputWriteError(msg)
        info.update(complete=True, report=report.to_dict())
        update_group_attributes(self.target, {"pipeline": info})
        return report


def _resume(
    target: Path, fingerprint: dict[str, Any], run_id: str, info: dict[str, Any]
) -> tuple[ZarrTarget, set[tuple[int, int]], dict[str, Any]]:
    """Check that ``target`` is this run's output, sweep interrupted writes, and find the
    blocks that are written and intact."""
    try:
        previous = read_group_attributes(target).get("pipeline")
    except Exception as exc:
        msg = f"cannot resume {target}: it is not a readable pipeline output ({exc})"
        raise ResumeError(msg) from exc
    if not isinstance(previous, dict) or "fingerprint" not in previous:
        msg = f"cannot resume {target}: it was not written by a pipeline run that can resume"
        raise ResumeError(msg)
    changes = _differences(previous["fingerprint"], fingerprint)
    if changes:
        msg = (
            f"cannot resume {target}: the run changed since it was started ({'; '.join(changes)}"
            "); run without --resume and with --overwrite to start again"
        )
        raise ResumeError(msg)
    sweep_partials(target)
    skip = set()
    for index, sums in done_blocks(target).items():
        if damaged_chunks(target, sums):
            forget_block(target, index)  # damaged since it was written: compute it again
        else:
            skip.add(index)
    kept = {**previous, "run_id": run_id, "resumed": info["created"], "complete": False}
    update_group_attributes(target, {"pipeline": kept})
    return open_target(target, run_id), skip, kept


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two fingerprints, in words."""
    changes = []
    if old.get("inputs") != new["inputs"]:
        changes.append("an input file changed (path, size or modification time)")
    old_steps, new_steps = old.get("steps", []), new["steps"]
    if len(old_steps) != len(new_steps):
        changes.append(f"the steps changed ({len(old_steps)} before, {len(new_steps)} now)")
    else:
        for k, (a, b) in enumerate(zip(old_steps, new_steps, strict=True)):
            fields = [f for f in b if a.get(f) != b[f]]
            if fields:
                what = ", ".join(
                    f"{f} {a.get(f)} -> {b[f]}" if f != "source" else "its code" for f in fields
                )
                changes.append(f"step {k} ({b['function']}) changed: {what}")
    for key, value in new["layout"].items():
        if old.get("layout", {}).get(key) != value:
            changes.append(f"the output {key} changed ({old['layout'].get(key)} -> {value})")
    if old.get("version") != new["version"]:
        changes.append(f"pipeline changed from {old.get('version')} to {new['version']}")
    return changes


def _describe_step(step: StepNode) -> dict[str, Any]:
    func = step.func
    target = getattr(func, "kernel", None)
    code = getattr(target, "func", None) or getattr(func, "func", None) or func
    settings = getattr(func, "params", None) if target is not None else step.params
    finish = getattr(target, "finish", None)
    return {
        "function": step.label,
        "source": _source_digest(code) + (f"+{_source_digest(finish)}" if finish else ""),
        "params": repr(settings),
        "depth": list(step.depth),
        "boundary": str(step.boundary),
        "dtype": str(step.dtype),
    }


def _source_digest(func: Any) -> str:
    import hashlib
    import inspect

    try:
        text = inspect.getsource(inspect.unwrap(func))
    except (OSError, TypeError):
        from pipeline.ops import tokenize

        text = tokenize(func)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(
    image: Any,
    target: str | os.PathLike[str],
    *,
    chunks: ChunksLike = None,
    overwrite: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = None,
    metadata: dict[str, Any] | None = None,
    resume: bool = False,
    retries: int = 2,
    pyramid: int = 0,
    downsample: str | None = None,
    ngff: str = "0.5",
) -> Plan:
    """Check a run of ``image`` into ``target`` without computing anything.

    Takes the arguments of :func:`save`. Raises the error a run would hit before its first
    task: misaligned chunks, an unknown scheduler, an output at or around an input, an
    existing output without ``overwrite``.
    """
    _exit_if_bootstrapping()
    array = open_image(image) if isinstance(image, (str, os.PathLike)) else as_dask(image)
    if array.ndim not in (2, 3) or 0 in array.shape:
        msg = f"cannot save an image of shape {array.shape}: it must be non-empty (Y, X[, C])"
        raise ArgumentError(msg)
    check_scheduler(scheduler, workers)
    program = program_of(array)
    # The scheduler first: memory is projected and checked for the processes that will run.
    scheduler = _scheduler_for(program, scheduler)
    threads, concurrent = _parallelism(scheduler, workers, threads_per_worker)
    budget, budget_source = _memory_budget(scheduler, memory_limit, concurrent // threads)
    choice = None
    if program is not None and program.auto_grid:
        shape2d = (int(array.shape[0]), int(array.shape[1]))
        if chunks is not None:
            unit = normalize_chunks(chunks, array.shape, (1, 1)).chunk_shape
        else:
            unit = _storage_unit(program.root, shape2d)
        root = program.root
        choice = choose_blocks(
            shape2d,
            unit,
            _total_halo(root),
            memory=lambda block: _worker_bytes(root, block, threads),
            budget=budget,
            workers=concurrent,
            budget_source=budget_source,
        )
        array = program.regrid(ChunkGrid.regular(array.shape, choice.block))
        program = program_of(array)
        if chunks is None:
            chunks = divide_for_storage(choice.block, unit)
    grid = ChunkGrid.from_dask(array.chunks)
    store_chunks = _store_chunks(grid, chunks, array.shape)
    check_write_alignment(grid, store_chunks)
    per_task = (
        _task_bytes(program.root, grid.chunk_shape)
        if program is not None
        else _array_task_bytes(array)
    )
    per_worker = _worker_total(per_task, threads)
    if per_worker > budget:
        by, bx = grid.chunk_shape
        msg = (
            f"blocks of {by}x{bx} project {format_bytes(per_worker)} per worker "
            f"({threads} task(s) of {format_bytes(per_task)} at once, plus tile cache and "
            f"runtime), over the budget of {format_bytes(budget)} ({budget_source}); use "
            "smaller blocks (open_image(chunks=...), or leave them to the plan), fewer threads "
            "per worker, or a larger memory limit (compute.memory_limit)"
        )
        raise MemoryBudgetError(msg)
    target_path = Path(target).expanduser()
    if program is not None:
        _check_not_inside_inputs(target_path, program.root)
        _check_arrays_reach_workers(program.root, scheduler)
    _check_output(target_path, overwrite=overwrite, resume=resume)
    _check_pyramid(array.shape, pyramid, downsample, ngff)
    return Plan(
        image=array,
        target=target_path,
        grid=grid,
        store_chunks=store_chunks,
        overwrite=overwrite,
        scheduler=scheduler,
        workers=workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        metadata=dict(metadata or {}),
        choice=choice,
        memory_per_task=per_task,
        memory_per_worker=per_worker,
        memory_budget=budget,
        budget_source=budget_source,
        retries=retries,
        pyramid=pyramid,
        downsample=downsample,
        ngff=ngff,
    )


def _exit_if_bootstrapping() -> None:
    """Quietly end a spawned worker that is importing the user's script again, and reached its
    unguarded run: the parent then reports the missing ``__main__`` guard once, in one line,
    instead of each worker printing a traceback of its own."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def _scheduler_for(program: Program | None, scheduler: Any) -> Any:
    """``scheduler``, or ``"processes"`` where threads would take turns on the GIL."""
    if program is None or scheduler not in (None, "threads"):
        return scheduler
    held = [s.label for s in _steps(program.root) if s.gil_bound]
    if not held:
        return scheduler
    warnings.warn(
        f"{', '.join(held)} runs as plain Python, which holds the GIL: running in "
        "processes instead of threads, which would take turns",
        PerformanceWarning,
        stacklevel=4,
    )
    return "processes"


BASELINE_BYTES = 256 * 2**20
"""A worker process before it holds any block: Python, numpy, dask, zarr, numba."""
ALLOCATOR_SLACK = 2.0
"""Resident memory per byte a task holds at its peak. The allocator keeps blocks a task freed
for the next (glibc's per-thread arenas, which fragment), so a process's resident size grows
past the live arrays: slope on a 20000² TIFF in 2048² blocks, with 74 MB per task projected
(and tracemalloc's peak below that), grew the process by 138 MB with one thread, 249 MB
with two (``benchmarks/out_of_core.py``)."""
BUDGET_SHARE = 0.6
"""Share of the available memory a run plans to use by default."""


def _parallelism(scheduler: Any, workers: int | None, threads_per_worker: int) -> tuple[int, int]:
    """``(tasks at once in one process, tasks at once in all)``."""
    name = scheduler if isinstance(scheduler, str) else None
    count = workers or default_workers()
    if name == "synchronous":
        return 1, 1
    if name == "processes":
        return 1, count
    if name == "distributed":
        return threads_per_worker, count * threads_per_worker if workers else count
    if name is None and scheduler is not None:  # a Client
        threads = sum(scheduler.nthreads().values()) or 1
        return max(scheduler.nthreads().values() or [1]), threads
    if name is not None and "://" in name:
        return threads_per_worker, count
    return count, count  # threads


def _memory_budget(scheduler: Any, memory_limit: str | None, processes: int) -> tuple[int, str]:
    """Bytes one worker process may use, and where that figure comes from."""
    if memory_limit:
        from dask.utils import parse_bytes

        return int(parse_bytes(memory_limit)), f"memory_limit {memory_limit}"
    available = available_memory()
    share = int(available * BUDGET_SHARE / max(processes, 1))
    return share, (
        f"{BUDGET_SHARE:.0%} of the {format_bytes(available)} available"
        + (f", shared by {processes} processes" if processes > 1 else "")
    )


def _process_bytes() -> int:
    from pipeline.io.cache import tile_cache

    return BASELINE_BYTES + tile_cache.max_bytes


def _task_bytes(root: Node, block: tuple[int, int]) -> int:
    """One task's projected peak: its program on a block at the image corner (where padding
    copies add up) or in the middle, whichever is more, plus the write's buffers."""
    height, width = root.image_shape
    by, bx = min(block[0], height), min(block[1], width)
    corner = Window(0, by, 0, bx)
    y0, x0 = max(0, (height - by) // 2), max(0, (width - bx) // 2)
    middle = Window(y0, y0 + by, x0, x0 + bx)
    compute = max(root.peak_bytes(corner), root.peak_bytes(middle))
    return compute + 2 * by * bx * root.pixel_nbytes  # the block and its compressed copy


def _array_task_bytes(array: da.Array) -> int:
    by, bx = ChunkGrid.from_dask(array.chunks).chunk_shape
    per_pixel = int(array.dtype.itemsize) * (int(array.shape[2]) if array.ndim == 3 else 1)
    return 3 * by * bx * per_pixel


def _worker_bytes(root: Node, block: tuple[int, int], threads: int) -> int:
    return _worker_total(_task_bytes(root, block), threads)


def _worker_total(per_task: int, threads: int) -> int:
    """A worker's resident memory: its tasks' arrays with the allocator's slack, its tile
    cache and its runtime."""
    return int(threads * per_task * ALLOCATOR_SLACK) + _process_bytes()


def _storage_unit(root: Node, shape: tuple[int, int]) -> tuple[int, int]:
    """The storage tile of the first file read; rows of a memory map are too thin a unit."""
    for source in root.sources():
        tile = getattr(source, "tile", None)
        if tile is not None and min(tile) >= 16:
            return (min(tile[0], shape[0]), min(tile[1], shape[1]))
    return (min(256, shape[0]), min(256, shape[1]))


def _leaf_bytes(root: Node) -> list[int]:
    seen: dict[int, int] = {}
    for leaf, _ in root.leaf_reads(Window.from_shape(root.shape)):
        seen[id(leaf)] = leaf.shape[0] * leaf.shape[1] * leaf.pixel_nbytes
    return list(seen.values())


def _memory_row(plan: Plan) -> str:
    return (
        f"{format_bytes(plan.memory_per_task)} per task, {format_bytes(plan.memory_per_worker)} "
        f"per worker process (budget {format_bytes(plan.memory_budget)}: {plan.budget_source})"
    )


def save(
    image: Any,
    target: str | os.PathLike[str],
    *,
    chunks: ChunksLike = None,
    overwrite: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
    resume: bool = False,
    pyramid: int = 0,
    downsample: str | None = None,
    ngff: str = "0.5",
) -> RunReport:
    """Compute ``image`` block by block and stream it into a Zarr store at ``target``.

    Parameters
    ----------
    image
        An array from :func:`~pipeline.apply` or :func:`~pipeline.open_image`, any dask or
        numpy array, or a path (which is opened, for a format conversion).
    target
        Directory of the output: an OME-Zarr (NGFF 0.5) group whose array ``"0"`` holds the
        image (Zarr v3; floats compressed with blosc's LZ4 after a byte shuffle, integers
        with zstd). ``(Y, X, C)`` images are stored channel first.
    chunks
        Stored chunk shape along Y and X. Default: the image's blocks. Every block must
        consist of whole stored chunks, so that no two tasks ever write the same chunk.
    overwrite
        Replace an existing output (only ever a Zarr store). The input is never touched.
    scheduler
        ``"threads"`` (default), ``"synchronous"``, ``"processes"`` (spawn-safe),
        ``"distributed"`` (a local cluster for this run), an address ``"tcp://host:port"``, or
        a ``distributed.Client``.
    workers
        Threads or processes; default: the cores available.
    progress
        Show a progress bar on stderr.
    resume
        Finish an interrupted run of the same computation into ``target``: blocks already
        written (and intact) are kept, the rest are computed.
    pyramid
        Levels to add to the output, each half the size of the one below, built from the
        stored full-resolution level (not by computing again).
    downsample
        ``"mean"`` (of the non-NaN pixels of each 2x2 block: continuous data) or
        ``"nearest"`` (its top-left pixel: labels); default: ``mean`` for floating-point
        outputs, ``nearest`` for integer ones.
    ngff
        OME-Zarr version: ``"0.5"`` (Zarr v3, default) or ``"0.4"`` (Zarr v2).

    Returns
    -------
    RunReport
        Time, throughput, tasks, bytes read and written.
    """
    checked = plan(
        image,
        target,
        chunks=chunks,
        overwrite=overwrite,
        scheduler=scheduler,
        workers=workers,
        resume=resume,
        pyramid=pyramid,
        downsample=downsample,
        ngff=ngff,
    )
    return checked.execute(progress=progress, resume=resume)


def _store_chunks(grid: ChunkGrid, chunks: ChunksLike, shape: tuple[int, ...]) -> tuple[int, int]:
    """The stored chunk shape: given, or the image's block shape."""
    if chunks is None:
        if not grid.is_regular:
            msg = (
                f"the image has irregular blocks (rows {grid.rows[:6]}, cols {grid.cols[:6]}) "
                "and Zarr chunks are regular; rechunk it first (image.rechunk((1024, 1024))) "
                "or pass chunks= that divide every block"
            )
            raise AlignmentError(msg)
        return grid.chunk_shape
    return normalize_chunks(chunks, shape, grid.chunk_shape).chunk_shape


def _steps(root: Node) -> list[StepNode]:
    """Steps of a program, first to last (depth first over the inputs)."""
    if not isinstance(root, StepNode):
        return []
    found: list[StepNode] = []
    for node in root.inputs:
        found.extend(s for s in _steps(node) if s not in found)
    return [*found, root]


def _step_labels(root: Node) -> list[str]:
    return [s.label.rsplit(":", 1)[-1].rsplit(".", 1)[-1] for s in _steps(root)] or ["read"]


def _total_halo(root: Node) -> tuple[int, int]:
    """The deepest halo any leaf read needs: the sum of the depths along the longest chain."""
    if not isinstance(root, StepNode):
        return (0, 0)
    inner = [_total_halo(n) for n in root.inputs]
    return (
        root.depth[0] + max(h[0] for h in inner),
        root.depth[1] + max(h[1] for h in inner),
    )


def _scheduler_label(scheduler: Any, workers: int | None) -> str:
    name = scheduler if isinstance(scheduler, str) else "threads" if scheduler is None else "client"
    return f"{name}, {workers} workers" if workers else f"{name}, one worker per core"


def _check_arrays_reach_workers(root: Node, scheduler: Any) -> None:
    """Refuse an in-memory input on a cluster of other machines: its workers memory-map a
    copy the run writes to this machine's temporary folder, which they cannot see."""
    address = scheduler if isinstance(scheduler, str) and "://" in scheduler else None
    if scheduler is not None and not isinstance(scheduler, str):  # a Client
        address = str(getattr(getattr(scheduler, "scheduler", None), "address", "") or "")
    if not address or _on_this_machine(address):
        return
    if any(isinstance(source, ArraySource) for source in root.sources()):
        msg = (
            f"an in-memory array cannot reach the workers of the cluster at {address}, which "
            "may run on other machines; save it where they can read it (numpy.save or a Zarr "
            "store on shared storage) and open that with pipeline.open_image"
        )
        raise SchedulerError(msg)


def _on_this_machine(address: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    if address.startswith("inproc://"):
        return True
    host = urlsplit(address).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1", socket.gethostname())


def _input_paths(root: Node) -> list[Path]:
    paths = {Path(p) for s in root.sources() if (p := getattr(s, "path", None)) is not None}
    return sorted(paths)


def _check_not_inside_inputs(target: Path, root: Node) -> None:
    """Refuse an output at, inside, or around an input: overwriting it would destroy data."""
    out = target.resolve()
    for source in _input_paths(root):
        src = source.resolve()
        if out == src or src in out.parents or out in src.parents:
            relation = "is" if out == src else "is inside" if src in out.parents else "contains"
            msg = (
                f"output {target} {relation} the input {source}; writing there could destroy "
                "the input: choose an output path outside it"
            )
            raise ArgumentError(msg)


TRANSIENT = {
    errno.EIO,
    errno.EAGAIN,
    errno.EINTR,
    errno.EBUSY,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ESTALE,
}
"""I/O errors worth another attempt: the storage may answer next time."""


def _attempts(work: Any, retries: int, target: ZarrTarget, window: Window) -> Any:
    """Run ``work`` again after a transient I/O error (with a short backoff), up to
    ``retries`` times; translate a full disk into its own error."""
    for attempt in range(retries + 1):
        try:
            return work()
        except OSError as exc:
            if isinstance(exc, PipelineError) and not exc.errno:
                raise
            if exc.errno == errno.ENOSPC:
                msg = (
                    f"no space left on the device while writing block {window} of "
                    f"{target.path}: free some space or choose another output; the blocks "
                    "already written are kept, run again with resume=True (CLI: --resume) to "
                    "finish"
                )
                raise OutputWriteError(msg) from exc
            if exc.errno not in TRANSIENT or attempt == retries:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError  # unreachable: the last attempt returns or raises


def _write_program_block(  # noqa: PLR0917 - a task function: dask passes arguments by position
    root: Node,
    window: Window,
    target: ZarrTarget,
    index: tuple[int, int],
    retries: int,
    keys: tuple[ChunkKey, ...],
    *blocks: Any,
) -> BlockStats:
    """The task that computes one block of a `pipeline` program, writes it and records it."""
    start = time.perf_counter()

    def work() -> int:
        array = root.read(window, dict(zip(keys, blocks, strict=True)))
        written = target.write(window, array)
        target.mark_done(index, window)
        return written

    written = _attempts(work, retries, target, window)
    return BlockStats(
        chunks=_chunks_in(window, target.chunks),
        bytes_read=root.bytes_read(window),
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


def _write_array_block(
    target: ZarrTarget, window: Window, index: tuple[int, int], retries: int, block: Any
) -> BlockStats:
    """The task that writes one block of a dask array `pipeline` did not make."""
    import numpy as np

    start = time.perf_counter()
    array = np.asarray(block)

    def work() -> int:
        written = target.write(window, array)
        target.mark_done(index, window)
        return written

    written = _attempts(work, retries, target, window)
    return BlockStats(
        chunks=_chunks_in(window, target.chunks),
        bytes_read=int(array.nbytes),
        bytes_written=written,
        seconds=time.perf_counter() - start,
    )


def _chunks_in(window: Window, chunks: tuple[int, int]) -> int:
    return -(-window.height // chunks[0]) * -(-window.width // chunks[1])


def _write_tasks(
    array: da.Array,
    grid: ChunkGrid,
    target: ZarrTarget,
    *,
    skip: set[tuple[int, int]] | None = None,
    retries: int = 2,
) -> list[Any]:
    """One Delayed per block not in ``skip``: compute it (fused with its program when there
    is one), write it, record it."""
    from dask._task_spec import Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    program = program_of(array)
    name = f"write-{array.name}"
    tail = (0,) if array.ndim == 3 else ()
    layer: dict[Any, Any] = {}
    for (i, j), window in grid.blocks():
        if skip and (i, j) in skip:
            continue
        key = (name, i, j)
        if program is not None:
            layer[key] = block_task(
                key, _write_program_block, program, window, target, (i, j), retries
            )
        else:
            source = TaskRef((array.name, i, j, *tail))
            layer[key] = Task(key, _write_array_block, target, window, (i, j), retries, source)
    dependencies = list(program.collections) if program is not None else [array]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    return [Delayed(key, graph, layer=name) for key in layer]


def _check_pyramid(shape: tuple[int, ...], levels: int, downsample: str | None, ngff: str) -> None:
    """Refuse a pyramid deeper than the image, an unknown method or OME-Zarr version."""
    longest = max(int(shape[0]), int(shape[1]))
    deepest = max(0, (longest - 1).bit_length())
    if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= deepest:
        msg = (
            f"pyramid={levels!r}: a {shape[0]}x{shape[1]} image has room for 0 to {deepest} "
            "levels (each half the size of the one below, down to one pixel)"
        )
        raise ArgumentError(msg)
    if downsample is not None and downsample not in DOWNSAMPLE_METHODS:
        msg = f"downsample={downsample!r}: use one of {', '.join(DOWNSAMPLE_METHODS)}"
        raise ArgumentError(msg)
    if ngff not in NGFF_VERSIONS:
        msg = f"ngff={ngff!r}: OME-Zarr versions written are {', '.join(NGFF_VERSIONS)}"
        raise ArgumentError(msg)


def _format_row(plan: Plan) -> str:
    zarr = "Zarr v3" if plan.ngff == "0.5" else "Zarr v2"
    text = f"OME-Zarr {plan.ngff} ({zarr})"
    if plan.pyramid:
        method = plan.downsample or default_method(plan.image.dtype)
        text += f", pyramid of {plan.pyramid} more levels by {method}"
    return text


def _check_output(target: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse an existing output unless asked to overwrite or to resume it."""
    if resume and overwrite:
        msg = "resume and overwrite contradict each other: resume keeps the blocks written"
        raise ArgumentError(msg)
    if not target.exists() or overwrite or resume:
        return
    state = _output_state(target)
    if state is not None:
        msg = (
            f"output {target} exists and is incomplete ({state[0]} of {state[1]} blocks "
            "written): pass resume=True (CLI: --resume) to finish it, or overwrite=True "
            "(CLI: --overwrite) to start again"
        )
    else:
        msg = (
            f"output {target} already exists; pass overwrite=True (CLI: --overwrite) to "
            "replace it, or choose another path"
        )
    raise OutputExistsError(msg)


def _output_state(path: Path) -> tuple[int, int] | None:
    """``(blocks written, blocks in all)`` of an incomplete pipeline output, else ``None``."""
    try:
        produced = read_group_attributes(path).get("pipeline")
    except Exception:
        return None
    if not isinstance(produced, dict) or produced.get("complete", True):
        return None
    return len(done_blocks(path)), int(produced.get("blocks", 0))
