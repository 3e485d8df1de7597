"""Per-pixel kernels: compiled, exact across blocks, honest when they cannot compile."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import cloudpickle
import dask.array as da
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import pad_whole

import pipeline
from pipeline.errors import (
    ArgumentError,
    BlockFunctionError,
    KernelCompileError,
    PerformanceWarning,
)
from pipeline.grid import Boundary
from pipeline.ops import terrain
from pipeline.ops.kernels import FINISH_STRIP_BYTES, neighbourhood, pointwise
from pipeline.ops.terrain_kernels import aspect, hillshade, sky_view, slope


@pointwise
def ndvi(nir: float, red: float) -> float:
    return (nir - red) / (nir + red)


@pointwise(coords=True)
def locate(value: float, y: int, x: int, scale: float = 1.0) -> tuple[float, float, float]:
    return (value * scale, y * 1.0, x * 1.0)


@neighbourhood(radius="reach", boundary="nan")
def ray_max(z: Any, i: int, j: int, reach: int = 3, directions: int = 8) -> float:
    """Marches rays and keeps the steepest rise: stops at NaN and at the array's end."""
    z0 = z[i, j]
    best = -1e300
    for d in range(directions):
        angle = 2.0 * math.pi * d / directions
        dy, dx = math.cos(angle), math.sin(angle)
        for s in range(1, reach + 1):
            yy = i + math.floor(dy * s + 0.5)
            xx = j + math.floor(dx * s + 0.5)
            if yy < 0 or yy >= z.shape[0] or xx < 0 or xx >= z.shape[1]:
                break
            v = z[yy, xx]
            if math.isnan(v):
                break
            best = max(best, (v - z0) / s)
    return best


def whole_image_kernel(kernel: Any, image: np.ndarray, boundary: str, **params: Any) -> np.ndarray:
    """The compiled kernel called once per pixel over the whole padded image, from Python."""
    depth = kernel.depth(params)
    padded = pad_whole(image, depth, Boundary.parse(boundary)).astype(np.float64)
    compiled = kernel._dispatcher()  # the same machine code, without pipeline's loops
    values = kernel.ordered_params(params)
    top, left = (0, 0) if boundary == "none" else depth
    out = np.empty(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            out[i, j] = compiled(padded, i + top, j + left, *values)
    return out if kernel.finish is None else kernel.finish(out)


@given(
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    chunks=st.tuples(st.integers(1, 11), st.integers(1, 11)),
    reach=st.integers(1, 7),
    boundary=st.sampled_from(["nan", "none", "reflect", "nearest", "periodic", 0.0]),
    seed=st.integers(0, 1000),
)
def test_chunked_kernel_equals_the_whole_image_in_one_piece(
    h: int, w: int, chunks: tuple[int, int], reach: int, boundary: Any, seed: int
) -> None:
    reach = min(reach, h, w)
    image = np.random.default_rng(seed).random((h, w)) * 100
    image[image < 5] = np.nan  # holes a ray must stop at
    got = pipeline.apply(
        ray_max, da.from_array(image, chunks=chunks), boundary=boundary, reach=reach
    ).compute(scheduler="synchronous")
    expected = whole_image_kernel(ray_max, image, boundary, reach=reach)
    np.testing.assert_array_equal(got, expected)


@given(
    h=st.integers(1, 25),
    w=st.integers(1, 25),
    chunks=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    boundary=st.sampled_from(["nearest", "reflect", "periodic", "nan", 0.0]),
    seed=st.integers(0, 1000),
)
def test_a_kernel_with_finish_is_exact_in_blocks(
    h: int, w: int, chunks: tuple[int, int], boundary: Any, seed: int
) -> None:
    # slope's kernel gives tangents per pixel; its finish turns each block into degrees.
    image = np.random.default_rng(seed).random((h, w)) * 300
    got = pipeline.apply(
        slope, da.from_array(image, chunks=chunks), boundary=boundary, cell_size=3.0
    ).compute(scheduler="synchronous")
    expected = whole_image_kernel(slope, image, boundary, cell_size=3.0)
    np.testing.assert_array_equal(got, expected)


@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    chunks=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    name=st.sampled_from(["slope", "aspect", "hillshade"]),
    seed=st.integers(0, 1000),
)
def test_compute_edges_is_exact_in_blocks(
    h: int, w: int, chunks: tuple[int, int], name: str, seed: int
) -> None:
    # gdaldem's -compute_edges: the edge extrapolated, voids filled from the centre; the
    # variant runs with boundary none, so a block at the edge sees where the image ends.
    kernel = {"slope": slope, "aspect": aspect, "hillshade": hillshade}[name]
    image = np.random.default_rng(seed).random((h, w)) * 300
    image[image < 30] = np.nan
    got = pipeline.apply(
        kernel, da.from_array(image, chunks=chunks), compute_edges=True, dtype="float64"
    ).compute(scheduler="synchronous")
    variant = kernel.variant_for({"compute_edges": True})
    assert variant.boundary == "none"
    assert variant.name == kernel.name
    expected = whole_image_kernel(variant, image, "none", compute_edges=True)
    np.testing.assert_array_equal(got, expected)
    if h > 1 and w > 1 and name != "aspect":  # only missing pixels stay missing
        np.testing.assert_array_equal(np.isnan(got), np.isnan(image))


