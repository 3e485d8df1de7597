"""Chunk grids: how an image is cut into blocks along Y and X, chosen and checked.

Pure arithmetic on integers; no array is touched here.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from pipeline.errors import AlignmentError, ArgumentError
from pipeline.grid.levels import ceil_div
from pipeline.grid.window import Window

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "ChunkGrid",
    "ChunksLike",
    "auto_chunks",
    "check_write_alignment",
    "normalize_chunks",
]

DEFAULT_CHUNK_BYTES = 32 * 2**20
"""Target size of a default chunk: large enough that per-task overhead is negligible, small
enough that a few chunks per worker fit comfortably in memory."""

ChunksLike = int | Sequence[int | None] | Sequence[Sequence[int]] | None
"""What ``chunks=`` accepts: one size for both axes, ``(rows, cols)`` (``-1`` or ``None`` for a
whole axis), explicit per-axis chunk sizes, or ``None`` for the default."""


def _split(length: int, size: int) -> tuple[int, ...]:
    full, rest = divmod(length, size)
    return (size,) * full + ((rest,) if rest else ())


@dataclass(frozen=True, slots=True)
class ChunkGrid:
    """The sizes of the blocks along Y (``rows``) and X (``cols``), as dask writes chunks."""

    rows: tuple[int, ...]
    """Heights of the block rows, top to bottom."""
    cols: tuple[int, ...]
    """Widths of the block columns, left to right."""
    y_edges: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Block boundaries along Y, from 0 to the height."""
    x_edges: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Block boundaries along X, from 0 to the width."""

    def __post_init__(self) -> None:
        for name, sizes in (("rows", self.rows), ("cols", self.cols)):
            if not sizes or any(s < 1 for s in sizes):
                msg = f"ChunkGrid.{name} needs positive sizes, got {sizes!r}"
                raise ValueError(msg)
        object.__setattr__(self, "y_edges", (0, *accumulate(self.rows)))
        object.__setattr__(self, "x_edges", (0, *accumulate(self.cols)))

    @classmethod
    def regular(cls, shape: tuple[int, ...], chunk: tuple[int, int]) -> ChunkGrid:
        """Blocks of ``chunk`` pixels, the last row and column of blocks possibly smaller."""
        return cls(_split(int(shape[0]), chunk[0]), _split(int(shape[1]), chunk[1]))

    @classmethod
    def from_dask(cls, chunks: tuple[tuple[int, ...], ...]) -> ChunkGrid:
        """The grid of a dask array's first two axes."""
        return cls(tuple(int(c) for c in chunks[0]), tuple(int(c) for c in chunks[1]))

    @property
    def shape(self) -> tuple[int, int]:
        """The image shape ``(height, width)`` the grid covers."""
        return (self.y_edges[-1], self.x_edges[-1])

    @property
    def nblocks(self) -> tuple[int, int]:
        """Number of blocks along Y and X."""
        return (len(self.rows), len(self.cols))

    @property
    def num_blocks(self) -> int:
        """Total number of blocks."""
        return len(self.rows) * len(self.cols)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """The nominal block shape: the first block's."""
        return (self.rows[0], self.cols[0])

    @property
    def is_regular(self) -> bool:
        """True when every block but the last of each axis has the nominal size."""
        return (
            all(r == self.rows[0] for r in self.rows[:-1])
            and all(c == self.cols[0] for c in self.cols[:-1])
            and self.rows[-1] <= self.rows[0]
            and self.cols[-1] <= self.cols[0]
        )

    def window(self, i: int, j: int) -> Window:
        """The global window of block ``(i, j)``."""
        return Window(self.y_edges[i], self.y_edges[i + 1], self.x_edges[j], self.x_edges[j + 1])

    def blocks(self) -> Iterator[tuple[tuple[int, int], Window]]:
        """Every block index and window, in row-major order."""
        for i in range(len(self.rows)):
            for j in range(len(self.cols)):
                yield (i, j), self.window(i, j)

    def overlapping(self, window: Window) -> Iterator[tuple[int, int]]:
        """Indices of the blocks that share at least one pixel with ``window``."""
        if window.is_empty:
            return
        i0 = bisect.bisect_right(self.y_edges, window.y0) - 1
        i1 = bisect.bisect_left(self.y_edges, window.y1)
        j0 = bisect.bisect_right(self.x_edges, window.x0) - 1
        j1 = bisect.bisect_left(self.x_edges, window.x1)
        for i in range(max(i0, 0), min(i1, len(self.rows))):
            for j in range(max(j0, 0), min(j1, len(self.cols))):
                yield (i, j)

    def __str__(self) -> str:
        ny, nx = self.nblocks
        cy, cx = self.chunk_shape
        kind = "" if self.is_regular else ", irregular"
        return f"{ny}x{nx} blocks of {cy}x{cx}{kind}"


