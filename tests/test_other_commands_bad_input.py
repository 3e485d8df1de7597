"""Issue 15's cases for the other commands, configs and the environment: one line, exit 2, and
no file changed that a command did not create."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import pipeline
from pipeline.cli import main
from pipeline.demo import write_dem


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("out")
    pipeline.save(
        np.arange(64 * 64, dtype="f4").reshape(64, 64), folder / "o.zarr", progress=False, pyramid=1
    )
    return folder / "o.zarr"


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{dir}"], r"is a directory: give the name of the TIFF file to write"),
        (["--out", "x.tif", "--tile", "0"], r"tile \(0, 0\) must be positive multiples of 16"),
        (["--out", "x.tif", "--tile", "-16"], r"tile \(-16, -16\) must be positive multiples"),
        (
            ["--out", "{notes}", "--overwrite"],
            r"refusing to overwrite .*notes.txt: it is not a TIFF file",
        ),
        (["--out", "{input}/zarr.json", "--overwrite"], r"is the input .*o.zarr or inside it"),
    ],
    ids=["directory", "tile-0", "tile-negative", "a-file-not-a-tiff", "inside-the-input"],
)
def test_issue_15_export_refuses_with_one_line_and_leaves_nothing(
    output: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "folder").mkdir()
    before, stored = digest(tmp_path), digest(output)
    argv = [
        a.format(dir=tmp_path / "folder", notes=tmp_path / "notes.txt", input=output) for a in args
    ]
    argv = [a if a.startswith(("-", "/")) or a.isdigit() else str(tmp_path / a) for a in argv]
    line = one_line(capsys, ["export", str(output), *argv])
    assert pytest.importorskip("re").search(message, line), line
    assert digest(tmp_path) == before and digest(output) == stored
    assert not list(tmp_path.rglob("*.partial"))


def test_issue_15_export_into_a_missing_folder_makes_it(output: Path, tmp_path: Path) -> None:
    assert main(["export", str(output), "--out", str(tmp_path / "a" / "b" / "x.ome.tif")]) == 0
    assert (tmp_path / "a" / "b" / "x.ome.tif").stat().st_size > 0


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("folder", "is a directory: give the name of the PNG file"),
        ("notes.txt", "it is not a PNG file"),
    ],
)
def test_issue_15_preview_never_writes_over_what_it_did_not_make(
    output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "folder").mkdir()
    before = digest(tmp_path)
    line = one_line(capsys, ["preview", str(output), "--out", str(tmp_path / out)])
    assert message in line
    assert digest(tmp_path) == before
    assert main(["preview", str(output), "--out", str(tmp_path / "new" / "p.png")]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels deep"),
        ("input: dem.tif\n# " + "x" * (1 << 20) + "\n", "larger than 1 MiB, which no config is"),
    ],
    ids=["nested-5000-deep", "fifty-megabytes"],
)
def test_issue_15_configs_are_read_within_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (tmp_path / "run.yaml").write_text(text)
    assert message in one_line(capsys, ["run", str(tmp_path / "run.yaml")])


def test_issue_15_an_endless_config_is_not_read_to_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "larger than 1 MiB" in one_line(capsys, ["run", "/dev/zero"])


def test_issue_15_a_function_file_that_changes_directory_moves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dem(tmp_path / "dem.tif", (64, 64), tile=(32, 32))
    (tmp_path / "kernels.py").write_text(
        "import os\nos.chdir('/')\n\ndef same(dem):\n    return dem\n"
    )
    (tmp_path / "run.yaml").write_text(
        textwrap.dedent("""\
        input: dem.tif
        steps: [{function: kernels.py:same}]
        output: {path: out.zarr}
        """)
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "run.yaml", "--quiet"]) == 0
    assert Path.cwd() == tmp_path
    assert zarr.open_group(tmp_path / "out.zarr", mode="r").attrs["pipeline"]["complete"]
    assert not Path("/out.zarr").exists()
