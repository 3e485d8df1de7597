"""Nodata as NaN: pixels equal to an input's nodata value reach functions as missing.

A function (a built-in kernel, or yours) sees NaN where the file says "no data", never the
sentinel (a DEM's -9999 read as an elevation makes cliffs around every void). Float images
keep their dtype. Integer images are read as floats, which hold every one of their values
exactly: float32 for 8- and 16-bit integers, float64 for wider ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from pipeline.grid import Georef, Window

__all__ = ["MissingAsNaN", "missing_as_nan", "nan_dtype"]


def nan_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype that holds every value of ``dtype`` exactly, and NaN."""
    if dtype.kind == "f":
        return dtype if dtype.itemsize >= 4 else np.dtype("float32")
    if dtype.kind in "iub" and dtype.itemsize <= 2:
        return np.dtype("float32")
    return np.dtype("float64")


@dataclass(frozen=True)
class MissingAsNaN:
    """A window source whose nodata pixels read as NaN (in a dtype that holds NaN)."""

    inner: Any
    """The source as stored."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.inner.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return nan_dtype(np.dtype(self.inner.dtype))

    @property
    def path(self) -> Path | None:
        path: Path | None = self.inner.path
        return path

    @property
    def tile(self) -> tuple[int, int]:
        return tuple(self.inner.tile)

    @property
    def level(self) -> int:
        return int(self.inner.level)

    @property
    def levels(self) -> int:
        return int(self.inner.levels)

    @property
    def format(self) -> str:
        return str(self.inner.format)

    @property
    def unit_bytes(self) -> int:
        """A decoded unit, and its copy as floats."""
        inner = int(getattr(self.inner, "unit_bytes", 0))
        return int(inner + inner * self.dtype.itemsize // max(self.inner.dtype.itemsize, 1))

    @property
    def token(self) -> str:
        return f"{self.inner.token}:nodata-as-nan"

    @property
    def georef(self) -> Georef:
        """The stored georeferencing, with NaN as the nodata value of what is read."""
        georef: Georef = replace(self.inner.georef, nodata=float("nan"))
        return georef

    def describe(self) -> dict[str, Any]:
        return dict(self.inner.describe())

    def read(self, window: Window) -> NDArray[Any]:
        """The pixels of ``window``, NaN where the stored value is the nodata value."""
        stored: NDArray[Any] = self.inner.read(window)
        nodata = self.inner.georef.nodata
        out = stored.astype(self.dtype, copy=stored.dtype != self.dtype)
        if nodata is not None and not np.isnan(nodata):
            out[stored == nodata] = np.nan
        return out

    def __getattr__(self, name: str) -> Any:
        # Whatever else a reader offers (its file size, its chunks): the stored source's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def missing_as_nan(source: Any) -> Any:
    """``source``, reading its nodata pixels as NaN if it declares a nodata value."""
    georef = getattr(source, "georef", None)
    if georef is None or georef.nodata is None:
        return source
    if np.dtype(source.dtype).kind == "f" and np.isnan(georef.nodata):
        return source  # missing is NaN already
    return MissingAsNaN(source)
