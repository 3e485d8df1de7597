"""Quantities written for people: byte counts as ``1.5 GB``.

At the bottom of the layers, beside ``errors``, so that every layer's messages (the block
sizing in ``grid`` as much as the run report) print sizes the same way.
"""

from __future__ import annotations

__all__ = ["format_bytes"]


def format_bytes(n: float | None) -> str:
    """``1.5 GB`` style, decimal units."""
    if n is None:
        return "n/a"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable
