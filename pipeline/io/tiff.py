"""TIFF reader: any window of a tiled or striped (Big)TIFF, reading only the segments it needs.

tifffile's Zarr store cannot be pickled and hides missing or truncated tiles (it returns zeros
and logs), so this reader works one level lower, with tifffile's public segment API: it reads
the byte ranges of the tiles or strips a window overlaps with ``FileHandle.read_segments`` and
decodes them with ``TiffPage.decode`` (every codec imagecodecs knows). Uncompressed contiguous
images are memory-mapped instead. Each read opens the file itself, so a `TiffSource` is a few
hundred picklable bytes that runs on threads, processes and cluster workers alike.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import (
    CorruptSourceError,
    PerformanceWarning,
    PipelineError,
    UnsupportedSourceError,
)
from pipeline.grid import Georef, Window, ceil_div
from pipeline.io.cache import assemble, tile_cache
from pipeline.io.georef_read import tiff_georef
from pipeline.io.location import Remote, is_store_failure

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from numpy.typing import NDArray

__all__ = ["TiffSource"]

SINGLE_STRIP_MAX = 32 * 2**20
"""A compressed single-strip image larger than this warns: every chunk decodes all of it."""


def _stat(path: Path | Remote) -> tuple[int, int]:
    """``(size, version)``: the version changes when the file is rewritten (its modification
    time, or an object's ETag)."""
    if isinstance(path, Remote):
        return int(path.info()["size"]), path.version()
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def _open(path: Path | Remote) -> Iterator[Any]:
    """The TIFF, open: a local file, or an object read by range requests (only the header and
    the segments a window needs are fetched)."""
    import tifffile

    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(path.open()) if isinstance(path, Remote) else path
        try:
            tif = stack.enter_context(tifffile.TiffFile(handle))
        except Exception as exc:
            if isinstance(path, Remote) and is_store_failure(exc):
                raise path.failure(exc) from exc
            if not isinstance(
                exc, (tifffile.TiffFileError, ValueError, OSError, EOFError, KeyError)
            ):
                raise
            msg = f"{path}: corrupt TIFF header ({exc}); re-export the file or check the transfer"
            raise CorruptSourceError(msg) from exc
        yield tif


def _level_page(tif: Any, path: Path | Remote, level: int) -> Any:
    try:
        series = tif.series[0]
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path}: corrupt TIFF: no readable image in it ({exc}); re-export the file"
        raise CorruptSourceError(msg) from exc
    extra = [
        k
        for k, other in enumerate(tif.series[1:], start=1)
        if not (getattr(other.keyframe, "is_reduced", False) or other.keyframe.is_mask)
    ]
    if extra:
        msg = (
            f"{path} holds {len(extra) + 1} separate images (pages or series 0 to {extra[-1]}), "
            "and pipeline reads one image per file: save the one you want on its own, such as "
            f"tifffile.imwrite('one.tif', tifffile.imread('{path.name}', series=0))"
        )
        raise UnsupportedSourceError(msg)
    levels = series.levels
    if not 0 <= level < len(levels):
        msg = (
            f"{path}: pyramid level {level} does not exist; the TIFF has "
            f"{len(levels)} level(s), 0 to {len(levels) - 1}"
        )
        raise UnsupportedSourceError(msg)
    lvl = levels[level]
    page = lvl.keyframe
    # Leading axes of length 1 (a single page, a single Z or T) are harmless.
    leading = lvl.shape[: max(0, lvl.ndim - page.ndim)]
    if len(lvl.pages) > 1 or any(n != 1 for n in leading):
        msg = (
            f"{path}: image of shape {lvl.shape} (axes {lvl.axes}) has more than 2 spatial "
            "dimensions; pipeline reads 2-D (Y, X) or (Y, X, C) images: save one plane per file"
        )
        raise UnsupportedSourceError(msg)
    return page


