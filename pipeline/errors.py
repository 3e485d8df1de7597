"""Every error and warning `pipeline` raises on purpose.

One root, :class:`PipelineError`, so that callers (and the CLI) can tell a user error from a bug.
Each subclass also inherits the built-in exception a caller would catch without knowing about
`pipeline` (``FileNotFoundError`` for a missing file, ``ValueError`` for a bad argument), as
zarr and rasterio do.

Messages follow one shape: what failed, the values involved, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AlignmentError",
    "ArgumentError",
    "BlockFunctionError",
    "BlockShapeError",
    "CorruptSourceError",
    "OutputExistsError",
    "PerformanceWarning",
    "PipelineError",
    "PipelineWarning",
    "SchedulerError",
    "SourceNotFoundError",
    "UnsupportedSourceError",
]


class PipelineError(Exception):
    """Root of every error raised on purpose by `pipeline`."""


class ArgumentError(PipelineError, ValueError):
    """An argument to a `pipeline` function has a value it cannot work with."""


class SourceNotFoundError(PipelineError, FileNotFoundError):
    """An input path does not exist, or is a directory where a file was expected."""


class UnsupportedSourceError(PipelineError, ValueError):
    """An input exists but is not an image `pipeline` can read (format, dimensions, layout)."""


class CorruptSourceError(PipelineError, ValueError):
    """An input is of a known format but its header or pixel data is damaged or incomplete."""


class BlockShapeError(PipelineError, ValueError):
    """A user function returned a block of the wrong shape or dtype."""


class BlockFunctionError(PipelineError, RuntimeError):
    """A user function raised while computing one block; names the block's global window."""


class AlignmentError(PipelineError, ValueError):
    """Output chunks would be written by more than one task (which silently corrupts Zarr)."""


class OutputExistsError(PipelineError, FileExistsError):
    """The output path exists and overwriting was not asked for."""


class SchedulerError(PipelineError, ValueError):
    """An unknown scheduler name, or a scheduler that cannot run this kind of graph."""


class PipelineWarning(UserWarning):
    """Root of every warning `pipeline` emits."""


class PerformanceWarning(PipelineWarning):
    """The run will be correct but slower than it needs to be; the message says how to fix it."""
