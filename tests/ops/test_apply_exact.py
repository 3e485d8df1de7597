"""Exactness: a chunked run equals the same function on the whole padded image, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given
from hypothesis import strategies as st
from oracle import whole_image

import pipeline
from pipeline.grid import BOUNDARY_MODES, BlockInfo

BOUNDARIES = [*BOUNDARY_MODES, 3, -2.5]


def neighbourhood(block: np.ndarray, *, block_info: BlockInfo, weight: float = 1.0) -> np.ndarray:
    """A per-pixel oracle: a weighted sum over the (2dy+1)x(2dx+1) neighbourhood of every
    pixel, plus terms in its absolute row and column. Pixels missing beyond the edge (NaN, or
    absent with boundary 'none') count as 0, so every mode has a defined answer.

    Additions happen one shifted array at a time, so each pixel sums its terms in the same
    order whatever the block shape (np.sum's pairwise order would not).
    """
    top, bottom, left, right = block_info.halo
    dy, dx = block_info.depth
    data = block.astype(np.float64)
    full = np.pad(
        data,
        ((dy - top, dy - bottom), (dx - left, dx - right), *[(0, 0)] * (data.ndim - 2)),
        constant_values=np.nan,
    )
    h, w = block_info.core.shape
    acc = np.zeros((h, w, *data.shape[2:]))
    for i in range(2 * dy + 1):
        for j in range(2 * dx + 1):
            v = full[i : i + h, j : j + w]
            acc = acc + np.where(np.isnan(v), 0.0, v) * (weight * (1 + 3 * i + 7 * j))
    y0, x0 = block_info.core.y0, block_info.core.x0
    ys = np.arange(y0, y0 + h).reshape((h, 1, *[1] * (data.ndim - 2)))
    xs = np.arange(x0, x0 + w).reshape((1, w, *[1] * (data.ndim - 2)))
    return acc + ys * 1000.0 + xs * 0.25


def write_source(kind: str, data: np.ndarray, tmp: Path, chunks: tuple[int, int]) -> Any:
    """The same pixels as an in-memory dask array, a TIFF or a Zarr array."""
    if kind == "memory":
        return da.from_array(data, chunks=(*chunks, *data.shape[2:]))
    if kind == "tiff":
        path = tmp / f"src-{data.shape}-{data.dtype}.tif"
        tile = (16, 16) if min(data.shape[:2]) >= 16 else None
        layout = {"photometric": "minisblack", "planarconfig": "contig"} if data.ndim == 3 else {}
        tifffile.imwrite(path, data, tile=tile, compression="zlib", **layout)
        return pipeline.open_image(path, chunks=chunks)
    path = tmp / f"src-{data.shape}-{data.dtype}.zarr"
    z = zarr.create_array(
        path, shape=data.shape, chunks=(5, 7, *data.shape[2:]), dtype=data.dtype, overwrite=True
    )
    z[:] = data
    return pipeline.open_image(path, chunks=chunks)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    h, w = draw(st.integers(1, 29)), draw(st.integers(1, 29))
    tail = draw(st.sampled_from([(), (2,)]))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data = (rng.random((h, w, *tail)) * 200).astype(dtype)
    boundary = draw(st.sampled_from(BOUNDARIES))
    if boundary == -2.5 and data.dtype.kind != "f":
        boundary = 3  # an integer image cannot be padded with -2.5 (apply refuses it)
    return {
        "data": data,
        "chunks": (draw(st.integers(1, 12)), draw(st.integers(1, 12))),
        "depth": (draw(st.integers(0, min(h, 6))), draw(st.integers(0, min(w, 6)))),
        "boundary": boundary,
        "kind": draw(st.sampled_from(["memory", "tiff", "zarr"])),
    }


@given(case=cases())
def test_chunked_equals_whole_image_for_every_boundary_depth_and_shape(
    case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data, depth, boundary = case["data"], case["depth"], case["boundary"]
    image = write_source(case["kind"], data, tmp_path_factory.mktemp("src"), case["chunks"])
    lazy = pipeline.apply(neighbourhood, image, depth=depth, boundary=boundary, dtype="f8")
    got = lazy.compute(scheduler="synchronous")
    expected = whole_image(neighbourhood, data, depth=depth, boundary=boundary, dtype="f8")
    np.testing.assert_array_equal(got, expected, strict=True)


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 17), (17, 1), (2, 3), (13, 31), (41, 37)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_odd_shapes_with_halo_deeper_than_a_chunk(shape: tuple[int, int], boundary: Any) -> None:
    data = np.random.default_rng(1).random(shape).astype(np.float32)
    depth = (min(shape[0], 5), min(shape[1], 5))
    image = da.from_array(data, chunks=(3, 2))  # the halo spans several chunks
    got = pipeline.apply(neighbourhood, image, depth=depth, boundary=boundary, dtype="f8")
    expected = whole_image(neighbourhood, data, depth=depth, boundary=boundary, dtype="f8")
    np.testing.assert_array_equal(got.compute(scheduler="synchronous"), expected, strict=True)


def test_absolute_coordinates_are_exact_in_every_block() -> None:
    def where(block: np.ndarray, block_info: BlockInfo) -> np.ndarray:
        ys, xs = block_info.coords()
        return block_info.trim(ys[:, None] * 100_000 + xs[None, :])

    image = da.zeros((1031, 977), chunks=(128, 100), dtype=np.int64)
    got = pipeline.apply(where, image, depth=3, boundary="nearest").compute()
    expected = np.arange(1031)[:, None] * 100_000 + np.arange(977)[None, :]
    np.testing.assert_array_equal(got, expected)


def test_function_may_return_the_padded_block_or_the_core() -> None:
    data = np.random.default_rng(2).random((40, 50))
    image = da.from_array(data, chunks=(7, 9))

    def padded_result(b: np.ndarray) -> np.ndarray:
        return b * 2  # same shape as the padded block: trimmed by apply

    def core_result(b: np.ndarray) -> np.ndarray:
        return b[2:-2, 1:-1] * 2

    a = pipeline.apply(padded_result, image, depth=(2, 1)).compute()
    b = pipeline.apply(core_result, image, depth=(2, 1)).compute()
    np.testing.assert_array_equal(a, data * 2)
    np.testing.assert_array_equal(b, data * 2)


def test_inputs_with_different_chunking_and_dtypes_are_aligned(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dem = (rng.random((61, 83)) * 1000).astype(np.uint16)
    mask = rng.random((61, 83)).astype(np.float32)
    tifffile.imwrite(tmp_path / "dem.tif", dem, tile=(16, 32), compression="zlib")
    first = pipeline.open_image(tmp_path / "dem.tif", chunks=(20, 30))
    second = da.from_array(mask, chunks=(7, 11))

    def combine(a: np.ndarray, m: np.ndarray) -> np.ndarray:
        # Uses a neighbour of each input, so misalignment by even one pixel would show.
        return a[1:-1, 2:] * m[:-2, 1:-1] - m[2:, :-2]

    got = pipeline.apply(combine, first, second, depth=1, boundary="mirror", dtype="f8")
    assert got.chunks[:2] == first.chunks[:2]
    expected = whole_image(combine, dem, mask, depth=(1, 1), boundary="mirror", dtype="f8")
    np.testing.assert_array_equal(got.compute(), expected)


def test_output_can_add_or_drop_a_channel_axis_and_change_dtype() -> None:
    rgb = (np.random.default_rng(4).random((33, 45, 3)) * 255).astype(np.uint8)
    image = da.from_array(rgb, chunks=(10, 10, 3))

    def luminance(b: np.ndarray) -> np.ndarray:
        return b[..., 0] * 0.299 + b[..., 1] * 0.587 + b[..., 2] * 0.114

    def gradient(g: np.ndarray) -> np.ndarray:
        return np.stack([g[2:, 1:-1] - g[:-2, 1:-1], g[1:-1, 2:] - g[1:-1, :-2]], axis=-1)

    grey = pipeline.apply(luminance, image, channels=None, dtype="f4")
    grad = pipeline.apply(gradient, grey, depth=1, boundary="nearest", channels=2)
    assert grey.shape == (33, 45) and grey.dtype == np.float32
    assert grad.shape == (33, 45, 2) and grad.dtype == np.float32
    g = whole_image(luminance, rgb, dtype="f4")
    expected = whole_image(gradient, g, depth=(1, 1), boundary="nearest")
    np.testing.assert_array_equal(grad.compute(), expected)


@pytest.mark.parametrize("boundaries", [("reflect", "periodic"), ("nan", "none"), (5, "mirror")])
def test_chained_steps_fuse_and_equal_the_whole_image_chain(boundaries: tuple[Any, Any]) -> None:
    data = np.random.default_rng(5).random((47, 38))
    image = da.from_array(data, chunks=(9, 8))
    first = pipeline.apply(neighbourhood, image, depth=1, boundary=boundaries[0], dtype="f8")
    second = pipeline.apply(neighbourhood, first, depth=(3, 2), boundary=boundaries[1], weight=0.5)
    # Fused: the second step's tasks depend only on the input blocks, not on the first step's.
    graph = dict(second.__dask_graph__())
    assert not any(isinstance(k, tuple) and k[0] == first.name for k in graph)
    mid = whole_image(neighbourhood, data, depth=(1, 1), boundary=boundaries[0], dtype="f8")
    expected = whole_image(neighbourhood, mid, depth=(3, 2), boundary=boundaries[1], weight=0.5)
    np.testing.assert_array_equal(second.compute(), expected)


def test_a_step_after_plain_dask_arithmetic_is_exact_too(tmp_path: Path) -> None:
    data = np.random.default_rng(6).random((50, 60)).astype(np.float32)
    tifffile.imwrite(tmp_path / "a.tif", data, tile=(16, 16))
    image = pipeline.open_image(tmp_path / "a.tif", chunks=(16, 32)) * 2 + 1  # not fused
    got = pipeline.apply(neighbourhood, image, depth=4, boundary="periodic", dtype="f8")
    expected = whole_image(
        neighbourhood, data * 2 + 1, depth=(4, 4), boundary="periodic", dtype="f8"
    )
    np.testing.assert_array_equal(got.compute(), expected)
