"""Writing outputs: OME-Zarr groups created empty, then filled block by block by the tasks.

An output is a group with the full-resolution array at ``"0"`` (and pyramid levels at
``"1"``, ``"2"``, ...), so that viewers open it and `open_image` reads it back. A
:class:`ZarrTarget` is small and picklable; each worker process opens the array once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import threading
import zlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from pipeline.errors import OutputExistsError, OutputWriteError, PipelineError
from pipeline.grid import Georef, chunk_span, level_shape
from pipeline.io.base import check_not_foreign
from pipeline.io.georef_write import (
    GRID_MAPPING,
    array_attributes,
    coordinate_variables,
    grid_mapping_attributes,
    group_attributes,
)
from pipeline.io.location import Remote, is_store_failure, zarr_store_of
from pipeline.io.lock import LOCK_FILE
from pipeline.io.ome import NGFF_VERSION, add_dataset, axes, group_metadata, zarr_format_of
from pipeline.io.records import DONE_DIR, checksum, record_block

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import zarr
    from numpy.typing import NDArray

    from pipeline.grid import Window

__all__ = [
    "ZarrTarget",
    "add_level",
    "codec_label",
    "create_target",
    "open_target",
    "output_codec",
    "read_group_attributes",
]


@functools.cache
def _checksum_store_class() -> type[Any]:
    """A zarr store class (made on first use: importing zarr is slow, and ``--help`` must not)
    that wraps the output's LocalStore and remembers the CRC32 of every chunk it wrote."""
    from zarr.storage import WrapperStore

    class ChecksumStore(WrapperStore[Any]):
        """Computing a chunk's checksum from the bytes as they are written spares reading
        every chunk file back for its block's record."""

        def __init__(self, store: Any, sums: dict[str, int] | None = None) -> None:
            super().__init__(store)
            self.sums: dict[str, int] = {} if sums is None else sums

        def _with_store(self, store: Any) -> Any:
            return type(self)(store, self.sums)

        async def set(self, key: str, value: Any) -> None:
            await self._store.set(key, value)
            data = value.as_numpy_array()
            self.sums[key] = await asyncio.to_thread(zlib.crc32, data)

    return ChecksumStore


_WRITABLE_LOCK = threading.Lock()


def _writable(root: Path | Remote, array_path: str, run_id: str) -> tuple[zarr.Array[Any], Any]:
    """The output array opened for writing in this process, and its checksumming store: one
    pair per process (threads that start together must not open one each, or a block's
    record would look for its checksums in another thread's store)."""
    with _WRITABLE_LOCK:
        return _open_writable(root, array_path, run_id)


@functools.lru_cache(maxsize=16)
def _open_writable(
    root: Path | Remote, array_path: str, run_id: str
) -> tuple[zarr.Array[Any], Any]:
    import zarr
    from zarr.storage import LocalStore

    del run_id
    base = root.zarr_store(read_only=False) if isinstance(root, Remote) else LocalStore(root)
    store = _checksum_store_class()(base)
    array = zarr.open_array(store=store, path=array_path, mode="r+")
    # Every block is written whole, so zarr's check for chunks that are all fill value only
    # costs time: it compares chunks one after the other on zarr's single I/O thread, which
    # serialised the workers' writes. An all-NaN chunk is stored, compressed to a few bytes.
    return array.with_config({"write_empty_chunks": True}), store


