"""The wording of user-facing errors: what failed, the values, and the fix (as xarray pins)."""

from __future__ import annotations

import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from conftest import patch_tag_value

import pipeline
from pipeline.errors import (
    ArgumentError,
    BlockFunctionError,
    BlockShapeError,
    CorruptSourceError,
    PerformanceWarning,
    PipelineError,
    SourceNotFoundError,
    UnsupportedSourceError,
)


def tiled_tiff(path: Path, shape: tuple[int, int] = (64, 64)) -> Path:
    data = np.arange(shape[0] * shape[1], dtype=np.uint16).reshape(shape)
    tifffile.imwrite(path, data, tile=(16, 16), compression="zlib")
    return path


# ----------------------------------------------------------------------------- sources


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"nope.tif: no such file or directory; check"):
        pipeline.open_image(tmp_path / "nope.tif")


def test_missing_file_suggests_a_sibling_with_another_suffix(tmp_path: Path) -> None:
    tiled_tiff(tmp_path / "dem.tiff")
    with pytest.raises(
        FileNotFoundError, match=r"dem.tif: no such .* \(found dem.tiff beside it\)"
    ):
        pipeline.open_image(tmp_path / "dem.tif")


def test_directory_that_is_not_zarr(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"is a directory but not a Zarr store"):
        pipeline.open_image(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello,world\n1,2\n", r"not an image: a file starting with bytes b'hell'"),
        (b"", r"not an image: an empty file"),
    ],
    ids=["csv", "empty"],
)
def test_file_that_is_not_an_image(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / "x.tif").write_bytes(content)
    with pytest.raises(UnsupportedSourceError, match=match + r"; pipeline reads TIFF"):
        pipeline.open_image(tmp_path / "x.tif")


def test_corrupt_tiff_header(tmp_path: Path) -> None:
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(CorruptSourceError, match=r"bad.tif: corrupt TIFF"):
        pipeline.open_image(tmp_path / "bad.tif")


def test_truncated_tiff(tmp_path: Path) -> None:
    path = tiled_tiff(tmp_path / "t.tif", (256, 256))
    # Tile data comes before the IFD in tifffile's layout; cut the last tile short by
    # moving its offset to the end of the file.
    size = path.stat().st_size
    patch_tag_value(path, "TileOffsets", 5, size - 10)
    with pytest.raises(CorruptSourceError, match=r"t.tif: truncated: 1 of 256 tiles end past"):
        pipeline.open_image(path)


def test_tiff_with_missing_tiles(tmp_path: Path) -> None:
    path = tiled_tiff(tmp_path / "m.tif")
    patch_tag_value(path, "TileByteCounts", 3, 0)
    with pytest.raises(
        CorruptSourceError,
        match=r"m.tif: 1 of 16 tiles are missing \(first: "
        r"number 3\); tifffile would read them as zeros",
    ):
        pipeline.open_image(path)


def test_tiff_with_a_damaged_tile_fails_when_read(tmp_path: Path) -> None:
    path = tiled_tiff(tmp_path / "d.tif")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages.first.dataoffsets[6]
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(b"\x00garbage")
    image = pipeline.open_image(path, chunks=16)
    with pytest.raises(
        CorruptSourceError,
        match=r"d.tif: cannot decode tile 6 \(pixels "
        r"\[16:32, 32:48\]\)",
    ):
        image.compute(scheduler="synchronous")


def test_stack_of_pages_is_not_2d(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((4, 8, 8), np.uint8), photometric="minisblack"
    )
    with pytest.raises(UnsupportedSourceError, match=r"more than 2 spatial dimensions"):
        pipeline.open_image(tmp_path / "stack.tif")


def test_missing_pyramid_level(tmp_path: Path) -> None:
    tiled_tiff(tmp_path / "p.tif")
    with pytest.raises(UnsupportedSourceError, match=r"level 2 does not exist; the TIFF has 1"):
        pipeline.open_image(tmp_path / "p.tif", level=2)


