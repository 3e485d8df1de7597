"""The generated per-pixel loop that calls a kernel on every pixel of a block, and its cache.

numba cannot cache a loop that takes the kernel as an argument (its signature holds the
kernel's dispatcher type), so every process would compile it again: about a second per
process for a user's kernel, paid by each worker of ``processes`` and ``distributed``. So the
loop and its kernel are compiled as one unit instead: the loop's source is written, once, as a
small module in the cache directory whose global ``kernel`` is the kernel, and numba's file
cache keeps the compiled pair. A second process loads it and compiles nothing.

The module's name hashes everything the compiled code depends on (:func:`code_identity`):
the loop's key and source, numba's version, and the kernel's code with the files and values
it reads. An edited kernel, or an edited helper it calls, gets a new module; an unchanged one,
in any process and any session, finds its compiled loop. (numba's own cache checks only the
timestamp of the cached function's own file.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import marshal
import os
import sys
import types
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Loop", "LoopKey", "code_identity", "global_names", "loop_for", "probe_for"]

MODULE_PREFIX = "pipeline_loop_"


class LoopKey(NamedTuple):
    """What the generated per-pixel loop depends on (one loop, compiled once, per key)."""

    kind: str
    n_inputs: int
    channels: int
    """0 for one value per pixel."""
    coords: bool | str
    """``True``: the pixel's global ``(y, x)``; ``"world"``: the world ``(x, y)`` of its centre,
    from the affine transform the loop takes after the settings."""
    compiled: bool
    n_params: int
    """Settings passed after the position."""
    left: int
    """The declared halo on the left: the column offset the loop's fast copy has as a
    literal."""


class Loop(NamedTuple):
    """A loop ready to call: ``loop(kernel, *arrays, out, r0, r1, y0, x0, params)``."""

    function: Any
    """The (compiled) loop."""
    takes_kernel: bool
    """False when the kernel is compiled into the loop (the cached form)."""
    cached: bool
    """Whether the loop lives in the on-disk cache."""

    def __call__(self, kernel: Any, *args: Any) -> Any:
        if self.takes_kernel:
            return self.function(kernel, *args)
        return self.function(*args)


_LOOPS: dict[tuple[LoopKey, str], Loop] = {}


def driver_source(key: LoopKey, *, takes_kernel: bool = True) -> str:
    """The loop that calls a kernel on every pixel of a block.

    It has two copies of the loop: one for blocks whose left halo is the declared one (every
    block but those at the left edge with boundary ``none``), with the column offset written
    as a literal, and one that takes it at run time. With a literal column offset and the
    settings passed one by one (not ``*params``), LLVM can prove the kernel's column indices
    are never negative, drops numba's wraparound checks from the inner loop and vectorises
    it: for slope it runs four to five times faster, with the same bits. (The row offset,
    constant along a row, costs nothing at run time.)
    """
    names = [f"a{k}" for k in range(key.n_inputs)]
    settings = [f"params[{k}]" for k in range(key.n_params)]

    def loop(r1: str) -> str:
        row = "i + r0"
        col = f"j + {r1}" if r1 != "0" else "j"
        if key.kind == "pointwise":
            values = [f"{a}[{row}, {col}]" for a in names]
        else:
            values = [*names, row, col]
        if key.coords == "world":  # as affine's transform @ (col + 0.5, row + 0.5)
            t = [f"params[{key.n_params + k}]" for k in range(6)]
            col, row = "(x0 + j + 0.5)", "(y0 + i + 0.5)"
            values += [
                f"{t[0]} * {col} + {t[1]} * {row} + {t[2]}",
                f"{t[3]} * {col} + {t[4]} * {row} + {t[5]}",
            ]
        elif key.coords:
            values += ["y0 + i", "x0 + j"]
        call = f"kernel({', '.join([*values, *settings])})"
        store = (
            "for k in range(out.shape[2]):\n                    out[i, j, k] = res[k]"
            if key.channels
            else "out[i, j] = res"
        )
        return f"""
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                res = {call}
                {store}"""

    arguments = ", ".join([*(["kernel"] if takes_kernel else []), *names])
    return f"""
def driver({arguments}, out, r0, r1, y0, x0, params):
    if r1 == {key.left}:{loop(str(key.left))}
    else:{loop("r1")}
    return out
