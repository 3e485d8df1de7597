"""Every error and warning `pipeline` raises on purpose.

One root, :class:`PipelineError`, so that callers (and the CLI) can tell a user error from a bug.
Each subclass also inherits the built-in exception a caller would catch without knowing about
`pipeline` (``FileNotFoundError`` for a missing file, ``ValueError`` for a bad argument), as
zarr and rasterio do.

Messages follow one shape: what failed, the values involved, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "AlignmentError",
    "ArgumentError",
    "BlockFunctionError",
    "BlockShapeError",
    "BlockTimeoutError",
    "BoundaryWarning",
    "ConfigError",
    "CorruptSourceError",
    "FunctionLoadError",
    "InputChangedError",
    "KernelCompileError",
    "MemoryBudgetError",
    "OutputExistsError",
    "OutputLockedError",
    "OutputWriteError",
    "PerformanceWarning",
    "PipelineError",
    "PipelineWarning",
    "Problem",
    "ResumeError",
    "SchedulerError",
    "SourceNotFoundError",
    "StorageAccessError",
    "UnsupportedSourceError",
    "WorkerDiedError",
    "WorkerStopped",
    "did_you_mean",
]


class PipelineError(Exception):
    """Root of every error raised on purpose by `pipeline`."""


class ArgumentError(PipelineError, ValueError):
    """An argument to a `pipeline` function has a value it cannot work with."""


class SourceNotFoundError(PipelineError, FileNotFoundError):
    """An input path does not exist, or is a directory where a file was expected."""


class StorageAccessError(PipelineError, PermissionError):
    """A store refused access to an address: missing or wrong credentials, or no permission."""


class UnsupportedSourceError(PipelineError, ValueError):
    """An input exists but is not an image `pipeline` can read (format, dimensions, layout)."""


class CorruptSourceError(PipelineError, ValueError):
    """An input is of a known format but its header or pixel data is damaged or incomplete."""


class InputChangedError(PipelineError, RuntimeError):
    """An input file changed while a run read it."""


class BlockShapeError(PipelineError, ValueError):
    """A user function returned a block of the wrong shape or dtype."""


class BlockFunctionError(PipelineError, RuntimeError):
    """A user function raised while computing one block; names the block's global window.

    ``function_traceback`` holds the traceback of the user's function alone, formatted where
    it happened: it survives the trip back from a worker process, which ``__cause__`` does not.
    """

    def __init__(self, message: str, function_traceback: str = "") -> None:
        super().__init__(message)
        self.function_traceback = function_traceback

    def __reduce__(self) -> tuple[type[BlockFunctionError], tuple[str, str]]:
        return (type(self), (str(self), self.function_traceback))


class BlockTimeoutError(PipelineError, TimeoutError):
    """A block ran longer than the run's ``block_timeout``: the run was stopped."""


class FunctionLoadError(PipelineError, ImportError):
    """A function named in a config (or by reference) cannot be found or imported."""


class KernelCompileError(PipelineError, TypeError):
    """numba cannot compile a per-pixel kernel; says which construct, and where."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, located as ``file:line: key.path: message``."""

    file: str
    """The config file (or ``--set`` for an override)."""
    line: int | None
    """1-based line of the key, when known."""
    key: str
    """Dotted path of the key (``steps.0.depth``); empty for the whole document."""
    message: str
    """What is wrong and how to fix it."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(PipelineError, ValueError):
    """A config is not valid; lists every problem found, one per line."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[Problem, ...]]]:
        return (type(self), (self.problems,))


class AlignmentError(PipelineError, ValueError):
    """Output chunks would be written by more than one task (which silently corrupts Zarr)."""


class MemoryBudgetError(PipelineError, ValueError):
    """A run's projected memory exceeds its budget; says both numbers and what to change."""


class OutputExistsError(PipelineError, FileExistsError):
    """The output path exists and overwriting was not asked for."""

    @classmethod
    def at(cls, path: object) -> OutputExistsError:
        """The error for an output that exists, with the fix."""
        return cls(
            f"output {path} already exists; pass overwrite=True (CLI: --overwrite) to replace "
            "it, or choose another path"
        )


class OutputWriteError(PipelineError, OSError):
    """Writing the output failed in a way retrying cannot fix (a full disk, no permission)."""


class OutputLockedError(PipelineError, FileExistsError):
    """Another run, still alive, is writing the output; says which one."""


class ResumeError(PipelineError, ValueError):
    """An output cannot be resumed: not a pipeline output, or the run changed (says what)."""


class SchedulerError(PipelineError, ValueError):
    """An unknown scheduler name, or a scheduler that cannot run this kind of graph."""


class WorkerDiedError(SchedulerError):
    """A worker process ended abruptly in the middle of a task (``os._exit``, a crash in
    native code, killed, out of memory)."""


class WorkerStopped(SystemExit):
    """A worker process was told to stop (SIGTERM) while it ran a block: never the block
    function's failure, and never caught as one; the worker ends."""


class PipelineWarning(UserWarning):
    """Root of every warning `pipeline` emits."""


class BoundaryWarning(PipelineWarning):
    """What a kernel reads beyond the image edge was not chosen: the default applies."""


class PerformanceWarning(PipelineWarning):
    """The run will be correct but slower than it needs to be; the message says how to fix it."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``choices`` to ``word``, or ``""``: the hint
    every "unknown name" message carries."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""
