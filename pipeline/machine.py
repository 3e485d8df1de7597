"""Facts about the machine a run starts on: usable cores and memory."""

from __future__ import annotations

import os

__all__ = ["available_memory", "default_workers"]


def default_workers() -> int:
    """Cores this process may use (its CPU affinity where the system tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of memory available to new allocations (what the system could give now)."""
    try:
        import psutil  # a dependency of distributed

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - distributed always brings psutil
        pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
        return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 4 * 2**30
