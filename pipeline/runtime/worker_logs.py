"""Workers of the clusters a run starts itself: their logs and their Ctrl-C (imported only
where distributed is used).

A task that fails in the user's function is reported by the client once: one line naming the
block, then the function's own traceback. A LocalCluster's workers share the user's terminal,
and each would first print its own "Compute Failed" record of the same failure, with our
frames and the exception's repr, and after the client cancels the remaining tasks, a warning
per task cut short ("ended with CancelledError"): noise above the one message that matters.
Every other record of the workers (memory warnings, a worker lost) still shows.

Ctrl-C in a terminal reaches every process of the run, and each worker would print its own
KeyboardInterrupt traceback; the run's process handles it and stops the cluster, so workers
ignore it.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["LocalWorkers"]

REPORTED = ("BlockFunctionError(", "BlockShapeError(")
"""Exceptions whose failure the client reports whole (see ``cli``)."""


class _DropReported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("Async instruction") and "CancelledError" in record.getMessage():
            return False  # a task the client cancelled, as it does after a failure
        if not text.startswith("Compute Failed"):
            return True
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        return not any(str(a).startswith(REPORTED) for a in args)


class LocalWorkers(WorkerPlugin):  # type: ignore[misc]
    """Installs the filter and ignores Ctrl-C in every worker, also one restarted after a
    crash."""

    name = "pipeline-local-workers"

    def setup(self, worker: Any) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name in ("distributed.worker", "distributed.worker.state_machine"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _DropReported) for f in logger.filters):
                logger.addFilter(_DropReported())
