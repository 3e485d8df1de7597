"""`apply`: run a function over every block of one or more images, with a halo."""

from __future__ import annotations

import dataclasses
import inspect
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.errors import ArgumentError, BoundaryWarning, KernelCompileError
from pipeline.grid import Boundary, ChunkGrid, normalize_depth, unsafe_cast_reason
from pipeline.ops.checks import check_images, check_output_dtype
from pipeline.ops.geometry import cell_size_from, geographic, per_row_spacing, require_transform
from pipeline.ops.kernels import Kernel, KernelBlock, warn_uncompiled
from pipeline.ops.nodes import (
    BLOCK_INFO_KEYWORD,
    Node,
    StepNode,
    accepts_block_info,
    describe_function,
)
from pipeline.ops.program import as_dask, as_node, program_of, to_dask, tokenize
from pipeline.ops.tree import georef_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import dask.array as da
    from numpy.typing import DTypeLike

    from pipeline.grid import BoundaryLike, DepthLike

__all__ = ["apply"]


def apply(
    func: Callable[..., Any],
    *images: Any,
    depth: DepthLike | None = None,
    boundary: BoundaryLike | None = None,
    dtype: DTypeLike | None = None,
    channels: int | Literal["input"] | None = "input",
    **params: Any,
) -> da.Array:
    """Apply ``func`` to every block of ``images``, each block read with a halo of ``depth``.

    Parameters
    ----------
    func
        Called as ``func(block, [block2, ...], **params)`` once per output block. Each block
        holds its core plus ``depth`` pixels on every side, padded beyond the image edge by
        ``boundary``. It returns either the core or an array of the padded shape (which is
        then trimmed). If it has a ``block_info`` parameter, it also receives a
        :class:`~pipeline.BlockInfo` with the block's global window and the image shape.
    *images
        One or more images of the same height and width: arrays from
        :func:`~pipeline.open_image`, other dask arrays, or numpy arrays. Blocks follow the
        chunks of the first image; the others are read window by window to match, whatever
        their own chunking or dtype.
    depth
        Halo width: one int, or ``(dy, dx)``. It may exceed a chunk, not the image. Default:
        0, or a neighbourhood kernel's radius.
    boundary
        What the halo holds beyond the image edge: ``"reflect"`` (default, unless a kernel
        declares its own), ``"mirror"``,
        ``"nearest"``, ``"periodic"``, ``"constant"`` (0) or a number (that constant),
        ``"nan"`` (integer images become floating point), or ``"none"`` (edge blocks arrive
        smaller). See :data:`pipeline.grid.BOUNDARY_MODES`.
    dtype
        dtype of the output; default: that of the first image. Results are cast to it if the
        cast is safe within the same kind (float64 to float32), refused otherwise.
    channels
        Shape of the output's channel axis: ``"input"`` (default) keeps the first image's,
        ``None`` makes a 2-D ``(Y, X)`` output, an int ``k`` a ``(Y, X, k)`` output. Declared,
        never guessed: ``func`` is not called on a dummy array.
    **params
        Passed to ``func`` as keyword arguments.

    ``func`` may also be a per-pixel kernel made with :func:`~pipeline.pointwise` or
    :func:`~pipeline.neighbourhood`: it is compiled with numba, and its output dtype and
    channels follow the type numba infers unless declared here.

    Returns
    -------
    dask.array.Array
        Lazy; one task per block. Computing it, or passing it to :func:`~pipeline.save`,
        runs ``func``. Applying another function to it fuses both into the same tasks.

    Examples
    --------
    >>> import numpy as np, pipeline
    >>> image = np.arange(12.0).reshape(3, 4)
    >>> mean3 = lambda b: sum(b[i : i + 3, j : j + 4] for i in range(3) for j in range(3)) / 9
    >>> pipeline.apply(mean3, image, depth=1, boundary="nearest").shape
    (3, 4)
    """
    if not callable(func):
        msg = f"apply() needs a function first, got {type(func).__name__} {func!r}"
        raise ArgumentError(msg)
    if not images:
        msg = f"apply({describe_function(func)}) needs at least one image after the function"
        raise ArgumentError(msg)
    arrays = check_images([as_dask(image) for image in images])
    first = arrays[0]
    shape2d = (int(first.shape[0]), int(first.shape[1]))
    kernel = func if isinstance(func, Kernel) else None
    if kernel is not None:
        kernel = kernel.variant_for(params)
        depth = kernel.depth(params) if depth is None else depth
        if boundary is None and kernel.boundary is None and kernel.kind == "neighbourhood":
            _warn_default_boundary(kernel, kernel.depth(params))
        boundary = kernel.boundary if boundary is None else boundary
    check_output_dtype(dtype)
    depth_yx = normalize_depth(0 if depth is None else depth, shape2d)
    bound = Boundary.parse("reflect" if boundary is None else boundary)
    for array in arrays:
        bound.check_value(array.dtype)
    compile_seconds = 0.0
    if kernel is not None:
        require_transform(kernel, arrays)
        derived = cell_size_from(kernel, arrays, params)
        params = {**derived, **params}
        func, dtype, channels, compile_seconds = _bind_kernel(
            kernel,
            arrays,
            bound=bound,
            depth=depth_yx,
            dtype=dtype,
            channels=channels,
            params=params,
        )
        if derived and geographic(arrays):  # ground distances change with latitude
            func = dataclasses.replace(func, per_row=per_row_spacing(kernel))
        params = {}
    out_dtype = np.dtype(first.dtype if dtype is None else dtype)
    out_shape = _output_shape(shape2d, first.shape, channels)
    wants_info = accepts_block_info(func, len(arrays))
    _check_params(func, len(arrays), params, wants_info)

    nodes: list[Node] = []
    collections: list[Any] = []
    for array in arrays:
        node, deps = as_node(array)
        nodes.append(node)
        collections.extend(deps)
    label = describe_function(func)
    step_token = tokenize(func, params, depth_yx, str(bound), out_dtype.str, out_shape)
    root = StepNode(
        func=func,
        inputs=tuple(nodes),
        depth=depth_yx,
        boundary=bound,
        dtype=out_dtype,
        shape=out_shape,
        params=dict(params),
        block_info=wants_info,
        label=label,
        step_token=step_token,
        gil_bound=isinstance(func, KernelBlock) and not func.compiled,
        compile_seconds=compile_seconds,
    )
    # Inputs on different grids are refused here, before anything runs.
    # A function's values are not in its input's unit.
    root = dataclasses.replace(root, georef=dataclasses.replace(georef_of(root), z_unit=None))
    grid = ChunkGrid.from_dask(first.chunks)
    short = str(getattr(func, "__name__", "apply")).replace("<", "").replace(">", "")
    name = f"{short}-{tokenize(root.token, grid)}"
    unique = {id(c): c for c in collections}
    inherited = program_of(first)
    auto = inherited is not None and inherited.auto_grid
    return to_dask(root, grid, name, tuple(unique.values()), auto_grid=auto)


