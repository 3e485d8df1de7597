"""What `apply` checks before it builds anything: its images, and an output dtype Zarr can
store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import ArgumentError

if TYPE_CHECKING:
    import dask.array as da
    from numpy.typing import DTypeLike

__all__ = ["STORABLE", "check_images", "check_output_dtype"]


STORABLE = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
"""Output dtypes every Zarr (v2 and v3) reader reads."""


def check_output_dtype(dtype: DTypeLike | None) -> None:
    """Refuse an output dtype Zarr cannot store, before anything is created."""
    if dtype is None:
        return
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        msg = f"dtype={dtype!r} is not a dtype: use one of {', '.join(STORABLE)}"
        raise ArgumentError(msg) from exc
    if name not in STORABLE:
        msg = f"dtype={dtype!r} ({name}) cannot be stored in Zarr: use one of {', '.join(STORABLE)}"
        raise ArgumentError(msg)


def check_images(arrays: list[da.Array]) -> list[da.Array]:
    """The images of one step: 2-D or 3-D, non-empty, all of one height and width."""
    first = arrays[0]
    for k, array in enumerate(arrays):
        if array.ndim not in (2, 3):
            msg = (
                f"image {k} has {array.ndim} dimension(s), shape {array.shape}; apply() works "
                "on (Y, X) or (Y, X, C) images"
            )
            raise ArgumentError(msg)
        if array.shape[:2] != first.shape[:2]:
            msg = (
                f"image {k} is {array.shape[0]}x{array.shape[1]} but image 0 is "
                f"{first.shape[0]}x{first.shape[1]}; inputs of one step must have the same "
                "height and width: resample or crop them first"
            )
            raise ArgumentError(msg)
    if 0 in first.shape[:2]:
        msg = f"image is empty (shape {first.shape}); there are no pixels to compute"
        raise ArgumentError(msg)
    return arrays