"""


def loop_for(key: LoopKey, kernel: Any, identity: str) -> Loop:
    """The loop for ``key`` around ``kernel`` (a numba dispatcher, or the Python function when
    ``key.compiled`` is false), made once per process.

    ``identity`` is the kernel's :func:`code_identity`, worked out where the kernel was
    defined; with it the loop and the kernel are compiled as one unit and cached on disk.
    Without it, or where the cache cannot be written, the loop takes the kernel as an
    argument and is compiled in each process.
    """
    loop = _LOOPS.get((key, identity))
    if loop is None:
        loop = None
        if key.compiled and identity:
            with contextlib.suppress(OSError):
                loop = _cached_loop(key, kernel, identity)
        if loop is None:
            loop = _process_loop(key)
        _LOOPS[(key, identity)] = loop
    return loop


def _process_loop(key: LoopKey) -> Loop:
    namespace: dict[str, Any] = {}
    exec(driver_source(key), namespace)  # noqa: S102 - our own generated source
    function = namespace["driver"]
    if key.compiled:
        import numba

        function = numba.njit(nogil=True, error_model="numpy")(function)
    return Loop(function, takes_kernel=True, cached=False)


def _cached_loop(key: LoopKey, kernel: Any, identity: str) -> Loop:
    body = driver_source(key, takes_kernel=False)
    module = _generated(f"the per-pixel loop {tuple(key)} around one kernel", body, identity)
    module.kernel = kernel
    return Loop(module.driver, takes_kernel=False, cached=True)


def probe_for(kernel: Any, identity: str, n_args: int) -> Any:
    """A compiled function that calls ``kernel`` (a numba dispatcher) with ``n_args``
    arguments, cached on disk under the kernel's identity: compiling it for a signature gives
    the kernel's result type, loaded from the cache after the first time.

    Kernels are never cached by numba's own ``cache=True``: it checks only the time stamp of
    the kernel's file, so a kernel that reads a global computed at import (from the
    environment, a config) would silently run the code compiled for the old value.
    Falls back to ``kernel`` itself where the cache cannot be written.
    """
    cached = _PROBES.get((identity, n_args))
    if cached is not None:
        return cached
    names = ", ".join(f"a{k}" for k in range(n_args))
    body = f"\ndef probe({names}):\n    return kernel({names})\n"
    try:
        module = _generated("the result type of one kernel", body, identity)
    except OSError:
        return kernel
    module.kernel = kernel
    _PROBES[(identity, n_args)] = module.probe
    return module.probe


_PROBES: dict[tuple[str, int], Any] = {}


def _generated(what: str, body: str, identity: str) -> Any:
    """The module of generated source ``body`` (one function, compiled and cached by numba)
    for the kernel of ``identity``; written to the cache directory once, loaded once per
    process. Its global ``kernel`` is for the caller to set before it compiles."""
    import numba

    source = (
        f'"""pipeline: {what} (generated)."""\n'
        "import numba\n\n"
        "kernel = None  # set to the kernel before the function compiles\n\n"
        '@numba.njit(nogil=True, error_model="numpy", cache=True)'
        f"{body}"
    )
    digest = hashlib.sha256(
        "\0".join((identity, source, numba.__version__, sys.version)).encode() + _compiler_digest()
    ).hexdigest()[:24]
    name = MODULE_PREFIX + digest
    module = sys.modules.get(name)
    if module is None:
        path = loop_directory() / f"{name}.py"
        _write_once(path, source)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
            msg = f"cannot load {path}"
            raise OSError(msg)
        module = importlib.util.module_from_spec(spec)
        # numba rebuilds a cached function's environment by importing its module by name.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module


def _compiler_digest() -> bytes:
    """How kernels are compiled (options, helpers, loops) is part of what a cached loop is."""
    files = ("compile.py", "loops.py")
    return b"".join(_file_digest(str(Path(__file__).with_name(f))) or b"" for f in files)


def loop_directory() -> Path:
    """Where generated loops are written: beside numba's cache (see ``numba_cache_dir``)."""
    return Path(numba_cache_dir()) / "pipeline-loops"


def numba_cache_dir() -> str:
    """numba's cache directory; ``NUMBA_CACHE_DIR`` when set, else one per user (not
    ``__pycache__`` beside a kernel's source, which may be a read-only install or someone's
    project)."""
    import numba

    if not numba.config.CACHE_DIR:
        numba.config.CACHE_DIR = str(Path.home() / ".cache" / "pipeline" / "numba")
    return str(numba.config.CACHE_DIR)


def _write_once(path: Path, source: str) -> None:
    """Create ``path`` with ``source`` unless it exists. Never rewritten: numba's cache index
    records the file's time stamp, so a rewrite would throw the compiled loop away."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    temporary.write_text(source, encoding="utf-8")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        if not path.exists():
            temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- identity

_FILE_DIGESTS: dict[tuple[str, int, int], bytes] = {}


def code_identity(func: Any) -> str:
    """A digest of everything that makes ``func``'s compiled code what it is: its code, the
    file it comes from, and, transitively, the functions, modules and values it reads
    through its globals and closure (numba freezes global values into compiled code)."""
    digest = hashlib.sha256()
    seen: set[int] = set()
    _add_function(func, digest, seen)
    return digest.hexdigest()


def _add_function(func: Any, digest: Any, seen: set[int]) -> None:
    func = getattr(func, "py_func", func)  # a numba dispatcher's Python function
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen:
        return
    seen.add(id(code))
    digest.update(f"{func.__module__}.{func.__qualname__}\0".encode())
    text = _file_digest(code.co_filename)
    if text is None:
        try:
            text = inspect.getsource(func).encode()
        except (OSError, TypeError):
            text = marshal.dumps(code)
    digest.update(text)
    namespace = getattr(func, "__globals__", {})
    for name in sorted(global_names(code)):
        if name in namespace:
            digest.update(name.encode())
            _add_value(namespace[name], digest, seen)
    for cell in func.__closure__ or ():
        with contextlib.suppress(ValueError):  # an empty cell
            _add_value(cell.cell_contents, digest, seen)


def _add_value(value: Any, digest: Any, seen: set[int]) -> None:
    if isinstance(value, types.ModuleType):
        path = getattr(value, "__file__", None)
        digest.update((_file_digest(path) if path else None) or value.__name__.encode())
    elif callable(getattr(value, "py_func", None)) or inspect.isfunction(value):
        _add_function(value, digest, seen)
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode() + value.tobytes())
    elif isinstance(value, (bool, int, float, complex, str, bytes, tuple, np.generic)):
        digest.update(repr(value).encode())
    else:
        digest.update(type(value).__qualname__.encode())


def global_names(code: types.CodeType) -> set[str]:
    """The global names ``code`` (and the code nested in it) reads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def _file_digest(path: str | None) -> bytes | None:
    if not path or path.startswith("<"):
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    key = (path, stat.st_mtime_ns, stat.st_size)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).digest()
        except OSError:
            return None
        _FILE_DIGESTS[key] = digest
    return digest