@dataclass(frozen=True, slots=True)
class TiffSource:
    """A window reader for one image (and pyramid level) of a TIFF file."""

    path: Path | Remote
    """The file."""
    level: int
    """Pyramid level (0 = full resolution)."""
    shape: tuple[int, ...]
    """``(Y, X)`` or ``(Y, X, C)``."""
    dtype: np.dtype[Any]
    """Pixel type (native byte order)."""
    tile: tuple[int, int]
    """Storage segment shape: the tile, or ``(rows per strip, width)``."""
    tiled: bool
    """Tiles (True) or strips (False)."""
    separate: bool
    """Samples stored as separate planes (PlanarConfiguration 2)."""
    memmappable: bool
    """Uncompressed contiguous data, read through a memory map."""
    compression: str
    """Codec name, for `pipeline info`."""
    levels: int
    """Pyramid levels in the file."""
    file_size: int
    """Size in bytes when opened."""
    mtime_ns: int
    """Modification time when opened: part of the token."""
    georef: Georef = field(default_factory=Georef)
    """CRS, transform and nodata (GeoTIFF tags), or the pixel size (OME-TIFF)."""

    format = "tiff"

    @classmethod
    def open(cls, path: Path | Remote, level: int = 0) -> TiffSource:
        """Read the header (no pixel data) and check that every segment is present and whole."""
        file_size, version = _stat(path)
        with _open(path) as tif:
            page = _level_page(tif, path, level)
            if page.dtype is None:
                msg = (
                    f"{path}: pixel type not supported (SampleFormat {page.sampleformat}, "
                    f"{page.bitspersample}-bit); convert it to 8, 16, 32 or 64-bit samples"
                )
                raise UnsupportedSourceError(msg)
            if page.imagedepth != 1:
                msg = f"{path}: volumetric TIFF (ImageDepth {page.imagedepth}) is not 2-D"
                raise UnsupportedSourceError(msg)
            if 0 in page.shape:
                msg = f"{path}: image is empty (shape {page.shape}); nothing to compute"
                raise UnsupportedSourceError(msg)
            separate = page.planarconfig == 2 and page.samplesperpixel > 1
            height, width = page.imagelength, page.imagewidth
            samples = page.samplesperpixel
            shape = (height, width) if samples == 1 else (height, width, samples)
            tiled = bool(page.is_tiled)
            tile = (page.tilelength, page.tilewidth) if tiled else (page.rowsperstrip, width)
            tile = (min(tile[0], height) or height, min(tile[1], width) or width)
            memmappable = (
                bool(page.is_contiguous)
                and page.compression == 1
                and not separate
                and not isinstance(path, Remote)
            )
            _check_segments(
                path, page, file_size=file_size, tile=tile, tiled=tiled, separate=separate
            )
            if memmappable:
                _check_contiguous(path, page, file_size=file_size)
                # Any window of a memory map is cheap to read: a row is the unit, not the strip.
                tile = (1, width)
            compression = getattr(page.compression, "name", str(page.compression)).lower()
            source = cls(
                path=path,
                level=level,
                shape=shape,
                dtype=np.dtype(page.dtype).newbyteorder("="),
                tile=tile,
                tiled=tiled,
                separate=separate,
                memmappable=memmappable,
                compression=compression,
                levels=len(tif.series[0].levels),
                file_size=file_size,
                mtime_ns=version,
                georef=tiff_georef(tif, page, path, level, (height, width)),
            )
        plane_bytes = height * width * source.dtype.itemsize * (samples or 1)
        if not tiled and tile[0] >= height and not memmappable and plane_bytes > SINGLE_STRIP_MAX:
            warnings.warn(
                f"{path} stores its {height}x{width} image as a single compressed strip, so "
                "every chunk decodes the whole image; convert it to a tiled TIFF "
                "(tifffile.imwrite(..., tile=(256, 256))) or to Zarr for parallel reads",
                PerformanceWarning,
                stacklevel=3,
            )
        return source

    @property
    def unit_bytes(self) -> int:
        """Bytes of one decoded tile or strip: any read of part of one decodes all of it (none
        for a memory map, read pixel by pixel)."""
        if self.memmappable:
            return 0
        planes = 1 if self.separate or len(self.shape) == 2 else self.shape[2]
        return self.tile[0] * self.tile[1] * planes * self.dtype.itemsize

    @property
    def token(self) -> str:
        """Identity of the data: path, level, size and modification time."""
        return f"tiff:{self.path}:{self.level}:{self.file_size}:{self.mtime_ns}"

    def describe(self) -> dict[str, Any]:
        """What `pipeline info` prints."""
        layout = "tiles" if self.tiled else "strips"
        if self.memmappable:
            layout = "contiguous, memory-mapped"
        else:
            layout = f"{layout} of {self.tile[0]}x{self.tile[1]}"
        return {
            "format": "TIFF",
            "layout": layout,
            "compression": self.compression,
        }

    def read(self, window: Window) -> NDArray[Any]:
        """The pixels of ``window``, decoding only the segments it overlaps."""
        if self.memmappable:
            return self._read_memmap(window)
        # Tiles larger than the cache would be decoded again by every block inside one.
        tile_cache.hold_at_least(self.unit_bytes)
        try:
            with _open(self.path) as tif:
                page = _level_page(tif, self.path, self.level)
                return self._read_segments(tif, page, window)
        except PipelineError:
            raise
        except Exception as exc:
            if isinstance(self.path, Remote) and is_store_failure(exc):
                raise self.path.failure(exc) from exc  # the store, not the file, failed
            raise

    def _read_memmap(self, window: Window) -> NDArray[Any]:
        import tifffile

        try:
            mm = tifffile.memmap(self.path, level=self.level, mode="r").reshape(self.shape)
        except (ValueError, OSError) as exc:
            msg = f"{self.path}: cannot map its pixels ({exc}); the file is truncated or damaged"
            raise CorruptSourceError(msg) from exc
        try:
            return np.array(mm[window.to_slices()], dtype=self.dtype)
        finally:
            del mm

    def _segments(self, window: Window, plane: int) -> list[tuple[tuple[str, int], Window]]:
        """``(cache key, pixel window)`` of the segments of one sample plane under ``window``."""
        ty, tx = self.tile
        height, width = self.shape[:2]
        per_row = ceil_div(width, tx)
        first = plane * ceil_div(height, ty) * per_row
        return [
            (
                (self.token, first + r * per_row + c),
                Window(r * ty, (r + 1) * ty, c * tx, (c + 1) * tx),
            )
            for r in range(window.y0 // ty, (window.y1 - 1) // ty + 1)
            for c in range(window.x0 // tx, (window.x1 - 1) // tx + 1)
        ]

    def _read_segments(self, tif: Any, page: Any, window: Window) -> NDArray[Any]:
        out = np.empty((*window.shape, *self.shape[2:]), dtype=self.dtype)
        if window.is_empty:
            return out
        decodeargs: dict[str, Any] = {"_fullsize": self.tiled}
        if page.compression in (6, 7, 34892, 33007):  # JPEG flavours carry shared tables
            decodeargs["jpegtables"] = page.jpegtables
            decodeargs["jpegheader"] = page.jpegheader

        def fetch(missing: list[tuple[Any, Window]]) -> Iterator[tuple[Any, NDArray[Any]]]:
            indices = [key[1] for key, _ in missing]
            offsets = [page.dataoffsets[i] for i in indices]
            counts = [page.databytecounts[i] for i in indices]
            for data, index in tif.filehandle.read_segments(offsets, counts, indices, sort=True):
                if data is None or len(data) == 0:
                    raise self._missing(index, page)
                try:
                    segment = page.decode(data, index, **decodeargs)[0]
                except Exception as exc:
                    msg = (
                        f"{self.path}: cannot decode {self._where(index)} "
                        f"({type(exc).__name__}: {exc}); the file is damaged"
                    )
                    raise CorruptSourceError(msg) from exc
                segment = segment[0]  # (depth=1, rows, cols, contiguous samples) -> 3-D
                if self.separate or len(self.shape) == 2:
                    segment = segment[..., 0]
                yield (self.token, index), segment.astype(self.dtype, copy=False)

        if self.separate:
            for plane in range(self.shape[2]):
                assemble(window, self._segments(window, plane), fetch, out[..., plane])
        else:
            assemble(window, self._segments(window, 0), fetch, out)
        return out

    def _where(self, index: int) -> str:
        ty, tx = self.tile
        per_row = ceil_div(self.shape[1], tx)
        per_plane = ceil_div(self.shape[0], ty) * per_row
        plane, rest = divmod(index, per_plane)
        r, c = divmod(rest, per_row)
        kind = "tile" if self.tiled else "strip"
        seg = Window(r * ty, min((r + 1) * ty, self.shape[0]), c * tx, (c + 1) * tx)
        seg = seg.clip(self.shape)
        extra = f" of sample plane {plane}" if self.separate else ""
        return f"{kind} {index}{extra} (pixels {seg})"

    def _missing(self, index: int, page: Any) -> CorruptSourceError:
        msg = (
            f"{self.path}: {self._where(index)} is missing or truncated "
            f"(offset {page.dataoffsets[index]}, {page.databytecounts[index]} bytes, file "
            f"{self.file_size} bytes); the file is incomplete: copy it again"
        )
        return CorruptSourceError(msg)


def _check_contiguous(path: Path | Remote, page: Any, *, file_size: int) -> None:
    """Refuse an uncompressed image whose pixels do not all lie in the file: byte counts
    edited to match a truncated file still leave the memory map short."""
    expected = page.imagelength * page.imagewidth * page.samplesperpixel * page.dtype.itemsize
    start = int(page.dataoffsets[0]) if len(page.dataoffsets) else 0
    listed = int(np.sum(np.asarray(page.databytecounts, dtype=np.int64)))
    if listed < expected or start + expected > file_size:
        msg = (
            f"{path}: its {page.imagelength}x{page.imagewidth} uncompressed pixels need "
            f"{expected} bytes from offset {start}, but the TIFF lists {listed} and the file "
            f"has {file_size}: it is truncated or damaged; re-export it or check the transfer"
        )
        raise CorruptSourceError(msg)


def _check_segments(
    path: Path | Remote,
    page: Any,
    *,
    file_size: int,
    tile: tuple[int, int],
    tiled: bool,
    separate: bool,
) -> None:
    """Refuse a TIFF whose segments are absent (offset or count 0) or run past the end of file.

    tifffile reads such segments as zeros and only logs; a result computed on invented zeros is
    worse than no result.
    """
    height, width = page.imagelength, page.imagewidth
    planes = page.samplesperpixel if separate else 1
    expected = planes * ceil_div(height, tile[0]) * ceil_div(width, tile[1])
    offsets = np.asarray(page.dataoffsets, dtype=np.int64)
    counts = np.asarray(page.databytecounts, dtype=np.int64)
    kind = "tiles" if tiled else "strips"
    if offsets.size < expected or counts.size < expected:
        msg = (
            f"{path}: the TIFF lists {min(offsets.size, counts.size)} {kind} but a "
            f"{height}x{width} image in {kind} of {tile[0]}x{tile[1]} needs {expected}; "
            "the file is damaged"
        )
        raise CorruptSourceError(msg)
    offsets, counts = offsets[:expected], counts[:expected]
    missing = np.flatnonzero((offsets == 0) | (counts == 0))
    if missing.size:
        msg = (
            f"{path}: {missing.size} of {expected} {kind} are missing (first: number "
            f"{missing[0]}); tifffile would read them as zeros. Re-export the file without "
            "sparse tiles"
        )
        raise CorruptSourceError(msg)
    beyond = np.flatnonzero(offsets + counts > file_size)
    if beyond.size:
        first = int(beyond[0])
        msg = (
            f"{path}: truncated: {beyond.size} of {expected} {kind} end past the end of the "
            f"file ({file_size} bytes; {kind[:-1]} {first} ends at byte "
            f"{int(offsets[first] + counts[first])}); copy the file again"
        )
        raise CorruptSourceError(msg)
