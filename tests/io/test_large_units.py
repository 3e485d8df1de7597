"""Inputs whose storage units (tiles, strips, chunks) are larger than the blocks (issue 15).

Every read decodes whole units. A block inside a unit must not decode it again: the unit is
decoded once per process and kept. The plan projects its memory from the unit, refuses a unit
that cannot fit, and cuts blocks out of a unit too large to be one block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import pipeline
from pipeline.errors import MemoryBudgetError
from pipeline.io.cache import tile_cache
from pipeline.io.tiff import TiffSource
from pipeline.io.zarr_ import ZarrSource


def _image(shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype=np.float32)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    before = tile_cache.max_bytes
    tile_cache.clear()
    yield
    tile_cache.clear()
    tile_cache.max_bytes = before


def _decodes(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[object]:
    calls: list[object] = []
    original = getattr(cls, method)

    def counted(self: object, *args: object) -> object:
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(cls, method, counted)
    return calls


def test_a_tiff_tile_larger_than_the_blocks_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _image((256, 256))
    tifffile.imwrite(tmp_path / "one.tif", image, tile=(256, 256), compression="zlib")
    tile_cache.max_bytes = 1024  # far smaller than the tile
    decodes = _decodes(monkeypatch, TiffSource, "_read_segments")
    result = pipeline.open_image(tmp_path / "one.tif", chunks=32)
    pipeline.save(result, tmp_path / "o.zarr", progress=False, scheduler="synchronous")
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "o.zarr")["0"][:], image)
    assert len(decodes) == 64  # one read per block ...
    assert tile_cache.misses == 1  # ... and one decode of the tile for all of them
    assert tile_cache.max_bytes >= image.nbytes


def test_a_zarr_chunk_larger_than_the_blocks_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _image((200, 300))
    zarr.create_array(tmp_path / "one.zarr", shape=image.shape, chunks=image.shape, dtype="f4")[
        :
    ] = image
    decodes = _decodes(monkeypatch, ZarrSource, "_read_direct")
    result = pipeline.apply(lambda b: b * 2, pipeline.open_image(tmp_path / "one.zarr", chunks=50))
    pipeline.save(result, tmp_path / "o.zarr", progress=False, scheduler="synchronous")
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "o.zarr")["0"][:], image * 2)
    assert decodes == [((pipeline.Window(0, 200, 0, 300)),)]


def test_blocks_inside_a_unit_with_a_halo_equal_the_whole_image_result(tmp_path: Path) -> None:
    image = _image((120, 160))
    tifffile.imwrite(tmp_path / "one.tif", image, tile=(128, 160), compression="zlib")
    whole = pipeline.open_image(tmp_path / "one.tif", chunks=(120, 160))
    pieces = pipeline.open_image(tmp_path / "one.tif", chunks=(24, 40))
    for source, name in ((whole, "whole.zarr"), (pieces, "pieces.zarr")):
        smoothed = pipeline.apply(
            lambda b: (b[:-2, 1:-1] + b[2:, 1:-1] + b[1:-1, :-2] + b[1:-1, 2:]) / 4,
            source,
            depth=1,
            boundary="reflect",
        )
        pipeline.save(smoothed, tmp_path / name, progress=False)
    np.testing.assert_array_equal(
        zarr.open_group(tmp_path / "pieces.zarr")["0"][:],
        zarr.open_group(tmp_path / "whole.zarr")["0"][:],
    )


def test_the_plan_projects_memory_from_the_unit(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "one.tif", np.zeros((2048, 2048), "f4"), tile=(2048, 2048), compression="zlib"
    )
    tifffile.imwrite(tmp_path / "tiled.tif", np.zeros((2048, 2048), "f4"), tile=(256, 256))
    one = pipeline.plan(pipeline.open_image(tmp_path / "one.tif", chunks=256), tmp_path / "a.zarr")
    tiled = pipeline.plan(
        pipeline.open_image(tmp_path / "tiled.tif", chunks=256), tmp_path / "b.zarr"
    )
    unit = 2048 * 2048 * 4
    threads = one.workers or 1
    assert one.memory_per_worker - tiled.memory_per_worker >= unit * threads - tile_cache.max_bytes


def test_a_unit_that_cannot_fit_a_worker_is_refused_naming_it(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "one.tif", np.zeros((6144, 6144), "f4"), tile=(6144, 6144), compression="zlib"
    )
    with pytest.raises(MemoryBudgetError) as raised:
        pipeline.plan(
            pipeline.open_image(tmp_path / "one.tif", chunks=512),
            tmp_path / "o.zarr",
            memory_limit="400MB",
            workers=2,
        )
    message = str(raised.value)
    assert "one.tif stores its pixels in units (tiles, strips or chunks) of 6144x6144, " in message
    assert "151.0 MB each decoded" in message
    assert "rewrite the input with smaller tiles or chunks" in message


def test_the_plan_cuts_blocks_out_of_a_tile_too_large_to_be_one(tmp_path: Path) -> None:
    image = _image((4000, 3000))
    tifffile.imwrite(tmp_path / "one.tif", image, tile=(4000, 3008), compression="zlib")
    planned = pipeline.plan(
        pipeline.apply(lambda b: b, pipeline.open_image(tmp_path / "one.tif")), tmp_path / "o.zarr"
    )
    by, bx = planned.grid.chunk_shape
    assert by < 4000 and 4000 % by == 0, planned
    assert bx <= 3000, planned
