"""`Kernel`: a plain Python body for one pixel, compiled with numba, run over a block.

Built by the decorators of `pipeline.ops.kernels.decorators`; `apply` binds it to its settings
and output layout (:class:`~pipeline.ops.kernels.block.KernelBlock`). Nothing is guessed by
running the kernel: the output dtype and the number of output channels come from numba's type
inference (a tuple of k values gives k channels).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.errors import ArgumentError, KernelCompileError
from pipeline.ops.kernels.compile import (
    as_numba_value,
    dispatcher_of,
    is_numba_error,
    output_layout,
    shorten_numba_error,
    typeof,
)
from pipeline.ops.kernels.loops import Loop, LoopKey, code_identity, loop_for, probe_for
from pipeline.ops.shipping import shippable

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from pipeline.grid import BlockInfo

__all__ = [
    "FINISH_STRIP_BYTES",
    "FIXED_ARGUMENTS",
    "Kernel",
    "KernelKind",
    "finish_strip_rows",
]

KernelKind = Literal["pointwise", "neighbourhood"]
Coords = bool | Literal["world"]
"""What a kernel receives after its values or position: nothing, ``True`` the pixel's global
``(y, x)``, ``"world"`` the world ``(x, y)`` of its centre from the image's transform."""

FIXED_ARGUMENTS = {"pointwise": 0, "neighbourhood": 2}
"""Arguments a kernel takes after its images: ``i, j`` for a neighbourhood kernel."""
Depth = tuple[int, int]


