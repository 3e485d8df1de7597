"""Boundary modes: what a block sees beyond the image edge, as pure index arithmetic.

Every padding mode except the constant ones is an index map: a coordinate outside ``[0, n)``
reads the pixel at some coordinate inside it. Expressing padding that way (rather than with
``np.pad`` on a block) is what makes a chunked run exact: a block reads precisely the pixels the
whole padded image would hold at its padded window, wherever those pixels come from (the block
itself, a neighbour, or the far side of the image for ``periodic``), and it works for halos
deeper than a chunk or than the image.

The maps equal ``numpy.pad`` on the whole axis for every depth; the tests check that.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipeline.errors import ArgumentError, did_you_mean
from pipeline.grid.window import Window

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import DTypeLike, NDArray

__all__ = [
    "BOUNDARY_MODES",
    "AxisGather",
    "Boundary",
    "BoundaryLike",
    "DepthLike",
    "gather_axis",
    "normalize_depth",
    "padded_read",
    "padded_windows",
    "source_indices",
    "unsafe_cast_reason",
]

Mode = Literal["reflect", "mirror", "nearest", "periodic", "constant", "nan", "none"]

BOUNDARY_MODES: dict[str, str] = {
    "reflect": "mirror about the edge, repeating the edge pixel: dcba|abcd|dcba "
    "(dask and scipy.ndimage 'reflect', numpy 'symmetric')",
    "mirror": "mirror about the edge pixel, not repeating it: dcb|abcd|cba "
    "(scipy.ndimage 'mirror', numpy 'reflect')",
    "nearest": "repeat the edge pixel: aaa|abcd|ddd (numpy 'edge')",
    "periodic": "wrap around to the other side: bcd|abcd|abc (numpy 'wrap')",
    "constant": "a fixed value k: kkk|abcd|kkk; pass a number as the boundary to choose k (0)",
    "nan": "NaN outside the image, so a function can see where the image really ends; "
    "integer images are promoted to floating point",
    "none": "no padding: blocks at the image edge arrive smaller, without the outside halo",
}
"""Every boundary mode with a one-line description (used in docs and error messages)."""


@dataclass(frozen=True, slots=True)
class Boundary:
    """A boundary mode and, for ``constant``, its value."""

    mode: Mode
    """One of :data:`BOUNDARY_MODES`."""
    value: float = 0
    """Fill value for ``constant`` (NaN for ``nan``; unused otherwise)."""

    @classmethod
    def parse(cls, spec: str | float | Boundary) -> Boundary:
        """Read a boundary from a mode name, a number (constant) or a :class:`Boundary`."""
        if isinstance(spec, Boundary):
            return spec
        if isinstance(spec, (bool, np.bool_)):
            msg = f"boundary={spec!r} is not a boundary mode; use one of {_mode_list()}"
            raise ArgumentError(msg)
        if isinstance(spec, (int, float, np.integer, np.floating)):
            if math.isnan(spec):
                return cls("nan", math.nan)
            return cls("constant", spec.item() if isinstance(spec, np.generic) else spec)
        if isinstance(spec, str):
            mode = spec.strip().lower()
            if mode == "nan":
                return cls("nan", math.nan)
            if mode in BOUNDARY_MODES:
                return cls(mode)  # type: ignore[arg-type]
            hint = did_you_mean(mode, BOUNDARY_MODES)
            msg = f"unknown boundary mode {spec!r}: {hint}use one of {_mode_list()}"
            raise ArgumentError(msg)
        msg = (
            f"boundary must be a mode name or a number, got {type(spec).__name__} {spec!r}; "
            f"use one of {_mode_list()}"
        )
        raise ArgumentError(msg)

    @property
    def fills(self) -> bool:
        """True when pixels outside the image take a constant (``constant`` or ``nan``)."""
        return self.mode in ("constant", "nan")

    def padded_dtype(self, dtype: DTypeLike) -> np.dtype[np.generic]:
        """The dtype a block of an image of ``dtype`` has once padded.

        Only ``nan`` changes it: integer and boolean images become the smallest floating type
        that holds every value exactly (float32 up to 16-bit integers, float64 above).
        """
        dt = np.dtype(dtype)
        if self.mode == "nan" and dt.kind in "biu":
            return np.result_type(dt, np.float32)
        return dt

    def check_value(self, dtype: DTypeLike) -> None:
        """Refuse a constant that the padded dtype cannot hold exactly (say -1 for uint8)."""
        if self.mode != "constant":
            return
        dt = self.padded_dtype(dtype)
        cast = np.array(self.value).astype(dt)
        if not (cast == self.value or (np.isnan(self.value) and np.isnan(cast))):
            msg = (
                f"boundary constant {self.value!r} does not fit the image dtype {dt} "
                f"(it would become {cast.item()!r}); choose a value {dt} can hold, or cast "
                "the image first"
            )
            raise ArgumentError(msg)

    def __str__(self) -> str:
        return f"constant({self.value:g})" if self.mode == "constant" else self.mode


BoundaryLike = str | float | Boundary
"""What ``boundary=`` accepts: a mode name, a number (a constant), or a :class:`Boundary`."""


def _mode_list() -> str:
    return ", ".join(repr(m) for m in BOUNDARY_MODES) + " or a number (constant)"


def source_indices(  # noqa: PLR0911 - one return per mode reads best
    coords: NDArray[np.intp], n: int, mode: str
) -> NDArray[np.intp]:
    """For each coordinate along an axis of length ``n``, the coordinate it reads from.

    Coordinates inside ``[0, n)`` map to themselves. Outside, the boundary ``mode`` decides;
    ``-1`` means "fill with the constant" (modes ``constant`` and ``nan``). Mode ``none`` has no
    outside and raises for any outside coordinate.
    """
    coords = np.asarray(coords, dtype=np.intp)
    if mode in ("constant", "nan"):
        return np.where((coords >= 0) & (coords < n), coords, -1)
    if mode == "nearest":
        return np.clip(coords, 0, n - 1)
    if mode == "periodic":
        return np.mod(coords, n)
    if mode == "reflect":
        m = np.mod(coords, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if mode == "mirror":
        if n == 1:
            return np.zeros_like(coords)
        period = 2 * n - 2
        m = np.mod(coords, period)
        return np.where(m < n, m, period - m)
    if mode == "none":
        if coords.size and (coords.min() < 0 or coords.max() >= n):
            msg = "boundary 'none' has no pixels outside the image"
            raise ValueError(msg)
        return coords
    msg = f"unknown boundary mode {mode!r}"
    raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class AxisGather:
    """How to fill one axis of a padded window from the image: which source runs to read and
    where each padded coordinate comes from."""

    start: int
    """First padded coordinate actually covered (clipped to the image for mode ``none``)."""
    stop: int
    """One past the last covered coordinate."""
    segments: tuple[tuple[int, int], ...]
    """Disjoint, sorted source intervals ``[a, b)`` to read, inside ``[0, n)``."""
    positions: NDArray[np.intp] | None
    """For each covered coordinate, its index into the concatenated segments (``-1`` for
    fill); ``None`` when the covered interval is itself the single segment (no gather)."""

    @property
    def length(self) -> int:
        """Number of covered coordinates."""
        return self.stop - self.start

    @property
    def is_identity(self) -> bool:
        """True when the covered interval lies inside the image: a plain read, no copy."""
        return self.positions is None


@functools.lru_cache(maxsize=4096)
def gather_axis(start: int, stop: int, n: int, mode: str) -> AxisGather:
    """Plan how to read the padded interval ``[start, stop)`` of an axis of length ``n``.

    Cached: planning asks for the same edge intervals once per task and once per whole-image
    pass, and each answer costs a sort of the interval (its ``positions`` are read-only)."""
    if mode == "none":
        start, stop = max(start, 0), min(stop, n)
    if start >= 0 and stop <= n:
        return AxisGather(start, stop, ((start, stop),), None)
    src = source_indices(np.arange(start, stop, dtype=np.intp), n, mode)
    needed = np.unique(src[src >= 0])
    # Split the sorted unique sources into runs of consecutive coordinates.
    breaks = np.flatnonzero(np.diff(needed) != 1) + 1
    runs = np.split(needed, breaks) if needed.size else []
    segments = tuple((int(r[0]), int(r[-1]) + 1) for r in runs)
    seg_starts = np.array([a for a, _ in segments], dtype=np.intp)
    offsets = np.cumsum([0] + [b - a for a, b in segments])[:-1]
    positions = np.full(src.shape, -1, dtype=np.intp)
    inside = src >= 0
    which = np.searchsorted(seg_starts, src[inside], side="right") - 1
    positions[inside] = offsets[which] + (src[inside] - seg_starts[which])
    positions.flags.writeable = False
    return AxisGather(start, stop, segments, positions)


def padded_windows(
    window: Window, image_shape: tuple[int, int], boundary: Boundary
) -> tuple[Window, list[Window]]:
    """The window a padded read of ``window`` covers, and the in-image windows it reads.

    This is what a task depends on: for an interior window, the window itself; across an edge,
    the distinct source runs (for ``periodic``, including the far side of the image).
    """
    gy = gather_axis(window.y0, window.y1, image_shape[0], boundary.mode)
    gx = gather_axis(window.x0, window.x1, image_shape[1], boundary.mode)
    covered = Window(gy.start, gy.stop, gx.start, gx.stop)
    return covered, [Window(ya, yb, xa, xb) for ya, yb in gy.segments for xa, xb in gx.segments]


def padded_read(
    read: Callable[[Window], NDArray[np.generic]],
    window: Window,
    image_shape: tuple[int, int],
    boundary: Boundary,
    dtype: DTypeLike,
) -> tuple[NDArray[np.generic], Window]:
    """Read ``window`` of an image, which may reach past its edge, padded by ``boundary``.

    ``read`` returns any window inside the image (all channels). Returns the padded array, in
    the padded dtype of ``boundary``, and the window it covers: ``window`` itself, or for mode
    ``none`` its part inside the image.

    An interior window is a single plain read. A window over the edge reads each distinct
    source run once (for ``periodic`` this includes the far side of the image) and assembles
    the block from a few rectangular slice copies.
    """
    height, width = image_shape
    gy = gather_axis(window.y0, window.y1, height, boundary.mode)
    gx = gather_axis(window.x0, window.x1, width, boundary.mode)
    covered = Window(gy.start, gy.stop, gx.start, gx.stop)
    out_dtype = boundary.padded_dtype(dtype)
    if gy.is_identity and gx.is_identity:
        return np.asarray(read(covered)).astype(out_dtype, copy=False), covered

    ylen = sum(b - a for a, b in gy.segments)
    xlen = sum(b - a for a, b in gx.segments)
    pieces: list[list[NDArray[np.generic]]] = [
        [np.asarray(read(Window(ya, yb, xa, xb))) for xa, xb in gx.segments]
        for ya, yb in gy.segments
    ]
    trailing = pieces[0][0].shape[2:]
    compact = np.empty((ylen, xlen, *trailing), dtype=out_dtype)
    y = 0
    for row in pieces:
        x = 0
        for piece in row:
            h, w = piece.shape[:2]
            compact[y : y + h, x : x + w] = piece
            x += w
        y += row[0].shape[0]
    py = np.arange(ylen, dtype=np.intp) if gy.positions is None else gy.positions
    px = np.arange(xlen, dtype=np.intp) if gx.positions is None else gx.positions
    out = np.empty((py.size, px.size, *trailing), dtype=out_dtype)
    fill = boundary.value if boundary.fills else 0
    # Each axis is a few runs (the inside, then mirrored, repeated or wrapped borders): copy
    # rectangle by rectangle with slices, much faster than one fancy-indexing gather.
    for oy0, oy1, sy in _runs(py):
        for ox0, ox1, sx in _runs(px):
            if sy is None or sx is None:
                out[oy0:oy1, ox0:ox1] = fill
            else:
                out[oy0:oy1, ox0:ox1] = compact[sy, sx]
    return out, covered


def _runs(positions: NDArray[np.intp]) -> list[tuple[int, int, slice | None]]:
    """Split gather positions into runs that one slice reads: ``(out start, out stop, source
    slice)``, the slice stepping by +1, -1 or 0 (a repeated pixel, broadcast), or ``None``
    for a run of fill (position -1)."""
    runs: list[tuple[int, int, slice | None]] = []
    n = positions.size
    k = 0
    while k < n:
        p = int(positions[k])
        if p < 0:
            stop = k + 1
            while stop < n and positions[stop] < 0:
                stop += 1
            runs.append((k, stop, None))
            k = stop
            continue
        step = int(positions[k + 1]) - p if k + 1 < n and positions[k + 1] >= 0 else 1
        if step not in (-1, 0, 1):
            step = 1
        expected = p + step * np.arange(n - k, dtype=np.intp)
        off = np.flatnonzero(positions[k:] != expected)
        stop = k + (int(off[0]) if off.size else n - k)
        length = stop - k
        if step == 1:
            source = slice(p, p + length)
        elif step == -1:
            end = p - length
            source = slice(p, end if end >= 0 else None, -1)
        else:
            source = slice(p, p + 1)  # broadcast over the run
        runs.append((k, stop, source))
        k = stop
    return runs


DepthLike = int | tuple[int, int] | list[int]
"""What ``depth=`` accepts: one halo width for both axes, or ``(dy, dx)``."""


def normalize_depth(depth: DepthLike, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(dy, dx)`` from an int or a pair, checked against the image size."""
    if isinstance(depth, (int, np.integer)) and not isinstance(depth, (bool, np.bool_)):
        pair = (int(depth), int(depth))
    elif (
        isinstance(depth, (tuple, list))
        and len(depth) == 2
        and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in depth)
    ):
        pair = (int(depth[0]), int(depth[1]))
    else:
        msg = f"depth={depth!r} is not a halo width: give an int, or (dy, dx) for rows and columns"
        raise ArgumentError(msg)
    if min(pair) < 0:
        msg = f"depth={depth!r} is negative; a halo width is 0 or more pixels"
        raise ArgumentError(msg)
    height, width = int(image_shape[0]), int(image_shape[1])
    if pair[0] > height or pair[1] > width:
        msg = (
            f"depth {pair[0]}x{pair[1]} is larger than the image ({height}x{width}): a halo "
            f"cannot reach beyond the whole image; use depth <= ({height}, {width})"
        )
        raise ArgumentError(msg)
    return pair


def unsafe_cast_reason(source: DTypeLike, target: DTypeLike) -> str | None:
    """Why values of ``source`` dtype may not be stored as ``target`` (``None`` if they may).

    Casts within a kind are allowed (float64 to float32, int64 to uint8 wraps as numpy does);
    floats never go into integers: NaN has no integer value, and a silent cast would store
    garbage where the function meant "no data".
    """
    src, dst = np.dtype(source), np.dtype(target)
    if np.can_cast(src, dst, casting="same_kind"):
        return None
    if src.kind in "fc" and dst.kind in "biu":
        return (
            f"a float result cannot go into an integer output (NaN has no integer value): "
            f"declare dtype={src.name!r}, or convert inside the function, mapping NaN to a "
            "nodata value (np.where(np.isnan(x), nodata, x).astype(...))"
        )
    return f"{dst} cannot hold {src} values safely: declare dtype={src.name!r} or convert"
