"""The README's promises: its two commands match CI, and its Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_readme_opens_with_exactly_two_commands() -> None:
    first = code_blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert README.index("```bash") < README.index("\n## ")
    demo, tests = first
    assert "pip install -c requirements-lock.txt -e ." in demo
    assert demo.endswith("pipeline run configs/demo.yaml")
    assert 'pip install -c requirements-lock.txt -e ".[dev]"' in tests
    assert tests.endswith("python -m pytest")


def test_ci_installs_and_tests_as_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    tests = code_blocks("bash")[0].strip().splitlines()[1]
    install = re.search(r"pip install -c requirements-lock.txt -e \"\.\[dev\]\"", tests)
    assert install is not None
    assert '.venv/bin/pip install -q -c requirements-lock.txt -e ".[dev]"' in ci
    assert ".venv/bin/python -m pytest" in ci
    assert "ruff check" in ci and "ruff format --check" in ci


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = code_blocks("python")[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    report = namespace["report"]
    assert report.tasks >= 1  # type: ignore[attr-defined]
    import pipeline

    out = pipeline.open_image(tmp_path / "out/example/slope.zarr").compute()
    assert out.shape == (1000, 1500) and np.isfinite(out).all()
    assert (tmp_path / "data/example/dem.tif").exists()


def test_the_lock_pins_every_package_the_tests_install() -> None:
    from packaging.requirements import Requirement

    lines = (ROOT / "requirements-lock.txt").read_text().splitlines()
    pins = [Requirement(line.split("#")[0]) for line in lines if line and line[0].isalnum()]
    assert pins and all(str(p.specifier).startswith("==") for p in pins), "exact versions only"
    names = {p.name.lower() for p in pins}
    assert {"dask", "distributed", "zarr", "numba", "cloudpickle", "pytest", "ipykernel"} <= names


@pytest.mark.slow
def test_in_memory_example_runs_as_a_script_on_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = code_blocks("python")[1]
    assert 'if __name__ == "__main__":' in example and 'scheduler="processes"' in example
    (tmp_path / "example.py").write_text(example + "    np.save('back.npy', back)\n")
    subprocess.run([sys.executable, "example.py"], cwd=tmp_path, check=True, timeout=300)
    back = np.load(tmp_path / "back.npy")
    z = np.pad(np.random.default_rng(0).random((4000, 6000)), 1, mode="symmetric")
    core = z[1:-1, 1:-1]
    neighbours = np.maximum.reduce([z[:-2, 1:-1], z[2:, 1:-1], z[1:-1, :-2], z[1:-1, 2:]])
    np.testing.assert_array_equal(back, neighbours - core)
