"""Functions from a config's Python file travel to workers as source, compiled there under the
file's real name: tracebacks, linecache and inspect show the user's file and lines wherever
the function runs, whatever cloudpickle does with code objects."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from pipeline.ops.kernels import Kernel
from pipeline.ops.registry import resolve_function
from pipeline.ops.shipping import FileFunction, ShippedModule, SourceRef, shippable

SOURCE = '''\
import numpy as np
import pipeline

SCALE = 3.0


def boom(block):
    """Fails on purpose."""
    raise ValueError("bad block")


def scaled(block):
    return block * SCALE


@pipeline.neighbourhood(radius=1, finish=lambda t: t * SCALE)
def peak(z, i, j):
    return max(z[i - 1, j], z[i + 1, j])
'''

# Run in a new interpreter: nothing of the file is loaded, and the file itself is gone.
WORKER = """\
import pickle, sys, traceback, inspect, linecache
func = pickle.loads(sys.stdin.buffer.read())
try:
    func(None)
except ValueError:
    print(traceback.format_exc())
print("SOURCE", inspect.getsource(func.func).splitlines()[0])
"""


@pytest.fixture
def kernels(tmp_path: Path) -> Path:
    path = tmp_path / "kernels.py"
    path.write_text(SOURCE)
    return path


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_a_file_function_shows_its_file_and_line_in_a_process_without_the_file(
    kernels: Path, dumps: object
) -> None:
    func = resolve_function("kernels.py:boom", kernels.parent).func
    assert isinstance(func, FileFunction)
    payload = dumps(func)  # type: ignore[operator]
    kernels.unlink()
    done = subprocess.run(
        [sys.executable, "-c", WORKER], input=payload, capture_output=True, check=True
    )
    out = done.stdout.decode()
    assert f'File "{kernels.resolve()}", line 9, in boom' in out
    assert 'raise ValueError("bad block")' in out
    assert "<dynamic-code>" not in out
    assert "SOURCE def boom(block):" in out


def test_a_kernel_from_a_file_travels_shippable_and_shares_its_module(kernels: Path) -> None:
    kernel = resolve_function("kernels.py:peak", kernels.parent).func
    assert isinstance(kernel, Kernel)
    clone = pickle.loads(pickle.dumps(kernel))
    assert clone.func is kernel.func, "in the same process: the very same function"
    assert clone.func.__code__.co_filename == str(kernels.resolve())
    assert clone.finish is not None
    np.testing.assert_array_equal(clone.finish(np.ones(2)), np.full(2, 3.0))


def test_an_edited_file_is_a_new_module_and_an_unchanged_one_loads_once(kernels: Path) -> None:
    first = resolve_function("kernels.py:scaled", kernels.parent).func
    again = resolve_function("kernels.py:scaled", kernels.parent).func
    assert first.func is again.func
    kernels.write_text(SOURCE.replace("SCALE = 3.0", "SCALE = 5.0"))
    edited = resolve_function("kernels.py:scaled", kernels.parent).func
    assert edited(np.ones(1))[0] == 5.0
    assert first(np.ones(1))[0] == 3.0, "a run already planned keeps the code it was given"
    assert edited.func.__module__ != first.func.__module__


def test_objects_not_from_a_shipped_module_pickle_as_usual() -> None:
    assert shippable(np.sqrt) is np.sqrt
    assert shippable(len) is len


def test_a_source_ref_resolves_after_loading_its_module(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent("VALUE = 41\n\ndef f():\n    return VALUE + 1\n"))
    ref = SourceRef(ShippedModule.read(path), ("f",))
    func = pickle.loads(pickle.dumps(ref))
    assert func() == 42
    assert func.__module__ == ref.module.name


SCRIPT = """\
import sys
import dask.array as da
import numpy as np
import pipeline


def helper(block):
    return block / 0.0 if block.min() > 1e9 else np.log(-1 - block.max())


def broken(block):
    if block.max() < 1e9:
        raise ArithmeticError("negative relief")
    return helper(block)


if __name__ == "__main__":
    image = da.zeros((40, 60), np.float32, chunks=20)
    result = pipeline.apply(broken, image)
    try:
        pipeline.save(result, sys.argv[2], scheduler=sys.argv[1], workers=2, progress=False)
    except pipeline.errors.BlockFunctionError as exc:
        print(exc.function_traceback)
"""


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes", "distributed"])
def test_a_scripts_function_shows_its_file_and_line_on_every_scheduler(
    tmp_path: Path, scheduler: str
) -> None:
    # The seed's own path: a function in the user's script, saved from its __main__ guard.
    script = tmp_path / "geometry.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), scheduler, str(tmp_path / "o.zarr")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=240,
    )
    lines = done.stdout.strip().splitlines()
    at = lines.index(f'  File "{script}", line 13, in broken')
    assert lines[at + 1].strip() == 'raise ArithmeticError("negative relief")'
    assert lines[-1] == "ArithmeticError: negative relief"
    assert "<dynamic-code>" not in done.stdout + done.stderr


def test_a_main_function_travels_with_its_file_name_and_lines() -> None:
    import linecache

    namespace: dict[str, object] = {"__name__": "__main__"}
    filename = "/nonexistent/notebook-cell-7.py"
    source = "def f(x):\n    inner = lambda y: y / 0\n    return inner(x)\n"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - as a notebook does
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    func = namespace["f"]
    payload = cloudpickle.dumps(shippable(func))
    del linecache.cache[filename]
    clone = pickle.loads(payload)
    assert clone.__code__.co_filename == filename
    nested = [c for c in clone.__code__.co_consts if hasattr(c, "co_filename")]
    assert [c.co_filename for c in nested] == [filename]
    assert linecache.getline(filename, 2).strip() == "inner = lambda y: y / 0"
