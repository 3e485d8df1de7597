"""The writer's contract, run over every kind of output target (zarr-python's ``StoreTests``
pattern): a target for another store subclasses :class:`WriterTests`, sets ``ngff`` and gives
the ``root`` its outputs are written under: a local folder, or a bucket on the S3 server the
tests start on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid
import zlib
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pytest
import zarr

from pipeline.errors import ArgumentError, OutputExistsError
from pipeline.grid import Window
from pipeline.io import (
    Remote,
    ZarrTarget,
    add_level,
    create_target,
    damaged_chunks,
    done_blocks,
    forget_block,
    open_target,
    sweep_partials,
)
from pipeline.io import writer as writer_module
from pipeline.io.location import zarr_store_of

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import S3Server

    Location = Path | Remote

SHAPE = (96, 160)
CHUNKS = (32, 64)


class WriterTests:
    """What every output target must do; subclasses choose the format."""

    ngff: ClassVar[str]

    @pytest.fixture
    def root(self, tmp_path: Path) -> Location:
        return tmp_path

    def create(
        self, path: Location, *, shape: tuple[int, ...] = SHAPE, dtype: str = "f4"
    ) -> ZarrTarget:
        return create_target(
            path,
            shape,
            np.dtype(dtype),
            CHUNKS,
            overwrite=False,
            attributes={"note": "test"},
            run_id="run",
            ngff=self.ngff,
        )

    def test_a_written_block_reads_back_exactly(self, root: Location) -> None:
        target = self.create(root / "o.zarr")
        block = np.random.default_rng(1).random((64, 128)).astype("f4")
        window = Window(32, 96, 0, 128)
        assert target.write(window, block) == block.nbytes
        stored = zarr.open_array(store=zarr_store_of(root / "o.zarr"), path="0", mode="r")
        np.testing.assert_array_equal(stored[32:96, 0:128], block)
        assert np.isnan(stored[0:32, :]).all(), "unwritten chunks are the fill value"

    def test_channels_are_stored_first_and_read_back_last(self, root: Location) -> None:
        target = self.create(root / "o.zarr", shape=(*SHAPE, 3), dtype="u2")
        block = np.arange(32 * 64 * 3, dtype="u2").reshape(32, 64, 3)
        target.write(Window(0, 32, 0, 64), block)
        stored = zarr.open_array(store=zarr_store_of(root / "o.zarr"), path="0", mode="r")
        assert stored.shape == (3, *SHAPE)
        np.testing.assert_array_equal(np.moveaxis(stored[:, 0:32, 0:64], 0, -1), block)

    def test_a_recorded_block_carries_the_checksums_of_its_chunk_files(
        self, root: Location
    ) -> None:
        path = root / "o.zarr"
        target = self.create(path)
        window = Window(0, 32, 64, 160)  # two chunks, the second one cut by the edge
        target.write(window, np.ones(window.shape, dtype="f4"))
        target.mark_done((0, 1), window)
        records = done_blocks(path)
        assert list(records) == [(0, 1)]
        sums = records[(0, 1)]
        assert len(sums) == 2 and set(sums) == set(target.chunk_files(window))
        for key, crc in sums.items():
            assert crc == zlib.crc32((path / key).read_bytes())
        assert damaged_chunks(path, sums) == []

    def test_a_changed_chunk_is_found_and_its_block_forgotten(self, root: Location) -> None:
        path = root / "o.zarr"
        target = self.create(path)
        window = Window(0, 32, 0, 64)
        target.write(window, np.ones(window.shape, dtype="f4"))
        target.mark_done((0, 0), window)
        key = target.chunk_files(window)[0]
        (path / key).write_bytes(b"damaged")
        assert damaged_chunks(path, done_blocks(path)[(0, 0)]) == [key]
        forget_block(path, (0, 0))
        assert done_blocks(path) == {}

    def test_an_existing_output_is_reopened_as_the_same_target(self, root: Location) -> None:
        target = self.create(root / "o.zarr", shape=(*SHAPE, 2))
        again = open_target(root / "o.zarr", "run")
        assert again == target

    def test_a_pyramid_level_is_half_the_size_and_listed_in_the_multiscales(
        self, root: Location
    ) -> None:
        path = root / "o.zarr"
        level = add_level(self.create(path), 1, CHUNKS)
        assert level.shape == (48, 80) and level.chunks == (32, 64)
        assert add_level(self.create(root / "p.zarr"), 2, CHUNKS).shape == (24, 40)
        attrs = zarr.open_group(store=zarr_store_of(path), mode="r").attrs.asdict()
        holder = attrs.get("ome", attrs)
        assert [d["path"] for d in holder["multiscales"][0]["datasets"]] == ["0", "1"]
        add_level(open_target(path, "run"), 1, CHUNKS)  # again, as a resume does
        attrs = zarr.open_group(store=zarr_store_of(path), mode="r").attrs.asdict()
        assert len(attrs.get("ome", attrs)["multiscales"][0]["datasets"]) == 2

    def test_an_existing_output_is_refused_without_overwrite(self, root: Location) -> None:
        self.create(root / "o.zarr")
        with pytest.raises(OutputExistsError, match="already exists; pass overwrite=True"):
            self.create(root / "o.zarr")

    def test_overwrite_never_deletes_what_is_not_a_zarr_store(self, root: Location) -> None:
        folder = root / "notes"
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
        with pytest.raises(OutputExistsError, match="it is not a Zarr store"):
            create_target(
                folder, SHAPE, np.dtype("f4"), CHUNKS, overwrite=True, attributes={}, run_id="r"
            )
        assert (folder / "keep.txt").read_text() == "mine"

    def test_temporary_files_of_interrupted_writes_are_swept(self, root: Location) -> None:
        path = root / "o.zarr"
        target = self.create(path)
        if isinstance(path, Remote):
            # A store has no rename: every object is written whole by one request, so none is
            # ever left half written, and there is nothing to sweep.
            window = Window(0, 32, 0, 64)
            target.write(window, np.ones(window.shape, dtype="f4"))
            target.mark_done((0, 0), window)
            assert not [k for k in path.find() if "partial" in k]
            assert sweep_partials(path) == 0
            return
        leftover = path / "0" / f"x.{'a' * 32}.partial"
        leftover.write_bytes(b"half")
        assert sweep_partials(path) == 1
        assert not leftover.exists()

    def test_threads_starting_together_share_one_handle_regression_2fc3a3c(
        self, root: Location, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Threads that opened the output at the same moment each made a handle of their own, and
        # a block's record then looked for its checksums in another thread's store.
        def no_read_back(path: Location) -> int | None:
            msg = f"{path} was read back to checksum it"
            raise AssertionError(msg)

        monkeypatch.setattr(writer_module, "checksum", no_read_back)
        writer_module._open_writable.cache_clear()
        target = self.create(root / "o.zarr")
        blocks = [(i, j) for i in range(3) for j in range(2)]
        start = threading.Barrier(len(blocks))
        failures: list[BaseException] = []

        def write(index: tuple[int, int]) -> None:
            window = Window(index[0] * 32, index[0] * 32 + 32, index[1] * 64, index[1] * 64 + 64)
            start.wait()
            try:
                target.write(window, np.full(window.shape, index[0], dtype="f4"))
                target.mark_done(index, window)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(b,)) for b in blocks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sorted(done_blocks(root / "o.zarr")) == blocks


class TestZarrV3Writer(WriterTests):
    ngff = "0.5"


class TestZarrV2Writer(WriterTests):
    ngff = "0.4"


class OnS3:
    """Outputs written to a fresh bucket of the S3 server (moto) the tests start."""

    @pytest.fixture
    def root(self, s3_server: S3Server) -> Location:
        import s3fs

        bucket = f"writer-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(**s3_server.options).mkdir(bucket)
        return Remote.of(f"s3://{bucket}")


class TestZarrV3WriterOnS3(OnS3, WriterTests):
    ngff = "0.5"


class TestZarrV2WriterOnS3(OnS3, WriterTests):
    ngff = "0.4"


def test_an_unknown_ome_zarr_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=r"ngff='0.3': OME-Zarr versions written are 0.5, 0.4"):
        create_target(
            tmp_path / "o.zarr",
            SHAPE,
            np.dtype("f4"),
            CHUNKS,
            overwrite=False,
            attributes={},
            run_id="r",
            ngff="0.3",
        )
    assert not (tmp_path / "o.zarr").exists()
