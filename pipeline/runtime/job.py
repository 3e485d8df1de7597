"""What a run is asked to do: the options a caller gives, and the job a plan hands the runtime."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import ArgumentError, did_you_mean
from pipeline.grid import Georef

if TYPE_CHECKING:
    from pathlib import Path

    import dask.array as da

    from pipeline.grid import ChunkGrid, ChunksLike
    from pipeline.io import Remote

__all__ = ["Job", "RunOptions"]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How to run: the keywords :func:`~pipeline.plan` and :func:`~pipeline.save` take."""

    chunks: ChunksLike = None
    """Stored chunk shape along Y and X (default: the blocks, or the plan's choice)."""
    overwrite: bool = False
    """Replace an existing output (only ever a Zarr store)."""
    resume: bool = False
    """Finish an interrupted run of the same computation into the output."""
    scheduler: Any = None
    """Scheduler name, address or client (``None``: threads, or the default client)."""
    workers: int | None = None
    """Worker threads or processes (default: the cores available)."""
    threads_per_worker: int = 1
    """Threads in each worker process of a cluster started for the run."""
    memory_limit: str | None = None
    """Memory limit per worker process (``"4GB"``); default: a share of what is available."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance stored with the output (the config of a CLI run)."""
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
    block_timeout: float | None = None
    """Seconds a block may run before the run is stopped as stuck (``None``: no limit)."""

    @classmethod
    def of(cls, options: dict[str, Any]) -> RunOptions:
        """The options named in ``options``; an unknown name is refused with the known ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            hint = did_you_mean(unknown[0], names)
            msg = f"unknown option {unknown[0]!r}: {hint}the options are {', '.join(names)}"
            raise ArgumentError(msg)
        return cls(**options)

    def options(self) -> RunOptions:
        """These options alone (of a :class:`~pipeline.Plan`, which extends them)."""
        return RunOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RunOptions)})


@dataclass(frozen=True)
class Job:
    """A checked run, as the runtime needs it: what to compute, where, and how."""

    image: da.Array
    """The lazy result to write."""
    target: Path | Remote
    """Output store."""
    grid: ChunkGrid
    """Output blocks: one task each."""
    store_chunks: tuple[int, int]
    """Stored chunk shape."""
    options: RunOptions
    """How to run."""
    fingerprint: dict[str, Any]
    """What makes the output this run's; a resume must match it."""
    inputs: list[str]
    """Files read."""
    downsampling: dict[str, Any]
    """The multiscales ``type`` and ``metadata`` (NGFF) of the pyramid's levels."""
    compile_seconds: float = 0.0
    """Time spent compiling kernels for it, in this process."""
    georef: Georef = field(default_factory=Georef)
    """The output's georeferencing (CRS, transform, nodata)."""
    kept: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)
    """Results of blocks computed while planning (to measure the program), by block index:
    their tasks write these instead of computing them again."""
