"""Every bad input a user can bring: one clear line, exit code 2, the input untouched, and no
output ever marked complete.

Each case builds its inputs in a fresh folder, runs the command line, and checks the message.
"""

from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from conftest import patch_tag_value

from pipeline.cli import main
from pipeline.demo import write_dem

STEP = "steps:\n  - function: slope\n"


@dataclass
class Case:
    """A bad input: how to make it, the config, what the user must read."""

    name: str
    config: str
    message: str
    make: Callable[[Path], None] = lambda folder: None
    args: list[str] = field(default_factory=list)
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    first_line_only: bool = False


def dem(folder: Path) -> None:
    write_dem(folder / "dem.tif", (96, 128), tile=(32, 32))


def truncated(folder: Path) -> None:
    dem(folder)
    path = folder / "dem.tif"
    patch_tag_value(path, "TileOffsets", 5, path.stat().st_size - 10)


def missing_tiles(folder: Path) -> None:
    dem(folder)
    patch_tag_value(folder / "dem.tif", "TileByteCounts", 2, 0)


def corrupt_zarr(folder: Path) -> None:
    z = zarr.create_array(folder / "dem.zarr", shape=(64, 64), chunks=(32, 32), dtype="f4")
    z[:] = 1.0
    (folder / "dem.zarr" / "c" / "1" / "1").write_bytes(b"definitely not zstd")