def _bind_kernel(
    kernel: Kernel,
    arrays: list[da.Array],
    *,
    bound: Boundary,
    depth: tuple[int, int],
    dtype: DTypeLike | None,
    channels: int | Literal["input"] | None,
    params: dict[str, Any],
) -> tuple[KernelBlock, np.dtype[Any], int | None, float]:
    """Compile ``kernel`` for these inputs (or, if it cannot be and the user asked for it,
    prepare to run it uncompiled); return the block function, dtype, channels and compile
    time."""
    if len(arrays) != kernel.n_inputs:
        msg = (
            f"kernel {kernel.pipeline_label} reads {kernel.n_inputs} image(s) but apply() got "
            f"{len(arrays)}{_coords_hint(kernel, len(arrays))}"
        )
        raise ArgumentError(msg)
    values = kernel.ordered_params(params)
    padded = [bound.padded_dtype(a.dtype) for a in arrays]
    try:
        inferred, inferred_channels, seconds = kernel.prepare(padded, values)
    except KernelCompileError as exc:
        if not kernel.uncompiled:
            msg = (
                f"{exc}; fix the kernel, or pass uncompiled=True to its decorator to run it "
                "as plain Python in processes (hundreds of times slower)"
            )
            raise KernelCompileError(msg) from exc
        out = np.dtype("float64" if dtype is None else dtype)
        chans = None if channels in ("input", None) else int(channels)
        why = str(exc).split(": ", 1)[-1]
        return _uncompiled(kernel, values, out, chans, why=why, where=(arrays, bound, depth))
    if kernel.uncompiled:  # asked for: the Python body runs, although numba compiles it
        out = inferred if dtype is None else np.dtype(dtype)
        why = (
            "uncompiled=True was given, although numba compiles it (drop uncompiled=True to "
            "run it compiled, hundreds of times faster)"
        )
        where = (arrays, bound, depth)
        return _uncompiled(kernel, values, out, inferred_channels, why=why, where=where)
    out_dtype = inferred if dtype is None else np.dtype(dtype)
    reason = unsafe_cast_reason(inferred, out_dtype)
    if reason:
        msg = (
            f"kernel {kernel.pipeline_label} returns {inferred} but dtype={out_dtype} was "
            f"declared: {reason}"
        )
        raise ArgumentError(msg)
    if channels not in ("input", inferred_channels):
        msg = (
            f"kernel {kernel.pipeline_label} returns "
            f"{inferred_channels or 1} value(s) per pixel but channels={channels!r} was "
            "declared; return a tuple of that many values, or drop channels="
        )
        raise ArgumentError(msg)
    loop_dtype = inferred if kernel.finish else None  # finish casts to out_dtype
    seconds += kernel.compile_loop(
        padded, values, loop_dtype or out_dtype, inferred_channels, depth
    )
    block = KernelBlock(kernel, values, out_dtype, inferred_channels, loop_dtype=loop_dtype)
    return block, out_dtype, inferred_channels, seconds


