"""Python files named by a config travel to workers as source, compiled there under their name.

Workers of the ``processes`` and ``distributed`` schedulers cannot import a file by its path,
and on a cluster the file may not exist on their machine at all. cloudpickle could send the
functions by value, but what it does with their code objects is its own business: since 3.1.3
it renames every such code's file to ``"<dynamic-code>"``, so a traceback from a worker named
no file and showed no line of the user's function, the one message a user needs most.

So the module's source and file name travel instead, and every process compiles the source
under the real file name, once, and puts its lines in :mod:`linecache`: tracebacks,
``inspect`` and debuggers see ``kernels.py`` and its lines on every scheduler, whatever a
pickler does with code objects. A function of such a module pickles as a reference into it
(:class:`SourceRef`), which also keeps the module's globals shared, as an import would.

A function defined in a script's ``__main__`` or a notebook cell cannot be compiled again
(running a script again on a worker would run the whole script), so it still travels by value,
with its file name and lines beside it (:class:`WithSource`): the worker gives its code, and
that of the functions of ``__main__`` it calls, its real file name back.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.util
import linecache
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

__all__ = [
    "USER_MODULE_PREFIX",
    "FileFunction",
    "ShippedModule",
    "SourceRef",
    "WithSource",
    "load_file",
    "shippable",
]

USER_MODULE_PREFIX = "pipeline_user_"
"""Module names given to Python files that configs name."""
_SHIPPED = "__pipeline_shipped__"
"""The attribute of a loaded module that holds its :class:`ShippedModule`."""
_WRAPPER_ATTRIBUTES = ("func", "settings", "finish", "__wrapped__")
"""Where a module attribute (a kernel, a decorated function) keeps the functions it wraps."""
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ShippedModule:
    """A Python file's source under the module name it is loaded as, in any process."""

    name: str
    """Module name: the file's stem and a digest of its path and source, so that an edited
    file is a new module, also in a long-lived cluster worker that ran the old one."""
    path: str
    """The file's absolute path: the name its code is compiled under."""
    source: str
    """The file's text when the config was loaded."""

    @classmethod
    def read(cls, path: Path) -> ShippedModule:
        """The module of the file at ``path`` (absolute), as it is now."""
        source = path.read_text(encoding="utf-8")
        digest = hashlib.sha1(f"{path}\0{source}".encode(), usedforsecurity=False).hexdigest()
        return cls(f"{USER_MODULE_PREFIX}{path.stem}_{digest[:10]}", str(path), source)

    def load(self) -> ModuleType:
        """The module, compiled and run once per process, its lines kept in ``linecache``."""
        module = sys.modules.get(self.name)
        if module is not None:
            return module
        with _LOCK:  # two threads unpickling the first tasks at once run the file once
            module = sys.modules.get(self.name)
            if module is not None:
                return module
            spec = importlib.util.spec_from_loader(self.name, _Loader(self), origin=self.path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            module.__file__ = self.path
            setattr(module, _SHIPPED, self)
            # mtime None: linecache.checkcache keeps the entry even where no such file exists.
            lines = self.source.splitlines(keepends=True)
            linecache.cache[self.path] = (len(self.source), None, lines, self.path)
            sys.modules[self.name] = module
            cwd = Path.cwd()
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[self.name]
                raise
            finally:
                if Path.cwd() != cwd:  # os.chdir() at import must not move the run's files
                    os.chdir(cwd)
            return module


class _Loader(importlib.abc.Loader):
    """Runs a :class:`ShippedModule`; ``get_source`` serves ``inspect`` and ``linecache``."""

    def __init__(self, shipped: ShippedModule) -> None:
        self.shipped = shipped

    def create_module(self, spec: object) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        code = compile(self.shipped.source, self.shipped.path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the user's own file, named by their config

    def get_source(self, name: str) -> str:
        return self.shipped.source


def load_file(path: Path) -> ModuleType:
    """Load the Python file at ``path`` (absolute) as a module whose functions travel to
    workers as references into its source; the same file unchanged is loaded once."""
    return ShippedModule.read(path).load()


def shipped_module_of(obj: object) -> ShippedModule | None:
    """The shipped module ``obj`` was defined in, if any."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    shipped = getattr(module, _SHIPPED, None)
    return shipped if isinstance(shipped, ShippedModule) else None


@dataclass(frozen=True)
class SourceRef:
    """Where an object lives in a shipped module: pickles as the module's source and that
    path, and unpickles as the object itself, after loading the module in that process."""

    module: ShippedModule
    """The module."""
    path: tuple[str, ...]
    """Attribute names from the module to the object (``("slope", "func")``)."""

    def resolve(self) -> Any:
        """The object, loading the module in this process if needed."""
        return functools.reduce(getattr, self.path, self.module.load())

    def __reduce__(self) -> tuple[Callable[[ShippedModule, tuple[str, ...]], Any], tuple[Any, ...]]:
        return (_resolve, (self.module, self.path))


def _resolve(module: ShippedModule, path: tuple[str, ...]) -> Any:
    return SourceRef(module, path).resolve()


def _locate(module: ModuleType, obj: object) -> tuple[str, ...] | None:
    """Attribute names from ``module`` to ``obj``: one of its globals, or a function that one
    of them wraps (a kernel's ``func``, ``settings`` or ``finish``)."""
    namespace = vars(module)
    for name, value in namespace.items():
        if value is obj:
            return (name,)
    for name, value in namespace.items():
        for attribute in _WRAPPER_ATTRIBUTES:
            if getattr(value, attribute, None) is obj:
                return (name, attribute)
    return None


def shippable(obj: Any) -> Any:
    """What pickles in place of ``obj`` so that a worker shows its file and lines: a
    :class:`SourceRef` for an object of a shipped module, a :class:`WithSource` for a
    function of a script or notebook (``__main__``), else ``obj`` itself (importable: pickled
    by reference)."""
    shipped = shipped_module_of(obj)
    if shipped is not None:
        path = _locate(shipped.load(), obj)
        return obj if path is None else SourceRef(shipped, path)
    if isinstance(obj, FunctionType) and obj.__module__ in ("__main__", "__mp_main__"):
        return WithSource(obj)
    return obj


@dataclass(frozen=True)
class WithSource:
    """A function of ``__main__``: pickled by value (cloudpickle), with its file's name and
    lines; unpickled as the function, its code under that file name again."""

    func: FunctionType
    """The function."""

    def __reduce__(self) -> tuple[Callable[..., FunctionType], tuple[bytes, str, tuple[str, ...]]]:
        import cloudpickle

        filename = self.func.__code__.co_filename
        lines = tuple(linecache.getlines(filename, self.func.__globals__))
        return (_with_source, (cloudpickle.dumps(self.func), filename, lines))


def _with_source(payload: bytes, filename: str, lines: tuple[str, ...]) -> FunctionType:
    import pickle

    func: FunctionType = pickle.loads(payload)  # noqa: S301 - our own payload, from the client
    # Functions of the same module that came in the same payload share its globals.
    for value in [func, *func.__globals__.values()]:
        if (
            isinstance(value, FunctionType)
            and value.__globals__ is func.__globals__
            and value.__code__.co_filename != filename
        ):
            value.__code__ = _renamed(value.__code__, filename)
    if lines and not Path(filename).exists():  # a notebook's cell, or another machine
        linecache.cache[filename] = (sum(map(len, lines)), None, list(lines), filename)
    return func


def _renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` and the code nested in it (inner functions, lambdas) under ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


class FileFunction:
    """A block function from a config's Python file: called as the function, named as the
    config names it, pickled as a reference into the file's source."""

    def __init__(self, func: Callable[..., Any], label: str) -> None:
        self.func = func
        functools.update_wrapper(self, func)
        self.pipeline_label = label
        """How messages name the function: ``file.py:function``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __reduce__(self) -> tuple[Callable[[Any, str], FileFunction], tuple[Any, str]]:
        # The distributed scheduler pickles with the standard pickler first; this reduction
        # makes it, and cloudpickle, send the reference rather than whatever they would.
        return (FileFunction, (shippable(self.func), self.pipeline_label))

    def __repr__(self) -> str:
        return f"FileFunction({self.pipeline_label})"
