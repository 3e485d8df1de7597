"""The `pipeline` command end to end: configs, schedulers, overrides, errors and signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from conftest import run_cli
from oracle import whole_image

from pipeline.cli import main
from pipeline.demo import dem_window, write_dem
from pipeline.grid import Window
from pipeline.ops.terrain import hillshade, slope

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

KERNELS = '''
import numpy as np

def relief(dem, radius=1):
    """Local relief: max minus min over the neighbourhood."""
    h, w = dem.shape[0] - 2 * radius, dem.shape[1] - 2 * radius
    views = [dem[i:i + h, j:j + w] for i in range(2 * radius + 1) for j in range(2 * radius + 1)]
    return np.max(views, axis=0) - np.min(views, axis=0)

def slow(dem):
    import time
    time.sleep(0.5)
    return dem

def broken(dem, block_info):
    if block_info.core.y0 >= 100:
        raise ZeroDivisionError("the terrain is too steep here")
    return dem

def local_max(z, i, j, reach=1):
    """A plain per-pixel loop body, compiled because the config says kind: neighbourhood."""
    best = z[i, j]
    for di in range(-reach, reach + 1):
        for dj in range(-reach, reach + 1):
            best = max(best, z[i + di, j + dj])
    return best
'''


def write_config(folder: Path, text: str, name: str = "run.yaml") -> Path:
    (folder / "kernels.py").write_text(KERNELS)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a small DEM, a kernels file and a config using both."""
    write_dem(tmp_path / "dem.tif", (230, 310), tile=(64, 64))
    write_config(
        tmp_path,
        """
        input: {path: dem.tif, chunks: [64, 64]}
        steps:
          - function: kernels.py:relief
            depth: 1
            boundary: nearest
            params: {radius: 1}
          - function: slope
            params: {cell_size: 30.0}
        output:
          path: out/result.zarr
          chunks: [64, 64]
        """,
    )
    return tmp_path


def expected_project_result() -> np.ndarray:
    dem = dem_window(Window(0, 230, 0, 310))
    namespace: dict[str, Any] = {}
    exec(KERNELS, namespace)  # noqa: S102 - the test's own kernels
    relief = whole_image(namespace["relief"], dem, depth=(1, 1), boundary="nearest", radius=1)
    return whole_image(slope, relief, depth=(1, 1), boundary="nan", dtype="f4", cell_size=30.0)


def read(path: Path) -> np.ndarray:
    return zarr.open_group(path, mode="r")["0"][:]


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{config}: OK"


def test_demo_config_runs_at_reduced_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(ROOT / "configs" / "demo.yaml"),
            "--quiet",
            "--set",
            f"input.path={tmp_path / 'dem.tif'}",
            "--set",
            "input.generate.shape=[300, 450]",
            "--set",
            f"output.path={tmp_path / 'hillshade.zarr'}",
            "--set",
            "output.chunks=[128, 128]",
        ]
    )
    assert code == 0
    assert "wrote " in capsys.readouterr().out
    assert tifffile.imread(tmp_path / "dem.tif").shape == (300, 450)
    dem = dem_window(Window(0, 300, 0, 450))
    expected = whole_image(
        hillshade,
        dem,
        depth=(1, 1),
        boundary="nan",
        dtype="f4",
        cell_size=30.0,
        azimuth=315.0,
        altitude=45.0,
    )
    np.testing.assert_array_equal(read(tmp_path / "hillshade.zarr"), expected)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes", "distributed"])
def test_run_is_exact_on_every_scheduler_with_a_file_function(
    project: Path, scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(project / "run.yaml"),
            "--scheduler",
            scheduler,
            "--workers",
            "2",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"] == 4 * 5
    assert report["scheduler"] == scheduler
    np.testing.assert_array_equal(read(project / "out/result.zarr"), expected_project_result())


def test_distributed_prints_a_loopback_dashboard_link(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["run", str(project / "run.yaml"), "--scheduler", "distributed", "--workers", "1"])
        == 0
    )
    err = capsys.readouterr().err
    assert re.search(r"Dask dashboard: http://127\.0\.0\.1:\d+/status", err), err


def test_an_existing_cluster_by_address(project: Path, cluster_client: Any) -> None:
    address = cluster_client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    assert main(["run", str(project / "run.yaml"), "--scheduler", address, "--quiet"]) == 0
    np.testing.assert_array_equal(read(project / "out/result.zarr"), expected_project_result())