@dataclass(frozen=True, eq=False)
class Kernel:
    """A per-pixel function and how to run it; use it wherever `apply` takes a function.

    Build one with :func:`pointwise` or :func:`neighbourhood`.
    """

    func: Callable[..., Any]
    """The Python function for one pixel."""
    kind: KernelKind
    """``pointwise`` (values in, values out) or ``neighbourhood`` (arrays and a position)."""
    n_inputs: int
    """Images it reads."""
    radius: int | tuple[int, int] | str = 0
    """How far a neighbourhood kernel reads: pixels, ``(dy, dx)``, or the name of the
    parameter that holds it (``"radius"``); it becomes the halo."""
    coords: Coords = False
    """Pass the pixel's global ``(y, x)`` after the values (pointwise) or ``(i, j)``; with
    ``"world"``, the world ``(x, y)`` of its centre, in the image's CRS."""
    boundary: str | float | None = None
    """Boundary mode that suits the kernel (for ``apply``'s default)."""
    uncompiled: bool = False
    """Run the Python function as it is, in processes, when numba cannot compile it (slow;
    only if asked; announced with an estimate)."""
    settings: Callable[..., tuple[Any, ...]] | None = None
    """Turns the settings a user gives (this function's parameters) into the values the
    kernel takes after its fixed arguments: tables computed once per block instead of once
    per pixel. ``None``: the kernel's own trailing parameters are the settings."""
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = None
    """An elementwise numpy function applied to the kernel's values (a strip of rows of a
    block at a time, see ``FINISH_STRIP_BYTES``), for the work numpy does faster over an array
    than numba pixel by pixel (``arctan``, ``exp``, ``sin``: numpy's are vectorised, numba's
    per-pixel calls to libm are not). It must keep each pixel's value a function of that
    pixel's value alone, which keeps blocks exact. It may work in place."""
    variants: tuple[tuple[str, Kernel], ...] = ()
    """``(setting, kernel)`` pairs: the kernel that runs in this one's place when the boolean
    setting is true, compiled on its own so that a rarely used mode (a branch in the loop)
    costs the usual one nothing (see :meth:`variant_for`)."""
    name: str = ""
    """How messages name it."""
    token: str = field(default="", repr=False)
    """Identity, so that each process compiles a kernel once however often it is unpickled."""
    identity: str = field(default="", repr=False)
    """What its compiled code depends on (:func:`~pipeline.ops.kernels.loops.code_identity`), worked
    out where it was defined: the key of its compiled loop in the on-disk cache."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", getattr(self.func, "__name__", "kernel"))
        if not self.token:
            from pipeline.ops.program import tokenize

            object.__setattr__(
                self, "token", tokenize(self.func, self.kind, self.coords, self.finish)
            )
        if not self.identity:
            object.__setattr__(self, "identity", code_identity(self.func))

    @property
    def __name__(self) -> str:
        return self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The plain Python function, for one pixel (as it was before decorating)."""
        return self.func(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # cloudpickle, even where the distributed scheduler pickles with the standard pickler
        # first; the user's functions so that a worker shows their file and lines.
        import cloudpickle

        state = {f: shippable(getattr(self, f)) for f in self.__dataclass_fields__}
        return (_restore_kernel, (cloudpickle.dumps(state),))

    def variant_for(self, params: dict[str, Any]) -> Kernel:
        """The kernel to run for these settings: a variant whose setting is true, named as
        this one, or this one."""
        for setting, variant in self.variants:
            if params.get(setting):
                return replace(variant, name=self.name)
        return self

    @property
    def pipeline_label(self) -> str:
        """How messages name the kernel."""
        return str(getattr(self.func, "pipeline_label", self.name))

    # ------------------------------------------------------------------ parameters

    def parameter_names(self) -> list[str]:
        """Names of the settings: the kernel's own parameters (after images, position and
        coordinates), or those of its ``settings`` function."""
        if self.settings is not None:
            return list(inspect.signature(self.settings).parameters)
        skip = self.n_inputs + FIXED_ARGUMENTS[self.kind] + (2 if self.coords else 0)
        return list(inspect.signature(self.func).parameters)[skip:]

    def setting_values(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every setting by name, defaults filled in; unknown or missing ones refused."""
        signature = inspect.signature(self.settings or self.func)
        names = self.parameter_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            msg = (
                f"kernel {self.pipeline_label} has no parameter {unknown[0]!r}; its parameters "
                f"are {', '.join(names) or 'none'}"
            )
            raise ArgumentError(msg)
        values = {}
        for name in names:
            default = signature.parameters[name].default
            if name in params:
                values[name] = params[name]
            elif default is not inspect.Parameter.empty:
                values[name] = default
            else:
                msg = f"kernel {self.pipeline_label} needs the parameter {name!r}"
                raise ArgumentError(msg)
        return values

    def ordered_params(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """What the kernel takes after its fixed arguments, for these settings."""
        values = self.setting_values(params)
        if self.settings is not None:
            return tuple(self.settings(**values))
        return tuple(as_numba_value(v) for v in values.values())

    def depth(self, params: dict[str, Any]) -> tuple[int, int]:
        """The halo the kernel needs with these settings."""
        radius: Any = self.radius
        if isinstance(radius, str):
            radius = self.setting_values(params)[radius]
        if isinstance(radius, (int, np.integer)):
            return (int(radius), int(radius))
        return (int(radius[0]), int(radius[1]))

    # ------------------------------------------------------------------ compiling

    def prepare(
        self, dtypes: list[np.dtype[Any]], params: tuple[Any, ...]
    ) -> tuple[np.dtype[Any], int | None, float]:
        """Compile for these input dtypes and parameters; return the output dtype, the number
        of channels (``None`` for one value) and the compile time in seconds.

        Raises :class:`KernelCompileError` with numba's reason, shortened, when the kernel
        cannot be compiled and ``uncompiled`` was not asked for.
        """
        from numba import types

        start = time.perf_counter()
        try:
            dispatcher = self._dispatcher()
            arrays = [np.empty((1, 1), dtype=kernel_dtype(d)) for d in dtypes]
            if self.kind == "pointwise":
                args: list[Any] = [typeof(a[0, 0]) for a in arrays]
            else:
                args = [typeof(a) for a in arrays] + [types.intp, types.intp]
            if self.coords:
                kind = types.float64 if self.coords == "world" else types.intp
                args += [kind, kind]
            args += [typeof(p) for p in params]
            probe = probe_for(dispatcher, self.identity, len(args))
            probe.compile(tuple(args))
            result_type = probe.overloads[tuple(args)].signature.return_type
        except Exception as exc:
            if not is_numba_error(exc):
                raise
            msg = f"numba cannot compile {self.pipeline_label}: {shorten_numba_error(exc)}"
            raise KernelCompileError(msg) from exc
        out_dtype, channels = output_layout(result_type, self.pipeline_label)
        return out_dtype, channels, time.perf_counter() - start

    def compile_loop(
        self,
        dtypes: list[np.dtype[Any]],
        params: tuple[Any, ...],
        out_dtype: np.dtype[Any],
        channels: int | None,
        depth: Depth,
    ) -> float:
        """Compile the per-pixel loop for the final output layout and halo, so that a
        threaded run compiles nothing; returns the seconds it took."""
        from numba import types

        start = time.perf_counter()
        loop = self._loop(self._loop_key(len(dtypes), channels, True, len(params), depth))
        out = np.empty((1, 1) if channels is None else (1, 1, channels), dtype=out_dtype)
        kernel = (typeof(self._dispatcher()),) if loop.takes_kernel else ()
        loop.function.compile(
            (
                *kernel,
                *(typeof(np.empty((1, 1), dtype=kernel_dtype(d))) for d in dtypes),
                typeof(out),
                *([types.intp] * 4),
                typeof((*params, *self._world_transform(None))),
            )
        )
        return time.perf_counter() - start

    def _loop_key(
        self, n_inputs: int, channels: int | None, compiled: bool, n_params: int, depth: Depth
    ) -> LoopKey:
        return LoopKey(
            self.kind, n_inputs, channels or 0, self.coords, compiled, n_params, int(depth[1])
        )

    def _loop(self, key: LoopKey) -> Loop:
        """The per-pixel loop for ``key``, compiled with this kernel where it can be."""
        return loop_for(key, self._dispatcher() if key.compiled else self.func, self.identity)

    def _dispatcher(self) -> Any:
        return dispatcher_of(self.func, self.token)

    def _world_transform(self, info: BlockInfo | None) -> tuple[float, ...]:
        """What the loop takes after the settings: the image's affine transform for world
        coordinates (placeholders without ``info``), else nothing."""
        if self.coords != "world":
            return ()
        if info is None:
            return (0.0,) * 6
        transform = info.image_georef.transform
        if transform is None:
            msg = (
                f"kernel {self.pipeline_label} takes world coordinates (coords='world') but "
                "the image has no georeferencing (no CRS and transform); give it a "
                "georeferenced image, or use coords=True for pixel coordinates"
            )
            raise ArgumentError(msg)
        return tuple(float(v) for v in transform)

    # ------------------------------------------------------------------ running

    def run(
        self,
        *blocks: NDArray[Any],
        params: tuple[Any, ...],
        info: BlockInfo,
        out_dtype: np.dtype[Any],
        channels: int | None,
        compiled: bool = True,
        loop_dtype: np.dtype[Any] | None = None,
        row_params: Callable[[int], tuple[Any, ...]] | None = None,
    ) -> NDArray[Any]:
        """Evaluate the kernel on every core pixel of one block.

        With ``finish``, the loop's values (``loop_dtype``) are made and finished a strip of
        rows at a time (see :func:`finish_strip_rows`), each strip written into the output.
        With ``row_params``, each row runs with its own settings (``row_params(row)``, row
        counted from the block's first core row).
        """
        for block in blocks:
            if block.ndim != 2:
                msg = (
                    f"kernel {self.pipeline_label} reads 2-D images; got a block of shape "
                    f"{block.shape}: give each channel as its own input"
                )
                raise ArgumentError(msg)
        top, _, left, _ = info.halo
        shape = info.core.shape if channels is None else (*info.core.shape, channels)
        loop = self._loop(self._loop_key(len(blocks), channels, compiled, len(params), info.depth))
        kernel = self._dispatcher() if compiled else self.func
        world = self._world_transform(info)
        arrays = [np.ascontiguousarray(b, dtype=kernel_dtype(b.dtype)) for b in blocks]
        y0, x0 = info.core.y0, info.core.x0
        out = np.empty(shape, dtype=out_dtype)

        def fill(values: NDArray[Any], start: int) -> None:
            """The loop's values of rows ``start`` on, as many as ``values`` holds."""
            if row_params is None:
                at = (top + start, left, y0 + start, x0, (*params, *world))
                loop(kernel, *arrays, values, *at)
                return
            for r in range(values.shape[0]):
                row = start + r
                at = (top + row, left, y0 + row, x0, (*row_params(row), *world))
                loop(kernel, *arrays, values[r : r + 1], *at)

        if self.finish is None:
            fill(out, 0)
            return out
        values_dtype = out_dtype if loop_dtype is None else loop_dtype
        rows = finish_strip_rows(shape, values_dtype)
        values = np.empty((min(rows, shape[0]), *shape[1:]), dtype=values_dtype)
        for start in range(0, shape[0], rows):
            strip = values[: min(rows, shape[0] - start)]
            fill(strip, start)
            finished = np.asarray(self.finish(strip))
            if finished.shape != strip.shape:
                msg = (
                    f"finish of kernel {self.pipeline_label} returned shape {finished.shape} "
                    f"for values of shape {strip.shape}; it must be elementwise"
                )
                raise ArgumentError(msg)
            out[start : start + strip.shape[0]] = finished  # cast as astype(out_dtype) would
        return out


FINISH_STRIP_BYTES = 2**20
"""A kernel's values pass through ``finish`` in strips of rows of about this size, which stay
in the CPU's cache between the loop that makes them and ``finish``; a block-sized array of
float64 values would be a large fresh allocation per block (page faults) and a pass through
main memory."""


def kernel_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """What a kernel reads pixels of ``dtype`` as: float16 as float32 (numba has no float16;
    every float16 value is exactly a float32), anything else as it is."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def finish_strip_rows(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    """Rows per strip of a kernel's values of ``shape`` and ``dtype`` (at least one)."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    return max(1, FINISH_STRIP_BYTES // max(row_bytes, 1))


def _restore_kernel(payload: bytes) -> Kernel:
    import pickle

    return Kernel(**pickle.loads(payload))  # noqa: S301 - from our own client
