"""`RunReport`: what a run did, in numbers a user can compare between runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.units import format_bytes

__all__ = ["BlockStats", "RunReport", "format_bytes"]


@dataclass(frozen=True, slots=True)
class BlockStats:
    """What one write task did; small, so that thousands travel back cheaply."""

    chunks: int
    """Stored chunks written."""
    bytes_read: int
    """Input pixel bytes read, halos included."""
    bytes_written: int
    """Output pixel bytes written (before compression)."""
    seconds: float
    """Time the task took."""


@dataclass(frozen=True)
class RunReport:
    """The outcome of :func:`~pipeline.save`."""

    target: str
    """Where the output was written."""
    shape: tuple[int, ...]
    """Output shape."""
    dtype: str
    """Output dtype."""
    chunks: tuple[int, int]
    """Stored chunk shape along Y and X."""
    tasks: int
    """Tasks run (one per output block)."""
    chunks_written: int
    """Stored chunks written."""
    chunks_total: int
    """Stored chunks in the output."""
    elapsed: float
    """Wall time of the run in seconds, from graph submission to the last write."""
    task_seconds: float
    """Sum of the tasks' own durations (divide by ``elapsed`` for the average parallelism)."""
    bytes_read: int
    """Input pixel bytes the tasks read, halos included (for a dask array `pipeline` did not
    make: the bytes of its blocks)."""
    bytes_written: int
    """Output pixel bytes written, before compression."""
    bytes_stored: int
    """Size of the output on disk after compression."""
    scheduler: str
    """Scheduler name or cluster address."""
    workers: int
    """Worker threads or processes."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything a later stage adds (compile time of kernels, the plan)."""

    @property
    def pixels(self) -> int:
        """Output pixels computed."""
        return int(self.shape[0] * self.shape[1])

    @property
    def pixels_per_second(self) -> float:
        """Output pixels per second of wall time."""
        return self.pixels / self.elapsed if self.elapsed > 0 else float("inf")

    @property
    def megapixels_per_second(self) -> float:
        """Output megapixels per second of wall time."""
        return self.pixels_per_second / 1e6

    def summary(self) -> str:
        """One line: what was written, how big, how fast."""
        shape = "x".join(map(str, self.shape))
        compiled = self.extra.get("compile_seconds")
        compiled_note = f", kernels compiled in {compiled:.1f} s" if compiled else ""
        return (
            f"wrote {self.target} ({shape} {self.dtype}, {self.tasks} tasks) in "
            f"{self.elapsed:.2f} s: {self.megapixels_per_second:.1f} Mpx/s, read "
            f"{format_bytes(self.bytes_read)}, stored {format_bytes(self.bytes_stored)} "
            f"[{self.scheduler}, {self.workers} workers{compiled_note}]"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field plus the derived rates, JSON-compatible."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["chunks"] = list(self.chunks)
        data["pixels"] = self.pixels
        data["megapixels_per_second"] = self.megapixels_per_second
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def _repr_html_(self) -> str:
        """The report as a table, for Jupyter."""
        from html import escape

        rows = [
            ("output", self.target),
            ("shape", f"{'x'.join(map(str, self.shape))} {self.dtype}"),
            ("time", f"{self.elapsed:.2f} s ({self.megapixels_per_second:.1f} Mpx/s)"),
            ("tasks", f"{self.tasks} on {self.workers} {self.scheduler} workers"),
            ("read", format_bytes(self.bytes_read)),
            (
                "written",
                f"{format_bytes(self.bytes_written)}, {format_bytes(self.bytes_stored)} stored",
            ),
            *(
                (key, f"{value:.3g}" if isinstance(value, float) else str(value))
                for key, value in self.extra.items()
            ),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption><b>pipeline RunReport</b></caption>{body}</table>"

    def __str__(self) -> str:
        return self.summary()
