"""Readers (TIFF, Zarr, NPY) that read any window of a file; the Zarr writer and its records.

Every reader is a small picklable description of its file that opens the file in each read,
so the same object works on threads, processes and cluster workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UnsupportedSourceError
from pipeline.grid.source import Address
from pipeline.io.base import (
    ZARR_MARKERS,
    check_image_dtype,
    check_image_shape,
    directory_size,
    sniff_format,
)
from pipeline.io.location import Remote, is_remote, is_store_failure
from pipeline.io.lock import hold, live_owner, locked_error
from pipeline.io.npy import NpySource
from pipeline.io.ome import NGFF_VERSIONS, check_ngff, level_transform
from pipeline.io.records import (
    RunRecord,
    damaged_chunks,
    done_blocks,
    forget_block,
    output_progress,
    read_record,
    sweep_partials,
    write_record,
)
from pipeline.io.refusals import refusal
from pipeline.io.tiff import TiffSource
from pipeline.io.writer import (
    ZarrTarget,
    add_level,
    codec_label,
    create_target,
    open_target,
    read_group_attributes,
)
from pipeline.io.zarr_ import ZarrSource

if TYPE_CHECKING:
    import os
    from typing import Any

__all__ = [
    "NGFF_VERSIONS",
    "FileSource",
    "NpySource",
    "Remote",
    "RunRecord",
    "TiffSource",
    "ZarrSource",
    "ZarrTarget",
    "add_level",
    "check_image_shape",
    "check_ngff",
    "codec_label",
    "create_target",
    "damaged_chunks",
    "directory_size",
    "done_blocks",
    "forget_block",
    "hold",
    "is_remote",
    "is_store_failure",
    "level_transform",
    "live_owner",
    "locked_error",
    "open_source",
    "open_target",
    "output_progress",
    "read_group_attributes",
    "read_record",
    "refusal",
    "sweep_partials",
    "write_record",
]

FileSource = TiffSource | ZarrSource | NpySource
"""Any file-backed reader."""


def open_source(
    path: str | os.PathLike[str] | Address,
    level: int = 0,
    *,
    fill_missing: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> FileSource:
    """Open the image at ``path`` (TIFF, Zarr or NPY, recognised by content) without reading
    pixel data; ``level`` selects a pyramid level where the file has one. A missing chunk of a
    Zarr array is an error unless ``fill_missing``. ``path`` may be an address on an object
    store or web server (``s3://``, ``gs://``, ``az://``, ``https://``), opened with
    ``storage_options``."""
    if is_remote(path):
        location: Path | Remote = (
            path if isinstance(path, Remote) else Remote.of(str(path), storage_options)
        )
    elif isinstance(path, Address):
        location = Remote.of(path.url, storage_options)
    else:
        # Absolute: the source travels to workers, whose working directory may be anywhere.
        location = Path(path).expanduser().absolute()
    path = location
    fmt = sniff_format(path)
    if path.name in ZARR_MARKERS:
        path = path.parent
    source: FileSource
    if fmt == "tiff":
        source = TiffSource.open(path, level)
    elif fmt == "zarr":
        source = ZarrSource.open(path, level, fill_missing=fill_missing)
    else:
        if level:
            msg = f"{path}: a .npy file has only level 0, not {level}"
            raise UnsupportedSourceError(msg)
        if isinstance(path, Remote):
            msg = f"{path}: a .npy file is read from local disk only; copy it here, or to Zarr"
            raise UnsupportedSourceError(msg)
        source = NpySource.open(path)
    check_image_shape(source.shape, str(path))
    check_image_dtype(source.dtype, str(path))
    return source
