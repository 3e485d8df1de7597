"""Chunk grids: block windows, overlap queries, default sizes and write alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import AlignmentError, ArgumentError
from pipeline.grid import ChunkGrid, Window, auto_chunks, check_write_alignment, normalize_chunks

sizes = st.lists(st.integers(1, 9), min_size=1, max_size=6).map(tuple)


@given(sizes, sizes)
def test_blocks_tile_the_image_exactly_once(rows: tuple[int, ...], cols: tuple[int, ...]) -> None:
    grid = ChunkGrid(rows, cols)
    cover = np.zeros(grid.shape, int)
    for _, window in grid.blocks():
        cover[window.to_slices()] += 1
    assert (cover == 1).all()
    assert grid.num_blocks == len(rows) * len(cols)


@given(sizes, sizes, st.data())
def test_overlapping_finds_exactly_the_blocks_that_share_a_pixel(
    rows: tuple[int, ...], cols: tuple[int, ...], data: st.DataObject
) -> None:
    grid = ChunkGrid(rows, cols)
    h, w = grid.shape
    y0 = data.draw(st.integers(0, h - 1))
    x0 = data.draw(st.integers(0, w - 1))
    win = Window(y0, data.draw(st.integers(y0 + 1, h)), x0, data.draw(st.integers(x0 + 1, w)))
    brute = {idx for idx, b in grid.blocks() if not b.intersection(win).is_empty}
    assert set(grid.overlapping(win)) == brute


@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.integers(1, 600),
    st.integers(1, 600),
    st.sampled_from([1, 2, 4, 8, 24]),
)
def test_auto_chunks_are_whole_tiles_near_the_target(
    h: int, w: int, ty: int, tx: int, itemsize: int
) -> None:
    target = 2**20
    cy, cx = auto_chunks((h, w), (ty, tx), itemsize, target)
    ty, tx = min(ty, h), min(tx, w)
    assert 1 <= cy <= h and 1 <= cx <= w
    assert cy % ty == 0 or cy == h
    assert cx % tx == 0 or cx == w
    one_tile = ty * tx * itemsize
    assert cy * cx * itemsize <= max(target, one_tile) * 1.0001
    # Not needlessly small: adding a row or a column of tiles would break the budget, unless
    # the chunk already spans that axis.
    grow_y = cy + ty <= h and (cy + ty) * cx * itemsize <= target
    grow_x = cx + tx <= w and cy * (cx + tx) * itemsize <= target
    assert not (grow_y and grow_x)


def test_auto_chunks_on_a_tiled_float32_image_is_square_and_about_32_mb() -> None:
    cy, cx = auto_chunks((20000, 20000), (256, 256), 4)
    assert cy == cx
    assert cy % 256 == 0
    assert 0.7 < cy * cx * 4 / 32 / 2**20 <= 1.0


def test_auto_chunks_on_strips_spans_the_width() -> None:
    assert auto_chunks((6000, 4000), (16, 4000), 4)[1] == 4000


@pytest.mark.parametrize(
    ("chunks", "rows", "cols"),
    [
        (None, (4, 4, 2), (3, 3, 3, 1)),
        (5, (5, 5), (5, 5)),
        ((3, -1), (3, 3, 3, 1), (10,)),
        ((None, 4), (10,), (4, 4, 2)),
        (((6, 4), (2, 8)), (6, 4), (2, 8)),
        (100, (10,), (10,)),
    ],
    ids=["default", "int", "minus-one", "none", "explicit", "larger-than-image"],
)
def test_chunk_forms(chunks: object, rows: tuple, cols: tuple) -> None:
    grid = normalize_chunks(chunks, (10, 10), default=(4, 3))  # type: ignore[arg-type]
    assert (grid.rows, grid.cols) == (rows, cols)


@pytest.mark.parametrize(
    ("chunks", "match"),
    [
        (0, r"chunk rows must be >= 1"),
        ((1, 2, 3), r"chunks=\(1, 2, 3\) is not understood"),
        ("auto", r"chunks='auto' is not understood"),
        (((5, 4), (10,)), r"explicit chunk rows \(5, 4\) must be positive and add up to the "),
        ((2.5, 2), r"chunk rows must be an int"),
    ],
)
def test_bad_chunks_are_refused(chunks: object, match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        normalize_chunks(chunks, (10, 10), default=(4, 4))  # type: ignore[arg-type]


@given(sizes, sizes, st.integers(1, 9), st.integers(1, 9))
def test_alignment_accepts_exactly_the_grids_made_of_whole_store_chunks(
    rows: tuple[int, ...], cols: tuple[int, ...], cy: int, cx: int
) -> None:
    grid = ChunkGrid(rows, cols)
    # Brute force: a store chunk written by two blocks means misalignment.
    owner: dict[tuple[int, int], set] = {}
    for idx, win in grid.blocks():
        for y in range(win.y0, win.y1):
            for x in range(win.x0, win.x1):
                owner.setdefault((y // cy, x // cx), set()).add(idx)
    aligned = all(len(v) == 1 for v in owner.values())
    if aligned:
        check_write_alignment(grid, (cy, cx))
    else:
        with pytest.raises(AlignmentError, match="two tasks would write one Zarr chunk"):
            check_write_alignment(grid, (cy, cx))


def test_alignment_error_gives_numbers_and_a_working_alternative() -> None:
    grid = ChunkGrid.regular((1000, 1000), (300, 250))
    with pytest.raises(AlignmentError) as info:
        check_write_alignment(grid, (256, 256))
    message = str(info.value)
    assert "task boundaries at y = 300, 600, 900 fall inside chunks of 256" in message
    assert "such as (300, 250)" in message
    check_write_alignment(grid, (math.gcd(300, 600, 900), 250))
