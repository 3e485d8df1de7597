"""Per-pixel kernels: a plain Python body for one pixel, compiled with numba, run per block.

Users write the loop body they would have written anyway::

    @pipeline.pointwise
    def ndvi(nir, red):                     # one pixel's values from aligned inputs
        return (nir - red) / (nir + red)

    @pipeline.neighbourhood(radius=64)
    def horizon(dem, i, j, cell_size=1.0):  # dem[i + di, j + dj] for |di|, |dj| <= 64
        ...

The kernel is compiled with numba in nopython mode and ``nogil``, so that the threads of the
default scheduler run it in parallel; a small generated loop calls it for every pixel of a
block's core. Nothing is guessed by running the kernel: the output dtype and the number of
output channels come from numba's type inference (a tuple of k values gives k channels).

Exactness: no ``fastmath``, so each pixel's arithmetic is what its source says, in that order,
and a block gives bit for bit what the whole image gives.
"""

from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from pipeline.errors import ArgumentError, KernelCompileError, PerformanceWarning
from pipeline.ops.loops import Loop, LoopKey, code_identity, loop_for, probe_for
from pipeline.ops.shipping import shippable

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from pipeline.grid import BlockInfo

__all__ = ["Kernel", "KernelBlock", "KernelKind", "neighbourhood", "pointwise", "warn_uncompiled"]

KernelKind = Literal["pointwise", "neighbourhood"]

_FIXED = {"pointwise": 0, "neighbourhood": 2}  # (i, j) after the arrays
Depth = tuple[int, int]
_COMPILED: dict[str, Any] = {}


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
    coords: bool = False
    """Pass the pixel's global ``(y, x)`` after the values (pointwise) or ``(i, j)``."""
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
    name: str = ""
    """How messages name it."""
    token: str = field(default="", repr=False)
    """Identity, so that each process compiles a kernel once however often it is unpickled."""
    identity: str = field(default="", repr=False)
    """What its compiled code depends on (:func:`~pipeline.ops.loops.code_identity`), worked
    out where it was defined: the key of its compiled loop in the on-disk cache."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", getattr(self.func, "__name__", "kernel"))
        if not self.token:
            from pipeline.ops.graph import tokenize

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
        skip = self.n_inputs + _FIXED[self.kind] + (2 if self.coords else 0)
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
        return tuple(_as_numba_value(v) for v in values.values())

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
            arrays = [np.empty((1, 1), dtype=d) for d in dtypes]
            if self.kind == "pointwise":
                args: list[Any] = [_typeof(a[0, 0]) for a in arrays]
            else:
                args = [_typeof(a) for a in arrays] + [types.intp, types.intp]
            if self.coords:
                args += [types.intp, types.intp]
            args += [_typeof(p) for p in params]
            probe = probe_for(dispatcher, self.identity, len(args))
            probe.compile(tuple(args))
            result_type = probe.overloads[tuple(args)].signature.return_type
        except Exception as exc:
            if not _is_numba_error(exc):
                raise
            msg = f"numba cannot compile {self.pipeline_label}: {shorten_numba_error(exc)}"
            raise KernelCompileError(msg) from exc
        out_dtype, channels = _output_layout(result_type, self.pipeline_label)
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
        kernel = (_typeof(self._dispatcher()),) if loop.takes_kernel else ()
        loop.function.compile(
            (
                *kernel,
                *(_typeof(np.empty((1, 1), dtype=d)) for d in dtypes),
                _typeof(out),
                *([types.intp] * 4),
                _typeof(params),
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
        dispatcher = _COMPILED.get(self.token)
        if dispatcher is None:
            import numba

            # Not numba's cache=True (see probe_for): the kernel is cached inside its probe
            # and its loops, under an identity that covers the globals it reads.
            dispatcher = numba.njit(nogil=True, error_model="numpy")(self.func)
            _COMPILED[self.token] = dispatcher
        return dispatcher

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
    ) -> NDArray[Any]:
        """Evaluate the kernel on every core pixel of one block.

        With ``finish``, the loop's values (``loop_dtype``) are made and finished a strip of
        rows at a time (see :func:`finish_strip_rows`), each strip written into the output.
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
        arrays = [np.ascontiguousarray(b) for b in blocks]
        y0, x0 = info.core.y0, info.core.x0
        out = np.empty(shape, dtype=out_dtype)
        if self.finish is None:
            loop(kernel, *arrays, out, top, left, y0, x0, params)
            return out
        values_dtype = out_dtype if loop_dtype is None else loop_dtype
        rows = finish_strip_rows(shape, values_dtype)
        values = np.empty((min(rows, shape[0]), *shape[1:]), dtype=values_dtype)
        for start in range(0, shape[0], rows):
            strip = values[: min(rows, shape[0] - start)]
            loop(kernel, *arrays, strip, top + start, left, y0 + start, x0, params)
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


