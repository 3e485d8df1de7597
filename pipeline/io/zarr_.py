"""Reading Zarr v2/v3 arrays and OME-Zarr groups (any level), window by window.

Named ``zarr_`` so that it cannot shadow the ``zarr`` package (as xarray names ``netCDF4_``).
NGFF orders axes channel first, so a ``(C, Y, X)`` array is read as ``(Y, X, C)``.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import (
    CorruptSourceError,
    PipelineError,
    SourceNotFoundError,
    UnsupportedSourceError,
)
from pipeline.grid import Georef, Window
from pipeline.io.base import ZARR_MARKERS, check_channels_last, check_image_shape
from pipeline.io.cache import assemble, tile_cache
from pipeline.io.georef_read import zarr_georef
from pipeline.io.location import Remote, is_store_failure
from pipeline.io.ome import multiscales, ome_transform

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import zarr
    from numpy.typing import NDArray


__all__ = ["ZarrSource"]


def _axis_names(axes: Any) -> tuple[str, ...] | None:
    if not axes:
        return None
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    return tuple(str(n).lower() for n in names) if all(names) else None


def _parent(path: Path | Remote) -> Any:
    """The Zarr group holding the array at ``path`` (an xarray or rioxarray dataset, whose
    other variables say where the array is), or ``None``."""
    import zarr

    if not any((path.parent / marker).exists() for marker in ZARR_MARKERS):
        return None
    try:
        return zarr.open_group(store=_store(path.parent), mode="r")
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def _georef(group: Any, array: Any, scaled: Georef | None, level: int) -> Georef:
    """The georeferencing the store declares for ``array`` (of level ``level``), from its
    own attributes and those of ``group``, the group holding it (if any)."""

    def siblings(name: str) -> dict[str, Any] | None:
        found = group.get(name) if group is not None else None
        return dict(found.attrs) if found is not None else None

    layers = [dict(array.attrs)] + ([dict(group.attrs)] if group is not None else [])
    found = zarr_georef(layers, array.metadata.fill_value, siblings)
    if found.transform is not None:
        if group is not None and "spatial:transform" not in layers[0]:
            found = found.level(level)  # the group's transform is that of level 0
    elif scaled is not None:
        found = Georef(
            crs=found.crs, transform=scaled.transform, nodata=found.nodata, unit=scaled.unit
        )
    return found


def _metadata_mtime(path: Path | Remote) -> int:
    for name in ZARR_MARKERS:
        candidate = path / name
        if candidate.exists():
            if isinstance(candidate, Remote):
                return candidate.version()
            return candidate.stat().st_mtime_ns
    return 0


def _store(path: Path | Remote) -> Any:
    """What zarr opens: a local directory, or a store over an address."""
    return path.zarr_store() if isinstance(path, Remote) else str(path)


@functools.lru_cache(maxsize=64)
def _cached_array(root: Path | Remote, array_path: str, token: str) -> zarr.Array[Any]:
    """An opened array, once per process (``token`` keeps a rewritten store from reusing it)."""
    import zarr

    del token
    return zarr.open_array(store=_store(root), path=array_path, mode="r")


@dataclass(frozen=True, slots=True)
class ZarrSource:
    """A window reader for a Zarr array, or one level of an OME-Zarr group."""

    path: Path | Remote
    """The store (a directory, or an address on an object store)."""
    array_path: str
    """Path of the array inside the store (``""`` when the store is the array)."""
    level: int
    """Pyramid level (0 = full resolution)."""
    shape: tuple[int, ...]
    """``(Y, X)`` or ``(Y, X, C)``."""
    dtype: np.dtype[Any]
    """Pixel type."""
    tile: tuple[int, int]
    """Stored chunk (or shard, the unit of writing) along Y and X."""
    index: tuple[int | None, ...]
    """Per stored axis: ``None`` for a sliced axis, ``0`` for a dropped singleton axis."""
    order: tuple[int, ...]
    """Transpose of the sliced axes into ``(Y, X[, C])``."""
    zarr_format: int
    """2 or 3."""
    levels: int
    """Pyramid levels (1 for a plain array)."""
    mtime_ns: int
    """Modification time of the array metadata: part of the token."""
    fill_missing: bool = False
    """Read a missing chunk as the fill value (a sparse array) instead of refusing it."""
    chunk: tuple[int, int] = (0, 0)
    """The chunk along Y and X: the unit a read decodes whole (inside a shard, too)."""
    georef: Georef = field(default_factory=Georef)
    """CRS, transform and nodata (GeoZarr, CF, GDAL) or pixel size (OME-Zarr)."""

    format = "zarr"

    @classmethod
    def open(cls, path: Path | Remote, level: int = 0, *, fill_missing: bool = False) -> ZarrSource:
        """Open the array metadata (no chunk is read)."""
        import zarr

        try:
            node = zarr.open(store=_store(path), mode="r")
        except FileNotFoundError as exc:
            msg = f"{path}: no Zarr array or group found ({exc}); check the path"
            raise SourceNotFoundError(msg) from exc
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            msg = f"{path}: corrupt Zarr metadata ({exc})"
            raise CorruptSourceError(msg) from exc
        array_path, axes, levels, scaled = "", None, 1, None
        if isinstance(node, zarr.Group):
            ms = multiscales(node.attrs)
            if ms is None:
                arrays = sorted(node.array_keys())
                hint = f"open one of its arrays: {', '.join(str(path / a) for a in arrays[:5])}"
                msg = f"{path} is a Zarr group without OME-Zarr multiscales metadata; " + (
                    hint if arrays else "it holds no array"
                )
                raise UnsupportedSourceError(msg)
            datasets = ms.get("datasets") or []
            levels = len(datasets)
            if not 0 <= level < len(datasets):
                msg = (
                    f"{path}: pyramid level {level} does not exist; the multiscales lists "
                    f"{len(datasets)} level(s), 0 to {len(datasets) - 1}"
                )
                raise UnsupportedSourceError(msg)
            array_path = str(datasets[level]["path"])
            axes = _axis_names(ms.get("axes"))
            scaled = ome_transform(ms, level)
            array = node.get(array_path)
            if not isinstance(array, zarr.Array):
                msg = f"{path}: multiscales level {level} names array {array_path!r}, missing"
                raise CorruptSourceError(msg)
        else:
            if level:
                msg = f"{path}: a plain Zarr array has only level 0, not {level}"
                raise UnsupportedSourceError(msg)
            array = node
            axes = _axis_names(getattr(array.metadata, "dimension_names", None))
        index, order, shape = _layout(tuple(array.shape), axes, str(path))
        check_image_shape(shape, str(path))
        unit = array.shards or array.chunks
        ydim, xdim = _yx(index, order)
        tile = (min(unit[ydim], shape[0]), min(unit[xdim], shape[1]))
        chunk = (min(array.chunks[ydim], shape[0]), min(array.chunks[xdim], shape[1]))
        georef = _georef(
            node if isinstance(node, zarr.Group) else _parent(path), array, scaled, level
        )
        return cls(
            path=path,
            array_path=array_path,
            level=level,
            shape=shape,
            dtype=np.dtype(array.dtype),
            tile=tile,
            index=index,
            order=order,
            zarr_format=int(array.metadata.zarr_format),
            levels=levels,
            mtime_ns=_metadata_mtime(path / array_path),
            fill_missing=fill_missing,
            chunk=chunk,
            georef=georef,
        )

    @property
    def unit_bytes(self) -> int:
        """Bytes of one decoded chunk: any read of part of a chunk decodes all of it."""
        channels = self.shape[2] if len(self.shape) == 3 else 1
        return self.chunk[0] * self.chunk[1] * channels * self.dtype.itemsize

    @property
    def token(self) -> str:
        """Identity of the data: path, array, level and metadata modification time."""
        return f"zarr:{self.path}:{self.array_path}:{self.mtime_ns}"

    def describe(self) -> dict[str, Any]:
        """What `pipeline info` prints."""
        return {
            "format": f"Zarr v{self.zarr_format}",
            "layout": f"chunks of {self.tile[0]}x{self.tile[1]}",
            "array": self.array_path or "(root)",
        }

    def read(self, window: Window) -> NDArray[Any]:
        """The pixels of ``window``: only the chunks it overlaps are read and decoded.

        Chunks larger than the window (a block inside one chunk) are decoded whole once and
        kept in the tile cache, which grows to hold one: otherwise every block that reads a
        part of a chunk would decode all of it again.
        """
        cy, cx = self.chunk
        if (cy <= window.height and cx <= window.width) or window.is_empty:
            return self._read_direct(window)
        tile_cache.hold_at_least(self.unit_bytes)
        height, width = self.shape[:2]
        units = [
            (
                (self.token, r, c),
                Window(r * cy, min((r + 1) * cy, height), c * cx, min((c + 1) * cx, width)),
            )
            for r in range(window.y0 // cy, (window.y1 - 1) // cy + 1)
            for c in range(window.x0 // cx, (window.x1 - 1) // cx + 1)
        ]

        def fetch(missing: list[tuple[Any, Window]]) -> Iterator[tuple[Any, NDArray[Any]]]:
            for key, unit in missing:
                yield key, self._read_direct(unit)

        out = np.empty((*window.shape, *self.shape[2:]), dtype=self.dtype)
        return assemble(window, units, fetch, out)

    def _read_direct(self, window: Window) -> NDArray[Any]:
        """The pixels of ``window``, read by zarr (which decodes every chunk it overlaps)."""
        array = _cached_array(self.path, self.array_path, self.token)
        ydim, xdim = _yx(self.index, self.order)
        selection: list[int | slice] = [
            slice(None) if keep is None else keep for keep in self.index
        ]
        selection[ydim], selection[xdim] = window.to_slices()
        try:
            if not self.fill_missing:
                self._check_chunks(array, selection)
            block = np.asarray(array[tuple(selection)])
        except PipelineError:
            raise
        except Exception as exc:
            if isinstance(self.path, Remote) and is_store_failure(exc):
                raise self.path.failure(exc) from exc  # the store, not the data, failed
            msg = (
                f"{self.path}: cannot read window {window} of array "
                f"{self.array_path or '(root)'} ({type(exc).__name__}: {exc}); a chunk is "
                "damaged: rewrite the store"
            )
            raise CorruptSourceError(msg) from exc
        return block.transpose(self.order) if self.order != tuple(range(block.ndim)) else block

    def _check_chunks(self, array: zarr.Array[Any], selection: list[int | slice]) -> None:
        """Refuse to read a missing chunk as the fill value: in an input, a chunk file lost
        on the way would otherwise become an image silently filled with zeros (or NaN)."""
        unit = array.shards or array.chunks
        spans = []
        for axis, (pick, size) in enumerate(zip(selection, unit, strict=True)):
            if isinstance(pick, int):
                spans.append(range(pick // size, pick // size + 1))
            else:
                start, stop, _ = pick.indices(array.shape[axis])
                spans.append(range(start // size, -(-stop // size)))
        root = self.path / self.array_path
        for coords in itertools.product(*spans):
            key = array.metadata.encode_chunk_key(coords)
            if not (root / key).exists():
                msg = (
                    f"{self.path}: chunk {key} of array {self.array_path or '(root)'} is "
                    "missing, so its pixels would be read as the fill value; restore it, or "
                    "if the array is sparse on purpose, open it with "
                    "open_image(..., missing_chunks='fill') (config: missing_chunks: fill)"
                )
                raise CorruptSourceError(msg)


def _yx(index: tuple[int | None, ...], order: tuple[int, ...]) -> tuple[int, int]:
    """Stored axis numbers of Y and X."""
    kept = [i for i, k in enumerate(index) if k is None]
    return kept[order[0]], kept[order[1]]


def _layout(
    shape: tuple[int, ...], axes: tuple[str, ...] | None, what: str
) -> tuple[tuple[int | None, ...], tuple[int, ...], tuple[int, ...]]:
    """Which stored axes to keep and how to order them as ``(Y, X[, C])``."""
    if axes is not None and len(axes) == len(shape) and {"y", "x"} <= set(axes):
        keep = {"y", "x", "c"}
        extra = [(a, n) for a, n in zip(axes, shape, strict=True) if a not in keep and n != 1]
        if extra:
            msg = (
                f"{what}: axes {axes} with shape {shape}: axis {extra[0][0]!r} has "
                f"{extra[0][1]} entries; pipeline reads 2-D (Y, X) or (Y, X, C) images"
            )
            raise UnsupportedSourceError(msg)
        index = tuple(None if a in keep else 0 for a in axes)
        kept = [a for a in axes if a in keep]
        order = tuple(kept.index(a) for a in ("y", "x", "c") if a in kept)
    else:
        # Without axis names, 2-D is (Y, X) and 3-D is (Y, X, C); leading singleton axes
        # beyond those (a lone T or Z) are dropped. Other layouts need dimension_names.
        lead = 0
        while len(shape) - lead > 3 and shape[lead] == 1:
            lead += 1
        index = (0,) * lead + (None,) * (len(shape) - lead)
        order = tuple(range(len(shape) - lead))
        check_channels_last(shape[lead:], what)
    kept_shape = tuple(n for n, k in zip(shape, index, strict=True) if k is None)
    return index, order, tuple(kept_shape[i] for i in order)