def npy(shape: tuple[int, ...]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        np.save(folder / "a.npy", np.zeros(shape, np.float32))

    return make


def with_kernels(code: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        dem(folder)
        (folder / "kernels.py").write_text(textwrap.dedent(code))

    return make


def existing_output(folder: Path) -> None:
    dem(folder)
    assert main(["run", str(folder / "run.yaml"), "--quiet"]) == 0


def changed_then_resume(folder: Path) -> None:
    dem(folder)
    (folder / "first.yaml").write_text(
        "input: dem.tif\n" + STEP + "    params: {cell_size: 30.0}\noutput: {path: o.zarr}\n"
    )
    assert main(["run", str(folder / "first.yaml"), "--quiet"]) == 0


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.io.writer import ZarrTarget

    def write(self: Any, window: Any, block: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ZarrTarget, "write", write)


def separate_pages(folder: Path) -> None:
    import tifffile

    with tifffile.TiffWriter(folder / "pages.tif") as tif:
        for shape in ((50, 60), (50, 60), (30, 40)):
            tif.write(np.zeros(shape, np.uint8))


def truncated_raw(folder: Path) -> None:
    import tifffile

    path = folder / "raw.tif"
    tifffile.imwrite(path, np.arange(100 * 120, dtype=np.uint16).reshape(100, 120))
    data = path.read_bytes()
    path.write_bytes(data[:-5000])
    patch_tag_value(path, "StripByteCounts", 0, 24000 - 5000)


CASES = [
    Case(
        "missing-file",
        "input: nowhere.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"run.yaml:1: input: .*nowhere.tif: no such file or directory; check the path",
    ),
    Case(
        "directory",
        "input: folder\n" + STEP + "output: {path: o.zarr}\n",
        r"run.yaml:1: input: .*folder is a directory but not a Zarr store",
        make=lambda f: (f / "folder").mkdir(),
    ),
    Case(
        "not-an-image",
        "input: table.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"table.tif is not an image: a file starting with bytes b'y,x,' ?; pipeline reads TIFF",
        make=lambda f: (f / "table.tif").write_text("y,x,z\n1,2,3\n"),
    ),
    Case(
        "truncated-tiff",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"dem.tif: truncated: 1 of 12 tiles end past the end of the file",
        make=truncated,
    ),
    Case(
        "missing-tiles",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"dem.tif: 1 of 12 tiles are missing \(first: number 2\)",
        make=missing_tiles,
    ),
    Case(
        "corrupt-zarr-chunk",
        "input: {path: dem.zarr, chunks: 32}\n" + STEP + "output: {path: o.zarr}\n",
        r"error: .*dem.zarr: cannot read window \[\d+:\d+, \d+:\d+\] of array \(root\) .*a chunk "
        r"is damaged: rewrite the store",
        make=corrupt_zarr,
    ),
    Case(
        "empty-image",
        "input: a.npy\n" + STEP + "output: {path: o.zarr}\n",
        r"a.npy is empty \(shape \(0, 7\)\); there are no pixels to compute",
        make=npy((0, 7)),
    ),
    Case(
        "one-dimensional",
        "input: a.npy\n" + STEP + "output: {path: o.zarr}\n",
        r"a.npy has 1 dimension\(s\), shape \(9,\); pipeline works on 2-D",
        make=npy((9,)),
    ),
    Case(
        "four-dimensional",
        "input: a.npy\n" + STEP + "output: {path: o.zarr}\n",
        r"a.npy has 4 dimension\(s\), shape \(2, 3, 4, 5\)",
        make=npy((2, 3, 4, 5)),
    ),
    Case(
        "depth-larger-than-image",
        "input: dem.tif\nsteps:\n  - function: square\n    depth: 500\noutput: {path: o.zarr}\n",
        r"run.yaml:3: steps.0: depth 500x500 is larger than the image \(96x128\)",
        make=dem,
    ),
    Case(
        "unknown-builtin",
        "input: dem.tif\nsteps:\n  - function: slop\noutput: {path: o.zarr}\n",
        r"run.yaml:3: steps.0.function: unknown function 'slop': did you mean 'slope'\?",
        make=dem,
    ),
    Case(
        "unimportable-module",
        "input: dem.tif\nsteps:\n  - function: no_such_package.terrain:slope\n"
        "output: {path: o.zarr}\n",
        r"cannot import module 'no_such_package.terrain' for 'no_such_package.terrain:slope': "
        r"No module named 'no_such_package'",
        make=dem,
    ),
    Case(
        "function-raises",
        "input: {path: dem.tif, chunks: [96, 128]}\nsteps:\n  - function: kernels.py:boom\noutput: {path: o.zarr}\n",
        r"^error: kernels.py:boom failed on the block at pixels \[0:96, 0:128\] \(rows 0-95, "
        r"columns 0-127\) of the 96x128 image: KeyError: 'elevation'",
        make=with_kernels("def boom(dem):\n    return {}['elevation']\n"),
        first_line_only=True,
    ),
    Case(
        "wrong-shape",
        "input: {path: dem.tif, chunks: [96, 128]}\nsteps:\n  - function: kernels.py:crop\noutput: {path: o.zarr}\n",
        r"kernels.py:crop returned shape \(48, 128\) for the block at pixels \[0:96, 0:128\]; "
        r"expected the core \(96, 128\) or the padded block \(96, 128\)",
        make=with_kernels("def crop(dem):\n    return dem[::2]\n"),
    ),
    Case(
        "wrong-dtype",
        "input: {path: dem.tif, chunks: [96, 128]}\nsteps:\n  - function: kernels.py:spin\noutput: {path: o.zarr}\n",
        r"kernels.py:spin returned dtype complex64 .* declared output dtype is float32: "
        r"float32 cannot hold complex64 values safely",
        make=with_kernels("def spin(dem):\n    return dem * 1j\n"),
    ),
    Case(
        "nan-into-integers",
        "input: dem.tif\nsteps:\n  - function: kernels.py:ratio\n    dtype: uint8\n"
        "output: {path: o.zarr}\n",
        r"declared output dtype is uint8: a float result cannot go into an integer output "
        r"\(NaN has no integer value\)",
        make=with_kernels("import numpy as np\ndef ratio(dem):\n    return dem * np.nan\n"),
    ),
    Case(
        "yaml-syntax",
        "input: dem.tif\nsteps:\n  - function: [slope\noutput: {}\n",
        r"run.yaml:4: YAML syntax error \(line 4, column 7\): while parsing a flow sequence",
        make=dem,
    ),
    Case(
        "unknown-key",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\ncompute: {sheduler: threads}\n",
        r"run.yaml:5: compute.sheduler: unknown key 'sheduler': did you mean 'scheduler'\?",
        make=dem,
    ),
    Case(
        "wrong-type",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\ncompute: {workers: many}\n",
        r"run.yaml:5: compute.workers: Input should be a valid integer",
        make=dem,
    ),
    Case(
        "yaml-alias",
        "input: &p dem.tif\n" + STEP + "output: {path: *p}\n",
        r"run.yaml:1: YAML anchors \(&p\) are not allowed",
        make=dem,
    ),
    Case(
        "yaml-python-tag",
        "input: !!python/object/apply:os.system [echo hi]\n" + STEP + "output: {path: o.zarr}\n",
        r"run.yaml:1: YAML syntax error \(line 1, column 8\): could not determine a constructor "
        r"for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
        make=dem,
    ),
    Case(
        "existing-output",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"run.yaml:4: output.path: output .*o.zarr already exists; pass --overwrite to ",
        make=existing_output,
    ),
    Case(
        "output-inside-input",
        "input: data.zarr\n" + STEP + "output: {path: data.zarr/slope.zarr}\n",
        r"output .*data.zarr/slope.zarr is inside the input .*data.zarr; writing there could "
        r"destroy the input",
        make=lambda f: zarr.create_array(
            f / "data.zarr", shape=(64, 64), chunks=(32, 32), dtype="f4"
        ).__setitem__(slice(None), 1.0),
    ),
    Case(
        "unwritable-output",
        "input: dem.tif\n" + STEP + "output: {path: /sys/pipeline-test/o.zarr}\n",
        r"cannot create the output /sys/pipeline-test/o.zarr: .*; choose a location you can "
        r"write to",
        make=dem,
    ),
    Case(
        "disk-full",
        "input: {path: dem.tif, chunks: [96, 128]}\n" + STEP + "output: {path: o.zarr}\n",
        r"no space left on the device while writing block \[0:96, 0:128\] of .*o.zarr: free some "
        r"space or choose another output; the blocks already written are kept, run again with "
        r"--resume",
        make=dem,
        patch=disk_full,
    ),
    Case(
        "resume-changed-config",
        "input: dem.tif\n" + STEP + "    params: {cell_size: 10.0}\noutput: {path: o.zarr}\n",
        r"cannot resume .*o.zarr: the run changed since it was started \(step 0 \(slope\) "
        r"changed: cell_size 30.0 -> 10.0\)",
        make=changed_then_resume,
        args=["--resume"],
    ),
    Case(
        "function-file-syntax-error",
        "input: dem.tif\nsteps:\n  - function: kernels.py:f\noutput: {path: o.zarr}\n",
        r"run.yaml:3: steps.0.function: importing .*kernels.py failed: SyntaxError",
        make=with_kernels("def f(dem)\n    return dem\n"),
    ),
    Case(
        "kernel-numba-cannot-compile",
        "input: dem.tif\nsteps:\n  - function: kernels.py:label\n    kind: pointwise\n"
        "output: {path: o.zarr}\n",
        r"run.yaml:3: steps.0.function: numba cannot compile kernels.py:label: Untyped global "
        r"name 'helper'",
        make=with_kernels(  # a plain function it would compile; an object it cannot call
            "class Helper:\n    def __call__(self, v):\n        return v\n\n"
            "helper = Helper()\n\ndef label(v):\n    return helper(v)\n"
        ),
    ),
    Case(
        "output-is-a-file",
        "input: dem.tif\n" + STEP + "output: {path: notes.txt}\n",
        r"refusing to overwrite .*notes.txt: it is not a Zarr store",
        make=lambda f: (dem(f), (f / "notes.txt").write_text("keep me"))[0],
        args=["--overwrite"],
    ),
    # Issue 15: inputs that lie, and settings that are not what they say.
    Case(
        "issue-15-zarr-input-missing-a-chunk",
        "input: dem.zarr\n" + STEP + "output: {path: o.zarr}\n",
        r"dem.zarr: chunk c/1/0 of array \(root\) is missing, so its pixels would be read as "
        r"the fill value; restore it, or if the array is sparse on purpose",
        make=lambda f: lost_chunk(f, "c/1/0"),
    ),
    Case(
        "issue-15-zarr-stack-of-planes-read-as-channels",
        "input: stack.zarr\n" + STEP + "output: {path: o.zarr}\n",
        r"stack.zarr is a 3-D array of shape \(20, 64, 64\) without axis names: read as "
        r"\(Y, X, C\) it would be a 20x64 image of 64 channels",
        make=lambda f: zarr.create_array(f / "stack.zarr", shape=(20, 64, 64), dtype="f4"),
    ),
    Case(
        "issue-15-string-dtype-image",
        "input: a.npy\n" + STEP + "output: {path: o.zarr}\n",
        r"a.npy holds values of dtype <U3, not numbers",
        make=lambda f: np.save(f / "a.npy", np.full((8, 8), "abc")),
    ),
    Case(
        "issue-15-structured-dtype-image",
        "input: s.zarr\n" + STEP + "output: {path: o.zarr}\n",
        r"s.zarr holds values of dtype .*, not numbers",
        make=lambda f: (
            np.save(f / "s.npy", np.zeros((8, 8), "i4,f4"))
            or zarr.save_array(f / "s.zarr", np.zeros((8, 8), "i4,f4"), zarr_format=2)
        ),
    ),
    Case(
        "issue-15-system-exit-in-the-function",
        "input: dem.tif\nsteps:\n  - function: kernels.py:leave\noutput: {path: o.zarr}\n",
        r"kernels.py:leave failed on the block at pixels .* SystemExit: 0",
        make=with_kernels("import sys\n\ndef leave(dem):\n    sys.exit(0)\n"),
        first_line_only=True,
    ),
    Case(
        "issue-15-output-dtype-zarr-cannot-store",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"dtype='float128' \(float128\) cannot be stored in Zarr: use one of bool, int8",
        make=dem,
        args=["--set", "steps.0.dtype=float128"],
    ),
    Case(
        "issue-15-output-dtype-object",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"dtype='object' \(object\) cannot be stored in Zarr",
        make=dem,
        args=["--set", "steps.0.dtype=object"],
    ),
    Case(
        "issue-15-memory-limit-not-a-size",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"compute.memory_limit: 'lots' is not a size of memory: give one such as 4GB",
        make=dem,
        args=["--set", "compute.memory_limit=lots"],
    ),
    Case(
        "issue-15-memory-limit-negative",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\ncompute: {memory_limit: -5GB}\n",
        r"run.yaml:5: compute.memory_limit: '-5GB' is not a size of memory",
        make=dem,
    ),
    Case(
        "issue-15-multi-page-tiff-of-separate-images",
        "input: pages.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"pages.tif holds 3 separate images \(pages or series 0 to 2\), and pipeline reads one",
        make=separate_pages,
    ),
    Case(
        "issue-15-truncated-uncompressed-tiff-with-counts-edited-to-match",
        "input: raw.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"raw.tif: its 100x120 uncompressed pixels need 24000 bytes from offset \d+, but the "
        r"TIFF lists 19000 and the file has \d+: it is truncated or damaged",
        make=truncated_raw,
    ),
    Case(
        "issue-15-one-tile-larger-than-the-memory-limit",
        "input: {path: one.tif, chunks: [512, 512]}\n" + STEP + "output: {path: o.zarr}\n"
        "compute: {memory_limit: 400MB, workers: 2}\n",
        r"run.yaml:\d+: compute.memory_limit: .*one.tif stores its pixels in units \(tiles, "
        r"strips or chunks\) of 6144x6144, .* each decoded, and every read decodes whole "
        r"units: 2 task\(s\) at once project .* per worker, over the budget of 400.0 MB "
        r"\(memory_limit 400MB\); rewrite the input with smaller tiles or chunks",
        make=lambda f: tifffile_one_tile(f / "one.tif", 6144),
    ),
    Case(
        "issue-15-workers-zero",
        "input: dem.tif\n" + STEP + "output: {path: o.zarr}\n",
        r"workers=0 must be at least 1",
        make=dem,
        args=["--workers", "0"],
    ),
]


def tifffile_one_tile(path: Path, side: int) -> None:
    import tifffile

    tifffile.imwrite(path, np.zeros((side, side), "f4"), tile=(side, side), compression="zlib")


def lost_chunk(folder: Path, key: str) -> None:
    z = zarr.create_array(folder / "dem.zarr", shape=(64, 64), chunks=(32, 32), dtype="f4")
    z[:] = 1.0
    (folder / "dem.zarr" / key).unlink()


def fingerprint(folder: Path) -> dict[str, str]:
    """Hashes of every file a case made before running (its inputs)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".yaml")
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(
    case: Case,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "run.yaml").write_text(case.config)
    case.make(tmp_path)
    outputs_before = set(tmp_path.rglob("*.zarr"))
    before = {
        k: v
        for k, v in fingerprint(tmp_path).items()
        if not any(k.startswith(f"{o.name}/") for o in outputs_before if o.name == "o.zarr")
    }
    capsys.readouterr()
    if case.patch:
        case.patch(monkeypatch)
    code = main(["run", str(tmp_path / "run.yaml"), "--quiet", *case.args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    if not case.first_line_only:
        assert len(lines) == 1, f"one line, got: {err}"
    assert __import__("re").search(case.message, lines[0]), lines[0]
    after = fingerprint(tmp_path)
    for name, digest in before.items():
        if not name.startswith("o.zarr/"):
            assert after.get(name) == digest, f"{name} was modified"
    for store in set(tmp_path.rglob("*.zarr")) - outputs_before:
        produced = zarr.open(store, mode="r").attrs.get("pipeline", {})
        assert produced.get("complete") is not True, f"{store} marked complete"


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast_with_a_message(tmp_path: Path) -> None:
    dem(tmp_path)
    (tmp_path / "run.yaml").write_text("input: dem.tif\n" + STEP + "output: {path: o.zarr}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "run.yaml",
            "--quiet",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    )
    assert not (tmp_path / "o.zarr").exists()
