"""`Window`: a rectangle of pixels in global image coordinates, and the arithmetic on it.

Every piece of index arithmetic in `pipeline` (core of a block, its halo, clipping to the
image, where one window sits inside another) goes through this value object rather than
through loose ``(y0, y1), (x0, x1)`` tuples, in the spirit of rasterio's ``Window``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open rectangle ``[y0, y1) x [x0, x1)`` of global pixel coordinates.

    Coordinates may be negative or beyond the image: a block's padded window reaches past the
    image edge by its halo. An empty window (zero height or width) is allowed.
    """

    y0: int
    """First row (inclusive)."""
    y1: int
    """Last row (exclusive)."""
    x0: int
    """First column (inclusive)."""
    x1: int
    """Last column (exclusive)."""

    def __post_init__(self) -> None:
        for name in ("y0", "y1", "x0", "x1"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                # numpy integers are accepted and normalised so that windows hash and compare
                # equal whatever produced them.
                try:
                    object.__setattr__(self, name, int(value.__index__()))
                except (AttributeError, TypeError) as exc:
                    msg = f"Window.{name} must be an integer, got {value!r}"
                    raise TypeError(msg) from exc
        if self.y1 < self.y0 or self.x1 < self.x0:
            msg = f"Window bounds are reversed: y {self.y0}:{self.y1}, x {self.x0}:{self.x1}"
            raise ValueError(msg)

    @classmethod
    def from_shape(cls, shape: tuple[int, ...]) -> Window:
        """The window covering a whole image of ``shape`` (only Y and X are used)."""
        return cls(0, int(shape[0]), 0, int(shape[1]))

    @classmethod
    def from_slices(cls, ys: slice, xs: slice) -> Window:
        """A window from two slices with explicit, non-negative ``start``/``stop`` and step 1."""
        for s in (ys, xs):
            if s.start is None or s.stop is None or s.step not in (None, 1):
                msg = f"Window.from_slices needs explicit bounds and step 1, got {s!r}"
                raise ValueError(msg)
        return cls(ys.start, ys.stop, xs.start, xs.stop)

    @property
    def height(self) -> int:
        """Number of rows."""
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.x1 - self.x0

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def size(self) -> int:
        """Number of pixels."""
        return self.height * self.width

    @property
    def is_empty(self) -> bool:
        """True when the window holds no pixel."""
        return self.height == 0 or self.width == 0

    def to_slices(self) -> tuple[slice, slice]:
        """``(slice(y0, y1), slice(x0, x1))``: index an image with it (bounds must be inside)."""
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    def expand(self, top: int, bottom: int, left: int, right: int) -> Window:
        """The window grown by the given number of pixels on each side (shrunk if negative)."""
        return Window(self.y0 - top, self.y1 + bottom, self.x0 - left, self.x1 + right)

    def pad(self, depth: tuple[int, int]) -> Window:
        """The window grown by ``depth = (dy, dx)`` pixels on every side."""
        dy, dx = depth
        return self.expand(dy, dy, dx, dx)

    def intersection(self, other: Window) -> Window:
        """The overlap of two windows; empty (at the nearest corner) when they do not overlap."""
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1, x1 = max(y0, min(self.y1, other.y1)), max(x0, min(self.x1, other.x1))
        return Window(y0, y1, x0, x1)

    def clip(self, shape: tuple[int, ...]) -> Window:
        """The part of the window inside an image of ``shape``."""
        return self.intersection(Window.from_shape(shape))

    def contains(self, other: Window) -> bool:
        """True when ``other`` lies entirely inside this window."""
        return (
            self.y0 <= other.y0
            and other.y1 <= self.y1
            and self.x0 <= other.x0
            and other.x1 <= self.x1
        )

    def relative_to(self, outer: Window) -> tuple[slice, slice]:
        """Slices that select this window out of an array covering ``outer``.

        Raises ``ValueError`` when this window is not inside ``outer``.
        """
        if not outer.contains(self):
            msg = f"{self!r} is not inside {outer!r}"
            raise ValueError(msg)
        return (
            slice(self.y0 - outer.y0, self.y1 - outer.y0),
            slice(self.x0 - outer.x0, self.x1 - outer.x0),
        )

    def translate(self, dy: int, dx: int) -> Window:
        """The window moved by ``(dy, dx)``."""
        return Window(self.y0 + dy, self.y1 + dy, self.x0 + dx, self.x1 + dx)

    def __str__(self) -> str:
        return f"[{self.y0}:{self.y1}, {self.x0}:{self.x1}]"