@pytest.mark.parametrize("scheduler", ["threads", "processes", "distributed"])
def test_a_per_pixel_function_from_a_file_is_compiled_on_every_scheduler(
    tmp_path: Path, scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dem(tmp_path / "dem.tif", (130, 170), tile=(32, 32))
    write_config(
        tmp_path,
        f"""\
        input: dem.tif
        steps:
          - function: kernels.py:local_max
            kind: neighbourhood
            radius: reach
            boundary: nearest
            params: {{reach: 2}}
        output: {{path: o.zarr, chunks: [40, 40]}}
        compute: {{scheduler: {scheduler}, workers: 2}}
        """,
    )
    assert main(["run", str(tmp_path / "run.yaml"), "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["extra"]["compile_seconds"] > 0
    dem = dem_window(Window(0, 130, 0, 170))
    padded = np.pad(dem, 2, mode="edge")
    expected = np.max(
        [padded[i : i + 130, j : j + 170] for i in range(5) for j in range(5)], axis=0
    )
    np.testing.assert_array_equal(read(tmp_path / "o.zarr"), expected)


def test_the_command_line_entry_point(project: Path) -> None:
    done = run_cli("run", "run.yaml", "--set", "compute.scheduler=processes", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote out/result.zarr (230x310 float32, 20 tasks)")
    assert "Mpx/s" in done.stdout
    assert "20/20" in done.stderr, "the progress bar reached the end"
    again = run_cli("run", "run.yaml", cwd=project)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        (
            "error: run.yaml:11: output.path: output out/result.zarr already exists; pass "
            "--overwrite to replace it, or choose another path"
        )
    ]
    assert run_cli("run", "run.yaml", "--overwrite", "--quiet", cwd=project).returncode == 0


def test_dry_run_prints_the_plan_and_computes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(project / "run.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "steps          relief -> slope" in out
    assert "halo           2x2 pixels around each block" in out
    assert "tasks          20, one per block (4x5 blocks of 64x64)" in out
    assert not (project / "out").exists()


def test_overrides_reach_any_key(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            str(project / "run.yaml"),
            "--quiet",
            "--json",
            "--set",
            "steps.1.params.cell_size=10",
            "--set",
            "output.chunks=128",
            "--set",
            "input={path: dem.tif, chunks: [128, 128]}",
            "--set",
            "steps.0.params={radius: 2}",
            "--set",
            "steps.0.depth=2",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chunks"] == [128, 128]
    assert report["tasks"] == 2 * 3
    stored = zarr.open_group(project / "out/result.zarr", mode="r").attrs["pipeline"]["config"]
    assert stored["steps"][1]["params"]["cell_size"] == 10
    assert stored["steps"][0]["params"] == {"radius": 2}


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "input: dem.tif\nsteps:\n  - function: slope\n    dpth: 1\noutput: {path: o.zarr}\n",
            (
                "run.yaml:4: steps.0.dpth: unknown key 'dpth': did you mean 'depth'? allowed here: "
                "boundary, channels, coords, depth, dtype, function, inputs, kind, name, params, "
                "radius, uncompiled"
            ),
        ),
        (
            "input: dem.tif\nsteps:\n  - function: slope\n    depth: deep\noutput: {path: o.zarr}\n",
            "run.yaml:4: steps.0.depth: expected a halo width: an integer, or [rows, cols] (got 'deep')",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: slop\noutput: {path: o.zarr}\n",
            (
                "run.yaml:3: steps.0.function: unknown function 'slop': did you mean 'slope'? built-ins are "
                "aspect, hillshade, sky_view, slope, square; for your own, write 'package.module:function' or "
                "'file.py:function'"
            ),
        ),
        (
            "input: dem.tif\nsteps:\n  - function: kernels.py:releif\noutput: {path: o.zarr}\n",
            "run.yaml:3: steps.0.function: kernels.py has no function 'releif': did you mean 'relief'?",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: nowhere.py:f\noutput: {path: o.zarr}\n",
            "run.yaml:3: steps.0.function: function file nowhere.py not found (relative to",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: slope\n    inputs: [dme]\noutput: {path: o.zarr}\n",
            "run.yaml:4: steps.0.inputs: unknown input 'dme': inputs and earlier steps are input",
        ),
        (
            "input: missing.tif\nsteps:\n  - function: slope\noutput: {path: o.zarr}\n",
            "run.yaml:1: input: ",
        ),
        (
            "input: {path: dem.tif, chunks: 64}\nsteps:\n  - function: slope\noutput: {path: o.zarr, chunks: [100, 100]}\n",
            "run.yaml:4: output.chunks: output chunks 100x100 do not align with the image's blocks",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: slope\noutput: {path: o.zarr}\ncompute: {scheduler: thread}\n",
            "run.yaml:5: compute.scheduler: unknown scheduler 'thread': did you mean 'threads'?",
        ),
        (
            "steps:\n  - function: slope\noutput: {path: o.zarr}\n",
            "run.yaml: give either 'input' (one image) or 'inputs' (named images)",
        ),
        (
            "input: dem.tif\nsteps: []\noutput: {path: o.zarr}\n",
            "run.yaml:2: steps: List should have at least 1 item after validation",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: slope\n",
            "run.yaml: output: required key 'output' is missing",
        ),
        (
            "input: dem.tif\nsteps:\n  - function: [slope\noutput: {}\n",
            "run.yaml:4: YAML syntax error (line 4, column 7): while parsing a flow sequence",
        ),
        (
            "input: &d dem.tif\nsteps:\n  - function: slope\noutput: {path: *d}\n",
            "run.yaml:1: YAML anchors (&d) are not allowed",
        ),
        (
            "input: dem.tif\ninput: dem.tif\n",
            "run.yaml:2: input: duplicate key; give each key once",
        ),
        ("- just\n- a list\n", "run.yaml:1: a config is a mapping of keys"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "unknown-builtin",
        "missing-function",
        "missing-file",
        "unknown-step-input",
        "missing-input",
        "misaligned-chunks",
        "bad-scheduler",
        "no-input",
        "no-steps",
        "no-output",
        "yaml-syntax",
        "yaml-anchor",
        "duplicate-key",
        "not-a-mapping",
    ],
)
def test_validation_messages(
    tmp_path: Path, body: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dem(tmp_path / "dem.tif", (230, 310), tile=(64, 64))
    config = write_config(tmp_path, body)
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/{expected}" in err, err


def test_validate_reports_every_problem_not_just_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        """\
        input: dem.tif
        steps:
          - function: slope
            dpth: 1
            boundary: 3.5.2
          - function: slope
            dtyp: float32
        output: {path: o.zarr, overwrit: true}
        """,
    )
    assert main(["validate", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[1] for line in lines[:-1]] == [
        "steps.0.dpth",
        "steps.1.dtyp",
        "output.overwrit",
    ]
    assert lines[-1] == f"3 problem(s) in {config}"


def test_bad_override_is_located_on_the_command_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(project / "run.yaml"), "--set", "output.chunk=[64, 64]"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --set: output.chunk: unknown key 'chunk': did you mean 'chunks'? allowed here: "
        "chunks, downsample, ngff, overwrite, path, pyramid, storage_options"
    )
    assert main(["run", str(project / "run.yaml"), "--set", "nonsense"]) == 2
    assert "write KEY=VALUE" in capsys.readouterr().err


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes", "distributed"])
def test_failure_in_the_function_names_the_block_and_shows_its_traceback(
    tmp_path: Path, scheduler: str
) -> None:
    write_dem(tmp_path / "dem.tif", (230, 310), tile=(64, 64))
    write_config(
        tmp_path,
        f"""\
        input: dem.tif
        steps:
          - function: kernels.py:broken
        output: {{path: o.zarr, chunks: [100, 100]}}
        compute: {{scheduler: {scheduler}, workers: 2}}
        """,
    )
    done = run_cli("run", "run.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: kernels.py:broken failed on the block at pixels [")
    assert "the terrain is too steep here" in lines[0]
    # The user's file by its real name, the line, and the line's source, from the worker.
    where = f'File "{(tmp_path / "kernels.py").resolve()}", line 17, in broken'
    at = next(k for k, line in enumerate(lines) if line.strip() == where)
    assert lines[at + 1].strip() == 'raise ZeroDivisionError("the terrain is too steep here")'
    assert lines[-1] == "ZeroDivisionError: the terrain is too steep here"
    assert "pipeline/ops/nodes.py" not in done.stderr, "our frames only with --debug"
    assert "<dynamic-code>" not in done.stderr
    debug = run_cli("run", "run.yaml", "--quiet", "--overwrite", "--debug", cwd=tmp_path)
    assert "pipeline/ops/nodes.py" in debug.stderr


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    done = run_cli("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: {tmp_path / 'nope.yaml'}: no such config file; check the path"
    )


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["processes", "distributed"])
def test_ctrl_c_stops_the_workers_and_exits_130(tmp_path: Path, scheduler: str) -> None:
    write_dem(tmp_path / "dem.tif", (400, 400), tile=(64, 64))
    write_config(
        tmp_path,
        f"""\
        input: dem.tif
        steps:
          - function: kernels.py:slow
        output: {{path: o.zarr, chunks: [50, 50]}}
        compute: {{scheduler: {scheduler}, workers: 2}}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    records = tmp_path / "o.zarr" / ".pipeline" / "done" / "0"

    def recorded() -> list[Path]:
        return [p for p in records.glob("*.*") if not p.name.endswith(".partial")]

    deadline = time.monotonic() + 120
    while not recorded():  # blocks are being written
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    # Every worker holds a task of 0.5 s: waiting for them all (as pools do) took 41 s.
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: workers stopped")
    assert "Worker process still alive" not in err and "leaked" not in err
    deadline = time.monotonic() + 10
    while True:  # every process of the run's group is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "stray processes remain after Ctrl-C"
        time.sleep(0.1)
    assert recorded(), "the blocks written before Ctrl-C are kept"
    assert len(recorded()) < (400 // 50) ** 2, "the run stopped before the end"


# ----------------------------------------------------------------------------- info, help


def test_output_cut_short_by_its_reader_ends_quietly(project: Path) -> None:
    # `pipeline info out.zarr --json | head`: the pipe closes while we still write.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "info", str(project / "dem.tif"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before reading anything
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "internal error" not in err, err


def test_info_on_inputs_and_outputs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(project / "dem.tif")]) == 0
    out = capsys.readouterr().out
    assert "format        TIFF" in out
    assert "shape         230x310" in out
    assert "layout        tiles of 64x64" in out
    assert main(["run", str(project / "run.yaml"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(project / "out/result.zarr")]) == 0
    out = capsys.readouterr().out
    assert "format        Zarr v3" in out
    assert "state         complete" in out
    assert "run           20 tasks in" in out
    assert "function: kernels.py:relief" in out
    np.save(project / "a.npy", np.zeros((5, 6, 2), np.int16))
    assert main(["info", str(project / "a.npy"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [5, 6, 2]
    assert info["format"] == "NumPy .npy"


def test_info_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "x.tif")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'x.tif'}: no such file")


def test_help_is_light_and_version_works() -> None:
    probe = (
        "import sys\n"
        "from pipeline.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('dask', 'zarr', 'tifffile', 'numpy', 'distributed', "
        "'pydantic', 'rich') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout
    assert "run a config" in done.stdout
    version = run_cli("--version")
    assert version.stdout.startswith("pipeline ")


def test_info_shows_the_value_range_and_nans_of_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = np.arange(64 * 96, dtype="f4").reshape(64, 96)
    image[:8] = np.nan  # 8 rows of NaN
    import pipeline

    pipeline.save(pipeline.apply(np.negative, image), tmp_path / "o.zarr", progress=False)
    assert main(["info", str(tmp_path / "o.zarr")]) == 0
    values = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("values")
    )
    assert values.split(None, 1)[1] == "-6143 to -768, 768 NaN (12.5%)"
    pipeline.save(
        pipeline.apply(np.negative, image), tmp_path / "p.zarr", progress=False, pyramid=2
    )
    assert main(["info", str(tmp_path / "p.zarr"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["values"]
    assert summary["level"] == 2 and summary["pixels"] == 16 * 24 and summary["nan"] == 2 * 24


HANGS = """
import time

def hang(dem):
    time.sleep(3600)
    return dem
"""


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_issue_15_ctrl_c_ends_a_run_whose_function_never_returns(
    tmp_path: Path, scheduler: str
) -> None:
    write_dem(tmp_path / "dem.tif", (128, 128), tile=(64, 64))
    (tmp_path / "kernels.py").write_text(HANGS)
    (tmp_path / "run.yaml").write_text(
        "input: {path: dem.tif, chunks: [64, 64]}\nsteps: [{function: kernels.py:hang}]\n"
        f"output: {{path: o.zarr}}\ncompute: {{scheduler: {scheduler}}}\n"
    )
    started = tmp_path / "o.zarr" / ".pipeline-lock.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "run.yaml", "--quiet"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not started.exists():  # the run holds its output: its blocks are being computed
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # every worker is inside the function now
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=15)  # it never ended, before
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: workers stopped")
    assert not started.exists(), "the lock is released"


@pytest.mark.slow
def test_issue_15_a_worker_that_dies_at_once_is_named_with_its_block(tmp_path: Path) -> None:
    write_dem(tmp_path / "dem.tif", (128, 128), tile=(64, 64))
    (tmp_path / "kernels.py").write_text(
        "import os\n\ndef dies(dem, block_info):\n"
        "    if block_info.core.y0 == 64 and block_info.core.x0 == 0:\n"
        "        os._exit(1)\n    return dem\n"
    )
    (tmp_path / "run.yaml").write_text(
        "input: {path: dem.tif, chunks: [64, 64]}\nsteps: [{function: kernels.py:dies}]\n"
        "output: {path: o.zarr}\ncompute: {scheduler: processes}\n"
    )
    done = run_cli("run", "run.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "died abruptly while computing the block at pixels [64:128, 0:64]" in lines[0]