def test_large_single_strip_tiff_warns_with_the_fix(tmp_path: Path) -> None:
    data = np.zeros((3000, 3000), np.float32)
    tifffile.imwrite(tmp_path / "strip.tif", data, rowsperstrip=3000, compression="zlib")
    with pytest.warns(PerformanceWarning, match=r"single compressed strip.*tiled TIFF"):
        pipeline.open_image(tmp_path / "strip.tif")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((7,), r"has 1 dimension\(s\), shape \(7,\); pipeline works on 2-D"),
        ((2, 3, 4, 5), r"has 4 dimension\(s\)"),
        ((0, 9), r"is empty \(shape \(0, 9\)\)"),
    ],
    ids=["1d", "4d", "empty"],
)
def test_wrong_dimensions(tmp_path: Path, shape: tuple[int, ...], match: str) -> None:
    np.save(tmp_path / "a.npy", np.zeros(shape, np.float32))
    with pytest.raises(UnsupportedSourceError, match=match):
        pipeline.open_image(tmp_path / "a.npy")
    with pytest.raises(UnsupportedSourceError, match=match.replace("is empty", "is empty")):
        pipeline.open_image(np.zeros(shape, np.float32))


def test_truncated_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((100, 100), np.float64))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptSourceError, match=r"a.npy: cannot read this .npy file"):
        pipeline.open_image(tmp_path / "a.npy")


def test_zarr_group_without_multiscales_lists_its_arrays(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("dem", shape=(4, 4), dtype="f4")
    with pytest.raises(
        UnsupportedSourceError,
        match=r"without OME-Zarr multiscales metadata; "
        r"open one of its arrays: .*g.zarr/dem",
    ):
        pipeline.open_image(tmp_path / "g.zarr")


def test_corrupt_zarr_chunk(tmp_path: Path) -> None:
    z = zarr.create_array(tmp_path / "c.zarr", shape=(20, 20), chunks=(10, 10), dtype="f8")
    z[:] = 1.0
    (tmp_path / "c.zarr" / "c" / "1" / "0").write_bytes(b"not zstd at all")
    image = pipeline.open_image(tmp_path / "c.zarr", chunks=10)
    with pytest.raises(
        CorruptSourceError,
        match=r"cannot read window \[10:20, 0:10\] .*a chunk "
        r"is damaged",
    ):
        image.compute(scheduler="synchronous")


def test_non_image_objects() -> None:
    with pytest.raises(ArgumentError, match=r"cannot open list \[1, 2\] as an image"):
        pipeline.open_image([1, 2])
    with pytest.raises(UnsupportedSourceError, match=r"dtype <U1; pipeline works on numeric"):
        pipeline.open_image(np.array([["a"]]))


# ----------------------------------------------------------------------------- apply


IMAGE = da.zeros((30, 40), chunks=(10, 20), dtype=np.float32)
ONE_BLOCK = da.zeros((30, 40), chunks=-1, dtype=np.float32)


def test_wrong_block_shape_names_the_block_and_both_shapes() -> None:
    lazy = pipeline.apply(lambda b: b[:-1], ONE_BLOCK, depth=1)
    with pytest.raises(
        BlockShapeError,
        match=r"<lambda> returned shape \(31, 42\) for the block "
        r"at pixels \[0:30, 0:40\]; expected the core \(30, 40\) or the padded "
        r"block \(32, 42\)",
    ):
        lazy.compute(scheduler="synchronous")


def test_undeclared_channel_axis_suggests_declaring_it() -> None:
    lazy = pipeline.apply(lambda b: np.stack([b, b], -1), IMAGE)
    with pytest.raises(BlockShapeError, match=r"declare channels=2 in apply\(\)"):
        lazy.compute(scheduler="synchronous")


def test_unsafe_dtype_is_refused_with_the_fix() -> None:
    lazy = pipeline.apply(lambda b: b + 0.5, IMAGE, dtype="uint8")
    with pytest.raises(
        BlockShapeError,
        match=r"returned dtype float32 .* declared output dtype is uint8: a float result cannot "
        r"go into an integer output \(NaN has no integer value\): declare dtype='float32'",
    ):
        lazy.compute(scheduler="synchronous")


def test_failure_in_the_function_names_the_block_and_keeps_the_cause() -> None:
    def explode(block: np.ndarray) -> np.ndarray:
        return block / np.zeros((3, 3))  # wrong shape to broadcast

    with pytest.raises(
        BlockFunctionError,
        match=r"explode failed on the block at pixels "
        r"\[0:30, 0:40\] \(rows 0-29, columns 0-39\) of the 30x40 image: "
        r"ValueError: operands could not be broadcast",
    ) as info:
        pipeline.apply(explode, ONE_BLOCK).compute(scheduler="synchronous")
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: pipeline.apply(3, IMAGE), ArgumentError, r"needs a function first, got int"),
        (lambda: pipeline.apply(np.negative), ArgumentError, r"needs at least one image"),
        (
            lambda: pipeline.apply(np.add, IMAGE, da.zeros((30, 41))),
            ArgumentError,
            r"image 1 is 30x41 but image 0 is 30x40; inputs of one step must have the same",
        ),
        (
            lambda: pipeline.apply(lambda b: b, IMAGE, depth=31),
            ArgumentError,
            r"depth 31x31 is larger than the image \(30x40\)",
        ),
        (
            lambda: pipeline.apply(lambda b: b, IMAGE, boundary="wrap"),
            ArgumentError,
            r"unknown boundary mode 'wrap'",
        ),
        (
            lambda: pipeline.apply(lambda b: b, IMAGE, channels=0),
            ArgumentError,
            r"channels=0: use 'input', None",
        ),
        (
            lambda: pipeline.apply(lambda b, *, k: b, IMAGE, kk=1),
            ArgumentError,
            r"<lambda>\(b, \*, k\) cannot be called with 1 image\(s\) and parameters \['kk'\]",
        ),
        (
            lambda: pipeline.apply(lambda b: b, da.zeros((3, 4, 5, 6))),
            ArgumentError,
            r"image 0 has 4 dimension\(s\)",
        ),
    ],
    ids=[
        "not-callable",
        "no-image",
        "shape-mismatch",
        "depth-too-big",
        "bad-boundary",
        "bad-channels",
        "bad-params",
        "4d",
    ],
)
def test_apply_refuses_bad_arguments_before_computing(
    call: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]


