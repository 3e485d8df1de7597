"""Pyramid levels: an image at half the size, each pixel made from a 2x2 block of the level
below, read from storage (never by computing the pipeline again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.grid import Window, level_shape
from pipeline.ops.nodes import DaskBlocks, Node

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

__all__ = ["DOWNSAMPLE_METHODS", "DownsampleNode", "default_method", "downsample"]

DOWNSAMPLE_METHODS = ("mean", "nearest")
"""``mean``: the mean of the 2x2 pixels that are not NaN (continuous data). ``nearest``: the
top-left pixel of each 2x2 block (labels, classes: values that must not be blended)."""

Method = Literal["mean", "nearest"]


def default_method(dtype: np.dtype[Any]) -> Method:
    """``mean`` for floating-point data, ``nearest`` for integers (usually labels)."""
    return "mean" if np.dtype(dtype).kind in "fc" else "nearest"


def downsample(block: NDArray[Any], method: Method, dtype: np.dtype[Any]) -> NDArray[Any]:
    """Halve ``block`` along Y and X (odd sizes round up: an edge pixel stands alone)."""
    if method == "nearest":
        return np.ascontiguousarray(block[::2, ::2]).astype(dtype, copy=False)
    height, width = block.shape[:2]
    padded = np.full(
        (height + height % 2, width + width % 2, *block.shape[2:]), np.nan, dtype=np.float64
    )
    padded[:height, :width] = block
    quads = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, *block.shape[2:])
    valid = ~np.isnan(quads)
    total = np.where(valid, quads, 0.0).sum(axis=(1, 3))
    count = valid.sum(axis=(1, 3))
    mean: NDArray[np.float64] = np.divide(
        total, count, out=np.full(total.shape, np.nan), where=count > 0
    )
    if np.dtype(dtype).kind not in "fc":
        mean = np.rint(np.nan_to_num(mean))
    result: NDArray[Any] = mean.astype(dtype)
    return result


@dataclass(frozen=True, eq=False)
class DownsampleNode(Node):
    """Level ``k + 1`` of a pyramid, computed window by window from level ``k``."""

    source: Node
    method: Method
    shape: tuple[int, ...] = field(init=False)
    dtype: np.dtype[Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", level_shape(self.source.shape, 1))
        object.__setattr__(self, "dtype", self.source.dtype)

    @property
    def token(self) -> str:
        return f"downsample-{self.method}({self.source.token})"

    def _below(self, window: Window) -> Window:
        return Window(2 * window.y0, 2 * window.y1, 2 * window.x0, 2 * window.x1).clip(
            self.source.shape
        )

    def read(self, window: Window, blocks: DaskBlocks) -> NDArray[Any]:
        return downsample(self.source.read(self._below(window), blocks), self.method, self.dtype)

    def leaf_reads(self, window: Window) -> Iterator[tuple[Node, Window]]:
        yield from self.source.leaf_reads(self._below(window))

    def peak_bytes(self, window: Window) -> int:
        below = self._below(window)
        # The block below, a float64 copy padded to even sizes, and the result.
        return self.source.peak_bytes(below) + below.size * 8 * 2 + window.size * self.pixel_nbytes