@dataclass(frozen=True, slots=True)
class ZarrTarget:
    """An output array being written; small and picklable, opened once per worker process."""

    path: Path | Remote
    """The store: a directory, or an address on an object store."""
    array_path: str
    """The array inside the store (``"0"``: full resolution)."""
    shape: tuple[int, ...]
    """``(Y, X)`` or ``(Y, X, C)``, in pipeline order."""
    dtype: np.dtype[Any]
    """Pixel type."""
    chunks: tuple[int, int]
    """Stored chunk along Y and X."""
    run_id: str
    """Identifies this creation of the store, so that a cached handle is never reused for a
    store that was deleted and written again."""
    zarr_format: int = 3
    """3 for OME-Zarr 0.5, 2 for 0.4."""
    georef: Georef = field(default_factory=Georef)
    """The georeferencing of level 0 (each level's array gets its own)."""

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The array's shape on disk: channels first."""
        return (self.shape[2], *self.shape[:2]) if len(self.shape) == 3 else self.shape

    def create_array(self) -> None:
        """Create this (empty) array in the store."""
        import zarr

        channels = len(self.shape) == 3
        stored_chunks = (self.shape[2], *self.chunks) if channels else self.chunks
        fill = np.nan if self.dtype.kind in "fc" else 0
        group = zarr.open_group(store=zarr_store_of(self.path, read_only=False), mode="r+")
        level = int(self.array_path) if self.array_path.isdigit() else 0
        attributes = array_attributes(self.georef.level(level), (self.shape[0], self.shape[1]))
        options: dict[str, Any] = {}
        names = [a["name"] for a in axes(channels)]
        if self.zarr_format == 3:
            options["dimension_names"] = names
        else:
            options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
            # Zarr v2 has no dimension names; xarray (and netCDF tools) read them here.
            attributes["_ARRAY_DIMENSIONS"] = names
        if attributes:
            options["attributes"] = attributes
        group.create_array(
            self.array_path,
            shape=self.stored_shape,
            chunks=stored_chunks,
            dtype=self.dtype,
            compressors=output_codec(self.zarr_format, self.dtype),
            fill_value=fill,
            **options,
        )

    def write(self, window: Window, block: NDArray[Any]) -> int:
        """Write ``block`` at ``window`` (which must cover whole chunks); returns its bytes.

        zarr (3.1.3 and later) writes each chunk to a temporary file and renames it, so a
        chunk on disk is always whole: old or new, never half written.
        """
        with self._store_failures():
            array, _ = _writable(self.path, self.array_path, self.run_id)
            ys, xs = window.to_slices()
            if len(self.shape) == 3:
                array[:, ys, xs] = np.moveaxis(block, -1, 0)
            else:
                array[ys, xs] = block
        return int(block.nbytes)

    @contextlib.contextmanager
    def _store_failures(self) -> Iterator[None]:
        """An object store failing (after its client's retries) as one line."""
        try:
            yield
        except Exception as exc:
            if isinstance(self.path, Remote) and is_store_failure(exc):
                if isinstance(exc, PipelineError):
                    raise
                raise self.path.failure(exc, writing=True) from exc
            raise

    def chunk_files(self, window: Window) -> list[str]:
        """Paths, relative to the store, of the stored chunks under ``window``."""
        lead = "0/" if len(self.shape) == 3 else ""
        prefix = "c/" if self.zarr_format == 3 else ""
        rows, cols = chunk_span(window, self.chunks)
        return [f"{self.array_path}/{prefix}{lead}{i}/{j}" for i in rows for j in cols]

    def mark_done(self, index: tuple[int, int], window: Window) -> None:
        """Record block ``index`` as written, with the CRC32 of each of its chunk files.

        Called only after the block's write returned, so a recorded block is on disk. The
        checksums are those of the bytes this process's store just wrote (the file is read
        only for a chunk it did not write); a chunk that is not on disk is recorded as absent.
        """
        _, store = _writable(self.path, self.array_path, self.run_id)
        with self._store_failures():
            sums = {
                key: store.sums.pop(key) if key in store.sums else checksum(self.path / key)
                for key in self.chunk_files(window)
            }
            record_block(self.path, self.array_path, index, sums)


def open_target(path: Path | Remote, run_id: str) -> ZarrTarget:
    """The target of an existing output store (to resume writing it)."""
    import zarr

    array = zarr.open_array(store=zarr_store_of(path), path="0", mode="r")
    stored = tuple(int(n) for n in array.shape)
    channels = len(stored) == 3
    shape = (stored[1], stored[2], stored[0]) if channels else stored
    chunks = tuple(int(n) for n in array.chunks)[-2:]
    return ZarrTarget(
        path=path.absolute(),  # it travels to workers, whose working directory may differ
        array_path="0",
        shape=shape,
        dtype=np.dtype(array.dtype),
        chunks=(chunks[0], chunks[1]),
        run_id=run_id,
        zarr_format=int(array.metadata.zarr_format),
    )


