"""Checks a plan makes before anything is created: the output path, the pyramid, the stored
chunks, the scheduler for the steps, and whether in-memory inputs can reach the workers."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    AlignmentError,
    ArgumentError,
    OutputExistsError,
    PerformanceWarning,
    SchedulerError,
)
from pipeline.grid import ChunkGrid, ChunksLike, normalize_chunks
from pipeline.io import Remote, check_ngff, live_owner, locked_error, output_progress
from pipeline.ops.memory import ArraySource
from pipeline.ops.pyramid import DOWNSAMPLE_METHODS
from pipeline.ops.tree import input_paths, steps

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.ops import Node, Program

__all__ = [
    "check_arrays_reach_workers",
    "check_not_inside_inputs",
    "check_output",
    "check_pyramid",
    "exit_if_bootstrapping",
    "scheduler_for",
    "store_chunks",
]


def exit_if_bootstrapping() -> None:
    """Quietly end a spawned worker that is importing the user's script again, and reached its
    unguarded run: the parent then reports the missing ``__main__`` guard once, in one line,
    instead of each worker printing a traceback of its own."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def scheduler_for(program: Program | None, scheduler: Any) -> Any:
    """``scheduler``, or ``"processes"`` where threads would take turns on the GIL."""
    if program is None or scheduler not in (None, "threads"):
        return scheduler
    held = [s.label for s in steps(program.root) if s.gil_bound]
    if not held:
        return scheduler
    warnings.warn(
        f"{', '.join(held)} runs as plain Python, which holds the GIL: running in "
        "processes instead of threads, which would take turns",
        PerformanceWarning,
        stacklevel=4,
    )
    return "processes"


def store_chunks(grid: ChunkGrid, chunks: ChunksLike, shape: tuple[int, ...]) -> tuple[int, int]:
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


def check_arrays_reach_workers(root: Node, scheduler: Any) -> None:
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


def check_not_inside_inputs(target: Path | Remote, root: Node) -> None:
    """Refuse an output at, inside, or around an input: overwriting it would destroy data."""
    if isinstance(target, Remote):
        for address in {s.path.url for s in root.sources() if isinstance(s.path, Remote)}:
            url = target.url
            if url == address or url.startswith(f"{address}/") or address.startswith(f"{url}/"):
                relation = "is" if url == address else "is inside" if url > address else "contains"
                msg = (
                    f"output {target} {relation} the input {address}; writing there could "
                    "destroy the input: choose an output address outside it"
                )
                raise ArgumentError(msg)
        return
    out = target.resolve()
    for source in input_paths(root):
        src = source.resolve()
        if out == src or src in out.parents or out in src.parents:
            relation = "is" if out == src else "is inside" if src in out.parents else "contains"
            msg = (
                f"output {target} {relation} the input {source}; writing there could destroy "
                "the input: choose an output path outside it"
            )
            raise ArgumentError(msg)


def check_pyramid(shape: tuple[int, ...], levels: int, downsample: str | None, ngff: str) -> None:
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
    check_ngff(ngff)


def check_output(target: Path | Remote, *, overwrite: bool, resume: bool) -> None:
    """Refuse an existing output unless asked to overwrite or to resume it."""
    if resume and overwrite:
        msg = "resume and overwrite contradict each other: resume keeps the blocks written"
        raise ArgumentError(msg)
    if not target.exists():
        return
    who = live_owner(target)
    if who is not None:
        raise locked_error(target, who)
    if overwrite or resume:
        return
    progress = output_progress(target)
    if progress is None:
        raise OutputExistsError.at(target)
    msg = (
        f"output {target} exists and is incomplete ({progress[0]} of {progress[1]} blocks "
        "written): pass resume=True (CLI: --resume) to finish it, or overwrite=True "
        "(CLI: --overwrite) to start again"
    )
    raise OutputExistsError(msg)


def check_block_timeout(seconds: float | None) -> None:
    """A time limit per block is a positive number of seconds (or none)."""
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        msg = f"block_timeout={seconds!r} must be a number of seconds, such as 600"
        raise ArgumentError(msg)
    if not math.isfinite(seconds) or seconds <= 0:
        msg = f"block_timeout={seconds!r} must be a positive number of seconds, such as 600"
        raise ArgumentError(msg)
