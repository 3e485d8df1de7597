"""Attempts again after transient I/O errors; a full disk is an error of its own."""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any

from pipeline.errors import OutputWriteError, PipelineError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pipeline.grid import Window

__all__ = ["TRANSIENT", "attempts"]

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


def attempts(work: Callable[[], Any], retries: int, target: Path, window: Window) -> Any:
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
                    f"{target}: free some space or choose another output; the blocks "
                    "already written are kept, run again with resume=True (CLI: --resume) to "
                    "finish"
                )
                raise OutputWriteError(msg) from exc
            if exc.errno not in TRANSIENT or attempt == retries:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError  # unreachable: the last attempt returns or raises