def _rise(z: Any, i: int, j: int) -> float:
    """A plain Python helper; a kernel of this module calls it compiled."""
    return _half(z[i, j + 1] - z[i, j - 1])


def _half(value: float) -> float:
    return value / 2.0


@neighbourhood(radius=1, boundary="nearest")
def central_difference(z: Any, i: int, j: int) -> float:
    return _rise(z, i, j)


def test_a_kernel_calls_plain_helpers_of_its_module_compiled() -> None:
    image = np.arange(30.0).reshape(5, 6) ** 2
    got = pipeline.apply(central_difference, da.from_array(image, chunks=(2, 3))).compute()
    padded = np.pad(image, 1, mode="edge")
    np.testing.assert_array_equal(got, (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2.0)
    assert central_difference(padded, 1, 1) == got[0, 0]  # the Python function still works


def test_finish_sees_each_pixel_once_in_strips_and_must_keep_the_shape() -> None:
    calls: list[tuple[int, ...]] = []

    def exp_of(values: np.ndarray) -> np.ndarray:
        calls.append(values.shape)
        return np.exp(values)

    halved = pointwise(lambda v: v / 2.0, finish=exp_of)
    image = np.arange(35.0).reshape(5, 7)
    got = pipeline.apply(halved, da.from_array(image, chunks=(3, 4))).compute(
        scheduler="synchronous"
    )
    np.testing.assert_array_equal(got, np.exp(image / 2.0))
    assert sorted(calls) == [(2, 3), (2, 4), (3, 3), (3, 4)]  # small blocks: one strip each

    # A block wider than a strip of values: finish gets strips of rows (in the cache), which
    # together cover the block once.
    calls.clear()
    wide = np.random.default_rng(3).random((300, 1000))
    got = pipeline.apply(halved, da.from_array(wide, chunks=(300, 1000))).compute(
        scheduler="synchronous"
    )
    np.testing.assert_array_equal(got, np.exp(wide / 2.0))
    rows = FINISH_STRIP_BYTES // (1000 * 8)
    assert calls == [(rows, 1000), (rows, 1000), (300 - 2 * rows, 1000)]

    ravelled = pointwise(lambda v: v / 2.0, finish=np.ravel)
    with pytest.raises(
        BlockFunctionError,
        match=r"<lambda> failed on the block at pixels .* ArgumentError: finish of kernel "
        r"<lambda> returned shape \(\d+,\) for values of shape \(\d, \d\); "
        r"it must be elementwise",
    ):
        pipeline.apply(ravelled, da.from_array(image, chunks=(3, 4))).compute(
            scheduler="synchronous"
        )


def test_rays_stop_at_the_image_edge_never_at_a_block_edge() -> None:
    # A ramp rising to the east: from every pixel, the steepest rise is eastwards, found only
    # if the ray crosses block edges; at the east edge of the image nothing is east.
    image = np.tile(np.arange(40.0), (12, 1))
    got = pipeline.apply(ray_max, da.from_array(image, chunks=(5, 3)), reach=4).compute()
    assert (got[:, :-1] == 1.0).all()
    assert (got[:, -1] < 1.0).all()


def test_pointwise_with_several_inputs_and_tuple_outputs() -> None:
    rng = np.random.default_rng(0)
    nir, red = rng.random((33, 47)) + 0.1, rng.random((33, 47)) + 0.1
    got = pipeline.apply(ndvi, da.from_array(nir, chunks=10), da.from_array(red, chunks=(7, 9)))
    np.testing.assert_array_equal(got.compute(), (nir - red) / (nir + red))
    assert got.dtype == np.float64
    located = pipeline.apply(locate, da.from_array(nir.astype(np.float32), chunks=8), scale=2.0)
    assert located.shape == (33, 47, 3)
    assert located.dtype == np.float64, "inferred from the tuple numba returns"
    values = located.compute()
    np.testing.assert_array_equal(values[..., 0], nir.astype(np.float32) * 2.0)
    np.testing.assert_array_equal(values[..., 1], np.arange(33)[:, None] * np.ones((1, 47)))
    np.testing.assert_array_equal(values[..., 2], np.arange(47)[None, :] * np.ones((33, 1)))


def test_declared_dtype_is_checked_against_what_the_kernel_returns() -> None:
    image = da.ones((8, 8), chunks=4)
    assert pipeline.apply(ndvi, image, image + 1, dtype="float32").dtype == np.float32
    with pytest.raises(ArgumentError, match=r"ndvi returns float64 but dtype=int16 was declared"):
        pipeline.apply(ndvi, image, image, dtype="int16")
    with pytest.raises(ArgumentError, match=r"returns 3 value\(s\) per pixel but channels=2"):
        pipeline.apply(locate, image, channels=2)


def test_kernel_arguments_are_checked() -> None:
    image = da.ones((8, 8), chunks=4)
    with pytest.raises(ArgumentError, match=r"reads 2 image\(s\) but apply\(\) got 1"):
        pipeline.apply(ndvi, image)
    with pytest.raises(ArgumentError, match=r"has no parameter 'scal'; its parameters are scale"):
        pipeline.apply(locate, image, scal=3)
    with pytest.raises(ArgumentError, match=r"does not look like a neighbourhood kernel"):
        neighbourhood(lambda i, j: 0.0, radius=1)


class _AddOne:
    def __call__(self, value: float) -> float:
        return value + 1.0


plain_python_helper = _AddOne()  # an object numba cannot call (a plain function it compiles)


def test_a_kernel_numba_cannot_compile_says_why_and_where() -> None:
    @pointwise
    def labelled(value: float) -> float:
        return plain_python_helper(value)  # not compiled: numba cannot call it

    with pytest.raises(KernelCompileError) as info:
        pipeline.apply(labelled, da.ones((4, 4), chunks=2))
    message = str(info.value)
    assert message.startswith(
        "numba cannot compile labelled: Untyped global name 'plain_python_helper'"
    )
    assert "test_kernels.py" in message
    assert "return plain_python_helper(value)" in message
    assert "uncompiled=True" in message
    assert "During:" not in message


def plain_python_digits(value: float) -> str:
    return str(int(value))


def test_uncompiled_fallback_is_announced_with_an_estimate_and_runs_in_processes(
    tmp_path: Path,
) -> None:
    @pointwise(uncompiled=True)
    def digits(value: float) -> float:
        return float(len(plain_python_digits(value)))

    image = da.from_array(np.arange(400.0).reshape(20, 20) * 37, chunks=10)
    with pytest.warns(
        PerformanceWarning,
        match=r"running digits uncompiled, as asked, because "
        r".*about \d+ s for 0.0 megapixels on \d+ processes \(measured \d+ us",
    ):
        lazy = pipeline.apply(digits, image)
    with pytest.warns(
        PerformanceWarning,
        match=r"runs as plain Python, which holds the GIL: "
        r"running in processes",
    ):
        checked = pipeline.plan(lazy, tmp_path / "d.zarr")
    assert checked.scheduler == "processes"
    checked.execute(progress=False)
    expected = np.vectorize(lambda v: float(len(str(int(v)))))(
        np.arange(400.0).reshape(20, 20) * 37
    )
    np.testing.assert_array_equal(pipeline.open_image(tmp_path / "d.zarr").compute(), expected)


def test_kernels_pickle_by_value_and_keep_their_settings() -> None:
    for blob in (pickle.dumps(sky_view), cloudpickle.dumps(ray_max)):
        clone = pickle.loads(blob)
        assert clone.token
        assert clone.radius in ("radius", "reach")
        assert clone.kind == "neighbourhood"


def test_compile_time_is_reported(tmp_path: Path) -> None:
    image = da.from_array(np.random.default_rng(1).random((64, 64)), chunks=32)
    report = pipeline.save(
        pipeline.apply(sky_view, image, radius=5), tmp_path / "s.zarr", progress=False
    )
    assert report.extra["compile_seconds"] > 0
    assert "kernels compiled in" in report.summary()


def test_apply_compiles_the_loop_a_run_uses(tmp_path: Path) -> None:
    # The loop is specialised on the halo (so that LLVM can drop numba's negative-index
    # checks and vectorise it); apply must compile the one the blocks run, or every worker
    # thread would compile it again during the run, uncounted.
    from pipeline.ops.kernels import loops

    image = da.from_array(np.random.default_rng(2).random((40, 50)), chunks=16)
    result = pipeline.apply(slope, image, depth=2, boundary="nearest", cell_size=2.0)
    compiled = {
        k: len(getattr(loop.function, "signatures", ())) for k, loop in loops._LOOPS.items()
    }
    pipeline.save(result, tmp_path / "s.zarr", progress=False)
    assert {
        k: len(getattr(loop.function, "signatures", ())) for k, loop in loops._LOOPS.items()
    } == compiled
    assert any(key.left == 2 for key, _ in compiled)


# ----------------------------------------------------------------------------- built-ins


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_slope_finish_is_numpys_degrees_of_arctan_bit_for_bit(values: list[float]) -> None:
    from pipeline.ops.terrain_kernels import degrees_of_arctan

    tangents = np.array(values)
    expected = np.degrees(np.arctan(tangents))
    np.testing.assert_array_equal(degrees_of_arctan(tangents.copy()), expected)


def plane(east: float, south: float, shape: tuple[int, int] = (9, 11)) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return 100.0 + east * x + south * y


@pytest.mark.parametrize(
    ("compiled", "vectorised"),
    [(slope, terrain.slope), (aspect, terrain.aspect), (hillshade, terrain.hillshade)],
    ids=["slope", "aspect", "hillshade"],
)
def test_compiled_terrain_agrees_with_the_vectorised_reference(
    compiled: Any, vectorised: Any
) -> None:
    from pipeline.demo import dem_window
    from pipeline.grid import Window

    dem = dem_window(Window(0, 90, 0, 120)).astype(np.float64)
    got = pipeline.apply(
        compiled, da.from_array(dem, chunks=(31, 45)), cell_size=30.0, dtype="float64"
    ).compute()
    dem[40:44, 50:60] = np.nan  # a void: every window touching it is missing, as in gdaldem
    got = pipeline.apply(
        compiled, da.from_array(dem, chunks=(31, 45)), cell_size=30.0, dtype="float64"
    ).compute()
    # Beyond the image edge is missing too (boundary nan), as gdaldem leaves its edges empty.
    reference = vectorised(np.pad(dem, 1, constant_values=np.nan), cell_size=30.0)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-9)


