"""A time limit per block (``block_timeout``), for runs nobody watches.

Every block leaves a note in ``.pipeline/running`` while it runs (`pipeline.runtime.tasks`),
whichever process or thread runs it. A watchdog thread reads the notes; when one is older than
the limit, it stops the run as Ctrl-C does (the workers are stopped, a stuck one abandoned)
and the run raises :class:`~pipeline.errors.BlockTimeoutError` naming the block.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import BlockTimeoutError
from pipeline.runtime.tasks import RUNNING_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pipeline.io import Remote

__all__ = ["Watch", "watch_blocks"]


@dataclass
class Watch:
    """What the watchdog saw: the block that ran out of time, if one did."""

    seconds: float | None
    expired: str | None = None
    """The pixels of the block that ran longer than ``seconds``."""

    def error(self) -> BlockTimeoutError:
        """The error of the run that was stopped."""
        msg = (
            f"the block at pixels {self.expired} ran for more than {self.seconds:g} s "
            f"(block_timeout={self.seconds:g}; config: compute.block_timeout), so the run was "
            "stopped: the function may be stuck, or need more time for a block; the blocks "
            "already written are kept: fix the function or raise the limit, and run again "
            "with resume=True (CLI: --resume)"
        )
        return BlockTimeoutError(msg)


@contextlib.contextmanager
def watch_blocks(store: Path | Remote, seconds: float | None) -> Iterator[Watch]:
    """Watch the blocks of the run writing ``store``; past ``seconds`` on one block,
    interrupt the main thread (a `KeyboardInterrupt` there) and say which in the `Watch`."""
    watch = Watch(seconds)
    if seconds is None:
        yield watch
        return
    stop = threading.Event()
    started = time.time()
    main = threading.main_thread().ident
    thread = threading.Thread(
        target=_watch, args=(store / RUNNING_DIR, watch, started, stop, main), daemon=True
    )
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()


def _watch(
    folder: Path | Remote, watch: Watch, started: float, stop: threading.Event, main: int | None
) -> None:
    assert watch.seconds is not None
    while not stop.wait(min(1.0, watch.seconds / 4)):
        now = time.time()
        for note in folder.glob("*") if folder.is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                began = note.stat().st_mtime
                # Notes older than the run are a dead run's, not this one's blocks.
                if began < started - 1 or now - began <= watch.seconds:
                    continue
                watch.expired = json.loads(note.read_text()).get("window") or note.name
                _interrupt(main)
                return


def _interrupt(main: int | None) -> None:
    """Interrupt the main thread as Ctrl-C would: a real signal, so that a wait it is blocked
    in returns (``_thread.interrupt_main`` only sets a flag that a blocked wait never reads)."""
    default = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if main is not None and default and hasattr(signal, "pthread_kill"):
        signal.pthread_kill(main, signal.SIGINT)
    else:
        import _thread

        _thread.interrupt_main()
