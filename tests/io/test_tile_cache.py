"""The decoded-tile cache: bounded by bytes, least recently used first out, one decode per
tile however many threads want it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from pipeline.grid import Window
from pipeline.io.cache import TileCache, assemble


def tile(value: int, nbytes: int = 1000) -> np.ndarray[Any, Any]:
    return np.full(nbytes, value, dtype=np.uint8)


def test_the_least_recently_used_tile_leaves_first_when_over_the_budget() -> None:
    cache = TileCache(max_bytes=2500)
    cache.put("a", tile(1))
    cache.put("b", tile(2))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", tile(3))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.nbytes == 2000
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_tile_larger_than_the_budget_is_not_kept_and_kept_ones_are_read_only() -> None:
    cache = TileCache(max_bytes=500)
    cache.put("big", tile(1))
    assert cache.get("big") is None and cache.nbytes == 0
    small = tile(2, 100)
    cache.put("small", small)
    assert not small.flags.writeable


def test_a_tile_wanted_by_many_threads_at_once_is_decoded_once() -> None:
    cache = TileCache(max_bytes=10**6)
    decoded: list[object] = []
    start = threading.Barrier(4)

    def fetch(wanted: list[tuple[object, Window]]) -> Iterator[tuple[object, Any]]:
        for key, _ in wanted:
            decoded.append(key)
            yield key, np.full((4, 4), 7, dtype="u2")

    def read() -> None:
        out = np.zeros((4, 4), dtype="u2")
        start.wait()
        assemble(Window(0, 4, 0, 4), [("t", Window(0, 4, 0, 4))], fetch, out, cache)
        assert (out == 7).all()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert decoded == ["t"]


def test_a_failed_decode_is_not_waited_for_forever() -> None:
    cache = TileCache(max_bytes=10**6)

    def failing(wanted: list[tuple[object, Window]]) -> Iterator[tuple[object, Any]]:
        msg = "decode failed"
        raise OSError(msg)
        yield  # pragma: no cover - a generator

    out = np.zeros((4, 4), dtype="u2")
    with pytest.raises(OSError, match="decode failed"):
        assemble(Window(0, 4, 0, 4), [("t", Window(0, 4, 0, 4))], failing, out, cache)
    found, mine, theirs = cache.claim(["t"])
    assert (found, mine, theirs) == ({}, {"t"}, {}), "the next reader fetches it itself"