def test_sky_view_of_known_surfaces() -> None:
    flat = da.from_array(np.full((21, 21), 50.0), chunks=7)
    np.testing.assert_array_equal(pipeline.apply(sky_view, flat, radius=5).compute(), 1.0)
    k = 0.5
    yy, xx = np.mgrid[-10:11, -10:11]
    cone = da.from_array(k * np.hypot(yy, xx), chunks=(8, 6))  # a pit: the horizon rises at k
    centre = pipeline.apply(sky_view, cone, radius=6, directions=32).compute()[10, 10]
    assert centre == pytest.approx(1 - k / math.sqrt(1 + k * k), abs=1e-12)
    peak = da.from_array(-np.hypot(yy, xx), chunks=5)
    assert pipeline.apply(sky_view, peak, radius=4).compute()[10, 10] == 1.0


def test_issue_15_a_float16_image_under_a_kernel_reads_as_float32(tmp_path: Path) -> None:
    # numba has no float16: every float16 value is exactly a float32, so the kernel reads that.
    import tifffile

    values = (np.random.default_rng(3).random((70, 90)) * 500).astype(np.float16)
    tifffile.imwrite(tmp_path / "h.tif", values)
    half = pipeline.apply(slope, pipeline.open_image(tmp_path / "h.tif"), cell_size=30.0)
    single = pipeline.apply(slope, values.astype(np.float32), cell_size=30.0)
    np.testing.assert_array_equal(half.compute(), single.compute())
