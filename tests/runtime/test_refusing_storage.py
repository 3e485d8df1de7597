"""Storage that refuses writes at any moment of a run, its resume included (issue 15): a
read-only file system, a disk that is still full, a file-size limit. One line, exit 2, the
blocks written kept, and `--resume` finishing the run once the storage accepts writes again.

The file systems are real: a small tmpfs mounted for the test where this machine allows it
(as root), and a real ``RLIMIT_FSIZE`` (the limit ``ulimit -f`` sets) on a subprocess.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import zarr

from pipeline.cli import main
from pipeline.demo import write_dem
from pipeline.errors import OutputWriteError
from pipeline.io import refusal

if TYPE_CHECKING:
    from collections.abc import Iterator

FAILING = """\
import os

def f(dem):
    done = os.environ.get("PIPELINE_TEST_FAIL_AFTER")
    if done and os.path.isdir(done) and len(os.listdir(done)) >= 8:
        raise ValueError("stop half way")
    return dem * 2
"""


def _config(folder: Path, output: Path) -> Path:
    write_dem(folder / "dem.tif", (128, 128), tile=(32, 32))
    (folder / "kernels.py").write_text(FAILING)
    config = folder / "run.yaml"
    config.write_text(
        "input: {path: dem.tif, chunks: [32, 32]}\nsteps:\n  - function: kernels.py:f\n"
        f"output: {{path: {output}, chunks: [32, 32]}}\ncompute: {{scheduler: threads}}\n"
    )
    return config


def _half_done(config: Path, output: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``config`` until its function fails, half of its blocks written."""
    done = output / ".pipeline" / "done" / "0"
    with monkeypatch.context() as m:
        m.setenv("PIPELINE_TEST_FAIL_AFTER", str(done))
        synchronous = ["--set", "compute.scheduler=synchronous"]
        assert main(["run", str(config), "--quiet", *synchronous]) == 2
    assert len(list(done.iterdir())) == 8


def _expected(folder: Path, config: Path) -> np.ndarray:
    reference = folder / "reference.zarr"
    assert main(["run", str(config), "--quiet", "--set", f"output.path={reference}"]) == 0
    return zarr.open_group(reference, mode="r")["0"][:]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of its own, mounted for the test (root only)."""
    where = tmp_path / "mnt"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _one_line(captured: str) -> str:
    lines = captured.strip().splitlines()
    assert len(lines) == 1, captured
    assert "Traceback" not in captured
    return lines[0]


def test_issue_15_resume_on_a_read_only_file_system(
    tmp_path: Path, tmpfs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    output = tmpfs / "o.zarr"
    config = _config(tmp_path, output)
    expected = _expected(tmp_path, config)
    _half_done(config, output, monkeypatch)
    capsys.readouterr()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        assert main(["run", str(config), "--quiet", "--resume"]) == 2
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    line = _one_line(capsys.readouterr().err)
    assert f"the file system is read-only ({output}/" in line
    assert line.endswith(
        "make it writable (remount) or choose another output; the blocks already written are "
        "kept, run again with --resume to finish"
    )
    assert main(["run", str(config), "--quiet", "--resume"]) == 0
    np.testing.assert_array_equal(zarr.open_group(output, mode="r")["0"][:], expected)


@pytest.mark.parametrize("room_kb", [0, 8, 24, 48])
def test_issue_15_resume_on_a_disk_still_full(
    tmp_path: Path,
    tmpfs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    room_kb: int,
) -> None:
    """The disk filled up, the user resumes without freeing enough: each time the same line,
    wherever the run was when the disk refused (the lock, a chunk, the ledger, the record)."""
    output = tmpfs / "o.zarr"
    config = _config(tmp_path, output)
    expected = _expected(tmp_path, config)
    _half_done(config, output, monkeypatch)
    filler = tmpfs / "filler"
    room = shutil.disk_usage(tmpfs).free - room_kb * 1024
    with filler.open("wb") as f, contextlib.suppress(OSError):  # full to the last block
        f.write(b"\0" * max(room, 0))
    capsys.readouterr()
    code = main(["run", str(config), "--quiet", "--resume"])
    if code == 2:
        line = _one_line(capsys.readouterr().err)
        assert line.startswith("error: no space left on the device")
        assert line.endswith(
            "free some space or choose another output; the blocks already written are kept, "
            "run again with --resume to finish"
        )
    else:  # the room left was enough for the rest of this small output
        assert code == 0 and room_kb > 0
    filler.unlink()
    assert main(["run", str(config), "--quiet", "--resume"]) == 0
    np.testing.assert_array_equal(zarr.open_group(output, mode="r")["0"][:], expected)


def test_issue_15_resume_under_a_file_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ulimit -f``, the path a quota error takes: a real limit, set on a real process."""
    import resource

    output = tmp_path / "o.zarr"
    config = _config(tmp_path, output)
    expected = _expected(tmp_path, config)
    _half_done(config, output, monkeypatch)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    command = [sys.executable, "-m", "pipeline", "run", str(config), "--quiet", "--resume"]
    limited = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=limit, check=False, timeout=120
    )
    assert limited.returncode == 2, limited.stderr
    line = _one_line(limited.stderr)
    assert line.startswith("error: a file would grow beyond the largest size allowed")
    assert f" while writing the output {output}: " in line or f" of {output}: " in line
    assert "raise the limit (`ulimit -f unlimited`) or write smaller chunks" in line
    assert main(["run", str(config), "--quiet", "--resume"]) == 0
    np.testing.assert_array_equal(zarr.open_group(output, mode="r")["0"][:], expected)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "the disk quota is exceeded"),
        (errno.EFBIG, "a file would grow beyond the largest size allowed"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "operation not permitted"),
    ],
)
def test_refusals_name_the_file_and_the_fix(tmp_path: Path, code: int, says: str) -> None:
    output = tmp_path / "o.zarr"
    inside = output / "0" / "c" / "1" / "0"
    error = refusal(OSError(code, os.strerror(code), str(inside)), output, doing="writing")
    assert isinstance(error, OutputWriteError)
    assert str(error).startswith(f"{says} ({inside}) while writing {output}: ")
    assert "\n" not in str(error)
    quiet = refusal(OSError(code, "x"), output, doing="writing", resumable=False)
    assert quiet is not None and "--resume" not in str(quiet) and "resume=True" not in str(quiet)


def test_errors_that_are_not_the_outputs_refusing_are_left_alone(tmp_path: Path) -> None:
    output = tmp_path / "o.zarr"
    elsewhere = tmp_path / "input.tif"
    assert refusal(OSError(errno.EACCES, "denied", str(elsewhere)), output, doing="w") is None
    assert refusal(OSError(errno.ENOENT, "gone", str(output / "x")), output, doing="w") is None
    assert refusal(OutputWriteError("explained"), output, doing="w") is None
    assert refusal(ValueError(str(uuid.uuid4())), output, doing="w") is None