def finish_strip_rows(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    """Rows per strip of a kernel's values of ``shape`` and ``dtype`` (at least one)."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    return max(1, FINISH_STRIP_BYTES // max(row_bytes, 1))


def _restore_kernel(payload: bytes) -> Kernel:
    import pickle

    return Kernel(**pickle.loads(payload))  # noqa: S301 - from our own client


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
        )


def _typeof(value: Any) -> Any:
    import numba

    return numba.typeof(value)


def _as_numba_value(value: Any) -> Any:
    """Lists from YAML become tuples (numba cannot take reflected lists of mixed use)."""
    if isinstance(value, list):
        return tuple(_as_numba_value(v) for v in value)
    return value


def _is_numba_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("numba")


def shorten_numba_error(exc: BaseException) -> str:
    """numba's message without its pipeline stages: the reason and the line of the kernel."""
    lines = [line.rstrip() for line in str(exc).splitlines()]
    reason = [
        line
        for line in lines
        if line
        and not line.startswith(("Failed in ", "During: ", "File ", "    ", "def ", "<source"))
        and not line.lstrip().startswith("^")
    ]
    where = ""
    for k, line in enumerate(lines):
        if line.startswith("File "):
            location = line.removeprefix("File ").rstrip(":").replace('"', "")
            # numba prints the function's first line, maybe an elision, the failing line,
            # and a caret under it: the failing line is the one above the caret.
            caret = next(
                (n for n in range(k + 1, min(k + 8, len(lines))) if lines[n].strip() == "^"),
                None,
            )
            code = lines[caret - 1].strip() if caret is not None else ""
            where = f" ({location}: {code})" if code else f" ({location})"
            break
    text = "; ".join(dict.fromkeys(reason)) or type(exc).__name__
    return text + where


def _output_layout(result: Any, label: str) -> tuple[np.dtype[Any], int | None]:
    """The output dtype and channel count from the type numba inferred for the result."""
    from numba import types
    from numba.np.numpy_support import as_dtype

    if isinstance(result, types.UniTuple):
        return np.dtype(as_dtype(result.dtype)), result.count
    if isinstance(result, (types.Tuple, types.BaseTuple)):
        msg = (
            f"kernel {label} returns values of different types {result}; return values of "
            "one type (convert them with float(...))"
        )
        raise KernelCompileError(msg)
    try:
        return np.dtype(as_dtype(result)), None
    except Exception as exc:
        msg = f"kernel {label} returns {result}; return a number or a tuple of numbers"
        raise KernelCompileError(msg) from exc


def _make(
    func: Callable[..., Any] | None,
    kind: KernelKind,
    options: dict[str, Any],
) -> Kernel | Callable[[Callable[..., Any]], Kernel]:
    def wrap(f: Callable[..., Any]) -> Kernel:
        if isinstance(f, Kernel):
            return replace(f, kind=kind, **options)
        n_inputs = options.pop("inputs", None)
        if n_inputs is None:
            n_inputs = _count_inputs(f, kind, options.get("coords", False), options.get("settings"))
        kernel = Kernel(func=f, kind=kind, n_inputs=n_inputs, **options)
        radius = options.get("radius")
        if isinstance(radius, str) and radius not in kernel.parameter_names():
            settings = ", ".join(kernel.parameter_names()) or "none"
            msg = (
                f"radius={radius!r} names no setting of kernel {kernel.name} (its settings: "
                f"{settings}); give radius the number of pixels it reads, or the name of the "
                "setting that holds it"
            )
            raise ArgumentError(msg)
        return kernel

    return wrap if func is None else wrap(func)


def _count_inputs(
    func: Callable[..., Any], kind: str, coords: bool, settings: Callable[..., Any] | None
) -> int:
    """Images a kernel reads: its leading parameters without defaults, before ``i, j`` and
    ``y, x``; a parameter with a default is a setting. With a ``settings`` function, its
    parameters are the settings and the kernel's last ones take what it returns."""
    params = list(inspect.signature(func).parameters.values())
    required = [p for p in params if p.default is inspect.Parameter.empty]
    produced = 0
    if settings is not None:
        # A pure function of the settings, so calling it with their defaults is harmless.
        try:
            produced = len(settings())
        except TypeError as exc:
            msg = (
                f"give inputs= to the decorator of {getattr(func, '__name__', func)}: its "
                f"settings function needs arguments to say how many values it returns ({exc})"
            )
            raise ArgumentError(msg) from exc
    count = len(required) - produced - _FIXED[kind] - (2 if coords else 0)
    if count < 1:
        want = "(value, ...)" if kind == "pointwise" else "(image, ..., i, j)"
        msg = (
            f"{getattr(func, '__name__', func)} does not look like a {kind} kernel: it needs "
            f"parameters {want}{', y, x' if coords else ''} before its settings"
        )
        raise ArgumentError(msg)
    return count


@overload
def pointwise(
    func: Callable[..., Any],
    *,
    inputs: int | None = ...,
    coords: bool = ...,
    uncompiled: bool = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Kernel: ...
@overload
def pointwise(
    func: None = ...,
    *,
    inputs: int | None = ...,
    coords: bool = ...,
    uncompiled: bool = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Callable[[Callable[..., Any]], Kernel]: ...
def pointwise(
    func: Callable[..., Any] | None = None,
    *,
    inputs: int | None = None,
    coords: bool = False,
    uncompiled: bool = False,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
) -> Kernel | Callable[[Callable[..., Any]], Kernel]:
    """Make a per-pixel kernel of a function of one pixel's value(s).

    ``func(v1, [v2, ...], [y, x], *settings)`` receives the values of one pixel in each input
    (and its global row and column with ``coords=True``) and returns a number, or a tuple of
    numbers that become the output's channels. Settings are its parameters with defaults,
    given to :func:`~pipeline.apply` as keywords. Use as ``@pointwise`` or
    ``@pointwise(coords=True)``. ``finish``: see :func:`neighbourhood`.
    """
    return _make(
        func,
        "pointwise",
        {"inputs": inputs, "coords": coords, "uncompiled": uncompiled, "finish": finish},
    )


@overload
def neighbourhood(
    func: Callable[..., Any],
    *,
    radius: int | tuple[int, int] | str,
    inputs: int | None = ...,
    coords: bool = ...,
    boundary: str | float | None = ...,
    uncompiled: bool = ...,
    settings: Callable[..., tuple[Any, ...]] | None = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Kernel: ...
@overload
def neighbourhood(
    func: None = ...,
    *,
    radius: int | tuple[int, int] | str,
    inputs: int | None = ...,
    coords: bool = ...,
    boundary: str | float | None = ...,
    uncompiled: bool = ...,
    settings: Callable[..., tuple[Any, ...]] | None = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Callable[[Callable[..., Any]], Kernel]: ...
def neighbourhood(
    func: Callable[..., Any] | None = None,
    *,
    radius: int | tuple[int, int] | str,
    inputs: int | None = None,
    coords: bool = False,
    boundary: str | float | None = None,
    uncompiled: bool = False,
    settings: Callable[..., tuple[Any, ...]] | None = None,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
) -> Kernel | Callable[[Callable[..., Any]], Kernel]:
    """Make a per-pixel kernel that reads neighbours up to ``radius`` pixels away.

    ``func(image1, [image2, ...], i, j, [y, x], *settings)`` computes the pixel at row ``i``,
    column ``j`` of the arrays it receives and may read ``image[i + di, j + dj]`` for
    ``|di|, |dj| <= radius``. Beyond the image edge those pixels follow the boundary mode: with
    ``"nan"`` they are NaN, with ``"none"`` the arrays stop at the real image edge (check
    ``0 <= i + di < image.shape[0]``), so a ray stops at the image's edge and never at a
    block's. ``radius`` may name the setting that holds it (``radius="radius"``).

    ``settings``, a function whose parameters become the kernel's settings, computes once per
    block what the kernel would otherwise recompute at every pixel (a table of ray offsets,
    say); the kernel's last parameters receive the tuple it returns.
    """
    return _make(
        func,
        "neighbourhood",
        {
            "inputs": inputs,
            "radius": radius,
            "coords": coords,
            "boundary": boundary,
            "uncompiled": uncompiled,
            "settings": settings,
            "finish": finish,
        },
    )


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
