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
from pipeline.runtime.pool import process_pool, quiet_resource_tracker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "LOCAL_SCHEDULERS",
    "SCHEDULERS",
    "Executor",
    "check_scheduler",
    "executor",
    "parallelism",
    "scheduler_label",
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
    pool: Any = None
    """The process pool of a ``processes`` run, started with the executor and kept for every
    level of the run."""

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
        with Callback(posttask=posttask):
            return list(dask.compute(*tasks, **options, pool=self.pool, chunksize=1))

    def _run_distributed(self, tasks: Sequence[Any], on_done: Callable[[Any], None]) -> list[Any]:
        """Submit in waves: at most ``WAVE`` tasks are on the scheduler at once, topped up as
        they finish, so that the first task starts within seconds whatever the plan's size
        and the scheduler holds less (all at once, 98,000 tasks took 34 s to reach it before
        the first ran; see ``benchmarks/scheduler_load.py``)."""
        from distributed import as_completed

        results: list[Any] = [None] * len(tasks)
        index: dict[Any, int] = {}
        live: set[Any] = set()
        queued = 0

        def submit(count: int) -> list[Any]:
            nonlocal queued
            batch = list(tasks[queued : queued + count])
            futures = self.client.compute(batch) if batch else []
            for k, future in enumerate(futures, start=queued):
                index[future.key] = k
            queued += len(batch)
            live.update(futures)
            return futures

        done = as_completed(submit(WAVE), loop=self.client.loop)
        try:
            for future in done:
                result = future.result()
                live.discard(future)
                results[index.pop(future.key)] = result
                on_done(result)
                if len(live) <= WAVE // 2 and queued < len(tasks):
                    done.update(submit(WAVE - len(live)))
        except BaseException:
            self.client.cancel(list(live))
            raise
        return results


WAVE = 4096
"""Tasks on a distributed scheduler at once (see ``Executor._run_distributed``)."""


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
    count = _worker_count(name, workers, threads_per_worker)
    if name == "processes":
        # Started first, so that the workers import while this process creates the output
        # and builds the tasks.
        with process_pool(count) as pool:
            yield Executor(name=name, workers=count, pool=pool)
        return
    if name in LOCAL_SCHEDULERS:
        yield Executor(name=name, workers=count)
        return
    if name == "distributed":
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

    from pipeline.runtime.worker_logs import LocalWorkers

    quiet_resource_tracker()
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


def _worker_count(name: str | None, workers: int | None, threads_per_worker: int) -> int:
    """Threads (local schedulers) or processes (a cluster) a named scheduler runs."""
    if name == "synchronous":
        return 1
    if name == "distributed":
        return workers or max(1, default_workers() // threads_per_worker)
    return workers or default_workers()


def parallelism(scheduler: Any, workers: int | None, threads_per_worker: int) -> tuple[int, int]:
    """``(tasks at once in one process, tasks at once in all)`` on ``scheduler``."""
    if scheduler is not None and not isinstance(scheduler, str):  # a Client
        threads = list(scheduler.nthreads().values()) or [1]
        return max(threads), sum(threads)
    name = scheduler.strip().lower() if scheduler else "threads"
    count = _worker_count(name, workers, threads_per_worker)
    if name in ("synchronous", "threads"):
        return count, count
    if name == "processes":
        return 1, count
    return threads_per_worker, count * threads_per_worker


def scheduler_label(scheduler: Any, workers: int | None) -> str:
    """The scheduler and its workers, in words."""
    name = scheduler if isinstance(scheduler, str) else "threads" if scheduler is None else "client"
    return f"{name}, {workers} workers" if workers else f"{name}, one worker per core"
