"""The spawn-started process pool of the ``processes`` scheduler: one task per worker at a
time, Ctrl-C stops its workers at once, and a worker that dies is explained in one line."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from pipeline.errors import SchedulerError, WorkerDiedError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["broken_pool_message", "process_pool"]


def quiet_resource_tracker() -> None:
    """A worker that dies at once (os._exit, a crash, a stuck one stopped) cannot unregister
    its semaphores; the resource tracker (started with this process's -W options) removes
    them, and its warning would only repeat, in three lines, the run's own one-line message."""
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[Any]:
    """A pool of spawned processes (as on Windows and macOS) for one run. When the run stops
    early (Ctrl-C, an error), its workers are terminated, not awaited: the tasks already
    handed to them would otherwise run to their end, writing blocks after the run stopped."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from functools import partial

    from dask.multiprocessing import get_context, initialize_worker_process

    # As dask does for its own pools: the same hashing in every worker.
    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        os.environ["PYTHONHASHSEED"] = "6640"
    quiet_resource_tracker()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context(),
        initializer=partial(initialize_worker_process, user_initializer=_worker_signals),
    )
    for _ in range(workers):  # start every worker now: they import while this process plans
        pool.submit(_warm_up)
    try:
        yield pool
    except BrokenProcessPool:
        _terminate(pool)
        # Its own traceback says only that a process ended: the message says why.
        raise _broken_pool_error([]) from None
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown()


def _worker_signals() -> None:
    """In each pool worker: Ctrl-C is the run's to handle (it stops the workers), and a
    stopped worker exits as Python does, running its finalizers (a library's semaphore left
    registered would be reported as leaked when the run ends)."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    sys.unraisablehook = _stop_if_told


def _stop_if_told(unraisable: Any) -> None:
    """A stop (SIGTERM's SystemExit) that lands in a finalizer or a weakref callback, where
    Python prints "Exception ignored" and carries on: stop now, quietly, as asked."""
    import os
    import sys

    if isinstance(unraisable.exc_value, SystemExit):
        code = unraisable.exc_value.code
        os._exit(code if isinstance(code, int) else 1)
    sys.__unraisablehook__(unraisable)


def _warm_up() -> None:
    """Import what every task needs, so that a worker's imports overlap the parent's work of
    pickling the tasks (and spilling in-memory arrays) instead of following it."""
    import importlib

    for module in ("numba", "zarr", "pipeline.runtime.tasks", "pipeline.io.writer"):
        importlib.import_module(module)


def _exit(signum: int, frame: object) -> None:
    # Stopped: the run has stopped and reports why. Whatever this worker would print from now
    # on is noise on the user's terminal, before the run's one line: zarr's abandoned writes
    # (the block is not recorded, so it is done again) and asyncio's note of each, warnings
    # and "Exception ignored" notes of what the stop interrupted (seen under load: a coroutine
    # never awaited, an event loop stopped half-built), a traceback from the pool's queues
    # (seen in CI: "Process SpawnProcess-2:" first on stderr). Its stderr goes to the void.
    import contextlib
    import os

    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # sys.stderr writes to descriptor 2
    from pipeline.errors import WorkerStopped

    raise WorkerStopped(128 + signum)


def _terminate(pool: Any) -> None:
    """Stop a process pool's workers now (concurrent.futures only awaits them)."""
    processes: list[Any] = []

    def stop_workers() -> None:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process not in processes:
                processes.append(process)
                process.terminate()

    # Workers first: a worker that found its queue closed by the shutdown would print the
    # traceback of that on its way out. Again after the shutdown began: a worker the pool
    # started meanwhile (under load, seen in CI) would print an EOFError from its queue.
    stop_workers()
    pool.shutdown(wait=False, cancel_futures=True)
    stop_workers()
    for process in processes:
        process.join(timeout=3)
        if process.is_alive():
            process.kill()
            process.join(timeout=1)
    pool.shutdown(wait=True)  # its manager thread sees them gone and releases its queues


def _broken_pool_error(blocks: list[str]) -> SchedulerError:
    message = broken_pool_message(blocks)
    return WorkerDiedError(message) if "died abruptly" in message else SchedulerError(message)


def broken_pool_message(blocks: list[str]) -> str:
    """Why the pool broke: the script's missing ``__main__`` guard, or a worker that died
    (while computing ``blocks``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    guarded = True
    if path:
        try:
            with open(path, encoding="utf-8") as file:  # noqa: PTH123 - one read
                guarded = "__main__" in file.read()
        except (OSError, UnicodeDecodeError):
            pass
    if not guarded:
        return (
            f"the processes scheduler could not start its workers: each one imports {path} "
            "again, which starts the run again; put the code that runs pipeline under "
            "'if __name__ == \"__main__\":' in that script (Python needs this for processes "
            "on Windows and macOS, and pipeline starts them the same way everywhere)"
        )
    during = f" while computing {', '.join(blocks)}" if blocks else ""
    return (
        f"a worker process of the processes scheduler died abruptly{during} (os._exit() or a "
        "crash in native code in the function, killed, or out of memory); the blocks already "
        "written are kept: run again with resume=True (CLI: --resume), with fewer workers or "
        "a memory limit if memory ran out"
    )
