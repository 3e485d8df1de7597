"""The benchmark scripts run (on tiny images: speed is measured there, not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str) -> str:
    """What ``benchmarks/<script>`` prints with ``args``; it must exit cleanly."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return done.stdout


@pytest.mark.slow
def test_per_pixel_benchmark_runs_and_reports_every_ratio(tmp_path: Path) -> None:
    out = run_benchmark(
        "per_pixel.py",
        "--size",
        "80x120",
        "--chunks",
        "64",
        "--repeat",
        "1",
        "--data",
        str(tmp_path),
    )
    for label in ("(a) uncompiled", "(b) compiled", "(c) pipeline", "(d) plain dask"):
        assert label in out
    assert out.count("a/c =") == 2
    assert "b/(c x cores) =" in out
    assert "d/c =" in out


@pytest.mark.slow
def test_seed_benchmark_runs_every_contender(tmp_path: Path) -> None:
    out = run_benchmark(
        "seed.py",
        "--size",
        "60x80",
        "--radius",
        "2",
        "--repeat",
        "1",
        "--out",
        str(tmp_path / "o.zarr"),
    )
    for label in (
        "(b) pipeline, threads, 1",
        "(t) pipeline, threads",
        "(p) pipeline, proc",
        "(m) multi",
    ):
        assert label in out
    assert "m/p =" in out


@pytest.mark.slow
def test_object_store_benchmark_runs_and_reports_every_case() -> None:
    pytest.importorskip("moto.server")
    out = run_benchmark("object_store.py", "--size", "300x400", "--repeat", "1")
    for case in ("GeoTIFF disk -> disk", "Zarr S3 -> disk", "GeoTIFF disk -> S3", "S3 -> S3"):
        assert case in out
    assert out.count("Mpx/s") == 6


@pytest.mark.slow
def test_scheduler_load_benchmark_runs_and_reports_both_ways() -> None:
    out = run_benchmark("scheduler_load.py", "--size", "1024", "--block", "256", "--workers", "1")
    assert "16 tasks" in out
    assert "in waves of 4096: first task after" in out and "all at once: first task" in out


@pytest.mark.slow
def test_vs_gdal_benchmark_runs_and_reports_both_commands() -> None:
    import shutil

    if shutil.which("gdaldem") is None:
        pytest.skip("gdaldem (Debian's gdal-bin) is not installed")
    out = run_benchmark("vs_gdal.py", "--sizes", "64x96", "--repeat", "1")
    assert "pipeline run:" in out and "gdaldem slope:" in out
    assert "gdaldem / pipeline wall time:" in out


@pytest.mark.slow
def test_out_of_core_benchmark_runs_every_contender(tmp_path: Path) -> None:
    out = run_benchmark(
        "out_of_core.py", "--sizes", "700,1400", "--repeat", "1", "--data", str(tmp_path)
    )
    for label in ("(a) plain dask", "(b) I/O floor", "(c) pipeline", "(d) pipeline, the user's"):
        assert label in out
    assert "measured: " in out and "measured on the block at rows 0:" in out
    assert "a/d =" in out and "c / (b + compute/cores) =" in out
    assert "(c) at 1400x1400" in out and "(d) at 1400x1400" in out
