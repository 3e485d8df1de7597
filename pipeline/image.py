"""`open_image`: any supported image as a lazy dask array, chunked along Y and X."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.errors import ArgumentError, UnsupportedSourceError
from pipeline.grid import auto_chunks, normalize_chunks
from pipeline.io import check_image_shape, is_remote, open_source
from pipeline.io.masking import missing_as_nan
from pipeline.ops import as_dask, source_array

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.grid import ChunksLike

__all__ = ["open_image"]


def open_image(
    source: Any,
    *,
    chunks: ChunksLike = None,
    level: int = 0,
    missing_chunks: Literal["error", "fill"] = "error",
    nodata: Literal["nan", "keep"] = "nan",
    storage_options: dict[str, Any] | None = None,
) -> da.Array:
    """Open an image lazily as a dask array of shape ``(Y, X)`` or ``(Y, X, C)``.

    Parameters
    ----------
    source
        A path to a TIFF (tiled or striped, BigTIFF, any codec imagecodecs decodes), a Zarr
        v2/v3 array or OME-Zarr group, or a ``.npy`` file (memory-mapped); or a numpy or dask
        array. Files are recognised by their content, not their name.
    chunks
        Block shape along Y and X: an int, ``(rows, cols)`` (``-1`` for a whole axis), or
        explicit sizes. Default: whole storage tiles, grown to about 32 MB.
    level
        Pyramid level for pyramidal TIFFs and OME-Zarr groups; 0 is full resolution.
    missing_chunks
        A Zarr chunk that is not in the store: ``"error"`` (default: a lost file must not
        become pixels of the fill value) or ``"fill"`` (a sparse array, read as Zarr says).
    nodata
        Pixels equal to the nodata value the file declares (GeoTIFF ``GDAL_NODATA``, a Zarr
        ``_FillValue`` or ``nodata``): ``"nan"`` (default) reads them as NaN, missing, so
        that no function takes them for data; an integer image is then read as floats that
        hold all its values (float32 up to 16 bits, float64 above). ``"keep"`` reads the
        values as stored.
    storage_options
        For an address on an object store or web server (``s3://``, ``gs://``, ``az://``,
        ``https://``): options of its fsspec filesystem (an endpoint, a profile), for what the
        environment does not say. Credentials are best left to the environment.

    Returns
    -------
    dask.array.Array
        No pixel is read until it is computed. Each block is one task that opens the file
        and reads only the tiles, strips or chunks under its window, so the array computes
        on threads, processes and cluster workers alike.

    Raises
    ------
    SourceNotFoundError
        The path does not exist, or is a directory that is not a Zarr store.
    UnsupportedSourceError
        Not an image, or not 2-D / 3-D.
    CorruptSourceError
        A damaged header, or missing or truncated pixel data.
    """
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        msg = f"level={level!r} must be a pyramid level: 0 (full resolution) or more"
        raise ArgumentError(msg)
    if missing_chunks not in ("error", "fill"):
        msg = f"missing_chunks={missing_chunks!r}: use 'error' or 'fill'"
        raise ArgumentError(msg)
    if nodata not in ("nan", "keep"):
        msg = f"nodata={nodata!r}: use 'nan' (missing pixels as NaN) or 'keep' (values as stored)"
        raise ArgumentError(msg)
    if isinstance(source, (str, os.PathLike)) or is_remote(source):
        src = open_source(
            source if is_remote(source) else Path(source),
            level=level,
            fill_missing=missing_chunks == "fill",
            storage_options=storage_options,
        )
        if nodata == "nan":
            src = missing_as_nan(src)
        itemsize = src.dtype.itemsize * (src.shape[2] if len(src.shape) == 3 else 1)
        default = auto_chunks(src.shape, src.tile, itemsize)
        grid = normalize_chunks(chunks, src.shape, default)
        return source_array(src, grid, auto_grid=chunks is None)
    if level:
        msg = f"level={level} applies to pyramidal files, not to an in-memory array"
        raise ArgumentError(msg)
    if isinstance(source, np.ndarray) or hasattr(source, "dask"):
        shape = tuple(int(n) for n in source.shape)
        check_image_shape(shape, f"the {type(source).__name__}")
        if np.dtype(source.dtype).kind not in "biufc":
            msg = f"the array has dtype {source.dtype}; pipeline works on numeric images"
            raise UnsupportedSourceError(msg)
        return as_dask(source, chunks)
    msg = (
        f"cannot open {type(source).__name__} {source!r} as an image: pass a path (TIFF, Zarr, "
        ".npy) or a numpy or dask array"
    )
    raise ArgumentError(msg)