def _announce_uncompiled(
    block: KernelBlock,
    arrays: list[da.Array],
    bound: Boundary,
    depth: tuple[int, int],
    reason: str,
) -> None:
    """Time the Python function on a small sample at the image centre; warn with the total."""
    from pipeline.grid import BlockInfo, Window, padded_read
    from pipeline.machine import default_workers
    from pipeline.ops.program import compute_window

    height, width = (int(n) for n in arrays[0].shape[:2])
    cy, cx = height // 2, width // 2
    core = Window(cy, min(cy + 8, height), cx, min(cx + 8, width))
    samples = []
    covered = core
    for array in arrays:
        sample, covered = padded_read(
            lambda w, a=array: compute_window(a, w),  # type: ignore[misc]
            core.pad(depth),
            (height, width),
            bound,
            array.dtype,
        )
        samples.append(sample)
    info = BlockInfo(core, covered, (height, width), depth, str(bound))
    start = time.perf_counter()
    block(*samples, block_info=info)
    per_pixel = (time.perf_counter() - start) / core.size
    warn_uncompiled(block.kernel, reason, per_pixel, height * width, default_workers())


def _output_shape(
    shape2d: tuple[int, int],
    first_shape: tuple[int, ...],
    channels: int | Literal["input"] | None,
) -> tuple[int, ...]:
    if isinstance(channels, str):
        if channels != "input":
            msg = f"channels={channels!r}: use 'input', None (2-D output) or a channel count"
            raise ArgumentError(msg)
        return (*shape2d, *first_shape[2:])
    if channels is None:
        return shape2d
    if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool) and channels > 0:
        return (*shape2d, int(channels))
    msg = f"channels={channels!r}: use 'input', None (2-D output) or a positive channel count"
    raise ArgumentError(msg)


def _warn_default_boundary(kernel: Kernel, depth: tuple[int, int]) -> None:
    """A loop over the whole image sees its real edge; a kernel, by default, a mirrored one.
    Reading past the edge under ``"none"`` is not checked (numba wraps negative indices and
    does not bound-check), so ``"none"`` cannot be the default: the choice is the user's."""
    warnings.warn(
        f"kernel {kernel.pipeline_label} reads up to {max(depth)} pixel(s) beyond the image "
        "edge, which the default boundary 'reflect' fills by mirroring the image (dcba|abcd); "
        "a loop over the whole image sees its real edge instead. Declare the boundary in the "
        "decorator (or apply(), or the config step): boundary='none' if the kernel checks "
        "0 <= i + di < z.shape[0] itself, as such a loop does, or 'reflect', 'nearest', "
        "'nan', ... to keep a padded edge",
        BoundaryWarning,
        stacklevel=3,
    )


def _uncompiled(
    kernel: Kernel,
    values: tuple[Any, ...],
    out: np.dtype[Any],
    channels: int | None,
    *,
    why: str,
    where: tuple[list[da.Array], Boundary, tuple[int, int]],
) -> tuple[KernelBlock, np.dtype[Any], int | None, float]:
    """The kernel's Python body as the block function (it runs in processes), announced with
    an estimate of its time on the images, boundary and halo ``where`` says."""
    loop = np.dtype("float64") if kernel.finish else None
    block = KernelBlock(kernel, values, out, channels, compiled=False, loop_dtype=loop)
    _announce_uncompiled(block, *where, why)
    return block, out, channels, 0.0


_COORDINATE_NAMES = {"y", "x", "row", "col", "column", "lat", "lon", "yy", "xx"}


def _coords_hint(kernel: Kernel, given: int) -> str:
    """Why a kernel may count more images than given: coordinates without ``coords=True``."""
    names = list(inspect.signature(kernel.func).parameters)[given : kernel.n_inputs]
    if kernel.coords or not names or not set(names) & _COORDINATE_NAMES:
        return ""
    return (
        f"; if {', '.join(names)} are the pixel's coordinates, pass coords=True to its "
        "decorator (without it they are read as images)"
    )


def _check_params(
    func: Callable[..., Any], n_images: int, params: dict[str, Any], wants_info: bool
) -> None:
    """Fail now, not in the first task, when ``func`` cannot take these arguments."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    extra = {BLOCK_INFO_KEYWORD: None} if wants_info else {}
    try:
        signature.bind(*([None] * n_images), **params, **extra)
    except TypeError as exc:
        hint = ""
        if {"i", "j"} <= set(signature.parameters):
            hint = (
                "; it takes i, j as a per-pixel function does: make it a kernel, with "
                "@pipeline.neighbourhood(radius=...) in Python or kind: neighbourhood and "
                "radius: in a config step (kind: pointwise for a function of one pixel's values)"
            )
        msg = (
            f"{describe_function(func)}{signature} cannot be called with {n_images} image(s) "
            f"and parameters {sorted(params)}: {exc}{hint}"
        )
        raise ArgumentError(msg) from exc
