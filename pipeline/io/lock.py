"""Ownership of an output: one run at a time writes it.

A run holds a lock file at the root of the output store, created atomically (a hard link,
which fails if the name exists; on an object store a conditional PUT, ``If-None-Match: *``)
and holding its owner: run, host, process, start. The owner touches it every few seconds. A second
run finds it and is refused, naming the owner. A lock whose process is gone (same host) or
that has not been touched for :data:`STALE_SECONDS` was left by a killed run: ``--resume``
and ``--overwrite`` take it over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from pipeline.errors import OutputLockedError, OutputWriteError
from pipeline.io.base import check_not_foreign
from pipeline.io.location import Remote

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "LOCK_FILE",
    "STALE_SECONDS",
    "Owner",
    "hold",
    "live_owner",
    "locked_error",
    "process_gone",
    "read_owner",
]

LOCK_FILE = ".pipeline-lock.json"
"""At the root of an output store while a run writes it."""
HEARTBEAT_SECONDS = 5.0
"""How often the owner touches its lock."""
STALE_SECONDS = 60.0
"""A lock untouched for this long belongs to a run that is gone."""


@dataclass(frozen=True)
class Owner:
    """The run that holds an output's lock."""

    run_id: str
    host: str
    pid: int
    started: str

    @classmethod
    def me(cls, run_id: str) -> Owner:
        """This process, for run ``run_id``."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(run_id, socket.gethostname(), os.getpid(), now)

    def is_alive(self, age: float) -> bool:
        """Whether the owner may still be running, its lock last touched ``age`` s ago."""
        if age > STALE_SECONDS:
            return False
        if self.host != socket.gethostname():
            return True
        return not process_gone(self.pid)

    def describe(self, age: float) -> str:
        """The owner in words."""
        return (
            f"run {self.run_id[:12]}, process {self.pid} on {self.host}, started {self.started}, "
            f"last seen {age:.0f} s ago"
        )


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended. A zombie (ended, not yet reaped:
    its parent was killed with it and nobody reaps orphans in some containers) has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:  # noqa: PTH123
            return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


def read_owner(path: Path | Remote) -> tuple[Owner, float] | None:
    """The owner of the output at ``path`` and the seconds since its lock was touched."""
    lock = path / LOCK_FILE
    age = STALE_SECONDS + 1
    try:
        age = max(0.0, time.time() - lock.stat().st_mtime)
        data = json.loads(lock.read_text())
        return Owner(
            str(data["run_id"]), str(data["host"]), int(data["pid"]), str(data["started"])
        ), age
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # damaged: judged by its age alone
        return Owner("unknown", "an unknown host", -1, "unknown"), age


def live_owner(path: Path | Remote) -> str | None:
    """Who is writing the output at ``path`` right now, in words; ``None`` if nobody is."""
    found = read_owner(path)
    if found is None or not found[0].is_alive(found[1]):
        return None
    return found[0].describe(found[1])


def locked_error(path: Path | Remote, who: str) -> OutputLockedError:
    """The error for an output another run is writing."""
    return OutputLockedError(
        f"output {path} is being written by another run ({who}); wait for it to end or stop "
        "it: a lock left by a run that was killed is taken over by resume=True "
        "(CLI: --resume) once that run is gone"
    )


@contextlib.contextmanager
def hold(path: Path | Remote, run_id: str) -> Iterator[Owner | None]:
    """Hold the lock of the output at ``path`` (a directory: made if missing) while the block
    runs; refused if a live run holds it, taken over if its holder is gone. Yields the owner
    it was taken over from (``None``: it was free)."""
    check_not_foreign(path)
    made = not path.exists()
    try:
        if not isinstance(path, Remote) and not path.is_dir():
            # (not if it exists: a read-only file system refuses even an existing folder)
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = (
            f"cannot create the output {path}: {exc.strerror or exc}; choose a location you "
            "can write to"
        )
        raise OutputWriteError(msg) from exc
    lock = path / LOCK_FILE
    previous: Owner | None = None
    stop = threading.Event()
    me = Owner.me(run_id)
    beat = threading.Thread(target=_heartbeat, args=(lock, me, stop), daemon=True)
    acquired = False
    try:
        for _ in range(2):
            if _create(lock, me):
                acquired = True
                break
            who = live_owner(path)
            if who is not None:
                raise locked_error(path, who)
            found = read_owner(path)
            previous = found[0] if found else None
            lock.unlink(missing_ok=True)  # left by a run that is gone: take it over
        else:
            raise locked_error(path, live_owner(path) or "a run that took it over just now")
        beat.start()
        yield previous
    finally:
        stop.set()
        if beat.is_alive():
            beat.join()
        with contextlib.suppress(OSError):
            found = read_owner(path)
            if acquired and found is not None and found[0].run_id == run_id:
                lock.unlink()
            if made:
                path.rmdir()  # only if the run left nothing in it


def _create(lock: Path | Remote, owner: Owner) -> bool:
    """Create ``lock`` holding ``owner``, whole, unless it exists: written beside it, then
    linked to its name, which fails if the name exists (no reader ever sees it half written);
    on a store, by one conditional request."""
    if isinstance(lock, Remote):
        return lock.create(json.dumps(asdict(owner)).encode())
    partial = lock.with_name(f"{lock.name}.{owner.run_id}.partial")
    try:
        partial.write_text(json.dumps(asdict(owner)))
        os.link(partial, lock)
    except FileExistsError:
        return False
    finally:
        partial.unlink(missing_ok=True)
    return True


def _heartbeat(lock: Path | Remote, owner: Owner, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        # A beat that fails is tried again at the next: the run finds out about storage that
        # fails from its own writes, and a lock left untouched goes stale, as it should.
        with contextlib.suppress(Exception):
            if isinstance(lock, Remote):  # an object's time changes only when it is written
                lock.write_text(json.dumps(asdict(owner)))
            else:
                os.utime(lock)