def auto_chunks(
    shape: tuple[int, ...],
    tile: tuple[int, int],
    bytes_per_pixel: int,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[int, int]:
    """A block shape made of whole storage ``tile`` s, as square as the tiles allow, of about
    ``target_bytes`` (never less than one tile, never more than the image)."""
    height, width = int(shape[0]), int(shape[1])
    ty, tx = max(1, min(tile[0], height)), max(1, min(tile[1], width))
    ny_max, nx_max = ceil_div(height, ty), ceil_div(width, tx)
    tiles_wanted = max(1.0, target_bytes / (bytes_per_pixel * ty * tx))
    side = math.sqrt(tiles_wanted * ty * tx)  # pixels along each side of a square chunk
    ny = min(ny_max, max(1, math.floor(side / ty)))
    nx = min(nx_max, max(1, math.floor(tiles_wanted / ny)))
    # Spend what the columns left of the budget on rows (more than a square when the chunk
    # already spans the width).
    ny = min(ny_max, max(1, math.floor(tiles_wanted / nx)))
    return (min(ny * ty, height), min(nx * tx, width))


def normalize_chunks(
    chunks: ChunksLike,
    shape: tuple[int, ...],
    default: tuple[int, int],
) -> ChunkGrid:
    """Turn any accepted ``chunks=`` value into a :class:`ChunkGrid` for an image of ``shape``.

    ``default`` is used for ``None`` (and for a ``None`` inside a pair it means the whole axis,
    as ``-1`` does).
    """
    height, width = int(shape[0]), int(shape[1])
    if chunks is None:
        return ChunkGrid.regular(shape, default)
    if isinstance(chunks, bool):
        msg = f"chunks={chunks!r} is not a chunk size; give an int or (rows, cols)"
        raise ArgumentError(msg)
    if isinstance(chunks, int):
        chunks = (chunks, chunks)
    if not isinstance(chunks, Sequence) or isinstance(chunks, str) or len(chunks) != 2:
        msg = (
            f"chunks={chunks!r} is not understood: give one int, (rows, cols), or explicit "
            "per-axis sizes ((r0, r1, ...), (c0, c1, ...)); chunks span Y and X only"
        )
        raise ArgumentError(msg)
    axes: list[tuple[int, ...]] = []
    for axis, (spec, length) in enumerate(zip(chunks, (height, width), strict=True)):
        name = "rows" if axis == 0 else "cols"
        if spec is None or spec == -1:
            axes.append((length,))
        elif isinstance(spec, int) and not isinstance(spec, bool):
            if spec < 1:
                msg = f"chunk {name} must be >= 1 (or -1 for the whole axis), got {spec}"
                raise ArgumentError(msg)
            axes.append(_split(length, min(spec, length)))
        elif isinstance(spec, Sequence):
            sizes = tuple(int(s) for s in spec)
            if any(s < 1 for s in sizes) or sum(sizes) != length:
                msg = (
                    f"explicit chunk {name} {sizes} must be positive and add up to the image "
                    f"{'height' if axis == 0 else 'width'} {length} (they add up to {sum(sizes)})"
                )
                raise ArgumentError(msg)
            axes.append(sizes)
        else:
            msg = f"chunk {name} must be an int, -1 or a tuple of ints, got {spec!r}"
            raise ArgumentError(msg)
    return ChunkGrid(axes[0], axes[1])


def check_write_alignment(grid: ChunkGrid, store_chunks: tuple[int, int]) -> None:
    """Refuse a task grid whose blocks do not consist of whole store chunks.

    Two tasks writing parts of the same Zarr chunk race (each reads, modifies and rewrites the
    whole chunk) and silently lose data, as in dask issue 12583. Raises :class:`AlignmentError`
    with the offending boundaries and the chunk sizes that would work.
    """
    bad: list[str] = []
    suggestion: list[int] = []
    for name, edges, size in (
        ("y", grid.y_edges, store_chunks[0]),
        ("x", grid.x_edges, store_chunks[1]),
    ):
        interior = edges[1:-1]
        wrong = [e for e in interior if e % size]
        if wrong:
            shown = ", ".join(map(str, wrong[:5])) + (" ..." if len(wrong) > 5 else "")
            bad.append(f"task boundaries at {name} = {shown} fall inside chunks of {size}")
        suggestion.append(math.gcd(*interior) if interior else edges[-1])
    if bad:
        task = "x".join(map(str, grid.chunk_shape))
        msg = (
            f"output chunks {store_chunks[0]}x{store_chunks[1]} do not align with the image's "
            f"blocks ({task}): {'; '.join(bad)}, so two tasks would write one Zarr chunk. "
            f"Fix: use output chunks that divide the blocks, such as "
            f"({suggestion[0]}, {suggestion[1]}), or rechunk the image to multiples of the "
            f"output chunks (image.rechunk(({store_chunks[0]}, {store_chunks[1]})))"
        )
        raise AlignmentError(msg)
