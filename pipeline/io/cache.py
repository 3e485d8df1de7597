"""Decoded tiles, kept for the neighbouring blocks that read them again as their halo.

A block with a halo reads a strip of each neighbouring storage tile, but a compressed tile
can only be decoded whole: without a cache, a one-pixel halo decodes up to nine tiles per
block. Tasks that run in one process (threads, or one cluster worker) share this cache, so
each tile is decoded about once. It holds at most ``PIPELINE_TILE_CACHE_MB`` megabytes
(default 128), least recently used first out, so memory stays bounded.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Iterator

    from numpy.typing import NDArray

    from pipeline.grid import Window

__all__ = ["TileCache", "assemble", "tile_cache"]


class TileCache:
    """A thread-safe, size-bounded LRU map from tile keys to decoded, read-only arrays."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, NDArray[Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, threading.Event] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> NDArray[Any] | None:
        """The array under ``key`` (now most recently used), or ``None``."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def hold_at_least(self, nbytes: int) -> None:
        """Grow the budget to ``nbytes`` if it is smaller: an input whose storage units
        (tiles, chunks) are larger than the cache would be decoded again by every block that
        reads part of one. The plan counts this size in its memory projection."""
        with self._lock:
            self.max_bytes = max(self.max_bytes, nbytes)

    def put(self, key: Hashable, value: NDArray[Any]) -> None:
        """Keep ``value`` (made read-only) unless it alone exceeds the budget."""
        if value.nbytes > self.max_bytes:
            return
        value.flags.writeable = False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def claim(
        self, keys: list[Hashable]
    ) -> tuple[dict[Hashable, NDArray[Any]], set[Hashable], dict[Hashable, threading.Event]]:
        """Sort ``keys`` into those cached (with their arrays), those this thread must fetch
        (now marked in flight), and those in flight in another thread (with their events)."""
        found: dict[Hashable, NDArray[Any]] = {}
        mine: set[Hashable] = set()
        theirs: dict[Hashable, threading.Event] = {}
        with self._lock:
            for key in keys:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    found[key] = value
                elif key in self._inflight:
                    theirs[key] = self._inflight[key]
                elif key not in mine:
                    self.misses += 1
                    self._inflight[key] = threading.Event()
                    mine.add(key)
        return found, mine, theirs

    def release(self, keys: Iterable[Hashable]) -> None:
        """Mark fetches of ``keys`` finished (cached or failed); wake whoever waits."""
        with self._lock:
            events = [self._inflight.pop(key) for key in keys if key in self._inflight]
        for event in events:
            event.set()

    def clear(self) -> None:
        """Forget everything (and the hit counts)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._bytes


def _budget() -> int:
    """The cache's size from ``PIPELINE_TILE_CACHE_MB`` (default 128 MB)."""
    text = os.environ.get("PIPELINE_TILE_CACHE_MB", "128")
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not math.isfinite(megabytes) or megabytes < 0:
        msg = (
            f"PIPELINE_TILE_CACHE_MB={text!r}: give the size of the decoded-tile cache in "
            "megabytes, 0 or more, such as 128 (or unset it)"
        )
        raise ArgumentError(msg)
    return int(megabytes * 2**20)


tile_cache = TileCache(_budget())
"""The cache of this process."""


def assemble(
    window: Window,
    tiles: Iterable[tuple[Hashable, Window]],
    fetch: Callable[[list[tuple[Hashable, Window]]], Iterator[tuple[Hashable, NDArray[Any]]]],
    out: NDArray[Any],
    cache: TileCache | None = None,
) -> NDArray[Any]:
    """Fill ``out`` (covering ``window``) from ``tiles``: ``(key, tile window)`` pairs, taken
    from the cache or, for those missing, from ``fetch``, which yields ``(key, array)`` as it
    decodes them (each is cached at once). A tile array covers at least its window's shape
    from its origin.

    A tile another thread is decoding right now is waited for, not decoded twice; each decoded
    tile is published as soon as it is ready, so that neighbouring blocks running side by side
    (which share most of their tiles) wait for one tile, not for each other's whole batch.
    """
    cache = tile_cache if cache is None else cache
    needed = dict(tiles)

    def place(key: Hashable, array: NDArray[Any]) -> None:
        # Each tile is copied into ``out`` as it comes and let go: a read holds its window and
        # one decoded tile, never all the tiles it spans (those may be far larger).
        part = needed[key].intersection(window)
        if not part.is_empty:
            src = part.translate(-needed[key].y0, -needed[key].x0).to_slices()
            out[part.relative_to(window)] = np.asarray(array)[src]

    found, mine, theirs = cache.claim(list(needed))
    for key in list(found):
        place(key, found.pop(key))
    if mine:
        owned = [(key, tile) for key, tile in needed.items() if key in mine]
        try:
            for key, array in fetch(owned):
                cache.put(key, array)
                cache.release([key])
                place(key, array)
                del array
        finally:
            cache.release(mine)  # whatever failed: waiters will fetch it themselves
    for key, event in theirs.items():
        event.wait()
        hit = cache.get(key)
        if hit is None:  # evicted already, or the other thread failed: decode it here
            hit = dict(fetch([(key, needed[key])]))[key]
            cache.put(key, hit)
        place(key, hit)
        del hit
    return out
