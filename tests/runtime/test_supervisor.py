"""A function that kills its own process (``os._exit``, a crash in native code) on the threads
scheduler: the run still names the block it died on (issue 15), and `--resume` finishes it.

These run the real command (``python -m pipeline``), which supervises a run from a forked
parent; `main([...])` called in a test process does not fork.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from pipeline.demo import write_dem
from pipeline.io.lock import LOCK_FILE, process_gone
from pipeline.runtime.supervisor import death_message

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="supervision needs fork")

DYING = """\
import ctypes
import os
import time

def f(dem, block_info):
    how = os.environ.get("PIPELINE_TEST_DIE")
    if how and (block_info.core.y0, block_info.core.x0) == (64, 32):
        if how == "exit":
            os._exit(3)
        if how == "segv":
            ctypes.string_at(0)
    if how == "slow":
        time.sleep(60)
    return dem * 2
"""
LINE_OF_CRASH = 11


def _config(folder: Path) -> Path:
    write_dem(folder / "dem.tif", (128, 128), tile=(32, 32))
    (folder / "kernels.py").write_text(DYING)
    config = folder / "run.yaml"
    config.write_text(
        "input: {path: dem.tif, chunks: [32, 32]}\nsteps:\n  - function: kernels.py:f\n"
        "output: {path: o.zarr, chunks: [32, 32]}\ncompute: {scheduler: threads, workers: 2}\n"
    )
    return config


def _pipeline(*args: str, die: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_TEST_DIE": die or ""}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def _finishes_as_if_nothing_happened(config: Path) -> None:
    resumed = _pipeline("run", str(config), "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected = tifffile.imread(config.parent / "dem.tif") * 2
    got = zarr.open_group(config.parent / "o.zarr", mode="r")["0"][:]
    np.testing.assert_array_equal(got, expected)
    assert not list((config.parent / "o.zarr" / ".pipeline" / "running").iterdir())


def test_issue_15_os_exit_in_the_function_on_threads_names_the_block(tmp_path: Path) -> None:
    config = _config(tmp_path)
    died = _pipeline("run", str(config), "--quiet", die="exit")
    assert died.returncode == 2, died.stderr
    lines = died.stderr.strip().splitlines()
    assert len(lines) == 1, died.stderr
    assert lines[0].startswith(
        "error: the run ended abruptly with exit code 3 and no error (os._exit, or exit() in a "
        "C library) while computing "
    )
    assert "[64:96, 32:64]" in lines[0]  # the block, and at most the other thread's
    assert lines[0].endswith(
        f"of {tmp_path / 'o.zarr'}; the blocks already written are kept: fix the function "
        "and run again with --resume to finish"
    )
    _finishes_as_if_nothing_happened(config)


def test_issue_15_a_segfault_in_the_function_on_threads_names_the_block_and_its_stack(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    died = _pipeline("run", str(config), "--quiet", die="segv")
    assert died.returncode == 2, died.stderr
    first, *stack = died.stderr.strip().splitlines()
    assert first == (
        "error: the run crashed in native code (SIGSEGV) while computing the block at pixels "
        f"[64:96, 32:64] of {tmp_path / 'o.zarr'}; the blocks already written are kept: fix "
        "the function and run again with --resume to finish"
    )
    assert stack[0] == "Fatal Python error: Segmentation fault"
    assert f'kernels.py", line {LINE_OF_CRASH} in f' in stack[-1]
    assert not any("pipeline/" in line for line in stack)  # the user's frames only
    _finishes_as_if_nothing_happened(config)


def _start_slow(config: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(config), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PIPELINE_TEST_DIE": "slow"},
        start_new_session=True,
    )
    running = config.parent / "o.zarr" / ".pipeline" / "running"
    deadline = time.monotonic() + 60
    while not (running.is_dir() and any(running.iterdir())):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def test_a_terminate_signal_to_the_command_stops_the_run_and_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path)
    proc = _start_slow(config)
    proc.send_signal(signal.SIGTERM)  # the parent alone, as a job manager's `kill PID` does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert re.fullmatch(
        r"error: the run was stopped by SIGTERM while computing (the block|one of the blocks) "
        r"at pixels .* of .*o.zarr; the blocks already written are kept: run again with "
        r"--resume to finish\n",
        err,
    ), err


def test_killing_the_command_kills_the_run_it_supervises(tmp_path: Path) -> None:
    config = _config(tmp_path)
    proc = _start_slow(config)
    owner = json.loads((tmp_path / "o.zarr" / LOCK_FILE).read_text())["pid"]
    assert owner != proc.pid  # the run is the forked child
    proc.kill()  # the parent alone
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while not process_gone(owner):
        assert time.monotonic() < deadline, "the run outlived the command"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("code", "notes", "says", "blamed"),
    [
        (-signal.SIGKILL, [], "was killed (SIGKILL: by a user, or by the system when", False),
        (-signal.SIGTERM, [], "was stopped by SIGTERM outside any block", False),
        (-signal.SIGSEGV, [], "crashed in native code (SIGSEGV) outside any block", False),
        (
            -signal.SIGABRT,
            [{"block": "0.1", "window": None}],
            "crashed in native code (SIGABRT) while computing the block at pixels block 0.1",
            True,
        ),
        (
            5,
            [{"block": "0.1", "window": "[0:8, 8:16]"}, {"block": "1.1", "window": "[8:16, 8:16]"}],
            (
                "exit code 5 and no error (os._exit, or exit() in a C library) while computing "
                "one of the blocks at pixels [0:8, 8:16], [8:16, 8:16]"
            ),
            True,
        ),
    ],
)
def test_death_messages(
    tmp_path: Path, code: int, notes: list[dict[str, object]], says: str, blamed: bool
) -> None:
    message, to_blame = death_message(code, notes, "", tmp_path / "o.zarr")
    assert says in message
    assert to_blame is blamed
    assert ("fix the function" in message) is blamed
