"""Functions by name: the built-ins, ``package.module:function`` and ``file.py:function``.

A function loaded from a file is registered with cloudpickle to travel by value, so that
process and cluster workers, which cannot import the file, still run it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import FunctionLoadError, did_you_mean
from pipeline.ops import terrain_kernels
from pipeline.ops.kernels import USER_MODULE_PREFIX, Kernel

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


class ByValue:
    """A function that pickles by value, whatever pickler is used.

    cloudpickle ships a module registered with ``register_pickle_by_value`` by value, but the
    distributed scheduler tries the standard pickler first, which would send a reference to a
    module the workers cannot import; ``__reduce__`` makes both send the code.
    """

    def __init__(self, func: Callable[..., Any], label: str = "") -> None:
        self.func = func
        functools.update_wrapper(self, func)
        self.pipeline_label = label or getattr(func, "__name__", repr(func))
        """How messages name the function: ``file.py:function``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __reduce__(self) -> tuple[Callable[[bytes, str], ByValue], tuple[bytes, str]]:
        import cloudpickle

        return (_unpickle, (cloudpickle.dumps(self.func), self.pipeline_label))

    def __repr__(self) -> str:
        return f"ByValue({self.func!r})"


def _unpickle(payload: bytes, label: str) -> ByValue:
    import pickle

    return ByValue(pickle.loads(payload), label)  # noqa: S301 - our own payload, from the client


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
    from_file = module_ref.endswith(".py")
    if from_file:
        module = _load_file(Path(module_ref), base_dir)
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as exc:
            msg = (
                f"cannot import module {module_ref!r} for {ref!r}: {exc}; install it, or name "
                "a file instead ('file.py:function')"
            )
            raise FunctionLoadError(msg) from exc
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
    if from_file and not isinstance(func, Kernel):  # a Kernel ships itself by value
        func = ByValue(func, f"{Path(module_ref).name}:{attr}")
    return FunctionSpec(func=func, name=attr)


def _load_file(path: Path, base_dir: Path | None) -> Any:
    """Import a Python file by path, once per resolved path, shipping its code by value."""
    import cloudpickle

    full = (base_dir / path if base_dir and not path.is_absolute() else path).resolve()
    if not full.is_file():
        where = f" (relative to {base_dir})" if base_dir and not path.is_absolute() else ""
        msg = f"function file {path} not found{where}; check the path"
        raise FunctionLoadError(msg)
    digest = hashlib.sha1(str(full).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"{USER_MODULE_PREFIX}{full.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        msg = f"cannot load {full} as Python code"
        raise FunctionLoadError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # No __pycache__ beside a config's file: a run writes nothing outside its output.
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        msg = f"importing {full} failed: {type(exc).__name__}: {exc}"
        raise FunctionLoadError(msg) from exc
    finally:
        sys.dont_write_bytecode = previous
    # Workers cannot import a file by path: send its functions by value instead.
    cloudpickle.register_pickle_by_value(module)
    return module
