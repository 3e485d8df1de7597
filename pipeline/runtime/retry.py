"""Attempts again after transient I/O errors; storage refusing writes (a full disk, a
read-only one) is an error of its own."""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.io import refusal

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pipeline.grid import Window
    from pipeline.io import Remote

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


def attempts(work: Callable[[], Any], retries: int, target: Path | Remote, window: Window) -> Any:
    """Run ``work`` again after a transient I/O error (with a short backoff), up to
    ``retries`` times; storage that refuses writes is explained at once (`refusal`)."""
    for attempt in range(retries + 1):
        try:
            return work()
        except OSError as exc:
            if isinstance(exc, PipelineError) and not exc.errno:
                raise
            refused = refusal(exc, target, doing=f"writing block {window} of")
            if refused is not None:
                raise refused from exc
            if exc.errno not in TRANSIENT or attempt == retries:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError  # unreachable: the last attempt returns or raises