def create_target(
    path: Path | Remote,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    chunks: tuple[int, int],
    *,
    overwrite: bool,
    attributes: dict[str, Any],
    run_id: str,
    name: str = "",
    ngff: str = NGFF_VERSION,
    downsampling: dict[str, Any] | None = None,
    georef: Georef | None = None,
) -> ZarrTarget:
    """Create an empty OME-Zarr output (group + array ``"0"``), compressed by
    :func:`output_codec`.

    ``ngff`` is the OME-Zarr version: ``"0.5"`` (Zarr v3, the default) or ``"0.4"`` (Zarr v2,
    for viewers that read only that). ``downsampling`` (``type`` and ``metadata``) says how
    pyramid levels are made. ``georef`` (CRS, transform, nodata) is written as GeoZarr,
    GDAL and CF attributes (`pipeline.io.georef_write`). An existing ``path`` is refused unless
    ``overwrite``;
    even then only a Zarr store (or an empty directory) is deleted, never another kind of
    directory or file.
    """
    import zarr

    metadata = group_metadata(name or path.stem, len(shape), ngff, downsampling, georef)
    check_not_foreign(path, ours=(LOCK_FILE,))
    content = [p for p in path.iterdir() if p.name != LOCK_FILE] if path.exists() else []
    if content:
        if not overwrite:
            raise OutputExistsError.at(path)
        for item in content:  # all but the lock of the run that is replacing it
            _delete(item)
    try:
        # Everything but the lock is gone by now: "a" creates the group beside the lock, which
        # "w-" refuses and "w" would delete.
        store = zarr_store_of(path, read_only=False)
        group = zarr.open_group(store=store, mode="a", zarr_format=zarr_format_of(ngff))
    except OSError as exc:
        msg = (
            f"cannot create the output {path}: {exc.strerror or exc}; choose a location you "
            "can write to"
        )
        raise OutputWriteError(msg) from exc
    georef = georef or Georef()
    located = group_attributes(georef, (int(shape[0]), int(shape[1])))
    group.attrs.update(cast("dict[str, Any]", {**metadata, **located, **attributes}))
    if georef.crs is not None or georef.transform is not None:
        _grid_mapping(group, georef, (int(shape[0]), int(shape[1])))
    # The run records live in a group of their own, so that listing the store shows a known
    # node (a plain folder there makes zarr warn).
    group.create_group(
        DONE_DIR.split("/", 1)[0],
        attributes={"description": "pipeline's records of the blocks written; not image data"},
    )
    target = ZarrTarget(
        path=path.absolute(),  # it travels to workers, whose working directory may differ
        array_path="0",
        shape=tuple(shape),
        dtype=np.dtype(dtype),
        chunks=chunks,
        run_id=run_id,
        zarr_format=zarr_format_of(ngff),
        georef=georef,
    )
    target.create_array()
    return target


def _delete(item: Path | Remote) -> None:
    """Delete a file or a folder (an object, or every object under a prefix)."""
    if isinstance(item, Remote):
        item.remove_tree() if item.is_dir() else item.unlink(missing_ok=True)
    elif item.is_dir() and not item.is_symlink():
        shutil.rmtree(item)
    else:
        item.unlink()


def _grid_mapping(group: Any, georef: Georef, shape: tuple[int, int]) -> None:
    """The CF grid-mapping variable (a scalar, as rioxarray writes it), which each level's
    array names in its ``grid_mapping`` attribute, and level 0's coordinate variables ``y``
    and ``x`` (pixel centres), from which GDAL's Zarr driver and xarray take the transform."""
    variables: dict[str, tuple[list[str], Any, dict[str, Any]]] = {
        GRID_MAPPING: ([], np.zeros((), "int8"), grid_mapping_attributes(georef))
    }
    variables.update(coordinate_variables(georef, shape))
    for name, (dims, values, attributes) in variables.items():
        options: dict[str, Any] = {"attributes": dict(attributes)}
        if group.metadata.zarr_format == 3:
            options["dimension_names"] = dims
        else:
            options["attributes"]["_ARRAY_DIMENSIONS"] = dims
            options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        array = group.create_array(name, shape=values.shape, dtype=values.dtype, **options)
        array[...] = values


def add_level(target: ZarrTarget, level: int, chunks: tuple[int, int]) -> ZarrTarget:
    """Add pyramid level ``level`` (half the size of level ``level - 1``, rounded up) to the
    store of ``target`` and to its multiscales metadata; return its target."""
    import zarr

    shape = level_shape(target.shape, level)
    child = replace(
        target,
        array_path=str(level),
        shape=shape,
        chunks=(min(chunks[0], shape[0]), min(chunks[1], shape[1])),
    )
    if not (target.path / str(level)).exists():
        child.create_array()
    group = zarr.open_group(store=zarr_store_of(target.path, read_only=False), mode="r+")
    attrs: dict[str, Any] = dict(group.attrs)
    if add_dataset(attrs, level, len(shape), target.georef):
        group.attrs.update(attrs)
    return child


def output_codec(zarr_format: int = 3, dtype: Any = "float32") -> Any:
    """How output chunks are compressed: blosc's LZ4 after a byte shuffle for floats, zstd at
    level 1 for integers (see :func:`codec_label` for why)."""
    if np.dtype(dtype).kind in "fc":
        if zarr_format == 2:
            from numcodecs import Blosc

            return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
        from zarr.codecs import BloscCodec

        return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    if zarr_format == 2:
        from numcodecs import Zstd

        return Zstd(level=1)
    from zarr.codecs import ZstdCodec

    return ZstdCodec(level=1)


def codec_label(dtype: Any) -> str:
    """The output codec for ``dtype``, in words. Floats: LZ4 after blosc's byte shuffle, which
    groups the exponent bytes that repeat; integers: zstd, which stores 8- and 16-bit values
    smaller. The README gives the measurements; both are codecs every OME-Zarr reader has."""
    if np.dtype(dtype).kind in "fc":
        return "blosc lz4, byte shuffle"
    return "zstd level 1"


def read_group_attributes(path: Path | Remote) -> dict[str, Any]:
    """The attributes of the group at ``path``."""
    import zarr

    return dict(zarr.open_group(store=zarr_store_of(path), mode="r").attrs)
