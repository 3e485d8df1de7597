"""A kernel bound to its settings and output layout, the block function `apply` runs; and the
announcement of a kernel run uncompiled."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import PerformanceWarning
from pipeline.ops.kernels.kernel import Kernel, finish_strip_rows

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from numpy.typing import NDArray

    from pipeline.grid import BlockInfo

__all__ = ["KernelBlock", "warn_uncompiled"]


@dataclass(frozen=True, eq=False)
class KernelBlock:
    """A kernel bound to its settings and output layout: the block function `apply` runs."""

    kernel: Kernel
    """The kernel."""
    params: tuple[Any, ...]
    """Its settings, in order."""
    out_dtype: np.dtype[Any]
    """Output dtype."""
    channels: int | None
    """Output channels (``None``: a 2-D output)."""
    compiled: bool = True
    """False when running the Python function as it is (``uncompiled``)."""
    loop_dtype: np.dtype[Any] | None = None
    """What the per-pixel loop stores before the kernel's ``finish`` (``None``: no finish)."""
    per_row: tuple[int, int] | None = None
    """On a geographic image: where ``cell_size`` and ``cell_size_y`` sit in ``params``,
    replaced row by row with the ground distances between pixel centres on the ellipsoid."""

    def temporary_nbytes(self, shape: tuple[int, int]) -> int:
        """For the memory projection: what a block of ``shape`` holds besides its inputs and
        output. Nothing without ``finish``; with it, one strip of the loop's values and one
        more for what ``finish`` allocates."""
        if self.loop_dtype is None:
            return 0
        values = shape if self.channels is None else (*shape, self.channels)
        rows = min(finish_strip_rows(values, self.loop_dtype), shape[0])
        return 2 * rows * shape[1] * self.loop_dtype.itemsize * (self.channels or 1)

    @property
    def __name__(self) -> str:
        return self.kernel.name

    @property
    def pipeline_label(self) -> str:
        """How messages name the kernel."""
        return self.kernel.pipeline_label

    def __call__(self, *blocks: NDArray[Any], block_info: BlockInfo) -> NDArray[Any]:
        return self.kernel.run(
            *blocks,
            params=self.params,
            info=block_info,
            out_dtype=self.out_dtype,
            channels=self.channels,
            compiled=self.compiled,
            loop_dtype=self.loop_dtype,
            row_params=self._row_params(block_info),
        )

    def _row_params(self, info: BlockInfo) -> Callable[[int], tuple[Any, ...]] | None:
        """The settings of each row of the block (its index from the block's first core row),
        when they change from row to row."""
        if self.per_row is None:
            return None
        from pipeline.grid.crs import ground_spacing

        dx, dy = ground_spacing(info.image_georef, range(info.core.y0, info.core.y1))
        at_x, at_y = self.per_row
        base = list(self.params)

        def params(row: int) -> tuple[Any, ...]:
            base[at_x], base[at_y] = float(dx[row]), float(dy[row])
            return tuple(base)

        return params


def warn_uncompiled(
    kernel: Kernel, reason: str, seconds_per_pixel: float, pixels: int, workers: int
) -> None:
    """Announce a run of the Python function as it is, with its estimated duration."""
    total = seconds_per_pixel * pixels / max(workers, 1)
    warnings.warn(
        f"running {kernel.pipeline_label} uncompiled, as asked, because {reason}: about "
        f"{_duration(total)} for {pixels / 1e6:.1f} megapixels on {workers} processes "
        f"(measured {seconds_per_pixel * 1e6:.0f} us per pixel on a sample); fix the kernel "
        "so that numba compiles it to run it hundreds of times faster",
        PerformanceWarning,
        stacklevel=3,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
