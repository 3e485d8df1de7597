"""When the storage of an output refuses a write: one line that says why and what to do.

A run can meet a refusing file system at any moment, its creation and its resume included
(the lock, the ledger, a chunk, the final record): a disk that is (still) full, a quota, a
file-size limit (``ulimit -f``), a read-only mount, missing permissions. Each is the same
event to the user, whatever file was being written when it happened.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from pipeline.errors import OutputWriteError, PipelineError
from pipeline.io.location import Remote

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["KEEPS_WORK", "refusal"]

_REASONS = {
    errno.ENOSPC: ("no space left on the device", "free some space or choose another output"),
    errno.EDQUOT: (
        "the disk quota is exceeded",
        "free some of your quota or choose another output",
    ),
    errno.EFBIG: (
        "a file would grow beyond the largest size allowed",
        "raise the limit (`ulimit -f unlimited`) or write smaller chunks (output.chunks)",
    ),
    errno.EROFS: (
        "the file system is read-only",
        "make it writable (remount) or choose another output",
    ),
    errno.EACCES: ("permission denied", "get write access to it or choose another output"),
    errno.EPERM: ("operation not permitted", "get write access to it or choose another output"),
}
"""The errors by which storage refuses to be written: what it means, and the fix."""

KEEPS_WORK = "the blocks already written are kept, run again with resume=True (CLI: --resume)"


def refusal(
    exc: BaseException, output: Path | Remote, *, doing: str, resumable: bool = True
) -> OutputWriteError | None:
    """The error to raise for ``exc``, met while ``doing`` (``"writing block [0:96, 0:128]
    of"``) the output ``output``, if it is storage refusing a write; ``None`` for any other
    error (a bug of ours, a file that is not the output's, an error already explained).
    ``resumable``: the output holds written blocks that ``--resume`` would keep."""
    if not isinstance(exc, OSError) or isinstance(exc, PipelineError):
        return None
    if isinstance(output, Remote):  # an object store's failures: `Remote.failure`
        return None
    if exc.errno not in _REASONS:
        return None
    if exc.filename is not None and not _within(str(exc.filename), output):
        return None
    what, fix = _REASONS[exc.errno]
    where = f" ({exc.filename})" if exc.filename is not None else ""
    msg = f"{what}{where} while {doing} {output}: {fix}"
    if resumable:
        msg += f"; {KEEPS_WORK} to finish"
    return OutputWriteError(msg)


def _within(filename: str, output: Path) -> bool:
    """Whether ``filename`` is the output or a file inside it."""
    from pathlib import Path

    path = Path(filename).absolute()
    root = output.absolute()
    return path == root or root in path.parents
