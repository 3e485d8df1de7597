"""numba for kernels: one dispatcher per kernel and process, types of values, and numba's
errors shortened to their reason and the kernel's line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import KernelCompileError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "as_numba_value",
    "dispatcher_of",
    "is_numba_error",
    "output_layout",
    "shorten_numba_error",
    "typeof",
]

_COMPILED: dict[str, Any] = {}


def dispatcher_of(func: Callable[..., Any], token: str) -> Any:
    """The numba dispatcher of a kernel's function, made once per process."""
    dispatcher = _COMPILED.get(token)
    if dispatcher is None:
        import numba

        # Not numba's cache=True (see loops.probe_for): the kernel is cached inside its probe
        # and its loops, under an identity that covers the globals it reads.
        # Helpers are inlined into their callers at numba's level, as if written there: the
        # kernel's loop then optimises as one body (a call per pixel keeps it from it).
        helper = numba.njit(nogil=True, error_model="numpy", inline="always")
        dispatcher = numba.njit(nogil=True, error_model="numpy")(
            with_compiled_helpers(func, helper, {})
        )
        _COMPILED[token] = dispatcher
    return dispatcher


def with_compiled_helpers(
    func: Callable[..., Any], jit: Callable[[Any], Any], done: dict[int, Any]
) -> Callable[..., Any]:
    """``func`` seeing, in place of the plain Python functions of its own module that it
    calls (helpers shared by several kernels), their compiled versions, so that a kernel may
    call them as numba would call a ``numba.njit`` function. Helpers calling helpers are
    handled the same way. The module itself is left as it was: the Python kernel still calls
    the Python helpers."""
    import types

    from pipeline.ops.kernels.loops import global_names

    namespace = getattr(func, "__globals__", None)
    code = getattr(func, "__code__", None)
    if namespace is None or code is None:
        return func
    helpers = {}
    for name in global_names(code):
        value = namespace.get(name)
        if (
            isinstance(value, types.FunctionType)
            and value.__module__ == func.__module__
            and value is not func
        ):
            compiled = done.get(id(value))
            if compiled is None:
                done[id(value)] = value  # under way: a cycle calls the Python function
                compiled = jit(with_compiled_helpers(value, jit, done))
                done[id(value)] = compiled
            helpers[name] = compiled
    if not helpers:
        return func
    rebound = types.FunctionType(
        code, {**namespace, **helpers}, func.__name__, func.__defaults__, func.__closure__
    )
    rebound.__qualname__ = func.__qualname__
    rebound.__kwdefaults__ = func.__kwdefaults__
    return rebound


def typeof(value: Any) -> Any:
    import numba

    return numba.typeof(value)


def as_numba_value(value: Any) -> Any:
    """Lists from YAML become tuples (numba cannot take reflected lists of mixed use)."""
    if isinstance(value, list):
        return tuple(as_numba_value(v) for v in value)
    return value


def is_numba_error(exc: BaseException) -> bool:
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


def output_layout(result: Any, label: str) -> tuple[np.dtype[Any], int | None]:
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
