"""The per-pixel loop and its kernel compile once, as one unit, and every later process (a
worker of ``processes`` or ``distributed``, or the next run) loads them from numba's cache;
an edited kernel, or an edited helper it calls, is compiled again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline.ops.kernels.loops import LoopKey, code_identity, driver_source

SCRIPT = """\
import json, sys
import numpy as np
import pipeline
from pipeline.ops.kernels import loops

OFFSET = 1.0


@pipeline.neighbourhood(radius=1, boundary="nearest")
def rise(z, i, j):
    return max(z[i - 1, j], z[i + 1, j]) - z[i, j] + OFFSET


if __name__ == "__main__":
    import dask.array as da

    image = da.from_array(np.random.default_rng(0).random((96, 80)), chunks=32)
    result = pipeline.apply(rise, image)
    pipeline.save(result, sys.argv[1], scheduler=sys.argv[2], progress=False, overwrite=True)
    stats = [
        (sum(loop.function.stats.cache_hits.values()),
         sum(loop.function.stats.cache_misses.values()))
        for loop in loops._LOOPS.values() if loop.cached
    ]
    print(json.dumps(stats))
"""


def run_script(script: Path, out: Path, scheduler: str, cache: Path) -> list[list[int]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, str(script), str(out), scheduler],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def cache_files(cache: Path) -> dict[str, int]:
    return {
        str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()
    }


def test_a_scripts_kernel_compiles_once_then_loads_in_every_process(tmp_path: Path) -> None:
    script = tmp_path / "seed.py"
    script.write_text(SCRIPT)
    cache = tmp_path / "numba-cache"
    # First process: the loop is compiled (a miss) and stored.
    assert run_script(script, tmp_path / "a.zarr", "synchronous", cache) == [[0, 1]]
    stored = cache_files(cache)
    assert any(name.endswith(".nbc") for name in stored)
    # Next process: loaded, nothing compiled.
    assert run_script(script, tmp_path / "b.zarr", "synchronous", cache) == [[1, 0]]
    # Worker processes load it too: a compile there would write the cache again.
    run_script(script, tmp_path / "c.zarr", "processes", cache)
    assert cache_files(cache) == stored
    # The same bits from all three.
    import zarr

    first = zarr.open_group(tmp_path / "a.zarr", mode="r")["0"][:]
    for name in ("b.zarr", "c.zarr"):
        np.testing.assert_array_equal(zarr.open_group(tmp_path / name, mode="r")["0"][:], first)


def test_an_edited_kernel_is_compiled_again(tmp_path: Path) -> None:
    script = tmp_path / "seed.py"
    script.write_text(SCRIPT)
    cache = tmp_path / "numba-cache"
    run_script(script, tmp_path / "a.zarr", "synchronous", cache)
    # A global the kernel reads is frozen into its compiled code: editing it must not reuse
    # the old loop (numba's own cache would: the function's source is unchanged).
    script.write_text(SCRIPT.replace("OFFSET = 1.0", "OFFSET = 2.0"))
    assert run_script(script, tmp_path / "b.zarr", "synchronous", cache) == [[0, 1]]
    import zarr

    a = zarr.open_group(tmp_path / "a.zarr", mode="r")["0"][:]
    b = zarr.open_group(tmp_path / "b.zarr", mode="r")["0"][:]
    np.testing.assert_allclose(b - a, 1.0, rtol=1e-12)


# ----------------------------------------------------------------------------- identity


def write_module(directory: Path, name: str, source: str) -> object:
    import importlib.util

    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def helper_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mods"
    directory.mkdir()
    return directory


def test_identity_follows_a_helper_in_another_file(helper_dir: Path) -> None:
    helper = "def bump(v):\n    return v + {}\n"
    write_module(helper_dir, "loops_helper_a", helper.format(1))
    user = write_module(
        helper_dir,
        "loops_user_a",
        "from loops_helper_a import bump\n\ndef k(v):\n    return bump(v)\n",
    )
    before = code_identity(user.k)  # type: ignore[attr-defined]
    assert code_identity(user.k) == before  # type: ignore[attr-defined]
    os.utime(helper_dir / "loops_helper_a.py", ns=(1, 1))
    write_module(helper_dir, "loops_helper_a", helper.format(2))
    user = write_module(
        helper_dir,
        "loops_user_a",
        "from loops_helper_a import bump\n\ndef k(v):\n    return bump(v)\n",
    )
    assert code_identity(user.k) != before  # type: ignore[attr-defined]


def test_identity_follows_closures_and_arrays() -> None:
    def make(table: np.ndarray) -> object:
        def k(v: float) -> float:
            return v * table[0]

        return k

    assert code_identity(make(np.array([1.0]))) == code_identity(make(np.array([1.0])))
    assert code_identity(make(np.array([1.0]))) != code_identity(make(np.array([2.0])))


def test_identity_is_the_same_in_a_new_process() -> None:
    # The on-disk cache is only found again if a kernel's identity does not depend on the
    # process (no ids, no hash seeds).
    from pipeline.ops import terrain_kernels

    here = code_identity(terrain_kernels.slope.func)
    code = (
        "from pipeline.ops import terrain_kernels\n"
        "from pipeline.ops.kernels.loops import code_identity\n"
        "print(code_identity(terrain_kernels.slope.func))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == here


def test_the_cached_loop_takes_no_kernel_argument() -> None:
    key = LoopKey("neighbourhood", 1, 0, False, True, 0, 1)
    assert "def driver(a0, out," in driver_source(key, takes_kernel=False)
    assert "def driver(kernel, a0, out," in driver_source(key)


MODULE = """\
import os
import pipeline

SCALE = float(os.environ["LOOPS_SCALE"])


@pipeline.pointwise
def scaled(v):
    return v * SCALE
"""

USE_MODULE = """\
import sys
import numpy as np
import pipeline
from scaling import scaled

print(pipeline.compute_window(pipeline.apply(scaled, np.ones((4, 4))), pipeline.Window(0, 1, 0, 1)))
"""


def test_a_global_computed_at_import_is_not_served_stale(tmp_path: Path) -> None:
    # numba's own cache=True keys a function on its file's time stamp alone: the second
    # process below would get the code compiled for SCALE = 2.
    (tmp_path / "scaling.py").write_text(MODULE)

    def run(scale: str) -> str:
        env = {
            **os.environ,
            "LOOPS_SCALE": scale,
            "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONPATH": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-c", USE_MODULE],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    assert run("2") == "[[2.]]"
    assert run("3") == "[[3.]]"
