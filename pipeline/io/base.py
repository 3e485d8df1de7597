"""What every reader shares: recognising a format from its bytes and checking dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import (
    OutputExistsError,
    PipelineError,
    SourceNotFoundError,
    UnsupportedSourceError,
)
from pipeline.io.location import Remote

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ZARR_MARKERS",
    "check_channels_last",
    "check_image_dtype",
    "check_image_shape",
    "check_not_foreign",
    "directory_size",
    "is_zarr_store",
    "prepare_file_output",
    "sniff_format",
]

_MAGIC = {
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"II+\x00": "tiff",
    b"MM\x00+": "tiff",
    b"\x93NUM": "npy",
}
ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
"""The metadata files that make a directory a Zarr store (v3, v2 array, v2 group)."""
SUPPORTED = "TIFF (.tif, .tiff), Zarr v2/v3 (a directory) or NumPy (.npy)"


def sniff_format(path: Path | Remote) -> str:
    """``"tiff"``, ``"zarr"`` or ``"npy"`` from the content of ``path``, not from its name."""
    if isinstance(path, Remote):
        return _sniff_remote(path)
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.iterdir() if p.stem == path.stem)
            hint = f" (found {', '.join(near)} beside it)" if near else ""
        msg = f"{path}: no such file or directory{hint}; check the path"
        raise SourceNotFoundError(msg)
    if path.is_dir():
        if is_zarr_store(path):
            return "zarr"
        msg = (
            f"{path} is a directory but not a Zarr store (it has no zarr.json, .zarray or "
            f".zgroup); pass an image file or a Zarr store: {SUPPORTED}"
        )
        raise SourceNotFoundError(msg)
    if path.name in ZARR_MARKERS:
        return "zarr"
    with path.open("rb") as fh:
        return _format_of(fh.read(4), path, "file")


def _sniff_remote(address: Remote) -> str:
    try:
        if address.name in ZARR_MARKERS or any((address / m).exists() for m in ZARR_MARKERS):
            return "zarr"
    except PipelineError as exc:  # named by the image's address, not its metadata's
        raise address.failure(exc.__cause__ or exc) from exc
    if not address.exists():
        msg = f"{address}: no such object (nor a Zarr store there); check the address"
        raise SourceNotFoundError(msg)
    with address.open() as fh:
        return _format_of(fh.read(4), address, "object")


def _format_of(head: bytes, where: object, kind: str) -> str:
    """The format the first bytes of a file (or object) say, or one line that it is none."""
    fmt = _MAGIC.get(head)
    if fmt is None:
        article = "an" if kind[0] in "aeiou" else "a"
        what = f"an empty {kind}" if not head else f"{article} {kind} starting with bytes {head!r}"
        msg = f"{where} is not an image: {what}; pipeline reads {SUPPORTED}"
        raise UnsupportedSourceError(msg)
    return fmt


def check_image_shape(shape: tuple[int, ...], what: str) -> None:
    """Refuse anything but a non-empty 2-D ``(Y, X)`` or 3-D ``(Y, X, C)`` image."""
    if len(shape) not in (2, 3):
        msg = (
            f"{what} has {len(shape)} dimension(s), shape {shape}; pipeline works on 2-D "
            "(Y, X) images or 3-D (Y, X, C) images with channels last: select or reshape "
            "the data first"
        )
        raise UnsupportedSourceError(msg)
    if 0 in shape:
        msg = f"{what} is empty (shape {shape}); there are no pixels to compute"
        raise UnsupportedSourceError(msg)


def is_zarr_store(path: Path | Remote) -> bool:
    """True when ``path`` holds Zarr metadata at its root."""
    return any((path / marker).exists() for marker in ZARR_MARKERS)


def directory_size(path: Path | Remote) -> int:
    """Bytes in all files under ``path``."""
    if isinstance(path, Remote):
        return path.size()
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_not_foreign(
    path: Path | Remote, ours: tuple[str, ...] = (".pipeline-lock.json",)
) -> None:
    """Refuse to write into ``path`` when it is a file, or a directory holding anything but a
    Zarr store (or the files named ``ours``): it is not ours to change."""
    if not path.exists():
        return
    if path.is_dir() and (is_zarr_store(path) or all(p.name in ours for p in path.iterdir())):
        return
    msg = (
        f"refusing to overwrite {path}: it is not a Zarr store, and overwriting deletes it; "
        "choose another output path"
    )
    raise OutputExistsError(msg)


def check_image_dtype(dtype: Any, what: str) -> None:
    """Refuse pixels that are not numbers (strings, records, objects)."""
    if np.dtype(dtype).kind not in "biufc":
        msg = (
            f"{what} holds values of dtype {np.dtype(dtype)}, not numbers; pipeline reads "
            "images of integers, floats, complex numbers or booleans"
        )
        raise UnsupportedSourceError(msg)


def check_channels_last(shape: tuple[int, ...], what: str) -> None:
    """Refuse a 3-D array without axis names that reads as more channels than rows or
    columns: it is more likely a stack of planes ``(Z, Y, X)`` than one ``(Y, X, C)`` image."""
    if len(shape) == 3 and shape[2] > 4 and shape[2] >= min(shape[0], shape[1]):
        msg = (
            f"{what} is a 3-D array of shape {shape} without axis names: read as (Y, X, C) it "
            f"would be a {shape[0]}x{shape[1]} image of {shape[2]} channels, and it looks like "
            "a stack of planes; give its axes names (Zarr dimension_names y, x and c), or "
            "store the planes you want as separate 2-D arrays"
        )
        raise UnsupportedSourceError(msg)


def prepare_file_output(
    target: Path,
    *,
    source: Path | Remote,
    kind: str,
    magic: tuple[bytes, ...],
    overwrite: bool,
) -> None:
    """Check that a command may write the file ``target`` (of ``kind``, whose files start
    with one of ``magic``), and make its folder: never a directory, never the input ``source``
    or a file inside it, never a file of another kind, an existing one only with
    ``overwrite``."""
    out = target.absolute()
    src = source.absolute() if not isinstance(source, Remote) else None
    if src is not None and (out == src or src in out.parents):
        msg = f"{target} is the input {source} or inside it: choose another output file"
        raise OutputExistsError(msg)
    if target.is_dir():
        msg = f"{target} is a directory: give the name of the {kind} file to write"
        raise OutputExistsError(msg)
    if target.exists():
        if not overwrite:
            raise OutputExistsError.at(target)
        with target.open("rb") as file:
            head = file.read(8)
        if not head.startswith(magic):
            msg = (
                f"refusing to overwrite {target}: it is not a {kind} file, and pipeline "
                f"replaces only files of the kind it writes; choose another name"
            )
            raise OutputExistsError(msg)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the folder of {target}: {exc.strerror or exc}"
        raise OutputExistsError(msg) from exc
