"""Functions by name: the built-ins, ``package.module:function`` and ``file.py:function``.

A function loaded from a file travels to process and cluster workers, which cannot import the
file, as a reference into the file's source (:mod:`pipeline.ops.shipping`).
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import FunctionLoadError, did_you_mean
from pipeline.ops import terrain_kernels
from pipeline.ops.kernels import Kernel
from pipeline.ops.shipping import FileFunction, load_file

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BUILTINS", "FunctionSpec", "resolve_function"]


@dataclass(frozen=True)
class FunctionSpec:
    """A function and the defaults a config step gets for it."""

    func: Callable[..., Any]
    """The callable (a block function or a :class:`~pipeline.ops.kernels.Kernel`)."""
    name: str
    """How it was named."""
    dtype: str | None = None
    """Output dtype (``None``: the input's, or the type a kernel returns)."""
    summary: str = ""
    """One line for help texts."""
    params: dict[str, Any] = field(default_factory=dict)
    """Its settings and their defaults."""


def _builtin(func: Callable[..., Any], dtype: str | None = None) -> FunctionSpec:
    target = func.func if isinstance(func, Kernel) else func
    settings = func.settings if isinstance(func, Kernel) and func.settings else target
    doc = (inspect.getdoc(target) or "").split("\n\n", 1)[0].replace("\n", " ")
    params = {
        p.name: p.default
        for p in inspect.signature(settings).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    name = getattr(target, "__name__", "builtin")
    return FunctionSpec(func=func, name=name, dtype=dtype, summary=doc, params=params)


BUILTINS: dict[str, FunctionSpec] = {
    "slope": _builtin(terrain_kernels.slope, "float32"),
    "aspect": _builtin(terrain_kernels.aspect, "float32"),
    "hillshade": _builtin(terrain_kernels.hillshade, "float32"),
    "sky_view": _builtin(terrain_kernels.sky_view, "float32"),
    "square": _builtin(terrain_kernels.square),
}
"""Functions usable by name in a config: compiled per-pixel kernels that know their halo and
boundary."""


def _import(module_ref: str, ref: str, base_dir: Path | None) -> Any:
    """The module of a function reference. Importing runs the user's code, which may change
    the working directory (``os.chdir`` at import): it is put back, so that the config's
    relative paths keep meaning what they meant."""
    cwd = Path.cwd()
    try:
        if module_ref.endswith(".py"):
            return _load_file(Path(module_ref), base_dir)
        try:
            return importlib.import_module(module_ref)
        except ImportError as exc:
            msg = (
                f"cannot import module {module_ref!r} for {ref!r}: {exc}; install it, or name "
                "a file instead ('file.py:function')"
            )
            raise FunctionLoadError(msg) from exc
    finally:
        if Path.cwd() != cwd:
            os.chdir(cwd)


def resolve_function(ref: str, base_dir: Path | None = None) -> FunctionSpec:
    """The function ``ref`` names: a built-in, ``module:function`` or ``file.py:function``
    (relative to ``base_dir``)."""
    ref = ref.strip()
    if ref in BUILTINS:
        return BUILTINS[ref]
    module_ref, sep, attr = ref.rpartition(":")
    if not sep:
        hint = did_you_mean(ref, BUILTINS)
        msg = (
            f"unknown function {ref!r}: {hint}built-ins are {', '.join(sorted(BUILTINS))}; "
            "for your own, write 'package.module:function' or 'file.py:function'"
        )
        raise FunctionLoadError(msg)
    module = _import(module_ref, ref, base_dir)
    func = getattr(module, attr, None)
    if func is None:
        defined = sorted(
            n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
        )
        hint = did_you_mean(attr, defined)
        msg = (
            f"{module_ref} has no function {attr!r}: {hint}it defines "
            f"{', '.join(defined[:12]) or 'no public function'}"
        )
        raise FunctionLoadError(msg)
    if not callable(func):
        msg = f"{ref} is a {type(func).__name__}, not a function"
        raise FunctionLoadError(msg)
    # A Kernel ships itself by value.
    if module_ref.endswith(".py") and not isinstance(func, Kernel):
        func = FileFunction(func, f"{Path(module_ref).name}:{attr}")
    return FunctionSpec(func=func, name=attr)


def _load_file(path: Path, base_dir: Path | None) -> Any:
    """Load a Python file by path; its functions travel to workers as references into its
    source (see :mod:`pipeline.ops.shipping`)."""
    full = (base_dir / path if base_dir and not path.is_absolute() else path).resolve()
    if not full.is_file():
        where = f" (relative to {base_dir})" if base_dir and not path.is_absolute() else ""
        msg = f"function file {path} not found{where}; check the path"
        raise FunctionLoadError(msg)
    try:
        return load_file(full)
    except UnicodeDecodeError as exc:
        msg = f"cannot load {full} as Python code: it is not UTF-8 text ({exc.reason})"
        raise FunctionLoadError(msg) from exc
    except Exception as exc:
        msg = f"importing {full} failed: {type(exc).__name__}: {exc}"
        raise FunctionLoadError(msg) from exc
