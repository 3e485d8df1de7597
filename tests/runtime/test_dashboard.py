"""The Dask dashboard a run prints is a page a user can open: served, with its Bokeh plots."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from test_cli import write_config

from pipeline.demo import write_dem

pytest.importorskip("bokeh")


def assert_status_page(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
        assert response.status == 200
        page = response.read().decode()
    assert "Dask needs bokeh" not in page
    assert "bokeh.min.js" in page and "Bokeh.embed.embed_items" in page, page[:300]


@pytest.mark.slow
def test_the_dashboard_link_of_a_cli_run_serves_the_status_page(tmp_path: Path) -> None:
    write_dem(tmp_path / "dem.tif", (400, 400), tile=(64, 64))
    write_config(
        tmp_path,
        """\
        input: dem.tif
        steps:
          - function: kernels.py:slow
        output: {path: o.zarr, chunks: [100, 100]}
        compute: {scheduler: distributed, workers: 2}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "run.yaml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    links: list[str] = []
    found = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("Dask dashboard: "):
                links.append(line.split()[-1])
                found.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        assert found.wait(120), "no dashboard link printed"
        assert links[0].startswith("http://127.0.0.1:")
        assert_status_page(links[0])  # while the run goes on (16 blocks of 0.5 s each)
    finally:
        assert proc.wait(timeout=240) == 0
