"""Per-pixel kernels: a plain Python body for one pixel, compiled with numba, run per block.

Users write the loop body they would have written anyway, and decorate it with
:func:`pointwise` or :func:`neighbourhood`. The kernel is compiled with numba in nopython mode
and ``nogil``, so that the threads of the default scheduler run it in parallel; a generated
loop (`loops`), compiled with it as one unit and cached on disk, calls it for every pixel of a
block's core. The output dtype and channels come from numba's type inference.

Exactness: no ``fastmath``, so each pixel's arithmetic is what its source says, in that order,
and a block gives bit for bit what the whole image gives.
"""

from __future__ import annotations

from pipeline.ops.kernels.block import KernelBlock, warn_uncompiled
from pipeline.ops.kernels.compile import shorten_numba_error
from pipeline.ops.kernels.decorators import neighbourhood, pointwise
from pipeline.ops.kernels.kernel import FINISH_STRIP_BYTES, Kernel, KernelKind, finish_strip_rows

__all__ = [
    "FINISH_STRIP_BYTES",
    "Kernel",
    "KernelBlock",
    "KernelKind",
    "finish_strip_rows",
    "neighbourhood",
    "pointwise",
    "shorten_numba_error",
    "warn_uncompiled",
]
