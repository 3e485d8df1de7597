"""Plans: every check done before computing, then one task per block streaming into Zarr.

`plan` checks a run before its first task (chunk alignment, the scheduler, memory, the
output path against the inputs, an existing output) and returns a :class:`Plan` that says what
the run will do. `Plan.execute` hands it to the runtime; `save` is both in one call.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ArgumentError
from pipeline.grid import (
    BlockChoice,
    ChunkGrid,
    Georef,
    check_write_alignment,
    divide_for_storage,
)
from pipeline.image import open_image
from pipeline.io import Remote, codec_label
from pipeline.io.location import as_location
from pipeline.ops import Program, as_dask, program_of
from pipeline.ops.nodes import SourceNode
from pipeline.ops.pyramid import default_method
from pipeline.ops.tree import (
    georef_of,
    input_bytes,
    input_paths,
    step_labels,
    steps,
    total_halo,
)
from pipeline.planning import checks, memory
from pipeline.planning.blocks import block_unit, choose_plan_blocks
from pipeline.planning.fingerprint import fingerprint
from pipeline.runtime import Job, RunOptions, check_scheduler, execute, parallelism, scheduler_label
from pipeline.units import format_bytes

if TYPE_CHECKING:
    from pathlib import Path

    import dask.array as da

    from pipeline.grid import ChunksLike
    from pipeline.planning.probe import Measurement
    from pipeline.report import RunReport

__all__ = ["Plan", "RunOptions", "plan", "save"]


@dataclass(frozen=True, kw_only=True)
class Plan(RunOptions):
    """A checked run that has not started: the options it was given, what it reads, computes
    and writes, and where."""

    image: da.Array
    """The lazy result to write."""
    target: Path | Remote
    """Output store."""
    grid: ChunkGrid
    """Output blocks: one task each."""
    store_chunks: tuple[int, int]
    """Stored chunk shape."""
    choice: BlockChoice | None = None
    """How the blocks were chosen, when the plan chose them."""
    measured: Measurement | None = None
    """The program measured on its first block, when it runs a function that does not say
    what it allocates and the plan chose the blocks (its result is kept for the run)."""
    memory_per_task: int = 0
    """Projected peak of the arrays one task holds at once, bytes."""
    memory_per_worker: int = 0
    """Projected peak resident memory of one worker process (its tasks with the allocator's
    slack, its tile cache, its runtime), bytes."""
    memory_budget: int = 0
    """What a worker process may use, bytes."""
    budget_source: str = ""
    """Where the budget comes from."""

    @property
    def program(self) -> Program | None:
        """The fused program, when the image was made by `pipeline`."""
        return program_of(self.image)

    @property
    def root(self) -> Any:
        """The program's root node (``None`` for a dask array `pipeline` did not make)."""
        return self.program.root if self.program else None

    @property
    def tasks(self) -> int:
        """Tasks the run executes: one per output block (plus those of a foreign dask input)."""
        return self.grid.num_blocks

    @property
    def halo(self) -> tuple[int, int]:
        """Total halo each block reads, summed along the chain of steps."""
        return total_halo(self.root) if self.root else (0, 0)

    @property
    def compile_seconds(self) -> float:
        """Time spent compiling per-pixel kernels for this run (in this process)."""
        return sum(s.compile_seconds for s in steps(self.root))

    @property
    def georef(self) -> Georef:
        """The output's georeferencing: its inputs' CRS and transform, and its nodata value
        (NaN for a float output of georeferenced data; none for integers)."""
        found = georef_of(self.root)
        if not isinstance(self.root, SourceNode):  # a function's values have their own unit
            found = dataclasses.replace(found, z_unit=None)
        located = found.crs is not None or found.transform is not None
        floats = np.dtype(self.image.dtype).kind in "fc"
        nodata = float("nan") if floats and (located or found.nodata is not None) else None
        return dataclasses.replace(found, nodata=nodata)

    @property
    def inputs(self) -> list[Path]:
        """Files the run reads."""
        return input_paths(self.root) if self.root else []

    @property
    def bytes_read(self) -> int:
        """Input bytes the tasks read, halos included (for a grid of over 10 000 blocks,
        extrapolated from a sample of them)."""
        if self.root is None:
            return int(self.image.nbytes)
        blocks = list(self.grid.blocks())
        sample = blocks[:: max(1, len(blocks) // 10_000)]
        total = sum(self.root.bytes_read(window) for _, window in sample)
        return int(total * len(blocks) / len(sample))

    @property
    def reread_overhead(self) -> float:
        """Bytes read beyond one read of every input, as a share of that."""
        once = input_bytes(self.root) if self.root else 0
        return self.bytes_read / once - 1 if once else 0.0

    @property
    def downsample_method(self) -> str:
        """How pyramid levels are made: ``downsample``, or the default for the dtype."""
        return self.downsample or default_method(self.image.dtype)

    def describe(self) -> list[tuple[str, str]]:
        """``(label, value)`` rows of the readable summary."""
        shape = "x".join(map(str, self.image.shape))
        hy, hx = self.halo
        by, bx = self.grid.chunk_shape
        how = f"chosen: {self.choice.reason}" if self.choice else "as given"
        cy, cx = self.store_chunks
        return [
            ("inputs", ", ".join(str(p) for p in self.inputs) or "in-memory array"),
            ("steps", " -> ".join(step_labels(self.root)) if self.root else "-"),
            ("output", f"{self.target} ({shape} {self.image.dtype})"),
            ("tasks", f"{self.tasks}, one per block ({self.grid})"),
            ("blocks", f"{by}x{bx}, {how}"),
            ("halo", f"{hy}x{hx} pixels around each block"),
            ("re-read", f"{self.reread_overhead:.1%} of the input read again as halos"),
            ("stored chunks", f"{cy}x{cx}, {codec_label(self.image.dtype)}"),
            ("format", self._format_row()),
            ("reads", format_bytes(self.bytes_read) + " of input pixels, halos included"),
            ("writes", format_bytes(self.image.nbytes) + " before compression"),
            ("memory", self._memory_row()),
            *([("measured", self.measured.describe())] if self.measured else []),
            ("scheduler", scheduler_label(self.scheduler, self.workers)),
        ]

    def _format_row(self) -> str:
        zarr = "Zarr v3" if self.ngff == "0.5" else "Zarr v2"
        text = f"OME-Zarr {self.ngff} ({zarr})"
        if self.pyramid:
            text += f", pyramid of {self.pyramid} more levels by {self.downsample_method}"
        return text

    def _memory_row(self) -> str:
        return (
            f"{format_bytes(self.memory_per_task)} per task, "
            f"{format_bytes(self.memory_per_worker)} per worker process "
            f"(budget {format_bytes(self.memory_budget)}: {self.budget_source})"
        )

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

    def fingerprint(self) -> dict[str, Any]:
        """What makes an output the output of this run (see `pipeline.planning.fingerprint`)."""
        return fingerprint(
            self.image,
            self.root,
            self.grid.chunk_shape,
            self.store_chunks,
            pyramid=self.pyramid,
            downsample=self.downsample_method,
            ngff=self.ngff,
        )

    def job(self) -> Job:
        """What the runtime needs to run this plan."""
        from pipeline import __version__

        what = (
            "mean of the non-NaN pixels" if self.downsample_method == "mean" else "top-left pixel"
        )
        return Job(
            image=self.image,
            target=self.target,
            grid=self.grid,
            store_chunks=self.store_chunks,
            options=self.options(),
            fingerprint=self.fingerprint(),
            inputs=sorted(str(p) for p in self.inputs),
            downsampling={
                "type": self.downsample_method,
                "metadata": {
                    "description": f"each level halves the one below: the {what} of each 2x2 block",
                    "method": "pipeline.ops.pyramid.downsample",
                    "version": __version__,
                },
            },
            compile_seconds=self.compile_seconds,
            georef=self.georef,
            kept=self.measured.kept(self.grid) if self.measured else {},
        )

    def execute(self, *, progress: bool = True, resume: bool | None = None) -> RunReport:
        """Run the plan: create the output (or finish it, when planned with ``resume``),
        compute and write every block, mark it complete. ``resume`` here overrides the
        plan's."""
        job = self.job()
        if resume is not None:
            job = dataclasses.replace(job, options=dataclasses.replace(job.options, resume=resume))
        return execute(job, progress=progress)


def plan(
    image: Any,
    target: str | os.PathLike[str] | Remote,
    *,
    chunks: ChunksLike = None,
    overwrite: bool = False,
    resume: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = None,
    metadata: dict[str, Any] | None = None,
    retries: int = 2,
    pyramid: int = 0,
    downsample: str | None = None,
    ngff: str = "0.5",
    block_timeout: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Plan:
    """Check a run of ``image`` into ``target`` without writing anything (it may compute one
    block to measure a function, kept for the run: `pipeline.planning.probe`).

    The keywords are those of :class:`RunOptions`, and ``storage_options`` for a ``target``
    on an object store (``s3://bucket/out.zarr``) when the environment cannot say them (an
    ``endpoint_url``, a ``profile``). Raises the error a run would hit before its first task:
    misaligned chunks, an unknown scheduler, memory over the budget, an output at or around an
    input, an existing output without ``overwrite``.
    """
    checks.exit_if_bootstrapping()
    options = RunOptions(
        chunks=chunks,
        overwrite=overwrite,
        resume=resume,
        scheduler=scheduler,
        workers=workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        metadata=dict(metadata or {}),
        retries=retries,
        pyramid=pyramid,
        downsample=downsample,
        ngff=ngff,
        block_timeout=block_timeout,
    )
    array = open_image(image) if isinstance(image, (str, os.PathLike)) else as_dask(image)
    if array.ndim not in (2, 3) or 0 in array.shape:
        msg = f"cannot save an image of shape {array.shape}: it must be non-empty (Y, X[, C])"
        raise ArgumentError(msg)
    check_scheduler(scheduler, workers)
    checks.check_block_timeout(block_timeout)
    program = program_of(array)
    # The scheduler first: memory is projected and checked for the processes that will run.
    options = dataclasses.replace(options, scheduler=checks.scheduler_for(program, scheduler))
    threads, concurrent = parallelism(options.scheduler, workers, threads_per_worker)
    budget, source = memory.memory_budget(memory_limit, concurrent // threads)
    memory.check_units(program.root if program is not None else None, threads, budget, source)
    choice = measured = None
    if program is not None and program.auto_grid:
        array, choice, measured = choose_plan_blocks(
            array,
            program,
            chunks,
            threads=threads,
            concurrent=concurrent,
            budget=budget,
            source=source,
            resuming=as_location(target, storage_options) if resume else None,
        )
        program = program_of(array)
        if chunks is None:
            chunks = divide_for_storage(choice.block, block_unit(program, array, chunks))
    grid = ChunkGrid.from_dask(array.chunks)
    stored = checks.store_chunks(grid, chunks, array.shape)
    check_write_alignment(grid, stored)
    root = program.root if program is not None else None
    per_task = memory.task_bytes(root, grid.chunk_shape, array, measured)
    per_worker = memory.check_budget(
        grid.chunk_shape, per_task, threads, budget, source, cache=memory.cache_bytes(root, threads)
    )
    target_path = as_location(target, storage_options)
    if root is not None:
        checks.check_not_inside_inputs(target_path, root)
        checks.check_arrays_reach_workers(root, options.scheduler)
    checks.check_output(target_path, overwrite=overwrite, resume=resume)
    checks.check_pyramid(array.shape, pyramid, downsample, ngff)
    return Plan(
        **{f.name: getattr(options, f.name) for f in dataclasses.fields(RunOptions)},
        image=array,
        target=target_path,
        grid=grid,
        store_chunks=stored,
        choice=choice,
        measured=measured,
        memory_per_task=per_task,
        memory_per_worker=per_worker,
        memory_budget=budget,
        budget_source=source,
    )


def save(
    image: Any,
    target: str | os.PathLike[str] | Remote,
    *,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    **options: Any,
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
        with zstd). ``(Y, X, C)`` images are stored channel first. An address on an object
        store (``s3://bucket/out.zarr``, ``gs://``, ``az://``) writes it there, with the same
        records, lock and resume as on disk.
    progress
        Show a progress bar on stderr.
    storage_options
        For an address: options of its fsspec filesystem that the environment cannot say
        (credentials and endpoints come from the environment and profiles by default).
    options
        Any of :class:`RunOptions`, as keywords: ``chunks`` (stored chunk shape; every block
        must consist of whole chunks), ``overwrite`` (replace an existing Zarr output; the
        input is never touched), ``resume`` (finish an interrupted run of the same
        computation), ``scheduler`` (``"threads"``, ``"synchronous"``, ``"processes"``,
        ``"distributed"``, ``"tcp://host:port"`` or a ``distributed.Client``), ``workers``,
        ``threads_per_worker``, ``memory_limit``, ``metadata``, ``retries``, ``pyramid``
        (levels to add, each half the one below), ``downsample`` (``"mean"`` or
        ``"nearest"``), ``ngff`` (``"0.5"``, Zarr v3, or ``"0.4"``, Zarr v2), ``block_timeout``
        (seconds a block may run before the run is stopped as stuck).

    Returns
    -------
    RunReport
        Time, throughput, tasks, bytes read and written.
    """
    checked = plan(
        image, target, storage_options=storage_options, **RunOptions.of(options).__dict__
    )
    return checked.execute(progress=progress)