def test_every_error_is_a_pipeline_error_and_the_builtin_a_caller_expects() -> None:
    assert issubclass(SourceNotFoundError, FileNotFoundError)
    assert issubclass(UnsupportedSourceError, ValueError)
    for cls in (SourceNotFoundError, CorruptSourceError, BlockShapeError, ArgumentError):
        assert issubclass(cls, PipelineError)


def test_no_warning_for_ordinary_use(tmp_path: Path) -> None:
    path = tiled_tiff(tmp_path / "ok.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline.apply(lambda b: b, pipeline.open_image(path), depth=1).compute()


# ----------------------------------------------------------------------------- kernels


def test_a_per_pixel_function_given_as_a_block_function_is_told_to_be_a_kernel() -> None:
    def horizon(z, i, j):  # type: ignore[no-untyped-def]
        return z[i, j]

    with pytest.raises(
        ArgumentError,
        match=r"missing a required argument: 'i'; it takes i, j as a per-pixel function does: "
        r"make it a kernel, with @pipeline.neighbourhood\(radius=...\) in Python or kind: "
        r"neighbourhood and radius: in a config step",
    ):
        pipeline.apply(horizon, np.zeros((8, 8)))


def test_coordinates_without_coords_true_are_named() -> None:
    @pipeline.neighbourhood(radius=1, boundary="nearest")
    def horizon(z, y, x, i, j):  # type: ignore[no-untyped-def]
        return z[i, j] + y + x

    with pytest.raises(
        ArgumentError,
        match=r"kernel horizon reads 3 image\(s\) but apply\(\) got 1; if y, x are the pixel's "
        r"coordinates, pass coords=True to its decorator \(without it they are read as images\)",
    ):
        pipeline.apply(horizon, np.zeros((8, 8)))


def test_a_radius_naming_no_setting_is_refused_when_decorated() -> None:
    def ray(z, i, j, reach=3):  # type: ignore[no-untyped-def]
        return z[i, j]

    with pytest.raises(
        ArgumentError,
        match=r"radius='radius' names no setting of kernel ray \(its settings: reach\); give "
        r"radius the number of pixels it reads, or the name of the setting that holds it",
    ):
        pipeline.neighbourhood(radius="radius")(ray)


def test_uncompiled_true_is_honoured_and_says_numba_could_compile_it(tmp_path: Path) -> None:
    @pipeline.pointwise(uncompiled=True)
    def double(v):  # type: ignore[no-untyped-def]
        return v * 2.0

    with pytest.warns(
        PerformanceWarning,
        match=r"running double uncompiled, as asked, because uncompiled=True was given, although "
        r"numba compiles it \(drop uncompiled=True to run it compiled",
    ):
        lazy = pipeline.apply(double, np.ones((8, 8)))
    with pytest.warns(PerformanceWarning, match="running in processes"):
        report = pipeline.save(lazy, tmp_path / "o.zarr", progress=False)
    assert "compile_seconds" not in report.extra, "nothing was compiled"
    np.testing.assert_array_equal(pipeline.open_image(tmp_path / "o.zarr").compute(), 2.0)
