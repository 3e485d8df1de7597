"""Named schedulers: where the tasks of a run execute, and how their completion is reported.

``synchronous`` (one thread, for debugging), ``threads`` (the default: numpy, numba and the
codecs release the GIL), ``processes`` (a spawn-started pool, as on Windows and macOS: for
pure-Python functions that hold the GIL), ``distributed`` (a LocalCluster started for the run),
an address such as ``tcp://host:8786`` (an existing cluster), or a ``distributed.Client``.
Every one reports each finished task as it finishes, which drives the progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import SchedulerError, did_you_mean
from pipeline.machine import default_workers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "LOCAL_SCHEDULERS",
    "SCHEDULERS",
    "Executor",
    "check_scheduler",
    "executor",
]

LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")
SCHEDULERS = (*LOCAL_SCHEDULERS, "distributed")
"""Scheduler names; an address ``tcp://host:port`` or a ``distributed.Client`` also work."""


@dataclass
class Executor:
    """Runs task graphs on one scheduler, calling back as each requested task finishes."""

    name: str
    """Scheduler name, or the cluster address."""
    workers: int
    """Worker threads or processes (for a cluster: its total threads)."""
    client: Any = None
    """The ``distributed.Client`` for distributed runs."""
    dashboard: str | None = None
    """The dashboard link of a distributed run."""

    @property
    def shares_memory(self) -> bool:
        """True when tasks run in this process (an in-memory store is visible to them)."""
        return self.name in ("synchronous", "threads")

    def run(
        self,
        tasks: Sequence[Any],
        on_done: Callable[[Any], None],
    ) -> list[Any]:
        """Compute ``tasks`` (dask Delayed objects); ``on_done(result)`` as each finishes."""
        if self.client is not None:
            return self._run_distributed(tasks, on_done)
        import dask
        from dask.callbacks import Callback

        wanted = {t.key for t in tasks}

        def posttask(key: Any, result: Any, *_: Any) -> None:
            if key in wanted:
                on_done(result)

        import dask.local
        import dask.multiprocessing
        import dask.threaded

        # The scheduler function itself, not its name: a name makes dask import distributed
        # (about a second) to look for a client first.
        get = {
            "synchronous": dask.local.get_sync,
            "threads": dask.threaded.get,
            "processes": dask.multiprocessing.get,
        }[self.name]
        options: dict[str, Any] = {"scheduler": get}
        if self.name != "synchronous":
            options["num_workers"] = self.workers
        if self.name != "processes":
            with Callback(posttask=posttask):
                return list(dask.compute(*tasks, **options))
        # One task per worker at a time (dask hands out batches of 6 by default: with a dozen
        # tasks, one process ran them all while the others waited), so every core is busy
        # and each finished block is reported at once.
        with _process_pool(self.workers) as pool, Callback(posttask=posttask):
            return list(dask.compute(*tasks, **options, pool=pool, chunksize=1))

    def _run_distributed(self, tasks: Sequence[Any], on_done: Callable[[Any], None]) -> list[Any]:
        from distributed import as_completed

        futures = self.client.compute(list(tasks))
        index = {f.key: k for k, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                result = future.result()
                results[index[future.key]] = result
                on_done(result)
        except BaseException:
            self.client.cancel(futures)
            raise
        return results


@contextlib.contextmanager
def _process_pool(workers: int) -> Iterator[Any]:
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
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context(),
        initializer=partial(initialize_worker_process, user_initializer=_worker_signals),
    )
    try:
        yield pool
    except BrokenProcessPool:
        _terminate(pool)
        # Its own traceback says only that a process ended: the message says why.
        raise SchedulerError(_broken_pool_message()) from None
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown()


def _worker_signals() -> None:
    """In each pool worker: Ctrl-C is the run's to handle (it stops the workers), and a
    stopped worker exits as Python does, running its finalizers (a library's semaphore left
    registered would be reported as leaked when the run ends)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _terminate(pool: Any) -> None:
    """Stop a process pool's workers now (concurrent.futures only awaits them)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=3)
        if process.is_alive():
            process.kill()
            process.join(timeout=1)
    pool.shutdown(wait=True)  # its manager thread sees them gone and releases its queues


