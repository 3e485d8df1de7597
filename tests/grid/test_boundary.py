"""Boundary index maps and padded reads, against numpy.pad on the whole axis or image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipeline.errors import ArgumentError
from pipeline.grid import (
    BOUNDARY_MODES,
    Boundary,
    Window,
    gather_axis,
    normalize_depth,
    padded_read,
    padded_windows,
    source_indices,
)

# The oracle: numpy.pad's own names for our modes (written out here, independently of the code).
NUMPY_MODE = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "periodic": "wrap",
}
PADDING_MODES = ["reflect", "mirror", "nearest", "periodic", "constant", "nan"]


def numpy_pad(image: np.ndarray, depth: tuple[int, int], boundary: Boundary) -> np.ndarray:
    widths = [(depth[0], depth[0]), (depth[1], depth[1])] + [(0, 0)] * (image.ndim - 2)
    if boundary.mode in NUMPY_MODE:
        return np.pad(image, widths, mode=NUMPY_MODE[boundary.mode])
    dtype = boundary.padded_dtype(image.dtype)
    return np.pad(image.astype(dtype), widths, mode="constant", constant_values=boundary.value)


@given(
    n=st.integers(1, 12),
    depth=st.integers(0, 40),
    mode=st.sampled_from(["reflect", "mirror", "nearest", "periodic"]),
)
def test_index_maps_equal_numpy_pad_for_any_depth(n: int, depth: int, mode: str) -> None:
    coords = np.arange(-depth, n + depth)
    expected = np.pad(np.arange(n), depth, mode=NUMPY_MODE[mode])
    assert np.array_equal(source_indices(coords, n, mode), expected)


@given(n=st.integers(1, 12), depth=st.integers(0, 20))
def test_constant_modes_mark_outside_coordinates_for_filling(n: int, depth: int) -> None:
    coords = np.arange(-depth, n + depth)
    for mode in ("constant", "nan"):
        idx = source_indices(coords, n, mode)
        assert np.array_equal(idx >= 0, (coords >= 0) & (coords < n))
        assert np.array_equal(idx[idx >= 0], np.arange(n))


@given(
    n=st.integers(1, 30),
    start=st.integers(-40, 40),
    length=st.integers(1, 50),
    mode=st.sampled_from(list(BOUNDARY_MODES)),
)
def test_gather_reads_each_needed_source_pixel_once(
    n: int, start: int, length: int, mode: str
) -> None:
    stop = start + length
    assume(start < n and stop > 0)  # a padded window always overlaps its image
    g = gather_axis(start, stop, n, mode)
    covered = np.arange(g.start, g.stop)
    wanted = source_indices(covered, n, mode)
    read = np.concatenate([np.arange(a, b) for a, b in g.segments])
    # Segments are sorted, disjoint, inside the image, and exactly the needed pixels.
    assert np.array_equal(read, np.unique(wanted[wanted >= 0]))
    positions = np.arange(len(read)) if g.positions is None else g.positions
    got = np.where(positions >= 0, read[np.maximum(positions, 0)], -1)
    assert np.array_equal(got, wanted)


@st.composite
def padded_cases(draw: st.DrawFn) -> tuple[np.ndarray, Window, tuple[int, int], Boundary]:
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    channels = draw(st.sampled_from([(), (2,)]))
    dtype = draw(st.sampled_from([np.uint8, np.int32, np.float32, np.float64]))
    image = (np.arange(h * w * int(np.prod(channels))) % 251).reshape(h, w, *channels)
    image = image.astype(dtype)
    dy, dx = draw(st.integers(0, h)), draw(st.integers(0, w))
    y0 = draw(st.integers(0, h - 1))
    x0 = draw(st.integers(0, w - 1))
    core = Window(y0, draw(st.integers(y0 + 1, h)), x0, draw(st.integers(x0 + 1, w)))
    spec = draw(st.sampled_from([*PADDING_MODES, 7, "none"]))
    return image, core, (dy, dx), Boundary.parse(spec)


@given(padded_cases())
def test_padded_read_equals_the_same_window_of_the_numpy_padded_image(
    case: tuple[np.ndarray, Window, tuple[int, int], Boundary],
) -> None:
    image, core, depth, boundary = case
    reads: list[Window] = []

    def read(w: Window) -> np.ndarray:
        assert Window.from_shape(image.shape).contains(w)
        reads.append(w)
        return image[w.to_slices()]

    got, covered = padded_read(read, core.pad(depth), image.shape[:2], boundary, image.dtype)
    if boundary.mode == "none":
        expected = image[core.pad(depth).clip(image.shape).to_slices()]
        assert covered == core.pad(depth).clip(image.shape)
    else:
        whole = numpy_pad(image, depth, boundary)
        expected = whole[core.pad(depth).translate(depth[0], depth[1]).to_slices()]
        assert covered == core.pad(depth)
    assert got.dtype == boundary.padded_dtype(image.dtype)
    np.testing.assert_array_equal(got, expected)
    # It reads exactly what padded_windows promises (that is what a task depends on).
    assert sorted(reads, key=repr) == sorted(
        padded_windows(core.pad(depth), image.shape[:2], boundary)[1], key=repr
    )


def test_interior_window_is_one_plain_read_without_copy() -> None:
    image = np.arange(100.0).reshape(10, 10)
    got, _ = padded_read(
        lambda w: image[w.to_slices()], Window(3, 6, 3, 6), (10, 10), Boundary("reflect"), float
    )
    assert np.shares_memory(got, image)


def test_nan_boundary_promotes_integers_to_a_float_that_holds_them_exactly() -> None:
    b = Boundary.parse("nan")
    assert b.padded_dtype(np.uint8) == np.float32
    assert b.padded_dtype(np.uint16) == np.float32
    assert b.padded_dtype(np.int32) == np.float64
    assert b.padded_dtype(np.float32) == np.float32
    assert math.isnan(Boundary.parse(float("nan")).value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("reflect", Boundary("reflect")),
        (" Nearest ", Boundary("nearest")),
        (0, Boundary("constant", 0)),
        (2.5, Boundary("constant", 2.5)),
        (np.int16(-3), Boundary("constant", -3)),
        ("constant", Boundary("constant", 0)),
    ],
)
def test_boundary_specs_parse(spec: object, expected: Boundary) -> None:
    assert Boundary.parse(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("reflct", r"unknown boundary mode 'reflct': did you mean 'reflect'\?"),
        ("symmetric", r"unknown boundary mode 'symmetric'.*'reflect', 'mirror'"),
        (True, r"boundary=True is not a boundary mode"),
        ([1], r"boundary must be a mode name or a number, got list"),
    ],
)
def test_bad_boundary_specs_say_what_is_accepted(spec: object, match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        Boundary.parse(spec)  # type: ignore[arg-type]


def test_constant_that_does_not_fit_the_dtype_is_refused() -> None:
    with pytest.raises(ArgumentError, match=r"boundary constant -1 does not fit .* uint8"):
        Boundary.parse(-1).check_value(np.uint8)
    Boundary.parse(255).check_value(np.uint8)


@pytest.mark.parametrize(
    ("depth", "expected"), [(0, (0, 0)), (3, (3, 3)), ((1, 2), (1, 2)), ([2, 0], (2, 0))]
)
def test_depth_forms(depth: object, expected: tuple[int, int]) -> None:
    assert normalize_depth(depth, (10, 10)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("depth", "match"),
    [
        (-1, r"depth=-1 is negative"),
        ((1, 2, 3), r"depth=\(1, 2, 3\) is not a halo width"),
        (1.5, r"depth=1.5 is not a halo width"),
        (True, r"depth=True is not a halo width"),
        ((11, 1), r"depth 11x1 is larger than the image \(10x10\)"),
    ],
)
def test_bad_depths_are_refused(depth: object, match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        normalize_depth(depth, (10, 10))  # type: ignore[arg-type]
