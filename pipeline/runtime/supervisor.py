"""A run that dies at once still names the block it died on.

A function that calls ``os._exit`` or crashes in native code (a segfault in a C extension)
ends the process that runs it, with no exception to catch. On the ``processes`` scheduler the
pool sees its worker die (`pipeline.runtime.pool`); on threads, the process that dies is the
run itself. So the command line runs a run in a forked child, and the parent, which only
waits, reports what the child could not: the block it was computing (from the note every
block leaves in ``.pipeline/running`` while it runs, see `pipeline.runtime.tasks.running`),
how it ended, and, for a crash, the stack of the thread that crashed (Python's
``faulthandler`` writes it to a file the parent reads).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.runtime.tasks import RUNNING_DIR

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeline.io import Remote

__all__ = ["can_supervise", "supervise"]

_FORWARDED = ("SIGTERM", "SIGHUP", "SIGQUIT")
"""Signals sent to the parent alone (a job manager's ``kill PID``) that the run must get.
SIGINT is not among them: Ctrl-C reaches both processes, which share the terminal's process
group, and the run must see it once."""

_CRASHES = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"}


def can_supervise() -> bool:
    """Whether this process can run its work in a forked child: a POSIX system, and no
    thread yet (forking a process with threads copies locks that nobody will release)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def supervise(work: Callable[[], int], output: Path | Remote) -> int:
    """Run ``work`` (which returns an exit code) in a forked child writing ``output``, and
    return its exit code. The child returns from here with the code of ``work`` (so that its
    exit runs as an unsupervised one would); the parent returns once the child ended,
    after printing the block it died on if it died during one."""
    sys.stdout.flush()
    sys.stderr.flush()
    crashes = tempfile.TemporaryFile(mode="w+", prefix="pipeline-crash-")  # noqa: SIM115
    pid = os.fork()
    if pid == 0:
        _as_child(crashes)
        return work()
    return _as_parent(pid, output, crashes)


def _as_child(crashes: object) -> None:
    """Die with the parent (Linux), and write the stacks of a crash where the parent reads."""
    import faulthandler

    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    faulthandler.enable(file=crashes, all_threads=True)  # type: ignore[arg-type]


def _as_parent(pid: int, output: Path | Remote, crashes: object) -> int:
    """Wait for the child, forwarding the signals meant for the run; report its death."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    for name in _FORWARDED:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, lambda sig, _: os.kill(pid, sig))
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    code = os.waitstatus_to_exitcode(status)
    notes = _notes_of(output, pid)
    if code >= 0 and not notes:
        return code  # it ended by itself, and said why
    crashes.seek(0)  # type: ignore[attr-defined]
    message, blamed = death_message(code, notes, crashes.read(), output)  # type: ignore[attr-defined]
    print(message, file=sys.stderr)
    return 2 if blamed else 128 - code


def _notes_of(output: Path | Remote, pid: int) -> list[dict[str, object]]:
    """The blocks process ``pid`` was computing when it ended (and forget them)."""
    notes = []
    folder = output / RUNNING_DIR
    try:
        markers: list[Path | Remote] = list(folder.glob(f"{pid}-*")) if folder.is_dir() else []
    except Exception:  # an object store that fails: the run has said why it ended
        return []
    for marker in sorted(markers, key=lambda m: m.name):
        try:
            note = json.loads(marker.read_text() or "{}")
            marker.unlink(missing_ok=True)
        except Exception:  # a note is for a crash report, never a new failure
            note = {}
        notes.append({"block": marker.name.partition("-")[2], **note})
    return notes


def death_message(
    code: int, notes: list[dict[str, object]], crash: str, output: Path | Remote
) -> tuple[str, bool]:
    """What to tell the user when the run's process ended without a word (its exit code
    ``code``, negative for a signal): how it ended, the block it was computing (the crashing
    thread's, when the crash says which), the stack of the crash, and what to do; and whether
    the function is to blame (it crashed, or ended the process itself, during a block) rather
    than a signal from outside (a user's, or the system's when memory ran out)."""
    signalled = signal.Signals(-code).name if code < 0 else None
    blamed = bool(notes) and (signalled is None or signalled in _CRASHES)
    crashed = re.search(r"Current thread 0x([0-9a-f]+)", crash)
    if crashed and len(notes) > 1:
        mine = [n for n in notes if n.get("thread") == int(crashed.group(1), 16)]
        notes = mine or notes
    windows = [str(n.get("window") or f"block {n['block']}") for n in notes]
    if signalled is None:
        how = (
            f"ended abruptly with exit code {code} and no error (os._exit, or exit() in a C "
            "library)"
        )
    elif signalled in _CRASHES:
        how = f"crashed in native code ({signalled})"
    elif signalled == "SIGKILL":
        how = "was killed (SIGKILL: by a user, or by the system when memory ran out)"
    else:
        how = f"was stopped by {signalled}"
    if not windows:
        where = "outside any block"
    elif len(windows) == 1:
        where = f"while computing the block at pixels {windows[0]}"
    else:
        where = f"while computing one of the blocks at pixels {', '.join(windows)}"
    fix = "fix the function and run again" if blamed else "run again"
    message = (
        f"error: the run {how} {where} of {output}; the blocks already written are kept: "
        f"{fix} with --resume to finish"
    )
    stack = _stack_of_crash(crash) if signalled in _CRASHES else ""
    return (f"{message}\n{stack}" if stack else message), blamed


def _stack_of_crash(crash: str) -> str:
    """The crashing thread's stack from ``faulthandler``'s report, down to the frames of the
    function (pipeline's and the scheduler's frames under it say nothing to the user)."""
    match = re.search(
        r"(Fatal Python error: [^\n]*)\n.*?(Current thread [^\n]*\n(?:  [^\n]*\n?)*)", crash, re.S
    )
    if not match:
        return ""
    ours = str(Path(__file__).parents[1])
    frames = []
    for line in match.group(2).rstrip().splitlines()[1:]:
        if ours in line:
            break
        frames.append(line)
    return "\n".join([match.group(1), "Current thread (most recent call first):", *frames])