def _broken_pool_message() -> str:
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
    return (
        "a worker process of the processes scheduler died abruptly (killed, or out of "
        "memory); the blocks already written are kept: run again with resume=True "
        "(CLI: --resume), with fewer workers or a memory limit if memory ran out"
    )


def check_scheduler(scheduler: Any = None, workers: int | None = None) -> None:
    """Refuse an unknown scheduler or worker count before anything is created or started."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        msg = f"workers={workers!r} must be a whole number of workers"
        raise SchedulerError(msg)
    if workers is not None and workers < 1:
        msg = f"workers={workers} must be at least 1"
        raise SchedulerError(msg)
    if scheduler is None or _is_client(scheduler):
        return
    if not isinstance(scheduler, str):
        msg = (
            f"scheduler={scheduler!r} is not a scheduler; use one of {', '.join(SCHEDULERS)}, "
            "an address tcp://host:port, or a distributed.Client"
        )
        raise SchedulerError(msg)
    name = scheduler.strip().lower()
    if name in SCHEDULERS or "://" in name:
        return
    hint = did_you_mean(name, SCHEDULERS)
    msg = (
        f"unknown scheduler {scheduler!r}: {hint}use one of {', '.join(SCHEDULERS)}, or an "
        "address such as tcp://127.0.0.1:8786"
    )
    raise SchedulerError(msg)


@contextlib.contextmanager
def executor(
    scheduler: Any = None,
    workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    memory_limit: str | None = None,
) -> Iterator[Executor]:
    """The executor for ``scheduler``; a cluster it starts is shut down on exit.

    ``None`` means the distributed client already set as default in this process (as dask
    does), else ``"threads"``. ``threads_per_worker`` and ``memory_limit`` shape the
    ``LocalCluster`` that ``"distributed"`` starts.
    """
    check_scheduler(scheduler, workers)
    if scheduler is None:
        client = _default_client()
        if client is not None:
            yield _client_executor(client)
            return
        scheduler = "threads"
    if _is_client(scheduler):
        yield _client_executor(scheduler)
        return
    name = scheduler.strip().lower()
    if name in LOCAL_SCHEDULERS:
        count = 1 if name == "synchronous" else (workers or default_workers())
        yield Executor(name=name, workers=count)
        return
    if name == "distributed":
        count = workers or max(1, default_workers() // threads_per_worker)
        with _local_cluster(count, threads_per_worker, memory_limit) as ex:
            yield ex
        return
    with _remote_cluster(scheduler.strip()) as ex:
        yield ex


def _is_client(obj: object) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(obj, distributed.Client)


def _default_client() -> Any:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None


def _client_executor(client: Any) -> Executor:
    threads = sum(client.nthreads().values()) or 1
    return Executor(
        name=str(client.scheduler.address),
        workers=threads,
        client=client,
        dashboard=client.dashboard_link,
    )


@contextlib.contextmanager
def _local_cluster(
    workers: int, threads_per_worker: int, memory_limit: str | None
) -> Iterator[Executor]:
    from distributed import Client, LocalCluster

    from pipeline.worker_logs import LocalWorkers

    logger = logging.getLogger("distributed")
    level = logger.level
    try:
        # Bound to loopback: a dashboard or scheduler port open to the network would let
        # anyone on it run code in this process.
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                memory_limit=memory_limit or "auto",
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            client.register_plugin(LocalWorkers())
            ex = _client_executor(client)
            ex.name = "distributed"
            try:
                yield ex
            except BaseException:
                # Stopped early (Ctrl-C, a failure): the cluster is closed with tasks running,
                # and its warnings about the work it loses by that are expected.
                logger.setLevel(logging.ERROR)
                raise
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _remote_cluster(address: str) -> Iterator[Executor]:
    from distributed import Client

    try:
        client = Client(address, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        msg = (
            f"cannot reach the Dask scheduler at {address} ({exc}); check that it runs and "
            "that the address and port are right"
        )
        raise SchedulerError(msg) from exc
    with client:
        yield _client_executor(client)
