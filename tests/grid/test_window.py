"""Window arithmetic, checked against numpy slicing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.grid import Window

coord = st.integers(-50, 50)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    y0, x0 = draw(coord), draw(coord)
    return Window(y0, y0 + draw(st.integers(0, 30)), x0, x0 + draw(st.integers(0, 30)))


def mask(window: Window, offset: int = 60, size: int = 200) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[window.translate(offset, offset).to_slices()] = True
    return m


@given(windows(), windows())
def test_intersection_is_the_overlap_of_pixel_sets(a: Window, b: Window) -> None:
    inter = a.intersection(b)
    assert np.array_equal(mask(inter), mask(a) & mask(b))
    assert inter == b.intersection(a) or inter.is_empty


@given(windows(), windows())
def test_contains_agrees_with_pixel_sets(a: Window, b: Window) -> None:
    if not b.is_empty:
        assert a.contains(b) == bool(np.all(mask(a)[mask(b)]))


@given(windows(), st.integers(0, 10), st.integers(0, 10), st.integers(0, 10), st.integers(0, 10))
def test_expand_then_relative_slices_recover_the_core(
    w: Window, top: int, bottom: int, left: int, right: int
) -> None:
    outer = w.expand(top, bottom, left, right)
    image = np.arange(200 * 200).reshape(200, 200)
    big = image[outer.translate(60, 60).to_slices()]
    assert np.array_equal(big[w.relative_to(outer)], image[w.translate(60, 60).to_slices()])


@given(windows(), st.integers(1, 40), st.integers(1, 40))
def test_clip_keeps_only_pixels_inside_the_image(w: Window, h: int, wd: int) -> None:
    clipped = w.clip((h, wd))
    assert Window.from_shape((h, wd)).contains(clipped) or clipped.is_empty
    assert clipped.size == int((mask(w) & mask(Window(0, h, 0, wd))).sum())


def test_slices_roundtrip_and_repr_is_exact() -> None:
    w = Window(2, 10, 3, 7)
    assert Window.from_slices(*w.to_slices()) == w
    assert eval(repr(w)) == w  # noqa: S307 - repr must be the exact constructor call
    assert str(w) == "[2:10, 3:7]"
    assert w.shape == (8, 4)
    assert w.size == 32


def test_numpy_integers_are_normalised() -> None:
    w = Window(np.int64(1), np.int32(3), np.uint8(0), 5)
    assert w == Window(1, 3, 0, 5)
    assert all(type(v) is int for v in (w.y0, w.y1, w.x0, w.x1))


@pytest.mark.parametrize(
    ("args", "error"),
    [((3, 1, 0, 1), ValueError), ((0, 1, 2, 1), ValueError), ((0.5, 1, 0, 1), TypeError)],
    ids=["rows-reversed", "cols-reversed", "float"],
)
def test_invalid_windows_are_refused(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        Window(*args)


def test_relative_to_refuses_a_window_outside() -> None:
    with pytest.raises(ValueError, match="is not inside"):
        Window(0, 5, 0, 5).relative_to(Window(1, 5, 0, 5))
