"""The decorators users write kernels with: `pointwise` and `neighbourhood`.

@pipeline.pointwise
def ndvi(nir, red):                     # one pixel's values from aligned inputs
    return (nir - red) / (nir + red)

@pipeline.neighbourhood(radius=64)
def horizon(dem, i, j, cell_size=1.0):  # dem[i + di, j + dj] for |di|, |dj| <= 64
    ...
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import TYPE_CHECKING, Any, overload

from pipeline.errors import ArgumentError
from pipeline.ops.kernels.kernel import FIXED_ARGUMENTS, Coords, Kernel, KernelKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

__all__ = ["neighbourhood", "pointwise"]

_COORDS_NAMES = {False: "", True: ", y, x", "world": ", x, y"}


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
    func: Callable[..., Any], kind: str, coords: Coords, settings: Callable[..., Any] | None
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
    count = len(required) - produced - FIXED_ARGUMENTS[kind] - (2 if coords else 0)
    if count < 1:
        want = "(value, ...)" if kind == "pointwise" else "(image, ..., i, j)"
        msg = (
            f"{getattr(func, '__name__', func)} does not look like a {kind} kernel: it needs "
            f"parameters {want}{_COORDS_NAMES[coords]} before its settings"
        )
        raise ArgumentError(msg)
    return count


@overload
def pointwise(
    func: Callable[..., Any],
    *,
    inputs: int | None = ...,
    coords: Coords = ...,
    uncompiled: bool = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Kernel: ...
@overload
def pointwise(
    func: None = ...,
    *,
    inputs: int | None = ...,
    coords: Coords = ...,
    uncompiled: bool = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
) -> Callable[[Callable[..., Any]], Kernel]: ...
def pointwise(
    func: Callable[..., Any] | None = None,
    *,
    inputs: int | None = None,
    coords: Coords = False,
    uncompiled: bool = False,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
) -> Kernel | Callable[[Callable[..., Any]], Kernel]:
    """Make a per-pixel kernel of a function of one pixel's value(s).

    ``func(v1, [v2, ...], [y, x], *settings)`` receives the values of one pixel in each input
    (and its global row and column with ``coords=True``, or the world ``x, y`` of its centre
    in the image's CRS with ``coords="world"``) and returns a number, or a tuple of
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
    coords: Coords = ...,
    boundary: str | float | None = ...,
    uncompiled: bool = ...,
    settings: Callable[..., tuple[Any, ...]] | None = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
    variants: dict[str, Kernel] | None = ...,
) -> Kernel: ...
@overload
def neighbourhood(
    func: None = ...,
    *,
    radius: int | tuple[int, int] | str,
    inputs: int | None = ...,
    coords: Coords = ...,
    boundary: str | float | None = ...,
    uncompiled: bool = ...,
    settings: Callable[..., tuple[Any, ...]] | None = ...,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = ...,
    variants: dict[str, Kernel] | None = ...,
) -> Callable[[Callable[..., Any]], Kernel]: ...
def neighbourhood(
    func: Callable[..., Any] | None = None,
    *,
    radius: int | tuple[int, int] | str,
    inputs: int | None = None,
    coords: Coords = False,
    boundary: str | float | None = None,
    uncompiled: bool = False,
    settings: Callable[..., tuple[Any, ...]] | None = None,
    finish: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
    variants: dict[str, Kernel] | None = None,
) -> Kernel | Callable[[Callable[..., Any]], Kernel]:
    """Make a per-pixel kernel that reads neighbours up to ``radius`` pixels away.

    ``func(image1, [image2, ...], i, j, [y, x], *settings)`` computes the pixel at row ``i``,
    column ``j`` of the arrays it receives (``y, x``: its global row and column with
    ``coords=True``; ``x, y``: the world coordinates of its centre with ``coords="world"``)
    and may read ``image[i + di, j + dj]`` for ``|di|, |dj| <= radius``. Beyond the image
    edge those pixels follow the boundary mode: with ``"nan"`` they are NaN, with ``"none"``
    the arrays stop at the real image edge (check ``0 <= i + di < image.shape[0]``), so a ray
    stops at the image's edge and never at a block's. ``radius`` may name the setting that
    holds it (``radius="radius"``).

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
            "variants": tuple((variants or {}).items()),
        },
    )
